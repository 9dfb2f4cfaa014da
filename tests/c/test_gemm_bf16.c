/*
** test_gemm_bf16.c: the AVX512-BF16 GEMM backend (runtime/ops/gemm_bf16.c).
** Each product is checked against a reference in double computed from both
** operands rounded to bf16 exactly as the kernel rounds them (nearest even,
** inputs below 2^-126 flushed to zero), so the only difference left is the
** order of f32 sums: |C - ref| <= 1e-5 * (|alpha| sum |a b| + |beta C0|).
** Shapes cover the kernel's edges (rows past a micro-tile of 8, columns past
** 16/32/48, odd K, K blocks of 256 pairs), both layouts of each operand,
** leading dimensions past the row, every dtype pairing, alpha and beta; then
** the dispatch: forced bf16 against OpenBLAS within 1e-2, the same bits on any
** thread count, and what AUTO picks (bf16 weights on the bf16 kernel, f32 x f32
** on OpenBLAS unless ZOE_PRECISION=bf16), and the epilogue (bias, GELU) on each
** backend. Skipped where the CPU lacks AVX512-BF16 (but the OpenBLAS epilogue).
*/
#include <stdint.h>
#include <stdlib.h>

#include "../../runtime/core/alloc.h"
#include "../../runtime/core/dtype.h"
#include "../../runtime/core/pool.h"
#include "../../runtime/ops/gemm.h"
#include "../../runtime/ops/gemm_bf16.h"
#include "test.h"

static uint64_t lcg = 0x9e3779b97f4a7c15ull;
static double uniform(void) { /* [0, 1) */
  lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcg >> 11) * 0x1p-53;
}
static double normalish(void) { return uniform() + uniform() + uniform() - 1.5; }

/* what vcvtneps2bf16 does: denormals to signed zero, then nearest even */
static float bf16_round(float f) {
  uint32_t u = zoe_f32_bits(f);
  if ((u & 0x7f800000u) == 0) return zoe_bits_f32(u & 0x80000000u);
  return zoe_bf16_to_f32(zoe_f32_to_bf16(f));
}

/* An operand: logical [rows, cols] (op applied), stored transposed or not, ld >= its row. */
typedef struct mat {
  zoe_dtype dt;
  bool trans;
  int64_t rows, cols, ld;
  void *data;
  size_t bytes;
} mat;

static int64_t at_index(const mat *m, int64_t r, int64_t c) { return m->trans ? c * m->ld + r : r * m->ld + c; }

static mat make(zoe_dtype dt, bool trans, int64_t rows, int64_t cols, int64_t pad) {
  mat m = {dt, trans, rows, cols, (trans ? rows : cols) + pad, NULL, 0};
  int64_t n = (trans ? cols : rows) * m.ld;
  m.bytes = (size_t)(n ? n : 1) * zoe_dtype_size(dt);
  m.data = malloc(m.bytes);
  for (int64_t i = 0; i < n; i++) zoe_store_elem(dt, m.data, i, 1e6); /* padding: must never be read */
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) zoe_store_elem(dt, m.data, at_index(&m, r, c), normalish());
  return m;
}

static double val(const mat *m, int64_t r, int64_t c) {
  return (double)bf16_round((float)zoe_load_elem(m->dt, m->data, at_index(m, r, c)));
}

static zoe_gemm_arg arg(const mat *m) { return (zoe_gemm_arg){m->data, m->dt, m->trans, m->ld}; }

