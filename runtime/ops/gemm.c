/*
** gemm.c: the GEMM backend. f32 goes straight to cblas_sgemm; a half-precision
** operand is widened panel by panel (a panel of B is a few columns, i.e. a few
** rows of a linear layer's weight, contiguous in the file) and each panel is a
** separate sgemm, run in parallel on the pool; a small half weight is widened
** whole for one sgemm.
*/
#include "gemm.h"
#include "gemm_bf16.h"
#include "gemm_quant.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../core/alloc.h"

extern void openblas_set_num_threads(int);

#define PANEL 128 /* columns of B (or rows of A) widened at once */
/* A half weight of at most this many elements is widened whole for one sgemm: in panels,
   every panel's sgemm packs A again, which costs a small model's step more than the
   widening it saves (6% of zoe-tiny's step) */
#define WHOLE_MAX (1 << 20)

static bool fits_int(int64_t v) { return v >= 0 && v <= 2147483647; }

static _Thread_local int serial_depth; /* >0 inside zoe_gemm_parallel_for ranges */

int zoe_gemm_parallel_for(int64_t n, int64_t grain, zoe_range_fn fn, void *ctx) {
  openblas_set_num_threads(1);
  serial_depth++;
  int rc = zoe_parallel_for(n, grain, fn, ctx);
  serial_depth--;
  openblas_set_num_threads(zoe_pool_threads());
  return rc;
}

static void sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, bool ta, int64_t lda,
                  const float *B, bool tb, int64_t ldb, float beta, float *C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)(lda ? lda : 1), B, (int)(ldb ? ldb : 1), beta, C, (int)ldc);
}

/*
** OpenBLAS cannot be interrupted, so a big f32 product runs as panels with a
** cancel check between them. A panel is about PANEL_FLOPS: tens of
** milliseconds at full speed, well under a second on a loaded machine.
** Each panel repacks its operands (OpenBLAS packs A and B per call), which
** costs about 50 flops per element packed. Row panels of r rows repack B
** (K x N) once per panel: about 50/r of the work. Square blocks of side s
** repack both: about 100/s. So rows of the full width while B is narrow
** (N <= 2s), square blocks for wide weights. Sizes depend on the shapes alone,
** never on timing, because OpenBLAS's rounding depends on how a product is
** split: the same product always gives the same bits. Smaller products are one call.
*/
#define SPLIT_FLOPS 4e9
#define PANEL_FLOPS 16e9

static int64_t round_down(double v, int64_t step, int64_t min) {
  int64_t n = (int64_t)v / step * step;
  return n < min ? min : n;
}

static int sgemm_panels(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
                        float beta, float *C, int64_t ldc) {
  const float *a = A.data, *b = B.data;
  if (2.0 * (double)M * (double)N * (double)K < SPLIT_FLOPS) {
    sgemm(M, N, K, alpha, a, A.trans, A.ld, b, B.trans, B.ld, beta, C, ldc);
    return 0;
  }
  double area = PANEL_FLOPS / (2.0 * (double)K); /* rows x cols of one panel */
  double side = sqrt(area);
  int64_t rows, cols;
  if ((double)N <= 2 * side) {
    rows = round_down(area / (double)N, 32, 32);
    cols = N;
  } else {
    rows = (double)M < side ? M : round_down(side, 32, 32);
    cols = round_down(area / (double)rows, 256, 256);
  }
  for (int64_t r0 = 0; r0 < M; r0 += rows)
    for (int64_t c0 = 0; c0 < N; c0 += cols) {
      if (zoe_cancel_requested()) return ZOE_ECANCELED;
      int64_t nr = M - r0 < rows ? M - r0 : rows, nc = N - c0 < cols ? N - c0 : cols;
      /* rows of op(A) are ld apart, or adjacent columns when stored transposed; the same for B's columns */
      sgemm(nr, nc, K, alpha, A.trans ? a + r0 : a + r0 * A.ld, A.trans, A.ld,
            B.trans ? b + c0 * B.ld : b + c0, B.trans, B.ld, beta, C + r0 * ldc + c0, ldc);
    }
  return 0;
}

/* Widen rows [r0, r0+nr) of a matrix stored with leading dim 'ld' into dst [nr, ncols]. */
static void widen_rows(float *dst, const void *data, zoe_dtype dt, int64_t ld, int64_t r0, int64_t nr,
                       int64_t ncols) {
  size_t es = zoe_dtype_size(dt);
  for (int64_t r = 0; r < nr; r++)
    zoe_convert(ZOE_F32, dst + r * ncols, dt, (const char *)data + (size_t)((r0 + r) * ld) * es, ncols);
}

/* Widen columns [c0, c0+nc) of a row-major [nrows, *] matrix into dst [nc, nrows] (transposed). */
static void widen_cols_t(float *dst, const void *data, zoe_dtype dt, int64_t ld, int64_t c0, int64_t nc,
                         int64_t nrows) {
  for (int64_t r = 0; r < nrows; r++)
    for (int64_t c = 0; c < nc; c++)
      dst[c * nrows + r] = (float)zoe_load_elem(dt, data, r * ld + c0 + c);
}

typedef struct panel_ctx {
  int64_t M, N, K;
  float alpha, beta;
  zoe_gemm_arg A, B; /* exactly one of them is half precision */
  float *C;
  int64_t ldc;
  atomic_int failed;
} panel_ctx;

