/*
** bench_nn.c: the model blocks at Wan2.1-T2V-1.3B size (320x192x17: 1200 tokens),
** in achieved GFLOP/s over the sgemm ceiling measured in the same run.
*/
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "../runtime/core/pool.h"
#include "../runtime/nn/wan/dit.h"
#include "../runtime/ops/ops.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static zoe_tensor *rnd(int nd, const int64_t *shape, uint64_t seed, double scale, zoe_dtype dt) {
  zoe_rng g;
  zoe_rng_init(&g, seed);
  zoe_tensor *t = zoe_randn(ZOE_F32, nd, shape, &g, NULL);
  zoe_tensor *s = zoe_binary_scalar(ZOE_MUL, t, scale, false, NULL, NULL);
  zoe_tensor_release(t);
  if (dt == ZOE_F32) return s;
  zoe_tensor *h = zoe_to_dtype(s, dt, NULL);
  zoe_tensor_release(s);
  return h;
}

/* sgemm ceiling: the DiT's biggest product shape */
static double ceiling(void) {
  int M = 1200, N = 1536, K = 1536;
  zoe_tensor *a = rnd(2, (int64_t[]){M, K}, 1, 1, ZOE_F32), *b = rnd(2, (int64_t[]){K, N}, 2, 1, ZOE_F32);
  zoe_tensor *c = zoe_empty(ZOE_F32, 2, (int64_t[]){M, N}, NULL);
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, zoe_data(a), K, zoe_data(b), N, 0,
                zoe_data(c), N);
    double dt = now() - t0;
    best = dt < best ? dt : best;
  }
  zoe_tensor_release(a);
  zoe_tensor_release(b);
  zoe_tensor_release(c);
  return 2.0 * M * N * K / best * 1e-9;
}

/* f32 products (OpenBLAS tiles), or bf16 ones (the flash kernel) when 'bf16' */
static void bench_attention(double ceil, bool bf16) {
  const char *was = zoe_gemm_set_precision(bf16 ? "bf16" : NULL);
  int64_t shape[4] = {1, 1200, 12, 128};
  zoe_tensor *q = rnd(4, shape, 3, 1, ZOE_F32), *k = rnd(4, shape, 4, 1, ZOE_F32), *v = rnd(4, shape, 5, 1, ZOE_F32);
  zoe_attn_opts o = {.scale = NAN};
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    zoe_tensor_release(zoe_attention(q, k, v, &o, NULL, NULL));
    double dt = now() - t0;
    best = dt < best ? dt : best;
  }
  double flop = 4.0 * 1200 * 1200 * 128 * 12;
  printf("%-40s %7.1f ms %7.1f GFLOP/s  ratio %.2f (target >= 0.6)\n",
         bf16 ? "attention 1200 tok, 12x128 heads, bf16" : "attention 1200 tok, 12x128 heads", best * 1e3,
         flop / best * 1e-9, flop / best * 1e-9 / ceil);
  zoe_gemm_set_precision(was);
  zoe_tensor_release(q);
  zoe_tensor_release(k);
  zoe_tensor_release(v);
}

static void bench_block(double ceil, zoe_dtype wdt) {
  const int64_t D = 1536, FF = 8960, L = 1200, LC = 512;
  zoe_tensor *held[32];
  int nh = 0;
#define W(...) (held[nh++] = rnd(__VA_ARGS__))
  zoe_wan_block_w w = {0};
  w.modulation = W(3, (int64_t[]){1, 6, D}, 10, 0.02, ZOE_F32);
  zoe_attn_w *as[2] = {&w.self_attn, &w.cross_attn};
  for (int i = 0; i < 2; i++) {
    as[i]->q_w = W(2, (int64_t[]){D, D}, 20 + i, 0.02, wdt);
    as[i]->k_w = W(2, (int64_t[]){D, D}, 22 + i, 0.02, wdt);
    as[i]->v_w = W(2, (int64_t[]){D, D}, 24 + i, 0.02, wdt);
    as[i]->o_w = W(2, (int64_t[]){D, D}, 26 + i, 0.02, wdt);
    as[i]->q_b = W(1, (int64_t[]){D}, 28 + i, 0.02, ZOE_F32);
    as[i]->norm_q = W(1, (int64_t[]){D}, 30 + i, 1, ZOE_F32);
    as[i]->norm_k = W(1, (int64_t[]){D}, 32 + i, 1, ZOE_F32);
  }
  w.norm3_w = W(1, (int64_t[]){D}, 40, 1, ZOE_F32);
  w.ffn0_w = W(2, (int64_t[]){FF, D}, 41, 0.02, wdt);
  w.ffn2_w = W(2, (int64_t[]){D, FF}, 42, 0.02, wdt);
  zoe_tensor *x = rnd(3, (int64_t[]){1, L, D}, 50, 1, ZOE_F32), *e0 = rnd(3, (int64_t[]){1, 6, D}, 51, 0.1, ZOE_F32);
  zoe_tensor *ctx = rnd(3, (int64_t[]){1, LC, D}, 52, 1, ZOE_F32), *ck, *cv;
  zoe_wan_cross_kv(&w, 12, 1e-6, ctx, &ck, &cv, NULL);
  zoe_wan_block_opts o = {.heads = 12, .eps = 1e-6, .grid = {5, 12, 20}, .rope_pairs = {22, 21, 21}, .rope_theta = 10000};
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double t0 = now();
    zoe_tensor_release(zoe_wan_block(&w, &o, x, e0, ck, cv, NULL));
    double dt = now() - t0;
    best = dt < best ? dt : best;
  }
  double flop = 2.0 * L * (6.0 * D * D + 2.0 * D * FF) + 4.0 * L * L * D + 4.0 * L * LC * D;
  char name[64];
  snprintf(name, sizeof name, "Wan 1.3B DiT block, %s weights", zoe_dtype_name(wdt));
  printf("%-40s %7.1f ms %7.1f GFLOP/s  ratio %.2f (target >= 0.75)\n", name, best * 1e3, flop / best * 1e-9,
         flop / best * 1e-9 / ceil);
  for (int i = 0; i < nh; i++) zoe_tensor_release(held[i]);
  zoe_tensor *rest[] = {x, e0, ctx, ck, cv};
  for (int i = 0; i < 5; i++) zoe_tensor_release(rest[i]);
#undef W
}

int main(void) {
  zoe_pool_init(0);
  double ceil = ceiling();
  printf("sgemm ceiling (1200x1536x1536): %.1f GFLOP/s on %d threads\n", ceil, zoe_pool_threads());
  bench_attention(ceil, false);
  bench_attention(ceil, true);
  bench_block(ceil, ZOE_F32);
  bench_block(ceil, ZOE_BF16);
  zoe_pool_shutdown();
  return 0;
}
