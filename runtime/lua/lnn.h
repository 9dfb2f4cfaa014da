/*
** lnn.h: the zoe.nn table is assembled from several binding files.
*/
#ifndef LNN_H
#define LNN_H

#include <lua.h>

/* adds conv2d, conv3d, upsample_nearest, patchify, unpatchify, vae_resblock,
   vae_attention to the table on top (runtime/lua/lnn_conv.c) */
void lz_nn_conv_register(lua_State *L);
int lz_open_nn(lua_State *L);

#endif
