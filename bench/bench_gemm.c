/*
** bench_gemm.c: the GEMM backends at the shapes Wan2.1-1.3B runs, in GFLOP/s
** measured in one run (each shape's variants interleaved, best of several):
**   sgemm       cblas_sgemm on f32 operands, the weight f32 (the ceiling of f32)
**   openblas    zoe_gemm forced to OpenBLAS with the weight bf16 (widened in panels)
**   bf16        zoe_gemm forced to the AVX512-BF16 kernel, the weight bf16 (as mmapped)
**   bf16/f32w   the same kernel with the weight f32 (rounded while packing)
** M x N x K: M activations (tokens, or pixels for a convolution) and an [N, K]
** weight, except the VAE conv row, where the weight [96, 2592] is the left operand
** and an im2col block [2592, 4096] the right, as runtime/nn/conv.c multiplies.
** Then OPENBLAS_CORETYPE's effect on sgemm: OpenBLAS reads it when it loads,
** so each setting runs in a child process (this bench only; tests leave it alone).
*/
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/core/alloc.h"
#include "../runtime/core/dtype.h"
#include "../runtime/core/pool.h"
#include "../runtime/ops/gemm.h"
#include "../runtime/ops/gemm_bf16.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *x, int64_t n, uint64_t seed) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(s >> 11) * 0x1p-53 - 0.5);
  }
}

typedef struct shape {
  const char *name;
  int64_t M, N, K;
  bool weight_left; /* a convolution: C[M, N] = W[M, K] col[K, N] */
} shape;

enum { SGEMM, OPENBLAS_BF16W, BF16, BF16_F32W, NVAR };
static const char *var_names[NVAR] = {"sgemm", "openblas", "bf16", "bf16/f32w"};

static double run_variant(int v, const shape *s, const float *x, const float *w32, const uint16_t *w16, float *c) {
  int64_t M = s->M, N = s->N, K = s->K;
  zoe_gemm_arg act, wt;
  if (s->weight_left) { /* C[M, N] = W[M, K] col[K, N] */
    act = (zoe_gemm_arg){x, ZOE_F32, false, N};
    wt = (zoe_gemm_arg){v == BF16_F32W || v == SGEMM ? (const void *)w32 : w16,
                        v == BF16_F32W || v == SGEMM ? ZOE_F32 : ZOE_BF16, false, K};
  } else { /* C[M, N] = x[M, K] W[N, K]^T */
    act = (zoe_gemm_arg){x, ZOE_F32, false, K};
    wt = (zoe_gemm_arg){v == BF16_F32W || v == SGEMM ? (const void *)w32 : w16,
                        v == BF16_F32W || v == SGEMM ? ZOE_F32 : ZOE_BF16, true, K};
  }
  double t0 = now();
  if (v == SGEMM) {
    if (s->weight_left)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1, w32, (int)K, x, (int)N, 0, c,
                  (int)N);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1, x, (int)K, w32, (int)K, 0, c,
                  (int)N);
  } else {
    zoe_gemm_kind old = zoe_gemm_force(v == OPENBLAS_BF16W ? ZOE_GEMM_OPENBLAS : ZOE_GEMM_BF16);
    int rc = s->weight_left ? zoe_gemm(M, N, K, 1, wt, act, 0, c, N, NULL) : zoe_gemm(M, N, K, 1, act, wt, 0, c, N, NULL);
    zoe_gemm_force(old);
    if (rc) printf("%s: gemm failed (%d)\n", var_names[v], rc);
  }
  return now() - t0;
}

static void bench_shape(const shape *s, int nvar) {
  int64_t M = s->M, N = s->N, K = s->K;
  int64_t nx = s->weight_left ? K * N : M * K, nw = s->weight_left ? M * K : N * K;
  float *x = malloc(sizeof(float) * (size_t)nx), *w32 = malloc(sizeof(float) * (size_t)nw);
  uint16_t *w16 = malloc(sizeof(uint16_t) * (size_t)nw);
  float *c = malloc(sizeof(float) * (size_t)(M * N));
  fill(x, nx, 1);
  fill(w32, nw, 2);
  zoe_convert(ZOE_BF16, w16, ZOE_F32, w32, nw);
  double flop = 2.0 * (double)M * (double)N * (double)K, best[NVAR];
  int reps = flop > 2e10 ? 3 : flop > 1e9 ? 6 : 20;
  for (int v = 0; v < nvar; v++) best[v] = 1e30;
  for (int r = 0; r < reps; r++)
    for (int v = 0; v < nvar; v++) {
      double t = run_variant(v, s, x, w32, w16, c);
      if (t < best[v]) best[v] = t;
    }
  printf("%-30s", s->name);
  for (int v = 0; v < nvar; v++) printf(" %8.1f", flop / best[v] * 1e-9);
  if (nvar > BF16) printf("   %5.2fx", best[SGEMM] / best[BF16]);
  printf("\n");
  free(x);
  free(w32);
  free(w16);
  free(c);
}

