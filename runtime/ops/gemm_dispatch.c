/*
** gemm_dispatch.c: which backend runs a product.
**   - a bf16 operand (a weight as mmapped) with f32 or bf16: the AVX512-BF16
**     kernel (gemm_bf16.c) where the CPU has it, at every size (it is faster
**     than widening the weight for OpenBLAS from 16 flops up: bench_gemm);
**   - f32 x f32: OpenBLAS sgemm, so f32 models keep f32 results; with
**     ZOE_PRECISION=bf16 the bf16 kernel too, above BF16_F32_MIN_FLOPS
**     (about 2x faster, errors near 1e-3 relative);
**   - f16 operands: widened for OpenBLAS (gemm.c).
** ZOE_PRECISION=f32 keeps every product in f32. It is read once. A run may ask for
** "bf16" or "f32" itself (zoe.precision): the Wan pipeline runs a bf16 checkpoint
** in bf16; ZOE_PRECISION=f32 still wins.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "gemm_bf16.h"
#include "gemm_quant.h"
#include "../core/alloc.h"

/* f32 x f32 products smaller than this stay on sgemm even with ZOE_PRECISION=bf16: packing both sides costs more */
#define BF16_F32_MIN_FLOPS 4e6

enum { PREC_F32, PREC_AUTO, PREC_BF16 };

static atomic_int forced = ZOE_GEMM_AUTO;

static atomic_int prec = -1;     /* from ZOE_PRECISION, read once */
static atomic_int asked = PREC_AUTO; /* zoe_gemm_set_precision: a run's own choice */

/* PREC_F32 also where the CPU lacks AVX512-BF16; ZOE_PRECISION=f32 wins over a run's choice */
static int precision(void) {
  int p = atomic_load_explicit(&prec, memory_order_relaxed);
  if (p < 0) {
    const char *env = getenv("ZOE_PRECISION");
    p = !zoe_bf16_cpu() || (env && strcmp(env, "f32") == 0) ? PREC_F32
        : env && strcmp(env, "bf16") == 0                  ? PREC_BF16
                                                           : PREC_AUTO;
    atomic_store(&prec, p);
  }
  int a = atomic_load_explicit(&asked, memory_order_relaxed);
  return p == PREC_F32 || a == PREC_AUTO ? p : a;
}

const char *zoe_gemm_set_precision(const char *mode) {
  static const char *const names[] = {"f32", "auto", "bf16"};
  int old = atomic_load(&asked);
  if (mode) {
    for (int i = 0; i < 3; i++)
      if (strcmp(mode, names[i]) == 0) atomic_store(&asked, i);
  }
  return names[old];
}

const char *zoe_gemm_precision(void) {
  static const char *const names[] = {"f32", "auto", "bf16"};
  return names[precision()];
}

zoe_gemm_kind zoe_gemm_force(zoe_gemm_kind kind) {
  if (kind == ZOE_GEMM_BF16 && !zoe_bf16_cpu()) kind = ZOE_GEMM_OPENBLAS;
  return (zoe_gemm_kind)atomic_exchange(&forced, (int)kind);
}

const char *zoe_gemm_backend(void) {
  int k = atomic_load(&forced);
  if (k == ZOE_GEMM_BF16 || (k == ZOE_GEMM_AUTO && precision() != PREC_F32)) return "zoe-avx512bf16";
  return "openblas";
}

bool zoe_gemm_f32_exact(void) {
  int k = atomic_load(&forced);
  return k == ZOE_GEMM_OPENBLAS || (k == ZOE_GEMM_AUTO && precision() != PREC_BF16);
}

/* Products with a quantized weight run as int8 unless the run is f32 by request (not merely for want of bf16). */
bool zoe_gemm_int8_allowed(void) {
  const char *env = getenv("ZOE_PRECISION");
  return atomic_load_explicit(&forced, memory_order_relaxed) != ZOE_GEMM_OPENBLAS && !(env && strcmp(env, "f32") == 0) &&
         atomic_load_explicit(&asked, memory_order_relaxed) != PREC_F32;
}

