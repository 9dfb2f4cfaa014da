/*
** test_gemm_quant.c: products with a quantized weight (runtime/ops/gemm_quant.c, gemm_q8.c).
**   - int8 path (where the CPU has AVX512-VNNI): against an emulation in double of what it
**     computes (activations quantized per token in groups of 256, or 32, to nearest even;
**     the weight's values as ggml dequantizes them): equal to f32 rounding, for every type,
**     odd sizes, alpha/beta, bias and GELU; the same bits on 1 and 2 threads;
**   - against the dequantized weight in f32: within what int8 activations cost (< 1e-2);
**   - widened path (f32 run, K not a multiple of 32): equal to the dequantized product.
*/
#include <math.h>
#include <stdlib.h>

#include "../../runtime/core/alloc.h"
#include "../../runtime/core/pool.h"
#include "../../runtime/core/quant.h"
#include "../../runtime/ops/gemm.h"
#include "../../runtime/ops/gemm_quant.h"
#include "../../runtime/ops/vmath.h"
#include "test.h"

static void fill(float *x, int64_t n, uint64_t seed, float scale) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
  for (int64_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u1 = ((double)(s >> 11) + 0.5) * 0x1p-53;
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u2 = (double)(s >> 11) * 0x1p-53;
    x[i] = (float)(scale * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
  }
}

/* C = alpha * x W^T + beta * C0 (+ bias, GELU), x quantized as the kernel does, in double */
static void emulate(int64_t M, int64_t N, int64_t K, const float *x, const float *w, float alpha, float beta,
                    const float *c0, const float *bias, bool gelu, float *out) {
  int64_t G = K % 256 == 0 ? 256 : 32;
  int *q = malloc((size_t)K * sizeof *q);
  double *d = malloc((size_t)(K / G) * sizeof *d);
  for (int64_t m = 0; m < M; m++) {
    for (int64_t g = 0; g < K / G; g++) {
      float amax = 0;
      for (int64_t k = 0; k < G; k++) amax = fmaxf(amax, fabsf(x[m * K + g * G + k]));
      float inv = amax > 0 ? 127.0f / amax : 0.0f;
      d[g] = amax / 127.0f;
      for (int64_t k = 0; k < G; k++) {
        float v = nearbyintf(x[m * K + g * G + k] * inv);
        q[g * G + k] = v > 127 ? 127 : v < -127 ? -127 : (int)v;
      }
    }
    for (int64_t n = 0; n < N; n++) {
      double acc = 0;
      for (int64_t g = 0; g < K / G; g++) {
        double sg = 0;
        for (int64_t k = g * G; k < (g + 1) * G; k++) sg += (double)w[n * K + k] * q[k];
        acc += d[g] * sg;
      }
      float v = (float)(alpha * acc + (beta != 0 ? (double)beta * c0[m * N + n] : 0.0));
      if (bias) v += bias[n];
      out[m * N + n] = gelu ? zv_gelu_tanh(v) : v;
    }
  }
  free(q);
  free(d);
}

static double rel(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return sqrt(num / (den > 0 ? den : 1));
}

static double maxdiff(const float *a, const float *b, int64_t n, double *scale) {
  double m = 0, s = 0;
  for (int64_t i = 0; i < n; i++) {
    m = fmax(m, fabs((double)a[i] - b[i]));
    s = fmax(s, fabs((double)b[i]));
  }
  *scale = s;
  return m;
}

static const zoe_dtype types[] = {ZOE_Q8_0, ZOE_Q4_0, ZOE_Q4_1, ZOE_Q5_0, ZOE_Q5_1, ZOE_Q4_K, ZOE_Q5_K, ZOE_Q6_K};
#define NTYPES (sizeof types / sizeof types[0])

typedef struct problem {
  int64_t M, N, K;
  float alpha, beta;
  bool bias, gelu;
} problem;

/* one product on the int8 path against the emulation, the dequantized product, and 1 vs 2 threads */
static void run(const problem *p, zoe_dtype dt) {
  int64_t M = p->M, N = p->N, K = p->K;
  float *x = malloc((size_t)(M * K) * 4), *w = malloc((size_t)(N * K) * 4), *wd = malloc((size_t)(N * K) * 4);
  float *c = malloc((size_t)(M * N) * 4), *c2 = malloc((size_t)(M * N) * 4), *ref = malloc((size_t)(M * N) * 4);
  float *deq = malloc((size_t)(M * N) * 4), *c0 = malloc((size_t)(M * N) * 4), *bias = malloc((size_t)N * 4);
  void *wq = malloc(zoe_dtype_bytes(dt, N * K));
  fill(x, M * K, 1, 1.0f);
  fill(w, N * K, 2, 1.0f / sqrtf((float)K));
  fill(c0, M * N, 3, 1.0f);
  fill(bias, N, 4, 0.1f);
  zoe_quant_blocks(dt, w, N * K / zoe_dtype_block(dt), wq);
  zoe_dequant_blocks(dt, wq, N * K / zoe_dtype_block(dt), wd);
  zoe_gemm_epilogue ep = {p->bias ? bias : NULL, p->gelu ? ZOE_ACT_GELU_TANH : ZOE_ACT_NONE};
  zoe_gemm_arg A = {x, ZOE_F32, false, K}, B = {wq, dt, true, K}, Bd = {wd, ZOE_F32, true, K};
  zoe_err e = {0};
  memcpy(c, c0, (size_t)(M * N) * 4);
  memcpy(c2, c0, (size_t)(M * N) * 4);
  memcpy(deq, c0, (size_t)(M * N) * 4);
  int rc = zoe_gemm_ep(M, N, K, p->alpha, A, B, p->beta, c, N, &ep, &e);
  zoe_pool_set_threads(1);
  rc |= zoe_gemm_ep(M, N, K, p->alpha, A, B, p->beta, c2, N, &ep, &e);
  zoe_pool_set_threads(2);
  zoe_gemm_kind was = zoe_gemm_force(ZOE_GEMM_OPENBLAS); /* f32 sgemm on the dequantized weight */
  rc |= zoe_gemm_ep(M, N, K, p->alpha, A, Bd, p->beta, deq, N, &ep, &e);
  zoe_gemm_force(was);
  CHECK(rc == 0, "%s", e.msg);
  emulate(M, N, K, x, wd, p->alpha, p->beta, c0, p->bias ? bias : NULL, p->gelu, ref);
  double scale, md = maxdiff(c, ref, M * N, &scale);
  CHECK(md <= 2e-5 * scale + 1e-6, "%s %lldx%lldx%lld: max |diff| %.3g against the emulation (max %.3g)",
        zoe_dtype_name(dt), (long long)M, (long long)N, (long long)K, md, scale);
  CHECK(memcmp(c, c2, (size_t)(M * N) * 4) == 0, "%s %lldx%lldx%lld: 1 and 2 threads differ", zoe_dtype_name(dt),
        (long long)M, (long long)N, (long long)K);
  double r = rel(c, deq, M * N);
  CHECK(r < 1e-2 && r > 1e-5, "%s %lldx%lldx%lld: %.3g relative to the dequantized product", zoe_dtype_name(dt),
        (long long)M, (long long)N, (long long)K, r);
  free(x), free(w), free(wd), free(c), free(c2), free(ref), free(deq), free(c0), free(bias), free(wq);
}

