/*
** gemm.c: the GEMM backend. f32 goes straight to cblas_sgemm; half-precision
** operands are widened to f32 in row panels so memory stays bounded.
*/
#include "gemm.h"

#include <cblas.h>
#include <stdlib.h>

#include "../core/alloc.h"
#include "../core/pool.h"

const char *zoe_gemm_backend(void) { return "openblas"; }

static bool fits_int(int64_t v) { return v >= 0 && v <= 2147483647; }

/* Widen rows [r0, r0+nr) x cols of a (possibly transposed) half matrix into f32 row-major. */
static void widen(float *dst, zoe_gemm_arg X, int64_t r0, int64_t nr, int64_t ncols) {
  for (int64_t r = 0; r < nr; r++)
    for (int64_t c = 0; c < ncols; c++) {
      int64_t at = X.trans ? c * X.ld + (r0 + r) : (r0 + r) * X.ld + c;
      dst[r * ncols + c] = (float)zoe_load_elem(X.dtype, X.data, at);
    }
}

int zoe_gemm(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
             float beta, float *C, int64_t ldc, zoe_err *e) {
  if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(A.ld) || !fits_int(B.ld) ||
      !fits_int(ldc))
    return zoe_errf(e, ZOE_EINVAL, "gemm: sizes past 2^31 (%lld x %lld x %lld)", (long long)M,
                    (long long)N, (long long)K);
  if (M == 0 || N == 0) return 0;
  if (zoe_cancel_requested()) return zoe_errf(e, ZOE_ECANCELED, "gemm: canceled");
  float *wa = NULL, *wb = NULL;
  if (A.dtype != ZOE_F32) { /* [M,K] */
    wa = zoe_alloc((size_t)(M * K) * sizeof(float), e);
    if (!wa) return e ? e->code : ZOE_ENOMEM;
    widen(wa, A, 0, M, K);
    A = (zoe_gemm_arg){wa, ZOE_F32, false, K};
  }
  if (B.dtype != ZOE_F32) { /* [K,N] */
    wb = zoe_alloc((size_t)(K * N) * sizeof(float), e);
    if (!wb) {
      zoe_free(wa, (size_t)(M * K) * sizeof(float));
      return e ? e->code : ZOE_ENOMEM;
    }
    widen(wb, B, 0, K, N);
    B = (zoe_gemm_arg){wb, ZOE_F32, false, N};
  }
  cblas_sgemm(CblasRowMajor, A.trans ? CblasTrans : CblasNoTrans, B.trans ? CblasTrans : CblasNoTrans,
              (int)M, (int)N, (int)K, alpha, A.data, (int)(A.ld ? A.ld : 1), B.data,
              (int)(B.ld ? B.ld : 1), beta, C, (int)ldc);
  zoe_free(wa, (size_t)(M * K) * sizeof(float));
  zoe_free(wb, (size_t)(K * N) * sizeof(float));
  return 0;
}
