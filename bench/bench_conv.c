/*
** bench_conv.c: the convolutions' achieved GFLOP/s over the sgemm ceiling
** (cblas_sgemm on a large square product, all threads) measured in the same
** run, at the sizes the Wan VAE decoder runs. Best of several repetitions.
*/
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../runtime/core/pool.h"
#include "../runtime/core/rng.h"
#include "../runtime/nn/nn.h"
#include "../runtime/ops/gemm.h"
#include "../runtime/ops/ops.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static zoe_tensor *randn(int ndim, const int64_t *shape, uint64_t seed) {
  zoe_rng g;
  zoe_rng_init(&g, seed);
  return zoe_randn(ZOE_F32, ndim, shape, &g, NULL);
}

static double ceiling_gflops(void) {
  int64_t n = 1536;
  zoe_tensor *a = randn(2, (int64_t[]){n, n}, 1), *b = randn(2, (int64_t[]){n, n}, 2);
  zoe_tensor *c = zoe_empty(ZOE_F32, 2, (int64_t[]){n, n}, NULL);
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, zoe_data(a), (int)n,
                zoe_data(b), (int)n, 0.0f, zoe_data(c), (int)n);
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  zoe_tensor_release(a);
  zoe_tensor_release(b);
  zoe_tensor_release(c);
  return 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
}

/* causal conv3d with a k^3 kernel (pad 1, 2 frames in front) or a 1x1x1 one */
static void bench_conv3d(const char *name, int64_t cin, int64_t cout, int k, int64_t T, int64_t H, int64_t W,
                         zoe_dtype wdt, int reps, double ceiling) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, cin, T, H, W}, 3);
  zoe_tensor *w32 = randn(5, (int64_t[]){cout, cin, k, k, k}, 4), *b = randn(1, (int64_t[]){cout}, 5);
  zoe_tensor *w = zoe_to_dtype(w32, wdt, NULL);
  zoe_tensor *out = zoe_empty(ZOE_F32, 5, (int64_t[]){1, cout, T, H, W}, NULL);
  int pad[2] = {k / 2, k / 2}, tpad = k - 1;
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    zoe_tensor *y = zoe_conv3d(x, w, b, NULL, pad, tpad, NULL, out, &e);
    double dt = now() - t0;
    if (!y) {
      printf("%s: %s\n", name, e.msg);
      break;
    }
    zoe_tensor_release(y);
    if (dt < best) best = dt;
  }
  double flop = 2.0 * (double)cout * (double)(cin * k * k * k) * (double)(T * H * W);
  double gf = flop / best * 1e-9;
  printf("%-44s %7.1f ms  %7.1f ms/frame  %6.1f GFLOP/s  ratio %.2f\n", name, best * 1e3, best * 1e3 / (double)T,
         gf, gf / ceiling);
  zoe_tensor *ts[] = {x, w32, b, w, out};
  for (int i = 0; i < 5; i++) zoe_tensor_release(ts[i]);
}

int main(void) {
  zoe_pool_init(0);
  double ceiling = ceiling_gflops();
  printf("threads %d, sgemm ceiling (1536^3, all threads) %.1f GFLOP/s\n", zoe_pool_threads(), ceiling);
  printf("ratio = achieved GFLOP/s over the ceiling (target >= 0.6 for 96->96 3x3x3 at 64x64)\n");
  bench_conv3d("conv3d 96->96 3x3x3, 5x64x64, f32", 96, 96, 3, 5, 64, 64, ZOE_F32, 5, ceiling);
  bench_conv3d("conv3d 96->96 3x3x3, 5x64x64, bf16 weights", 96, 96, 3, 5, 64, 64, ZOE_BF16, 5, ceiling);
  bench_conv3d("conv3d 96->96 3x3x3, 1x192x320, f32", 96, 96, 3, 1, 192, 320, ZOE_F32, 3, ceiling);
  bench_conv3d("conv3d 192->192 3x3x3, 1x96x160, f32", 192, 192, 3, 1, 96, 160, ZOE_F32, 3, ceiling);
  bench_conv3d("conv3d 384->384 3x3x3, 1x48x80, f32", 384, 384, 3, 1, 48, 80, ZOE_F32, 3, ceiling);
  bench_conv3d("conv3d 384->384 3x3x3, 1x24x40, f32", 384, 384, 3, 1, 24, 40, ZOE_F32, 5, ceiling);
  bench_conv3d("conv3d 96->3 3x3x3, 1x192x320, f32 (head)", 96, 3, 3, 1, 192, 320, ZOE_F32, 3, ceiling);
  bench_conv3d("conv3d 192->384 1x1x1, 4x96x160, f32", 192, 384, 1, 4, 96, 160, ZOE_F32, 3, ceiling);
  zoe_pool_shutdown();
  return 0;
}
