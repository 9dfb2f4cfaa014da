/*
** t5.h: one layer of T5's encoder (T5 v1.1 and umT5: pre-norm RMS, no biases,
** unscaled attention with a relative position bias, gated tanh-GELU feed-forward).
** Weights by role, in their file dtype; lua/zoe/arch/t5.lua maps checkpoint names
** to these roles.
*/
#ifndef ZOE_T5_H
#define ZOE_T5_H

#include "nn.h"

typedef struct zoe_t5_layer_w {
  const zoe_tensor *norm1, *q, *k, *v, *o, *norm2, *gate, *fc1, *fc2;
  const zoe_tensor *pos_table; /* [buckets, H], or NULL when the bias is given */
} zoe_t5_layer_w;

/*
** x [B, L, D] -> [B, L, D]; mask [B, L] (nonzero = real token) or NULL; pos_bias
** [H, L, L] or NULL to compute it from w->pos_table (max distance 128).
*/
zoe_tensor *zoe_t5_layer(const zoe_t5_layer_w *w, int heads, double eps, const zoe_tensor *x,
                         const zoe_tensor *mask, const zoe_tensor *pos_bias, zoe_err *e);

#endif
