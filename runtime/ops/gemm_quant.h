/*
** gemm_quant.h: products with a quantized weight (core/quant.h types), internal
** to runtime/ops: zoe_gemm sends any product with a quantized operand here.
**
** The weight stays quantized in memory. Where the CPU has AVX512-VNNI, the
** activations are quantized per token in groups of 256 values (32 when K is not
** a multiple of 256), symmetric int8 as ggml's q8_K / q8_0, and multiplied
** against the weight's int8 values with vpdpbusd (gemm_q8.c); each sub-block's
** scale (and min) is applied to its int32 sum. Elsewhere, and under
** ZOE_PRECISION=f32, the weight is widened in panels for the bf16 or f32 paths.
*/
#ifndef ZOE_GEMM_QUANT_H
#define ZOE_GEMM_QUANT_H

#include "gemm.h"

/* avx512f/bw/vl + avx512_vnni + fma */
bool zoe_q8_cpu(void);
/* whether the run allows int8 products (not ZOE_PRECISION=f32, zoe.precision("f32") nor forced OpenBLAS) */
bool zoe_gemm_int8_allowed(void);

/* zoe_gemm_ep's contract; one of A, B is quantized (the caller checked sizes and M, N > 0). */
int zoe_gemm_quant(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                   float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e);

/*
** The int8 form of a quantized weight [N rows of K], ready for the kernel: each row's
** values as int8 (q, where the element is a * q + b within its sub-block), the
** sub-block scales a and mins b, and per activation group the correction
** -128 * sum(a * sum q) that undoes the kernel's unsigned activations.
** Q8_0 keeps its own bytes (read in place: stride 34, payload at 2).
*/
typedef struct zoe_q8_weight {
  const uint8_t *q;  /* row r, element k: q + r*row_bytes + (k/32)*bstride + boff + k%32 */
  int64_t row_bytes, bstride, boff;
  int sb;            /* sub-block: 32, or 16 (q6_K, q3_K, q2_K) */
  int64_t ns;        /* sub-blocks per row: K / sb */
  const float *a;    /* [N][ns] */
  const float *b;    /* [N][ns], or NULL for symmetric types */
  const float *corr; /* [N][K / G] */
} zoe_q8_weight;

/* The int8 kernel: C = alpha * A W^T + beta * C (+ epilogue); A f32 rows [M, K] (lda), G the group. */
int zoe_gemm_q8(int64_t M, int64_t N, int64_t K, int G, float alpha, const float *A, int64_t lda,
                const zoe_q8_weight *w, float beta, float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e);

#endif