/* C = alpha A B + beta C0 through zoe_gemm; returns the worst error over its bound (<= 1 passes). */
static double check_product(const mat *a, const mat *b, float alpha, float beta, int64_t ldc_pad) {
  int64_t M = a->rows, K = a->cols, N = b->cols, ldc = N + ldc_pad;
  float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1)), *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  for (int64_t i = 0; i < M * ldc; i++) C0[i] = C[i] = (float)normalish();
  if (beta == 0.0f)
    for (int64_t i = 0; i < M * ldc; i++) C[i] = C0[i] = __builtin_nanf(""); /* beta 0: C is never read */
  zoe_err e = {0};
  int rc = zoe_gemm(M, N, K, alpha, arg(a), arg(b), beta, C, ldc, &e);
  CHECK(rc == 0, "zoe_gemm failed: %s", e.msg);
  double worst = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      if (j >= N) { /* past the row: untouched */
        CHECK(zoe_f32_bits(C[i * ldc + j]) == zoe_f32_bits(C0[i * ldc + j]), "C[%lld][%lld] written past N",
              (long long)i, (long long)j);
        continue;
      }
      double s = 0, mag = 0;
      for (int64_t k = 0; k < K; k++) {
        double p = val(a, i, k) * val(b, k, j);
        s += p;
        mag += fabs(p);
      }
      double c0 = beta == 0.0f ? 0 : C0[i * ldc + j];
      double ref = alpha * s + beta * c0, bound = 1e-5 * (fabs(alpha) * mag + fabs(beta * c0)) + 1e-30;
      double r = fabs(C[i * ldc + j] - ref) / bound;
      if (!(r <= worst)) worst = r; /* NaN counts as failing */
    }
  free(C);
  free(C0);
  return worst;
}

static const char *dn(zoe_dtype dt) { return zoe_dtype_name(dt); }

static void product_case(int64_t M, int64_t N, int64_t K, zoe_dtype da, bool ta, zoe_dtype db, bool tb, int64_t pad,
                         float alpha, float beta) {
  mat a = make(da, ta, M, K, pad), b = make(db, tb, K, N, pad);
  double w = check_product(&a, &b, alpha, beta, pad);
  CHECK(w <= 1.0, "%lldx%lldx%lld A %s%s B %s%s pad %lld alpha %g beta %g: error %.3g of the bound", (long long)M,
        (long long)N, (long long)K, dn(da), ta ? "^T" : "", dn(db), tb ? "^T" : "", (long long)pad, alpha, beta, w);
  free(a.data);
  free(b.data);
}

static bool have_bf16;

/* Linear layers (x [M, K] f32 times W^T, W [N, K] bf16) at the kernel's edges. */
static void test_linear_edges(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  zoe_gemm_force(ZOE_GEMM_BF16);
  const int64_t sizes[] = {1, 15, 17, 31, 33, 47, 49, 127, 129};
  for (int i = 0; i < 9; i++)
    for (int k = 0; k < 9; k += 2) {
      product_case(sizes[i], sizes[(i + k) % 9], sizes[(i + 2 * k + 1) % 9], ZOE_F32, false, ZOE_BF16, true, 0, 1, 0);
      product_case(sizes[(i + 3) % 9], sizes[i], 17 + 2 * k, ZOE_F32, false, ZOE_BF16, true, 3, 1, 0);
    }
  zoe_gemm_force(ZOE_GEMM_AUTO);
}

/* K past one block of 256 pairs, odd and even, and 1000 along each dimension. */
static void test_large(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  zoe_gemm_force(ZOE_GEMM_BF16);
  product_case(33, 49, 1000, ZOE_F32, false, ZOE_BF16, true, 0, 1, 0);
  product_case(17, 31, 1025, ZOE_F32, false, ZOE_BF16, true, 1, 1, 0.5f);
  product_case(1000, 33, 129, ZOE_F32, false, ZOE_BF16, true, 0, 1, 0);
  product_case(17, 1000, 31, ZOE_F32, false, ZOE_BF16, true, 0, 1, 0);
  product_case(96, 300, 513, ZOE_BF16, false, ZOE_F32, false, 5, 1, 1); /* a convolution tile */
  product_case(127, 129, 127, ZOE_F32, false, ZOE_F32, false, 0, 1, 0);
  zoe_gemm_force(ZOE_GEMM_AUTO);
}

/* Every dtype pairing and layout, with alpha, beta and leading dimensions past the row. */
static void test_layouts(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  zoe_gemm_force(ZOE_GEMM_BF16);
  const zoe_dtype dts[] = {ZOE_F32, ZOE_BF16, ZOE_F16};
  const float ab[][2] = {{1, 0}, {0.5f, 1}, {-2, 0.25f}};
  int n = 0;
  for (int da = 0; da < 3; da++)
    for (int db = 0; db < 3; db++)
      for (int t = 0; t < 4; t++, n++) {
        int64_t M = 1 + (n * 7) % 40, N = 1 + (n * 13) % 70, K = 1 + (n * 29) % 90;
        product_case(M, N, K, dts[da], t & 1, dts[db], t >> 1, n % 3, ab[n % 3][0], ab[n % 3][1]);
      }
  zoe_gemm_force(ZOE_GEMM_AUTO);
}