static void test_int8_against_emulation(void) {
  if (strcmp(zoe_gemm_quant_backend(), "zoe-avx512vnni") != 0) {
    printf("  (no AVX512-VNNI here: the widened path is tested below)\n");
    return;
  }
  static const problem ps[] = {
    {1, 64, 256, 1, 0, false, false},  {5, 7, 96, 1, 0, true, false},     {49, 130, 512, 0.5f, 1, true, true},
    {97, 67, 288, 1, 0, false, true},  {200, 260, 2304, 1, 0.25f, true, false},
  };
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
    for (size_t t = 0; t < NTYPES; t++)
      if (ps[i].K % zoe_dtype_block(types[t]) == 0 || zoe_dtype_block(types[t]) == 32) run(&ps[i], types[t]);
}

/* an f32 run, and K that is not a multiple of 32, widen the weight: the dequantized product */
static void test_widened(void) {
  int64_t M = 13, N = 40, K = 256;
  float *x = malloc((size_t)(M * K) * 4), *w = malloc((size_t)(N * K) * 4), *wd = malloc((size_t)(N * K) * 4);
  float *c = malloc((size_t)(M * N) * 4), *ref = malloc((size_t)(M * N) * 4);
  void *wq = malloc(zoe_dtype_bytes(ZOE_Q4_K, N * K));
  fill(x, M * K, 5, 1.0f);
  fill(w, N * K, 6, 0.1f);
  zoe_quant_blocks(ZOE_Q4_K, w, N * K / 256, wq);
  zoe_dequant_blocks(ZOE_Q4_K, wq, N * K / 256, wd);
  zoe_err e = {0};
  const char *was = zoe_gemm_set_precision("f32");
  CHECK(strcmp(zoe_gemm_quant_backend(), "widened") == 0, "an f32 run widens");
  int rc = zoe_gemm(M, N, K, 1, (zoe_gemm_arg){x, ZOE_F32, false, K}, (zoe_gemm_arg){wq, ZOE_Q4_K, true, K}, 0, c, N, &e);
  rc |= zoe_gemm(M, N, K, 1, (zoe_gemm_arg){x, ZOE_F32, false, K}, (zoe_gemm_arg){wd, ZOE_F32, true, K}, 0, ref, N, &e);
  zoe_gemm_set_precision(was);
  CHECK(rc == 0, "%s", e.msg);
  CHECK(rel(c, ref, M * N) < 1e-6, "widened q4_K: %.3g", rel(c, ref, M * N));
  /* q8_0 at K = 64 on the default path */
  int64_t K2 = 64;
  zoe_quant_blocks(ZOE_Q8_0, w, 40 * K2 / 32, wq);
  zoe_dequant_blocks(ZOE_Q8_0, wq, 40 * K2 / 32, wd);
  rc = zoe_gemm(M, 40, K2, 1, (zoe_gemm_arg){x, ZOE_F32, false, K2}, (zoe_gemm_arg){wq, ZOE_Q8_0, true, K2}, 0, c, 40, &e);
  zoe_gemm_kind k = zoe_gemm_force(ZOE_GEMM_OPENBLAS);
  rc |= zoe_gemm(M, 40, K2, 1, (zoe_gemm_arg){x, ZOE_F32, false, K2}, (zoe_gemm_arg){wd, ZOE_F32, true, K2}, 0, ref, 40, &e);
  zoe_gemm_force(k);
  CHECK(rc == 0 && rel(c, ref, M * 40) < 1e-2, "q8_0 K=64: %.3g", rel(c, ref, M * 40));
  /* a quantized left operand (not a weight): widened whole */
  rc = zoe_gemm(40, M, K2, 1, (zoe_gemm_arg){wq, ZOE_Q8_0, false, K2}, (zoe_gemm_arg){x, ZOE_F32, true, K}, 0, c, M, &e);
  CHECK(rc == 0, "quantized left operand: %s", e.msg);
  free(x), free(w), free(wd), free(c), free(ref), free(wq);
}

int main(void) {
  zoe_pool_init(2);
  RUN(test_int8_against_emulation);
  RUN(test_widened);
  return test_summary();
}
