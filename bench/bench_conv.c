/*
** bench_conv.c: the convolutions' achieved GFLOP/s over the sgemm ceiling
** (cblas_sgemm on a large square product, all threads), at the sizes the Wan
** VAE decoder runs. The ceiling is measured again right after each row: the
** ratio to that one compares like with like on a machine shared with other
** work; the ratio to the best ceiling of the run can only understate.
** Best of several repetitions each. GFLOP/s count a direct convolution's flops
** (2 * Cout * Cin*kt*kh*kw per output pixel), also for the Winograd path, which
** does about 4x fewer: its ratio can pass 1.
*/
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../runtime/core/pool.h"
#include "../runtime/core/rng.h"
#include "../runtime/nn/conv_internal.h"
#include "../runtime/nn/nn.h"
#include "../runtime/nn/wan/vae_blocks.h"
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
  int64_t n = 1024;
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

#define MAX_ROWS 16
static struct {
  const char *name;
  double ms, ms_frame, gflops, ceiling;
} rows[MAX_ROWS];
static int nrows;

static void report(const char *name, double best, int64_t T, double flop) {
  if (nrows == MAX_ROWS) return;
  rows[nrows].name = name;
  rows[nrows].ms = best * 1e3;
  rows[nrows].ms_frame = best * 1e3 / (double)T;
  rows[nrows].gflops = flop / best * 1e-9;
  rows[nrows++].ceiling = ceiling_gflops();
}

/* causal conv3d with a k^3 kernel (pad 1, 2 frames in front) or a 1x1x1 one */
static void bench_conv3d(const char *name, int64_t cin, int64_t cout, int k, int64_t T, int64_t H, int64_t W,
                         zoe_dtype wdt, int reps) {
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
  report(name, best, T, 2.0 * (double)cout * (double)(cin * k * k * k) * (double)(T * H * W));
  zoe_tensor *ts[] = {x, w32, b, w, out};
  for (int i = 0; i < 5; i++) zoe_tensor_release(ts[i]);
}

/* one Wan VAE residual block C -> C on one frame with a 2-frame cache (a decode step) */
static void bench_resblock(const char *name, int64_t C, int64_t H, int64_t W, int reps) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, C, 1, H, W}, 6), *prev = randn(5, (int64_t[]){1, C, 2, H, W}, 7);
  zoe_tensor *g = zoe_full(ZOE_F32, 1, &C, 1.0, NULL), *b = zoe_zeros(ZOE_F32, 1, &C, NULL);
  zoe_tensor *w1 = randn(5, (int64_t[]){C, C, 3, 3, 3}, 8), *w2 = randn(5, (int64_t[]){C, C, 3, 3, 3}, 9);
  zoe_vae_resblock_w w = {g, w1, b, g, w2, b, NULL, NULL};
  zoe_vae_cache cache = {prev, prev};
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    zoe_vae_cache next = {0};
    double t0 = now();
    zoe_tensor *y = zoe_vae_resblock(x, &w, &cache, &next, &e);
    double dt = now() - t0;
    zoe_tensor_release(next.conv1);
    zoe_tensor_release(next.conv2);
    if (!y) {
      printf("%s: %s\n", name, e.msg);
      break;
    }
    zoe_tensor_release(y);
    if (dt < best) best = dt;
  }
  report(name, best, 1, 2 * 2.0 * (double)C * (double)(C * 27) * (double)(H * W));
  zoe_tensor *ts[] = {x, prev, g, b, w1, w2};
  for (int i = 0; i < 6; i++) zoe_tensor_release(ts[i]);
}

int main(void) {
  zoe_pool_init(0);
  double ceiling = ceiling_gflops();
  bench_conv3d("conv3d 96->96 3x3x3, 5x64x64, f32", 96, 96, 3, 5, 64, 64, ZOE_F32, 5);
  zoe__conv_winograd_enabled = false;
  bench_conv3d("  the same by im2col + GEMM", 96, 96, 3, 5, 64, 64, ZOE_F32, 5);
  bench_conv3d("  96->96 at 1x192x320 by im2col + GEMM", 96, 96, 3, 1, 192, 320, ZOE_F32, 3);
  bench_conv3d("  the same with bf16 weights", 96, 96, 3, 1, 192, 320, ZOE_BF16, 3);
  zoe__conv_winograd_enabled = true;
  bench_conv3d("conv3d 96->96 3x3x3, 5x64x64, bf16 weights", 96, 96, 3, 5, 64, 64, ZOE_BF16, 5);
  bench_conv3d("conv3d 96->96 3x3x3, 1x192x320, f32", 96, 96, 3, 1, 192, 320, ZOE_F32, 3);
  bench_conv3d("conv3d 192->192 3x3x3, 1x96x160, f32", 192, 192, 3, 1, 96, 160, ZOE_F32, 3);
  bench_conv3d("conv3d 384->384 3x3x3, 1x48x80, f32", 384, 384, 3, 1, 48, 80, ZOE_F32, 3);
  bench_conv3d("conv3d 384->384 3x3x3, 1x24x40, f32", 384, 384, 3, 1, 24, 40, ZOE_F32, 5);
  bench_conv3d("conv3d 96->3 3x3x3, 1x192x320, f32 (head)", 96, 3, 3, 1, 192, 320, ZOE_F32, 3);
  bench_conv3d("conv3d 192->384 1x1x1, 4x96x160, f32", 192, 384, 1, 4, 96, 160, ZOE_F32, 3);
  bench_resblock("vae_resblock 96, 1x192x320 (2 convs)", 96, 192, 320, 3);
  for (int i = 0; i < nrows; i++) ceiling = rows[i].ceiling > ceiling ? rows[i].ceiling : ceiling;
  printf("threads %d, bf16 products on %s; ceiling = cblas_sgemm 1024^3 on all threads, measured after each row\n"
         "(best of the run: %.1f GFLOP/s); ratio = GFLOP/s over the ceiling (target >= 0.6 for 96->96 3x3x3\n"
         "at 64x64)\n", zoe_pool_threads(), zoe_gemm_backend(), ceiling);
  printf("%-44s %9s  %12s  %13s  %7s  %5s  %s\n", "", "time", "per frame", "achieved", "ceiling", "ratio",
         "ratio to best");
  for (int i = 0; i < nrows; i++)
    printf("%-44s %6.1f ms  %7.1f ms  %6.1f GFLOP/s  %7.1f  %5.2f  %.2f\n", rows[i].name, rows[i].ms,
           rows[i].ms_frame, rows[i].gflops, rows[i].ceiling, rows[i].gflops / rows[i].ceiling,
           rows[i].gflops / ceiling);
  zoe_pool_shutdown();
  return 0;
}
