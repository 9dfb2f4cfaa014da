/*
** block.h: LTX-Video's transformer block (diffusers' LTXVideoTransformerBlock) in one
** call, and the rotary embedding it applies across the whole inner dim. Weights come by
** role (lua/zoe/arch/ltx.lua maps the checkpoint's names) and keep their file dtype.
*/
#ifndef ZOE_LTX_BLOCK_H
#define ZOE_LTX_BLOCK_H

#include "../nn.h"

typedef struct zoe_ltx_block_w {
  const zoe_tensor *table;     /* scale_shift_table [6, D]: shift, scale, gate (attention), the same (ff) */
  zoe_attn_w self_attn;        /* q/k/v/o with biases, norm_q/norm_k RMS across heads */
  zoe_attn_w cross_attn;       /* q, o and norm_q used here; keys and values come per prompt */
  const zoe_tensor *ff0_w, *ff0_b, *ff2_w, *ff2_b;
} zoe_ltx_block_w;

typedef struct zoe_ltx_block_opts {
  int heads;
  double eps;          /* the block's RMS norms (1e-6) */
  double qk_eps;       /* the q/k RMS norms (1e-5) */
  int64_t cond_tokens; /* the first n tokens of every entry take 'temb0' (image-to-video) */
  int64_t ffn_rows;    /* feed-forward in pieces of at most this many tokens; 0: 8192 */
} zoe_ltx_block_opts;

/*
** x [B, L, D] -> [B, L, D]:
**   x += attn1(RMS(x) * (1 + scale) + shift) * gate      q/k RMS-normed across heads, rotated
**   x += attn2(x, text)                                  keys/values [B, Lc, H, Dh] cached per
**                                                        prompt; key_mask [B, Lc] (nonzero keeps)
**   x += ff(RMS(x) * (1 + scale') + shift') * gate'      GELU-tanh
** with the six modulations table + temb [B, 6, D] (temb0 for the first cond_tokens tokens);
** cos, sin [L, D] from the rotary table.
*/
zoe_tensor *zoe_ltx_block(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, const zoe_tensor *x,
                          const zoe_tensor *temb, const zoe_tensor *temb0, const zoe_tensor *cos,
                          const zoe_tensor *sin, const zoe_tensor *cross_k, const zoe_tensor *cross_v,
                          const zoe_tensor *key_mask, zoe_err *e);

/*
** x * cos + rot(x) * sin on x [B, L, D], rot(x)[2i] = -x[2i+1], rot(x)[2i+1] = x[2i]: pairs of
** adjacent entries rotated across the whole inner dim, per token (cos, sin [L, D]).
** In place when out == x (f32, contiguous).
*/
zoe_tensor *zoe_ltx_rope(const zoe_tensor *x, const zoe_tensor *cos, const zoe_tensor *sin, zoe_tensor *out,
                         zoe_err *e);

#endif