/* Random shapes from the edge list, random layouts and dtypes. */
static void test_random_shapes(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  zoe_gemm_force(ZOE_GEMM_BF16);
  const int64_t sizes[] = {1, 2, 15, 16, 17, 31, 32, 33, 48, 63, 127, 129, 257, 513};
  for (int it = 0; it < 40; it++) {
    int64_t M = sizes[(int)(uniform() * 14)], N = sizes[(int)(uniform() * 14)], K = sizes[(int)(uniform() * 14)];
    if (M * N * K > 4000000) K = 33;
    zoe_dtype da = uniform() < 0.7 ? ZOE_F32 : ZOE_BF16, db = uniform() < 0.5 ? ZOE_BF16 : ZOE_F32;
    product_case(M, N, K, da, uniform() < 0.3, db, uniform() < 0.6, (int64_t)(uniform() * 4), 1,
                 uniform() < 0.5 ? 0.0f : 1.0f);
  }
  zoe_gemm_force(ZOE_GEMM_AUTO);
}

/* K = 0: C = beta C. */
static void test_empty_k(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  zoe_gemm_force(ZOE_GEMM_BF16);
  float C[6] = {1, 2, 3, 4, 5, 6}, a = 0, b = 0;
  zoe_gemm_arg A = {&a, ZOE_F32, false, 1}, B = {&b, ZOE_BF16, true, 1};
  CHECK(zoe_gemm(2, 3, 0, 1, A, B, 0.5f, C, 3, NULL) == 0, "K = 0");
  CHECK(C[0] == 0.5f && C[5] == 3.0f, "beta C: %g %g", C[0], C[5]);
  CHECK(zoe_gemm(2, 3, 0, 1, A, B, 0.0f, C, 3, NULL) == 0 && C[4] == 0.0f, "beta 0 zeroes C: %g", C[4]);
  zoe_gemm_force(ZOE_GEMM_AUTO);
}

/* relative Frobenius distance between two results */
static double rel_diff(const float *x, const float *y, int64_t n) {
  double d = 0, s = 0;
  for (int64_t i = 0; i < n; i++) {
    d += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    s += (double)y[i] * y[i];
  }
  return sqrt(d / (s + 1e-300));
}

static float *run(zoe_gemm_kind kind, int64_t M, int64_t N, int64_t K, const mat *a, const mat *b) {
  float *C = calloc((size_t)(M * N), sizeof(float));
  zoe_gemm_kind old = zoe_gemm_force(kind);
  int rc = zoe_gemm(M, N, K, 1, arg(a), arg(b), 0, C, N, NULL);
  zoe_gemm_force(old);
  CHECK(rc == 0, "gemm failed");
  return C;
}

