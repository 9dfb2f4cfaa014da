/*
** spatial_norm.h: CogVideoX's SpatialNorm3D (the decoder's norm conditioned on the latent).
*/
#ifndef ZOE_NN_COGVIDEOX_SPATIAL_NORM_H
#define ZOE_NN_COGVIDEOX_SPATIAL_NORM_H

#include "../nn.h"

/*
** GroupNorm(f) * up(cy) + up(cb), then SiLU when 'silu': f [N, C, T, H, W]; cy, cb
** [N, C, Tz, hz, wz] (the norm's 1x1x1 convs of the latent) upsampled nearest to f's frames
** and size by whole factors, frame 0 apart when T is odd and > 1. w, b: the GroupNorm's
** affine [C] (or NULL). All f32 and contiguous.
*/
zoe_tensor *zoe_cogvideox_spatial_norm(const zoe_tensor *f, const zoe_tensor *cy, const zoe_tensor *cb, int groups,
                                       const zoe_tensor *w, const zoe_tensor *b, double eps, bool silu, zoe_err *e);

#endif