static const shape shapes[] = {
    {"DiT qkvo 1200x1536x1536", 1200, 1536, 1536, false},
    {"DiT ffn1 1200x8960x1536", 1200, 8960, 1536, false},
    {"DiT ffn2 1200x1536x8960", 1200, 1536, 8960, false},
    {"cross K/V 512x1536x4096", 512, 1536, 4096, false},
    {"umT5 attn 40x4096x4096", 40, 4096, 4096, false},
    {"umT5 ffn 40x10240x4096", 40, 10240, 4096, false},
    {"VAE conv 96x4096x2592", 96, 4096, 2592, true},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* The child for one OPENBLAS_CORETYPE setting: sgemm on the DiT shapes, one line. */
static int coretype_child(void) {
  zoe_pool_init(0);
  const char *ct = getenv("OPENBLAS_CORETYPE");
  printf("  %-9s", ct ? ct : "unset");
  for (int i = 0; i < 3; i++) {
    shape s = shapes[i];
    int64_t M = s.M, N = s.N, K = s.K;
    float *x = malloc(sizeof(float) * (size_t)(M * K)), *w = malloc(sizeof(float) * (size_t)(N * K)),
          *c = malloc(sizeof(float) * (size_t)(M * N));
    fill(x, M * K, 1);
    fill(w, N * K, 2);
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
      double t = run_variant(SGEMM, &s, x, w, NULL, c);
      best = t < best ? t : best;
    }
    printf(" %8.1f", 2.0 * (double)(M * N) * (double)K / best * 1e-9);
    free(x);
    free(w);
    free(c);
  }
  printf("   (kernels: %s)\n", openblas_get_corename());
  fflush(stdout);
  zoe_pool_shutdown();
  return 0;
}

static void coretypes(char **argv) {
  const char *settings[] = {"Haswell", "", "SkylakeX", "Zen"}; /* "" unsets it */
  printf("\nOPENBLAS_CORETYPE (child processes; this environment has %s): sgemm GFLOP/s on the DiT\n"
         "shapes (Debian's OpenBLAS has no cblas_sbgemm)\n  %-9s %8s %8s %8s\n",
         getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "it unset", "", "qkvo", "ffn1", "ffn2");
  fflush(stdout);
  for (int i = 0; i < 4; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      if (settings[i][0]) setenv("OPENBLAS_CORETYPE", settings[i], 1);
      else unsetenv("OPENBLAS_CORETYPE");
      execl("/proc/self/exe", argv[0], "--coretype-child", (char *)NULL);
      _exit(127);
    }
    int st;
    if (pid > 0) waitpid(pid, &st, 0);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--coretype-child") == 0) return coretype_child();
  zoe_pool_init(0);
  bool bf16 = zoe_bf16_cpu();
  printf("threads %d, gemm backend %s, OPENBLAS_CORETYPE=%s, %s\n", zoe_pool_threads(), zoe_gemm_backend(),
         getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset", openblas_get_config());
  if (!bf16) printf("no AVX512-BF16 on this CPU: OpenBLAS only\n");
  printf("GFLOP/s (best of several, variants interleaved); last column: bf16 over sgemm\n%-30s", "M x N x K");
  int nvar = bf16 ? NVAR : BF16;
  for (int v = 0; v < nvar; v++) printf(" %8s", var_names[v]);
  printf("\n");
  for (int i = 0; i < NSHAPES; i++) bench_shape(&shapes[i], nvar);
  fflush(stdout);
  zoe_pool_shutdown();
  coretypes(argv);
  return 0;
}
