/*
** gemm.h: the one matrix-product interface every op and block goes through.
** C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, row-major, with leading
** dimensions in elements. A and B may be f32, f16 or bf16; C is f32. The
** backend is chosen at run time (gemm_dispatch.c), so a faster one is one file.
*/
#ifndef ZOE_GEMM_H
#define ZOE_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/dtype.h"
#include "../core/error.h"
#include "../core/pool.h"

typedef struct zoe_gemm_arg {
  const void *data;
  zoe_dtype dtype;
  bool trans; /* stored transposed: element (i,k) at data[k*ld + i] */
  int64_t ld;
} zoe_gemm_arg;

/*
** Half-precision operands are widened in panels of rows/columns that the pool's
** threads process side by side, so a bf16 weight is never copied whole.
*/
int zoe_gemm(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
             float beta, float *C, int64_t ldc, zoe_err *e);

/*
** What the result goes through as it is written, in the same pass (a GEMM
** epilogue): C = act(alpha * op(A) op(B) + beta * C + bias), bias[j] added to
** column j. A linear layer's bias and the GELU after a feed-forward's first
** product never make a pass of their own over a result of their own.
*/
typedef enum zoe_gemm_act { ZOE_ACT_NONE, ZOE_ACT_GELU_TANH } zoe_gemm_act;
typedef struct zoe_gemm_epilogue {
  const float *bias; /* N values, or NULL */
  zoe_gemm_act act;
} zoe_gemm_epilogue;

/* zoe_gemm with an epilogue (NULL: none) */
int zoe_gemm_ep(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e);

/* The epilogue on columns j0 .. j0+n of one row of C (the backends call it), and on all of C. */
void zoe_gemm_epilogue_row(const zoe_gemm_epilogue *ep, float *c, int64_t j0, int64_t n);
int zoe_gemm_epilogue_rows(const zoe_gemm_epilogue *ep, int64_t M, int64_t N, float *C, int64_t ldc);

/*
** zoe_parallel_for for loops whose ranges call zoe_gemm themselves (attention
** tiles, convolution tiles): the BLAS runs single-threaded inside, so the
** cores are split between ranges rather than oversubscribed.
*/
int zoe_gemm_parallel_for(int64_t n, int64_t grain, zoe_range_fn fn, void *ctx);

/*
** The backend that runs products with a bf16 operand: "zoe-avx512bf16" where
** the CPU has AVX512-BF16 and ZOE_PRECISION is not f32, else "openblas".
** f32 x f32 runs on OpenBLAS unless ZOE_PRECISION=bf16 (gemm_dispatch.c).
*/
const char *zoe_gemm_backend(void);
/*
** The path of products with a quantized weight (gemm_quant.h): "zoe-avx512vnni" (int8,
** the weight kept quantized) or "widened" (dequantized in panels for the paths above).
*/
const char *zoe_gemm_quant_backend(void);

/*
** Whether f32 x f32 products are computed in f32 (false with ZOE_PRECISION=bf16
** or a forced bf16 backend). Callers whose algorithm amplifies rounding (a
** Winograd convolution: 2.5e-2 relative in bf16) choose another one when false.
*/
bool zoe_gemm_f32_exact(void);

/*
** A run's own precision, "f32", "auto" or "bf16" (NULL only asks): under "bf16",
** f32 x f32 products of some size run in bf16 too. ZOE_PRECISION=f32, or a CPU
** without AVX512-BF16, keeps f32 whatever is asked. Returns the previous request.
*/
const char *zoe_gemm_set_precision(const char *mode);
/* The precision products run at now: "f32", "auto" (bf16 weights in bf16) or "bf16". */
const char *zoe_gemm_precision(void);

/*
** A few rows of f32 activations times a bf16 weight go in as two bf16 halves, hi
** and lo, for nearly f32 accuracy at twice the flops (gemm_dispatch.c). A caller
** whose products tolerate plain bf16 (a T5's feed-forward layers) turns that off
** around them. Per thread, on by default; returns the previous setting.
*/
bool zoe_gemm_few_rows_exact(bool on);

typedef enum zoe_gemm_kind { ZOE_GEMM_AUTO, ZOE_GEMM_OPENBLAS, ZOE_GEMM_BF16 } zoe_gemm_kind;
/*
** For tests and benchmarks: run every product, whatever its size and dtypes,
** on one backend (AUTO: chosen by CPU, ZOE_PRECISION and size, the default).
** BF16 on a CPU without it means OPENBLAS. Returns the previous setting.
*/
zoe_gemm_kind zoe_gemm_force(zoe_gemm_kind kind);

#endif
