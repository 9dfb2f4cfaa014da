/*
** nn.h: the model blocks a Wan-style video model is built from.
** Layouts follow PyTorch: tokens are [B, L, D]; attention heads are [B, L, H, Dh]
** (a projection's output viewed, never permuted); videos are [N, C, T, H, W].
** Weights may be f32, f16 or bf16 (mmapped from checkpoints); half-precision
** weights are widened inside the kernels, tile by tile, never copied whole.
** Like the ops, every function returns a new reference or NULL with 'e' filled,
** and writes into 'out' when one is given.
*/
#ifndef ZOE_NN_H
#define ZOE_NN_H

#include "../core/tensor.h"
#include "../ops/gemm.h"

/* ---- linear and embeddings ---- */
/* y = x W^T + b: x [..., in], w [out, in], b [out] or NULL -> [..., out] */
zoe_tensor *zoe_linear(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                       zoe_tensor *out, zoe_err *e);
/* act(x W^T + b) with the bias and the activation applied as the product is written */
zoe_tensor *zoe_linear_act(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, zoe_gemm_act act,
                           zoe_tensor *out, zoe_err *e);
/* rows of 'weight' [V, D] for integer ids of any shape -> [..., D] f32 */
zoe_tensor *zoe_embedding(const zoe_tensor *weight, const zoe_tensor *ids, zoe_err *e);

/*
** LoRA (lora.c). zoe_lora_merge: a new f32 weight W + sum_i scale_i B_i A_i + sum_j dscale_j D_j
** (A_i [r, in], B_i [out, r], D_j the shape of W), summed in double and rounded once.
** zoe_lora_lowrank: a view of W carrying the low-rank terms, applied by zoe_linear as
** y += scale_i (x A_i^T) B_i^T: for a quantized W, which then stays quantized.
*/
zoe_tensor *zoe_lora_merge(const zoe_tensor *w, int n, const zoe_tensor *const *a, const zoe_tensor *const *b,
                           const double *scale, int nd, const zoe_tensor *const *d, const double *dscale, zoe_err *e);
zoe_tensor *zoe_lora_lowrank(const zoe_tensor *w, int n, const zoe_tensor *const *a, const zoe_tensor *const *b,
                             const double *scale, zoe_err *e);
/* A view of W whose products are scale * x W^T (a scaled fp8 weight: ComfyUI's scale_weight). */
zoe_tensor *zoe_weight_scaled(const zoe_tensor *w, double scale, zoe_err *e);

/* ---- norms (statistics in f32 or better) ---- */
/* over the last dim; w, b may be NULL (no affine) */
zoe_tensor *zoe_layer_norm(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                           double eps, zoe_tensor *out, zoe_err *e);
/* x * rsqrt(mean(x^2) + eps) * w over the last dim (T5, Wan's q/k norm across heads) */
zoe_tensor *zoe_rms_norm(const zoe_tensor *x, const zoe_tensor *w, double eps, zoe_tensor *out,
                         zoe_err *e);
/* x [N, C, ...]: statistics per (sample, group of C/groups channels) */
zoe_tensor *zoe_group_norm(const zoe_tensor *x, int groups, const zoe_tensor *w,
                           const zoe_tensor *b, double eps, zoe_tensor *out, zoe_err *e);
/*
** Wan's RMS_norm: L2-normalize over the channel dim 'cdim' (x / max(||x||, 1e-12)),
** times sqrt(C), times gamma (C elements, any shape) plus bias (may be NULL).
*/
zoe_tensor *zoe_channel_rms_norm(const zoe_tensor *x, int cdim, const zoe_tensor *gamma,
                                 const zoe_tensor *bias, zoe_tensor *out, zoe_err *e);

/* ---- attention ---- */
typedef struct zoe_attn_opts {
  double scale;                /* logits = q.k * scale; NAN means 1/sqrt(Dh); 1 for T5 */
  const zoe_tensor *key_mask;  /* [B, Lk], nonzero keeps the key; NULL: all keys */
  const zoe_tensor *bias;      /* additive [Hb, Lq, Lk] with Hb = H or 1 (T5 position bias) */
} zoe_attn_opts;
/*
** softmax(q k^T * scale + bias + mask) v, one head at a time, in tiles with an
** online softmax, so memory is O(L * Dh), never O(Lq * Lk).
** q [B, Lq, H, Dh], k [B, Lk, H, Dh], v [B, Lk, H, Dv] (any strides with a
** contiguous last dim) -> [B, Lq, H, Dv].
*/
zoe_tensor *zoe_attention(const zoe_tensor *q, const zoe_tensor *k, const zoe_tensor *v,
                          const zoe_attn_opts *opts, zoe_tensor *out, zoe_err *e);
