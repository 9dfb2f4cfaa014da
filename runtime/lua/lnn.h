/*
** lnn.h: the zoe.nn table is assembled from several binding files; lnn.c's
** opener (lz_open_nn, lzlib.h) calls these.
*/
#ifndef LNN_H
#define LNN_H

#include <lua.h>

#include "../core/tensor.h"

/* The flops of a convolution of x by w at stride 1 (tasks' cost), lnn_conv.c */
double lz_conv_cost(const zoe_tensor *x, const zoe_tensor *w);

/* conv2d, conv3d, upsample_nearest, patchify, unpatchify into the table on top (lnn_conv.c) */
void lz_nn_conv_functions(lua_State *L);
/* the Wan family's blocks: wan_block, wan_cross_kv, vae_resblock, vae_attention (lnn_wan.c) */
void lz_nn_wan_functions(lua_State *L);
/* the CogVideoX family's blocks: cogvideox_block, cogvideox_spatial_norm (lnn_cogvideox.c) */
void lz_nn_cogvideox_functions(lua_State *L);
/* the LTX-Video family's blocks: ltx_block, ltx_rope (lnn_ltx.c) */
void lz_nn_ltx_functions(lua_State *L);

#endif
