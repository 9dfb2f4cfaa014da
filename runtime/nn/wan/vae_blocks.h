/*
** vae_blocks.h: the Wan VAE's composite blocks, each one call
** (Wan2.1 wan/modules/vae.py: ResidualBlock, AttentionBlock).
** Videos are [N, C, T, H, W]. Weights by role (lua/zoe/arch/wan_vae.lua maps
** the checkpoint's names to them) keep the checkpoint's shapes and may be f32,
** f16 or bf16.
*/
#ifndef ZOE_VAE_BLOCKS_H
#define ZOE_VAE_BLOCKS_H

#include "../nn.h"

/* ResidualBlock(in, out). */
typedef struct zoe_vae_resblock_w {
  const zoe_tensor *norm1_gamma; /* [in, 1, 1, 1] */
  const zoe_tensor *conv1_w;     /* [out, in, 3, 3, 3] */
  const zoe_tensor *conv1_b;     /* [out] (may be NULL) */
  const zoe_tensor *norm2_gamma; /* [out, 1, 1, 1] */
  const zoe_tensor *conv2_w;     /* [out, out, 3, 3, 3] */
  const zoe_tensor *conv2_b;     /* [out] (may be NULL) */
  const zoe_tensor *shortcut_w;  /* [out, in, 1, 1, 1]; NULL when in == out */
  const zoe_tensor *shortcut_b;  /* [out] (may be NULL) */
} zoe_vae_resblock_w;

/*
** The feature cache of one residual block: for each of its two causal convs,
** the last input frames it saw ([N, C, P, H, W], P <= 2), i.e. frames after
** RMS_norm and SiLU. NULL entries mean "the start of the video".
*/
typedef struct zoe_vae_cache {
  zoe_tensor *conv1, *conv2;
} zoe_vae_cache;

/*
** y = residual(x) + shortcut(x) with
**   residual = RMS_norm -> SiLU -> CausalConv3d 3 -> RMS_norm -> SiLU -> CausalConv3d 3
**   shortcut = CausalConv3d 1x1x1 (in != out) or the identity.
** 'cache' (may be NULL) holds the previous chunk's frames; when 'next' is given it
** receives new references to this chunk's (the last 2 input frames of each conv,
** counting the cached ones), exactly as the official chunked decode keeps them,
** so a video fed chunk by chunk gives the same result as all at once.
** 'next' may be the same struct as 'cache': the old references are released.
*/
zoe_tensor *zoe_vae_resblock(const zoe_tensor *x, const zoe_vae_resblock_w *w, const zoe_vae_cache *cache,
                             zoe_vae_cache *next, zoe_err *e);

/* AttentionBlock(C). */
typedef struct zoe_vae_attn_w {
  const zoe_tensor *norm_gamma; /* [C, 1, 1] */
  const zoe_tensor *qkv_w;      /* [3C, C, 1, 1] */
  const zoe_tensor *qkv_b;      /* [3C] (may be NULL) */
  const zoe_tensor *proj_w;     /* [C, C, 1, 1] */
  const zoe_tensor *proj_b;     /* [C] (may be NULL) */
} zoe_vae_attn_w;

/*
** Per frame: RMS_norm over channels -> 1x1 conv to q, k, v -> single-head
** attention over the H*W positions with scale 1/sqrt(C) -> 1x1 proj -> + x.
*/
zoe_tensor *zoe_vae_attention(const zoe_tensor *x, const zoe_vae_attn_w *w, zoe_err *e);

#endif
