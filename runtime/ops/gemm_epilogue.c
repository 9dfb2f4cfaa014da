/*
** gemm_epilogue.c: what a product's result goes through as it is written (gemm.h):
** a bias per column, then an activation. The bf16 backend adds the bias as it writes a
** block and runs the activation on each row while it is in cache; the others run both
** on the whole result after it.
*/
#include "../core/pool.h"
#include "gemm.h"
#include "vmath.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

VECTORIZE static void add_k(float *c, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) c[i] += b[i];
}

VECTORIZE static void gelu_tanh_k(float *c, int64_t n) {
  for (int64_t i = 0; i < n; i++) c[i] = zv_gelu_tanh(c[i]);
}

void zoe_gemm_epilogue_row(const zoe_gemm_epilogue *ep, float *c, int64_t j0, int64_t n) {
  if (ep->bias) add_k(c, ep->bias + j0, n);
  if (ep->act == ZOE_ACT_GELU_TANH) gelu_tanh_k(c, n);
}

typedef struct rows_ctx {
  const zoe_gemm_epilogue *ep;
  float *c;
  int64_t n, ldc;
} rows_ctx;

static void rows_range(void *arg, int64_t r0, int64_t r1) {
  rows_ctx *x = arg;
  for (int64_t r = r0; r < r1; r++) zoe_gemm_epilogue_row(x->ep, x->c + r * x->ldc, 0, x->n);
}

int zoe_gemm_epilogue_rows(const zoe_gemm_epilogue *ep, int64_t M, int64_t N, float *C, int64_t ldc) {
  if (!ep || (!ep->bias && ep->act == ZOE_ACT_NONE)) return 0;
  rows_ctx x = {ep, C, N, ldc};
  return zoe_parallel_for(M, 1 + 65536 / (N + 1), rows_range, &x);
}
