/*
** attention_bf16.h: attention whose two products run on AVX512-BF16 dot
** products (attention_bf16.c), flash-attention style: nothing of size
** Lq x Lk is ever stored. Internal to the runtime: zoe_attention
** (runtime/nn/attention.c) checks shapes and calls it when bf16 products are
** wanted, with the same numerics as its own tiles on the bf16 GEMM: q, k, v
** and the softmax weights rounded to bf16, products exact, sums in f32.
*/
#ifndef ZOE_ATTENTION_BF16_H
#define ZOE_ATTENTION_BF16_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct zoe_attn_bf16 {
  /* [B, L, H, D] f32, the last dim contiguous; strides of B, L and H in elements */
  const float *q, *k, *v;
  int64_t qs[3], ks[3], vs[3];
  /* an additive bias [H or 1, Lq, Lk] with a contiguous last dim, or NULL: element
     (h, i, j) at bias[h * bs[0] + i * bs[1] + j] (bs[0] is 0 when heads share it) */
  const float *bias;
  int64_t bs[2];
  const float *keep; /* [B, Lk] contiguous: 0 for a key kept, -inf for a key masked; or NULL */
  float *out;        /* [B, Lq, H, Dv] contiguous */
  int64_t B, Lq, Lk, H, Dh, Dv;
  float scale;
} zoe_attn_bf16;

/* Whether attention of this size should run here: where the GEMM would run its products in bf16. */
bool zoe_attention_bf16_wanted(int64_t Lq, int64_t Lk, int64_t Dh);

/*
** out = softmax(scale q k^T + bias + keep) v per batch entry and head. Rows
** whose keys are all masked come out as zeros. Lk >= 1. Returns 0,
** ZOE_ECANCELED (polled between tiles of 128 queries) or ZOE_ENOMEM.
*/
int zoe_attention_bf16(const zoe_attn_bf16 *a, zoe_err *e);

#endif