/* The backends agree within 1e-2; bf16 gives the same bits on 1 and 2 threads; AUTO's choice. */
static void test_dispatch(void) {
  zoe_gemm_force(ZOE_GEMM_OPENBLAS);
  CHECK(strcmp(zoe_gemm_backend(), "openblas") == 0, "forced: %s", zoe_gemm_backend());
  zoe_gemm_force(ZOE_GEMM_AUTO);
  const char *p = getenv("ZOE_PRECISION");
  bool f32_only = p && strcmp(p, "f32") == 0;
  const char *want = have_bf16 && !f32_only ? "zoe-avx512bf16" : "openblas";
  CHECK(strcmp(zoe_gemm_backend(), want) == 0, "auto: %s, expected %s", zoe_gemm_backend(), want);
  bool exact = !have_bf16 || !p || strcmp(p, "bf16") != 0;
  CHECK(zoe_gemm_f32_exact() == exact, "f32 x f32 exact: %d", zoe_gemm_f32_exact());
  if (!have_bf16) return; /* the choice above is what this CPU can show */
  int64_t M = 300, N = 520, K = 777;
  mat x = make(ZOE_F32, false, M, K, 0), w = make(ZOE_BF16, true, K, N, 0);
  float *ob = run(ZOE_GEMM_OPENBLAS, M, N, K, &x, &w), *bf = run(ZOE_GEMM_BF16, M, N, K, &x, &w);
  double d = rel_diff(bf, ob, M * N);
  CHECK(d < 1e-2 && d > 0, "bf16 vs openblas: %.3g", d);
  float *au = run(ZOE_GEMM_AUTO, M, N, K, &x, &w);
  CHECK(memcmp(au, f32_only ? ob : bf, sizeof(float) * (size_t)(M * N)) == 0, "AUTO with a bf16 weight runs %s",
        f32_only ? "openblas" : "bf16");
  int threads = zoe_pool_threads();
  zoe_pool_set_threads(1);
  float *one = run(ZOE_GEMM_BF16, M, N, K, &x, &w);
  zoe_pool_set_threads(threads > 1 ? threads : 2);
  float *two = run(ZOE_GEMM_BF16, M, N, K, &x, &w);
  zoe_pool_set_threads(threads);
  CHECK(memcmp(one, bf, sizeof(float) * (size_t)(M * N)) == 0 && memcmp(two, bf, sizeof(float) * (size_t)(M * N)) == 0,
        "bf16 results depend on the thread count");
  /* f32 x f32 against OpenBLAS too */
  mat y = make(ZOE_F32, true, K, N, 2);
  float *ob2 = run(ZOE_GEMM_OPENBLAS, M, N, K, &x, &y), *bf2 = run(ZOE_GEMM_BF16, M, N, K, &x, &y);
  d = rel_diff(bf2, ob2, M * N);
  CHECK(d < 1e-2, "f32 x f32 in bf16 vs openblas: %.3g", d);
  bool f32_in_bf16 = p && strcmp(p, "bf16") == 0;
  float *au2 = run(ZOE_GEMM_AUTO, M, N, K, &x, &y);
  CHECK(memcmp(au2, f32_in_bf16 ? bf2 : ob2, sizeof(float) * (size_t)(M * N)) == 0, "AUTO with f32 x f32 runs %s",
        f32_in_bf16 ? "bf16" : "openblas");
  float *ptrs[] = {ob, bf, au, one, two, ob2, bf2, au2};
  for (int i = 0; i < 8; i++) free(ptrs[i]);
  free(x.data);
  free(w.data);
  free(y.data);
}

/*
** Few rows of f32 activations times a bf16 weight (AUTO) keep nearly f32 accuracy: the
** activations go in as bf16 plus the bf16 of the rest. Against OpenBLAS on the same
** (exactly bf16) weight, far closer than one bf16 rounding of the activations (~2e-3).
*/
static void test_few_rows_split(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  const char *p = getenv("ZOE_PRECISION");
  if (p && strcmp(p, "f32") == 0) {
    SKIP("ZOE_PRECISION=f32 keeps these products in f32");
    return;
  }
  int64_t M = 40, N = 300, K = 1030;
  mat x = make(ZOE_F32, false, M, K, 5), w = make(ZOE_BF16, true, K, N, 6);
  float *ob = run(ZOE_GEMM_OPENBLAS, M, N, K, &x, &w), *au = run(ZOE_GEMM_AUTO, M, N, K, &x, &w);
  float *bf = run(ZOE_GEMM_BF16, M, N, K, &x, &w); /* forced: one bf16 rounding of x */
  double split = rel_diff(au, ob, M * N), plain = rel_diff(bf, ob, M * N);
  CHECK(split < 2e-5, "few rows: %.3g from f32 products", split);
  CHECK(plain > 20 * split, "the split is what makes the difference (%.3g vs %.3g)", plain, split);
  /* turned off for this thread: AUTO gives the plain bf16 product's bits; then on again */
  CHECK(zoe_gemm_few_rows_exact(false), "on by default");
  float *off = run(ZOE_GEMM_AUTO, M, N, K, &x, &w);
  CHECK(!zoe_gemm_few_rows_exact(true), "the previous setting comes back");
  float *on = run(ZOE_GEMM_AUTO, M, N, K, &x, &w);
  CHECK(memcmp(off, bf, sizeof(float) * (size_t)(M * N)) == 0, "few rows, not exact: plain bf16");
  CHECK(memcmp(on, au, sizeof(float) * (size_t)(M * N)) == 0, "exact again: split");
  free(off);
  free(on);
  free(ob);
  free(au);
  free(bf);
  free(x.data);
  free(w.data);
}

