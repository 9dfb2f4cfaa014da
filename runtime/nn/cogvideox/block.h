/*
** block.h: CogVideoX's transformer block (diffusers' CogVideoXBlock) in one call, on the
** joint sequence of a step: x [B, T + L, D], the T text rows first, then the L video rows.
** Weights keep their file dtype and come by role (lua/zoe/arch/cogvideox.lua maps the names).
*/
#ifndef ZOE_NN_COGVIDEOX_BLOCK_H
#define ZOE_NN_COGVIDEOX_BLOCK_H

#include "../nn.h"

typedef struct zoe_cogvideox_block_w {
  const zoe_tensor *mod1_w, *mod1_b, *norm1_w, *norm1_b; /* LayerNormZero 1: [6D, E], [6D]; LayerNorm [D] */
  const zoe_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
  const zoe_tensor *norm_q_w, *norm_q_b, *norm_k_w, *norm_k_b; /* per-head LayerNorm [Dh] */
  const zoe_tensor *mod2_w, *mod2_b, *norm2_w, *norm2_b;
  const zoe_tensor *ffn0_w, *ffn0_b, *ffn2_w, *ffn2_b;   /* [F, D] GELU-tanh, [D, F] */
} zoe_cogvideox_block_w;

typedef struct zoe_cogvideox_block_opts {
  int heads;
  int64_t text;                    /* T: the text rows at the front of x */
  double eps;                      /* the block's LayerNorms (q/k: 1e-6) */
  const zoe_tensor *rope_cos, *rope_sin; /* [L, Dh] (each frequency twice) for the video rows, or NULL */
  int64_t ffn_rows;                /* feed-forward in chunks of at most this many rows; 0: 8192 */
} zoe_cogvideox_block_opts;

/*
** x [B, T + L, D] -> the block's output, same shape. es [B, E] is silu(time embedding),
** what both LayerNormZeros project into shift, scale and gate for each stream.
*/
zoe_tensor *zoe_cogvideox_block(const zoe_cogvideox_block_w *w, const zoe_cogvideox_block_opts *o,
                                const zoe_tensor *x, const zoe_tensor *es, zoe_err *e);

#endif
