/*
** gemm_dispatch.c: which backend runs a product.
**   - a bf16 operand (a weight as mmapped) with f32 or bf16: the AVX512-BF16
**     kernel (gemm_bf16.c) where the CPU has it, at every size (it is faster
**     than widening the weight for OpenBLAS from 16 flops up: bench_gemm);
**   - f32 x f32: OpenBLAS sgemm, so f32 models keep f32 results; with
**     ZOE_PRECISION=bf16 the bf16 kernel too, above BF16_F32_MIN_FLOPS
**     (about 2x faster, errors near 1e-3 relative);
**   - f16 operands: widened for OpenBLAS (gemm.c).
** ZOE_PRECISION=f32 keeps every product in f32. It is read once.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "gemm_bf16.h"

/* f32 x f32 products smaller than this stay on sgemm even with ZOE_PRECISION=bf16: packing both sides costs more */
#define BF16_F32_MIN_FLOPS 4e6

enum { PREC_F32, PREC_AUTO, PREC_BF16 };

static atomic_int forced = ZOE_GEMM_AUTO;

/* PREC_F32 also where the CPU lacks AVX512-BF16 */
static int precision(void) {
  static atomic_int prec = -1;
  int p = atomic_load_explicit(&prec, memory_order_relaxed);
  if (p < 0) {
    const char *env = getenv("ZOE_PRECISION");
    p = !zoe_bf16_cpu() || (env && strcmp(env, "f32") == 0) ? PREC_F32
        : env && strcmp(env, "bf16") == 0                  ? PREC_BF16
                                                           : PREC_AUTO;
    atomic_store(&prec, p);
  }
  return p;
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

bool zoe_gemm_bf16_wanted(int64_t M, int64_t N, int64_t K, zoe_gemm_arg A, zoe_gemm_arg B) {
  int k = atomic_load_explicit(&forced, memory_order_relaxed);
  if (k != ZOE_GEMM_AUTO) return k == ZOE_GEMM_BF16;
  int p = precision();
  if (p == PREC_F32) return false;
  if ((A.dtype == ZOE_BF16 || B.dtype == ZOE_BF16) && A.dtype != ZOE_F16 && B.dtype != ZOE_F16) return true;
  return p == PREC_BF16 && A.dtype == ZOE_F32 && B.dtype == ZOE_F32 &&
         2.0 * (double)M * (double)N * (double)K >= BF16_F32_MIN_FLOPS;
}