/*
** The epilogue (a bias per column, then GELU-tanh) on every backend and both layouts
** (a linear layer's: O is C transposed; a convolution's: the weight on the left), with
** beta: against the plain product's result put through the formula in double.
*/
static void epilogue_case(zoe_gemm_kind kind, bool weight_left, int64_t M, int64_t N, int64_t K, zoe_gemm_act act,
                          bool bias) {
  mat a = weight_left ? make(ZOE_BF16, false, M, K, 0) : make(ZOE_F32, false, M, K, 0);
  mat b = weight_left ? make(ZOE_F32, false, K, N, 0) : make(ZOE_BF16, true, K, N, 0);
  float *bv = malloc(sizeof(float) * (size_t)N), *plain = malloc(sizeof(float) * (size_t)(M * N));
  float *fused = malloc(sizeof(float) * (size_t)(M * N));
  for (int64_t j = 0; j < N; j++) bv[j] = (float)normalish();
  for (int64_t i = 0; i < M * N; i++) plain[i] = fused[i] = (float)normalish();
  zoe_gemm_epilogue ep = {bias ? bv : NULL, act};
  zoe_gemm_kind old = zoe_gemm_force(kind);
  int rc = zoe_gemm(M, N, K, 1.5f, arg(&a), arg(&b), 0.5f, plain, N, NULL);
  rc = rc ? rc : zoe_gemm_ep(M, N, K, 1.5f, arg(&a), arg(&b), 0.5f, fused, N, &ep, NULL);
  zoe_gemm_force(old);
  CHECK(rc == 0, "gemm failed");
  double worst = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double x = (double)plain[i * N + j] + (bias ? bv[j] : 0.0);
      if (act == ZOE_ACT_GELU_TANH) x = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
      double d = fabs(fused[i * N + j] - x) / (1e-3 + fabs(x));
      if (!(d <= worst)) worst = d;
    }
  CHECK(worst < 1e-5, "kind %d %s %lldx%lldx%lld act %d bias %d: worst relative error %.3g", (int)kind,
        weight_left ? "weight left" : "linear", (long long)M, (long long)N, (long long)K, (int)act, (int)bias, worst);
  free(bv);
  free(plain);
  free(fused);
  free(a.data);
  free(b.data);
}

static void test_epilogue(void) {
  const zoe_gemm_kind kinds[] = {ZOE_GEMM_OPENBLAS, ZOE_GEMM_BF16, ZOE_GEMM_AUTO}; /* AUTO: few rows, hi + lo */
  for (int k = 0; k < (have_bf16 ? 3 : 1); k++)
    for (int left = 0; left < 2; left++) {
      epilogue_case(kinds[k], left, 40, 97, 70, ZOE_ACT_GELU_TANH, true);
      epilogue_case(kinds[k], left, 130, 33, 129, ZOE_ACT_GELU_TANH, false);
      epilogue_case(kinds[k], left, 17, 200, 31, ZOE_ACT_NONE, true);
    }
}

/* A requested cancel stops the product with ZOE_ECANCELED. */
static void test_cancel(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  zoe_gemm_force(ZOE_GEMM_BF16);
  mat x = make(ZOE_F32, false, 64, 64, 0), w = make(ZOE_BF16, true, 64, 64, 0);
  float C[64 * 64];
  zoe_cancel_request();
  int rc = zoe_gemm(64, 64, 64, 1, arg(&x), arg(&w), 0, C, 64, NULL);
  zoe_cancel_clear();
  CHECK(rc == ZOE_ECANCELED, "rc %d", rc);
  free(x.data);
  free(w.data);
  zoe_gemm_force(ZOE_GEMM_AUTO);
}

int main(void) {
  zoe_pool_init(0);
  have_bf16 = zoe_bf16_cpu();
  if (!have_bf16) printf("# no AVX512-BF16 on this CPU: only the dispatch is tested\n");
  RUN(test_linear_edges);
  RUN(test_large);
  RUN(test_layouts);
  RUN(test_random_shapes);
  RUN(test_empty_k);
  RUN(test_dispatch);
  RUN(test_few_rows_split);
  RUN(test_epilogue);
  RUN(test_cancel);
  zoe_pool_shutdown();
  return test_summary();
}