/* Panels of B's columns (B half) or A's rows (A half). */
static void panel_range(void *arg, int64_t begin, int64_t end) {
  panel_ctx *c = arg;
  bool b_half = c->B.dtype != ZOE_F32;
  int64_t K = c->K, total = b_half ? c->N : c->M;
  size_t cap = (size_t)(PANEL * K) * sizeof(float);
  float *w = zoe_alloc(cap, NULL);
  if (!w) {
    atomic_store(&c->failed, 1);
    return;
  }
  for (int64_t p = begin; p < end; p++) {
    int64_t o = p * PANEL, n = total - o < PANEL ? total - o : PANEL;
    if (b_half) { /* panel of B: columns o..o+n as an [n, K] matrix used transposed */
      if (c->B.trans) widen_rows(w, c->B.data, c->B.dtype, c->B.ld, o, n, K);
      else widen_cols_t(w, c->B.data, c->B.dtype, c->B.ld, o, n, K);
      sgemm(c->M, n, K, c->alpha, c->A.data, c->A.trans, c->A.ld, w, true, K, c->beta, c->C + o, c->ldc);
    } else { /* panel of A: rows o..o+n as an [n, K] matrix */
      if (!c->A.trans) widen_rows(w, c->A.data, c->A.dtype, c->A.ld, o, n, K);
      else widen_cols_t(w, c->A.data, c->A.dtype, c->A.ld, o, n, K);
      sgemm(n, c->N, K, c->alpha, w, false, K, c->B.data, c->B.trans, c->B.ld, c->beta,
            c->C + o * c->ldc, c->ldc);
    }
  }
  zoe_free(w, cap);
}

int zoe_gemm(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
             float beta, float *C, int64_t ldc, zoe_err *e) {
  return zoe_gemm_ep(M, N, K, alpha, A, B, beta, C, ldc, NULL, e);
}

/* The OpenBLAS paths; the epilogue runs after them. */
static int gemm_widened(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
                        float beta, float *C, int64_t ldc, zoe_err *e);

int zoe_gemm_ep(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(A.ld) || !fits_int(B.ld) ||
      !fits_int(ldc))
    return zoe_errf(e, ZOE_EINVAL, "gemm: sizes past 2^31 (%lld x %lld x %lld)", (long long)M,
                    (long long)N, (long long)K);
  if (M == 0 || N == 0) return 0;
  if (zoe_cancel_requested()) return zoe_errf(e, ZOE_ECANCELED, "gemm: canceled");
  if (zoe_dtype_is_quant(A.dtype) || zoe_dtype_is_quant(B.dtype))
    return zoe_gemm_quant(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
  if (zoe_gemm_bf16_wanted(M, N, K, A, B)) return zoe_gemm_bf16_rows(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
  int rc = gemm_widened(M, N, K, alpha, A, B, beta, C, ldc, e);
  if (!rc && zoe_gemm_epilogue_rows(ep, M, N, C, ldc)) rc = zoe_errf(e, ZOE_ECANCELED, "gemm: canceled");
  return rc;
}

static int gemm_widened(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B,
                        float beta, float *C, int64_t ldc, zoe_err *e) {
  if (A.dtype == ZOE_F32 && B.dtype == ZOE_F32) {
    if (sgemm_panels(M, N, K, alpha, A, B, beta, C, ldc)) return zoe_errf(e, ZOE_ECANCELED, "gemm: canceled");
    return 0;
  }
  float *wa = NULL;
  size_t wa_bytes = 0;
  if (A.dtype != ZOE_F32 && B.dtype != ZOE_F32) { /* both half: widen A whole, panel B */
    wa_bytes = (size_t)(M * K) * sizeof(float);
    wa = zoe_alloc(wa_bytes, e);
    if (!wa) return e ? e->code : ZOE_ENOMEM;
    for (int64_t r = 0; r < M; r++)
      for (int64_t k = 0; k < K; k++)
        wa[r * K + k] = (float)zoe_load_elem(A.dtype, A.data, A.trans ? k * A.ld + r : r * A.ld + k);
    A = (zoe_gemm_arg){wa, ZOE_F32, false, K};
  }
  if (B.dtype != ZOE_F32 && A.dtype == ZOE_F32 && N * K <= WHOLE_MAX) { /* one sgemm: A packed once */
    size_t wb_bytes = (size_t)(N * K) * sizeof(float);
    float *wb = zoe_alloc(wb_bytes, e);
    if (!wb) return e ? e->code : ZOE_ENOMEM;
    if (B.trans) widen_rows(wb, B.data, B.dtype, B.ld, 0, N, K);
    else widen_cols_t(wb, B.data, B.dtype, B.ld, 0, N, K);
    zoe_gemm_arg W = {wb, ZOE_F32, true, K};
    int rc = sgemm_panels(M, N, K, alpha, A, W, beta, C, ldc);
    zoe_free(wb, wb_bytes);
    return rc ? zoe_errf(e, rc, "gemm: canceled") : 0;
  }
  panel_ctx c = {.M = M, .N = N, .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C, .ldc = ldc};
  atomic_init(&c.failed, 0);
  int64_t panels = ((B.dtype != ZOE_F32 ? N : M) + PANEL - 1) / PANEL;
  int rc = serial_depth ? zoe_parallel_for(panels, 1, panel_range, &c)
                        : zoe_gemm_parallel_for(panels, 1, panel_range, &c);
  zoe_free(wa, wa_bytes);
  if (rc) return zoe_errf(e, rc, "gemm: canceled");
  if (atomic_load(&c.failed)) return zoe_errf(e, ZOE_ENOMEM, "gemm: out of memory for a panel");
  return 0;
}
