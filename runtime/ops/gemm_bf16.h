/*
** gemm_bf16.h: the AVX512-BF16 backend of zoe_gemm (gemm_bf16.c). Internal to
** runtime/ops: blocks call zoe_gemm, which dispatches here (gemm_dispatch.c).
**
** Products are computed with vdpbf16ps: both operands are rounded to bf16
** (round to nearest even; like the instruction itself, inputs below 2^-126
** become zero), products are exact and sums are f32. A bf16 operand whose
** rows run along K (a linear layer's weight [N, K], a convolution's weight
** [Cout, K]) is read in place; the other operand is converted and packed.
*/
#ifndef ZOE_GEMM_BF16_H
#define ZOE_GEMM_BF16_H

#include <stdbool.h>

#include "gemm.h"

/* Whether this CPU has avx512f, avx512bw, avx512vl, avx512_bf16 and fma. */
bool zoe_bf16_cpu(void);

/* Whether zoe_gemm should run this product here (gemm_dispatch.c). */
bool zoe_gemm_bf16_wanted(int64_t M, int64_t N, int64_t K, zoe_gemm_arg A, zoe_gemm_arg B);

/* zoe_gemm_ep's contract; the caller has checked sizes, M, N > 0 and the CPU. */
int zoe_gemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                  float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e);

/* zoe_gemm_bf16, keeping nearly f32 accuracy for a few rows of f32 activations (gemm_dispatch.c). */
int zoe_gemm_bf16_rows(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
                       float beta, float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e);

#endif