/* One attention's projections by role: q, k, v, o (weight, bias) and the q/k RMS norms. */
typedef struct zoe_attn_w {
  const zoe_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *norm_q, *norm_k;
} zoe_attn_w;
/* T5 relative position buckets [Lq, Lk] (i32): bidirectional, num_buckets, max_distance */
zoe_tensor *zoe_t5_buckets(int64_t lq, int64_t lk, int num_buckets, int max_distance,
                           bool bidirectional, zoe_err *e);
/* the T5 bias [H, Lq, Lk] f32 from a table [num_buckets, H] */
zoe_tensor *zoe_t5_position_bias(const zoe_tensor *table, int64_t lq, int64_t lk,
                                 int max_distance, zoe_err *e);

/* ---- positions and time ---- */
/*
** Rotary embedding on adjacent pairs (x[2i], x[2i+1]) of the head dim, in place of
** x [B, L, H, Dh] (out may be x). 3-D factorized (Wan): the Dh/2 pairs split into
** axes of npairs[0..2] pairs (t, h, w), token l at grid position (f, y, x) row-major
** over grid[3]; pair j of an axis with 2n real dims rotates by pos * theta^(-2j/(2n)).
** 1-D: grid = {L, 1, 1}, npairs = {Dh/2, 0, 0}.
*/
zoe_tensor *zoe_rope(const zoe_tensor *x, const int64_t grid[3], const int npairs[3], double theta,
                     zoe_tensor *out, zoe_err *e);
/* sinusoidal embedding of t [N] -> [N, dim]: cat(cos, sin) (flip) or cat(sin, cos), in double */
zoe_tensor *zoe_timestep_embedding(const zoe_tensor *t, int dim, double max_period, bool cos_first,
                                   zoe_err *e);

/* ---- fused elementwise ---- */
/* x * (1 + scale) + shift, scale and shift broadcast to x */
zoe_tensor *zoe_modulate(const zoe_tensor *x, const zoe_tensor *shift, const zoe_tensor *scale,
                         zoe_tensor *out, zoe_err *e);
/* x + y * gate (gate broadcast; NULL means 1) */
zoe_tensor *zoe_gated_add(const zoe_tensor *x, const zoe_tensor *y, const zoe_tensor *gate,
                          zoe_tensor *out, zoe_err *e);

/* ---- convolutions (im2col + the GEMM interface) ---- */
/* x [N, Cin, H, W], w [Cout, Cin, kh, kw] */
zoe_tensor *zoe_conv2d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                       const int stride[2], const int pad[4] /* top, bottom, left, right */,
                       zoe_tensor *out, zoe_err *e);
/*
** x [N, Cin, T, H, W], w [Cout, Cin, kt, kh, kw]. Spatial padding pad_hw (symmetric
** h, w); in time the conv is causal: 'tpad' frames go in front, none behind. When
** 'prev' [N, Cin, P, H, W] is given, its frames come first and only tpad - P zero
** frames are added, so a video fed chunk by chunk (with the last input frames as
** 'prev') gives the same result as all at once.
*/
zoe_tensor *zoe_conv3d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                       const int stride[3], const int pad_hw[2], int tpad, const zoe_tensor *prev,
                       zoe_tensor *out, zoe_err *e);

/* ---- resampling ---- */
/* nearest-neighbour upsampling of the last 2 (or 3) dims by integer factors */
zoe_tensor *zoe_upsample_nearest(const zoe_tensor *x, int ndims, const int factor[3], zoe_err *e);
/* [C, F, H, W] -> [F/pt * H/ph * W/pw, C*pt*ph*pw], features ordered (c, pt, ph, pw) */
zoe_tensor *zoe_patchify(const zoe_tensor *x, const int patch[3], zoe_err *e);
/* [f*h*w, pt*ph*pw*C] (features ordered (pt, ph, pw, c), Wan's head) -> [C, f*pt, h*ph, w*pw] */
zoe_tensor *zoe_unpatchify(const zoe_tensor *x, const int64_t grid[3], const int patch[3], int c,
                           zoe_err *e);

#endif