bool zoe_gemm_bf16_wanted(int64_t M, int64_t N, int64_t K, zoe_gemm_arg A, zoe_gemm_arg B) {
  int k = atomic_load_explicit(&forced, memory_order_relaxed);
  if (k != ZOE_GEMM_AUTO) return k == ZOE_GEMM_BF16;
  int p = precision();
  if (p == PREC_F32) return false;
  /* float8 weights (exact in bf16) go where bf16 ones go */
  bool a16 = A.dtype == ZOE_BF16 || A.dtype == ZOE_F8_E4M3 || A.dtype == ZOE_F8_E5M2;
  bool b16 = B.dtype == ZOE_BF16 || B.dtype == ZOE_F8_E4M3 || B.dtype == ZOE_F8_E5M2;
  if ((a16 || b16) && A.dtype != ZOE_F16 && B.dtype != ZOE_F16) return true;
  return p == PREC_BF16 && A.dtype == ZOE_F32 && B.dtype == ZOE_F32 &&
         2.0 * (double)M * (double)N * (double)K >= BF16_F32_MIN_FLOPS;
}

/*
** A few rows of f32 activations times a bf16 weight (a text encoder's tokens):
** the weight's bandwidth bounds the product, not its flops, so the activations
** go in twice, as bf16 and as the bf16 of what rounding left over
** (A = A_hi + A_lo), stacked as 2M rows of one product: the weight is read
** once, and the result keeps nearly f32 accuracy where a plain bf16 product
** loses 1e-2 on a T5 (whose unscaled attention amplifies rounding).
*/
#define SPLIT_MAX_ROWS 256

static _Thread_local bool few_rows_plain; /* zoe_gemm_few_rows_exact(false) */

bool zoe_gemm_few_rows_exact(bool on) {
  bool was = !few_rows_plain;
  few_rows_plain = !on;
  return was;
}

static bool wants_split(int64_t M, zoe_gemm_arg A, zoe_gemm_arg B) {
  bool b16 = B.dtype == ZOE_BF16 || B.dtype == ZOE_F8_E4M3 || B.dtype == ZOE_F8_E5M2;
  return !few_rows_plain && M <= SPLIT_MAX_ROWS && A.dtype == ZOE_F32 && !A.trans && b16 &&
         atomic_load_explicit(&forced, memory_order_relaxed) != ZOE_GEMM_BF16;
}

int zoe_gemm_bf16_rows(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
                       float beta, float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  if (!wants_split(M, A, B)) return zoe_gemm_bf16(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
  size_t abytes = (size_t)(2 * M * K) * sizeof(float), tbytes = (size_t)(2 * M * N) * sizeof(float);
  float *a2 = zoe_alloc(abytes, e), *t = a2 ? zoe_alloc(tbytes, e) : NULL;
  int rc = 0;
  if (!a2 || !t) {
    rc = e ? e->code : ZOE_ENOMEM;
    goto done;
  }
  const float *a = A.data;
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++) {
      float v = a[i * A.ld + k], hi = zoe_bf16_to_f32(zoe_f32_to_bf16(v));
      a2[i * K + k] = hi;
      a2[(M + i) * K + k] = v - hi;
    }
  zoe_gemm_arg A2 = {a2, ZOE_F32, false, K};
  if ((rc = zoe_gemm_bf16(2 * M, N, K, alpha, A2, B, 0.0f, t, N, NULL, e))) goto done;
  for (int64_t i = 0; i < M; i++) {
    for (int64_t j = 0; j < N; j++) {
      float r = t[i * N + j] + t[(M + i) * N + j];
      C[i * ldc + j] = beta == 0.0f ? r : beta * C[i * ldc + j] + r;
    }
    if (ep) zoe_gemm_epilogue_row(ep, C + i * ldc, 0, N);
  }
done:
  zoe_free(a2, abytes);
  zoe_free(t, tbytes);
  return rc;
}
