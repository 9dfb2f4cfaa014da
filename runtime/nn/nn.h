/*
** nn.h: the model blocks video models are built from. The generic blocks are
** public (include/zoe.h: linear, embedding, norms, attention, RoPE, time
** embedding, modulation, convolutions, the T5 layer); these are the rest.
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

/* ---- linear and norms ---- */
/* act(x W^T + b) with the bias and the activation applied as the product is written */
zoe_tensor *zoe_linear_act(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, zoe_gemm_act act,
                           zoe_tensor *out, zoe_err *e);

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

/*
** Wan's RMS_norm: L2-normalize over the channel dim 'cdim' (x / max(||x||, 1e-12)),
** times sqrt(C), times gamma (C elements, any shape) plus bias (may be NULL).
*/
zoe_tensor *zoe_channel_rms_norm(const zoe_tensor *x, int cdim, const zoe_tensor *gamma,
                                 const zoe_tensor *bias, zoe_tensor *out, zoe_err *e);

/* ---- attention ---- */
/* One attention's projections by role: q, k, v, o (weight, bias) and the q/k RMS norms. */
typedef struct zoe_attn_w {
  const zoe_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *norm_q, *norm_k;
} zoe_attn_w;
/* T5 relative position buckets [Lq, Lk] (i32): bidirectional, num_buckets, max_distance */
zoe_tensor *zoe_t5_buckets(int64_t lq, int64_t lk, int num_buckets, int max_distance,
                           bool bidirectional, zoe_err *e);

/* ---- resampling ---- */
/* nearest-neighbour upsampling of the last 2 (or 3) dims by integer factors */
zoe_tensor *zoe_upsample_nearest(const zoe_tensor *x, int ndims, const int factor[3], zoe_err *e);
/* [C, F, H, W] -> [F/pt * H/ph * W/pw, C*pt*ph*pw], features ordered (c, pt, ph, pw) */
zoe_tensor *zoe_patchify(const zoe_tensor *x, const int patch[3], zoe_err *e);
/* [f*h*w, pt*ph*pw*C] (features ordered (pt, ph, pw, c), Wan's head) -> [C, f*pt, h*ph, w*pw] */
zoe_tensor *zoe_unpatchify(const zoe_tensor *x, const int64_t grid[3], const int patch[3], int c,
                           zoe_err *e);

#endif
