/*
** bench_ops.c: the foundation's speed, as ratios measured in one run:
** our matmul over raw cblas_sgemm, and elementwise/softmax/convert bandwidth
** over memcpy's. Best of several repetitions each.
*/
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../runtime/core/pool.h"
#include "../runtime/core/rng.h"
#include "../runtime/ops/gemm.h"
#include "../runtime/ops/ops.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define BEST_OF(reps, stmt)                                  \
  ({                                                         \
    double best_ = 1e30;                                     \
    for (int r_ = 0; r_ < (reps); r_++) {                    \
      double t0_ = now();                                    \
      stmt;                                                  \
      double dt_ = now() - t0_;                              \
      if (dt_ < best_) best_ = dt_;                          \
    }                                                        \
    best_;                                                   \
  })

static zoe_tensor *randn(int ndim, const int64_t *shape, uint64_t seed) {
  zoe_rng g;
  zoe_rng_init(&g, seed);
  return zoe_randn(ZOE_F32, ndim, shape, &g, NULL);
}

static void bench_matmul(int64_t M, int64_t N, int64_t K) {
  zoe_tensor *a = randn(2, (int64_t[]){M, K}, 1), *b = randn(2, (int64_t[]){K, N}, 2);
  zoe_tensor *c = zoe_empty(ZOE_F32, 2, (int64_t[]){M, N}, NULL);
  int reps = M * N * K > 1e9 ? 3 : 10;
  double flop = 2.0 * (double)M * (double)N * (double)K;
  double t_raw = BEST_OF(reps, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N,
                                           (int)K, 1.0f, zoe_data(a), (int)K, zoe_data(b), (int)N, 0.0f,
                                           zoe_data(c), (int)N));
  double t_ours = BEST_OF(reps, zoe_tensor_release(zoe_matmul(a, b, c, NULL)));
  char name[64];
  snprintf(name, sizeof name, "matmul %lldx%lldx%lld", (long long)M, (long long)N, (long long)K);
  printf("%-28s %8.1f GFLOP/s  sgemm %8.1f GFLOP/s  ratio %.3f  (target >= 0.95)\n", name,
         flop / t_ours * 1e-9, flop / t_raw * 1e-9, t_raw / t_ours);
  zoe_tensor_release(a);
  zoe_tensor_release(b);
  zoe_tensor_release(c);
}

int main(void) {
  zoe_pool_init(0);
  printf("threads %d, gemm backend %s\n", zoe_pool_threads(), zoe_gemm_backend());
  bench_matmul(256, 256, 256);
  bench_matmul(1024, 1024, 1024);
  bench_matmul(1200, 1536, 1536);
  bench_matmul(1200, 8960, 1536);

  /* bandwidth on 64 MiB f32 tensors; bytes = everything read and written */
  int64_t n = 16 << 20;
  size_t bytes = (size_t)n * 4;
  zoe_tensor *x = randn(1, &n, 3), *y = randn(1, &n, 4), *o = zoe_empty(ZOE_F32, 1, &n, NULL);
  zoe_tensor *h = zoe_empty(ZOE_BF16, 1, &n, NULL);
  zoe_tensor *rows = zoe_view(x, 2, (int64_t[]){n / 4096, 4096}, NULL);
  zoe_tensor *orows = zoe_view(o, 2, (int64_t[]){n / 4096, 4096}, NULL);
  double t_copy = BEST_OF(10, memcpy(zoe_data(o), zoe_data(x), bytes));
  double bw_copy = 2.0 * (double)bytes / t_copy;
  printf("%-28s %8.2f GB/s (one thread, read + write)\n", "memcpy 64 MiB", bw_copy * 1e-9);
  struct {
    const char *name, *target;
    double moved;
    double t;
  } rows_out[5];
  rows_out[0].name = "add";
  rows_out[0].moved = 3.0 * (double)bytes;
  rows_out[0].t = BEST_OF(10, zoe_tensor_release(zoe_binary(ZOE_ADD, x, y, o, NULL)));
  rows_out[1].name = "mul";
  rows_out[1].moved = 3.0 * (double)bytes;
  rows_out[1].t = BEST_OF(10, zoe_tensor_release(zoe_binary(ZOE_MUL, x, y, o, NULL)));
  rows_out[2].name = "silu";
  rows_out[2].moved = 2.0 * (double)bytes;
  rows_out[2].t = BEST_OF(10, zoe_tensor_release(zoe_unary(ZOE_SILU, x, o, NULL)));
  rows_out[3].name = "softmax (rows of 4096)";
  rows_out[3].moved = 2.0 * (double)bytes;
  rows_out[3].t = BEST_OF(10, zoe_tensor_release(zoe_softmax(rows, 1, orows, NULL)));
  rows_out[4].name = "f32 -> bf16";
  rows_out[4].moved = 1.5 * (double)bytes;
  rows_out[4].t = BEST_OF(10, zoe_copy_(h, x, NULL));
  for (int i = 0; i < 5; i++) {
    double bw = rows_out[i].moved / rows_out[i].t;
    printf("%-28s %8.2f GB/s  ratio to memcpy %.2f  (target >= %s)\n", rows_out[i].name, bw * 1e-9,
           bw / bw_copy, i < 3 ? "0.6" : "0.4");
  }
  zoe_tensor *ts[] = {x, y, o, h, rows, orows};
  for (int i = 0; i < 6; i++) zoe_tensor_release(ts[i]);
  zoe_pool_shutdown();
  return 0;
}
