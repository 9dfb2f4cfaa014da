/*
** dit.h: Wan's DiT block in one call, and the cross-attention keys and values it
** takes. Weights keep their file dtype.
*/
#ifndef ZOE_WAN_DIT_H
#define ZOE_WAN_DIT_H

#include "../nn.h"

/* Wan's WanAttentionBlock, by role (lua/zoe/arch/wan.lua maps the checkpoint's names). */
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
  int rope_pairs[3];   /* pairs of the head dim per axis (t, h, w), summing to Dh/2 */
  double rope_theta;   /* the RoPE base (10000) */
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

#endif
