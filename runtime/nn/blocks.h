/*
** blocks.h: composite blocks of the Wan family, each one call: the DiT block
** and the umT5 encoder layer. Weights keep their file dtype.
*/
#ifndef ZOE_BLOCKS_H
#define ZOE_BLOCKS_H

#include "nn.h"

/* One attention's projections: q, k, v, o (weight, bias) and the q/k RMS norms. */
typedef struct zoe_attn_w {
  const zoe_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *norm_q, *norm_k;
} zoe_attn_w;

/* Wan's WanAttentionBlock, named as in the checkpoint under blocks.N. */
typedef struct zoe_wan_block_w {
  const zoe_tensor *modulation; /* [1, 6, D] */
  zoe_attn_w self_attn, cross_attn;
  const zoe_tensor *norm3_w, *norm3_b; /* affine LayerNorm before cross-attention, or NULL */
  const zoe_tensor *ffn0_w, *ffn0_b, *ffn2_w, *ffn2_b;
} zoe_wan_block_w;

typedef struct zoe_wan_block_opts {
  int heads;
  double eps;
  int64_t grid[3];     /* token grid (frames, rows, cols) for the 3-D RoPE */
  int rope_pairs[3];   /* pairs of the head dim per axis (Wan: Dh/2 - 2*(Dh/6), Dh/6, Dh/6) */
  double rope_theta;   /* 10000 */
  int64_t ffn_rows;    /* feed-forward in chunks of at most this many tokens; 0: 8192 */
} zoe_wan_block_opts;

/*
** x [B, L, D] -> [B, L, D]. e0 [B, 6, D] is the time projection (the block adds its
** own modulation). cross_k, cross_v [B, Lc, H, Dh] come from zoe_wan_cross_kv, once
** per prompt.
*/
zoe_tensor *zoe_wan_block(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, const zoe_tensor *x,
                          const zoe_tensor *e0, const zoe_tensor *cross_k, const zoe_tensor *cross_v,
                          zoe_err *e);
/* The cross-attention keys and values of a context [B, Lc, Dc]. */
int zoe_wan_cross_kv(const zoe_wan_block_w *w, int heads, double eps, const zoe_tensor *context,
                     zoe_tensor **k, zoe_tensor **v, zoe_err *e);

/* Wan's umT5 layer (T5SelfAttention with its own relative position table). */
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
