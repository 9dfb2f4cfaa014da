/*
** test_attention_bf16.c: attention on the AVX512-BF16 kernel (runtime/ops/attention_bf16.c),
** reached through zoe_attention with the bf16 backend forced, against attention computed
** in double by its definition, softmax(scale q k^T + bias + mask) v:
**   - from q, k, v rounded to bf16 as the kernel rounds them, every element within
**     4e-3 of sum_j p_j |v_j| (P rounded to bf16 moves each weight by at most 2^-8);
**   - from the f32 inputs, within 1e-2 relative (the accuracy the DiT fixture asks);
** over odd lengths and head dims, lengths past and short of the kernel's tiles (128
** queries, 384 keys, panels of 48), batches and heads, strided views, a given scale, a
** per-head or shared bias and key masks. Properties: masked keys do not count (their
** values changed, the same bits), a row with every key masked is zeros, the same bits
** on 1 and 2 threads, a requested cancel returns ZOE_ECANCELED, and when the kernel
** is chosen. Skipped where the CPU lacks AVX512-BF16.
*/
#include <stdlib.h>

#include "../../runtime/core/pool.h"
#include "../../runtime/nn/nn.h"
#include "../../runtime/ops/attention_bf16.h"
#include "../../runtime/ops/gemm.h"
#include "../../runtime/ops/gemm_bf16.h"
#include "test.h"

static uint64_t lcg = 0x2545f4914f6cdd1dull;
static double uniform(void) { /* [0, 1) */
  lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(lcg >> 11) * 0x1p-53;
}
static double normalish(void) { return 2 * (uniform() + uniform() + uniform() - 1.5); }

static float bf16_round(float f) { /* as vcvtneps2bf16: below 2^-126 to zero, then nearest even */
  uint32_t u = zoe_f32_bits(f);
  if ((u & 0x7f800000u) == 0) return zoe_bits_f32(u & 0x80000000u);
  return zoe_bf16_to_f32(zoe_f32_to_bf16(f));
}

typedef struct problem {
  int64_t B, Lq, Lk, H, Dh, Dv;
  double scale;   /* NAN: 1 / sqrt(Dh) */
  double amp;     /* of q and k: how peaked the softmax is */
  int mask;       /* 0 none, 1 random keys, 2 random and batch entry 1 all masked */
  int bias;       /* 0 none, 1 per head, 2 shared by the heads */
  int64_t pad;    /* elements past D in each head (strided views) */
} problem;

typedef struct inputs {
  zoe_tensor *q, *k, *v, *mask, *bias;
} inputs;

/* [B, L, H, D] with 'pad' more elements per head, seen through a view */
static zoe_tensor *rand_heads(int64_t B, int64_t L, int64_t H, int64_t D, int64_t pad, double amp) {
  zoe_tensor *full = zoe_empty(ZOE_F32, 4, (int64_t[]){B, L, H, D + pad}, NULL);
  float *p = zoe_data(full);
  for (int64_t i = 0; i < zoe_numel(full); i++) p[i] = (float)(amp * normalish());
  zoe_tensor *t = zoe_narrow(full, 3, 0, D, NULL);
  zoe_tensor_release(full);
  return t;
}

static inputs make(const problem *pr) {
  inputs in = {0};
  in.q = rand_heads(pr->B, pr->Lq, pr->H, pr->Dh, pr->pad, pr->amp);
  in.k = rand_heads(pr->B, pr->Lk, pr->H, pr->Dh, pr->pad, pr->amp);
  in.v = rand_heads(pr->B, pr->Lk, pr->H, pr->Dv, pr->pad, 1.0);
  if (pr->mask) {
    in.mask = zoe_empty(ZOE_F32, 2, (int64_t[]){pr->B, pr->Lk}, NULL);
    float *m = zoe_data(in.mask);
    for (int64_t i = 0; i < pr->B * pr->Lk; i++)
      m[i] = pr->mask == 2 && i / pr->Lk == 1 ? 0.0f : (float)(uniform() < 0.7);
    m[0] = 1.0f; /* entry 0 keeps a key */
  }
  if (pr->bias) {
    int64_t hb = pr->bias == 1 ? pr->H : 1;
    in.bias = zoe_empty(ZOE_F32, 3, (int64_t[]){hb, pr->Lq, pr->Lk}, NULL);
    float *b = zoe_data(in.bias);
    for (int64_t i = 0; i < zoe_numel(in.bias); i++) b[i] = (float)normalish();
  }
  return in;
}

static void release(inputs *in) {
  zoe_tensor_release(in->q);
  zoe_tensor_release(in->k);
  zoe_tensor_release(in->v);
  zoe_tensor_release(in->mask);
  zoe_tensor_release(in->bias);
}

static float elem(const zoe_tensor *t, int64_t b, int64_t l, int64_t h, int64_t d, bool round) {
  float x = ((const float *)zoe_data(t))[b * t->stride[0] + l * t->stride[1] + h * t->stride[2] + d];
  return round ? bf16_round(x) : x;
}

/* the definition in double; ref [B, Lq, H, Dv] and, per element, sum_j p_j |v_j| / sum_j p_j */
static void reference(const problem *pr, const inputs *in, bool round, double *ref, double *absref) {
  double scale = isnan(pr->scale) ? 1.0 / sqrt((double)pr->Dh) : pr->scale;
  double *s = malloc((size_t)pr->Lk * sizeof *s);
  for (int64_t b = 0; b < pr->B; b++)
    for (int64_t h = 0; h < pr->H; h++)
      for (int64_t i = 0; i < pr->Lq; i++) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < pr->Lk; j++) {
          double d = 0;
          for (int64_t c = 0; c < pr->Dh; c++)
            d += (double)elem(in->q, b, i, h, c, round) * (double)elem(in->k, b, j, h, c, round);
          d *= scale;
          if (in->bias) d += ((const float *)zoe_data(in->bias))[((in->bias->shape[0] > 1 ? h : 0) * pr->Lq + i) * pr->Lk + j];
          if (in->mask && ((const float *)zoe_data(in->mask))[b * pr->Lk + j] == 0) d = -INFINITY;
          s[j] = d;
          mx = d > mx ? d : mx;
        }
        double l = 0;
        for (int64_t j = 0; j < pr->Lk; j++) {
          s[j] = mx == -INFINITY ? 0 : exp(s[j] - mx);
          l += s[j];
        }
        for (int64_t c = 0; c < pr->Dv; c++) {
          double o = 0, a = 0;
          for (int64_t j = 0; j < pr->Lk; j++) {
            double vv = elem(in->v, b, j, h, c, round);
            o += s[j] * vv;
            a += s[j] * fabs(vv);
          }
          int64_t at = ((b * pr->Lq + i) * pr->H + h) * pr->Dv + c;
          ref[at] = l > 0 ? o / l : 0;
          absref[at] = l > 0 ? a / l : 0;
        }
      }
  free(s);
}

static zoe_tensor *attend(const problem *pr, const inputs *in, zoe_err *e) {
  zoe_attn_opts o = {.scale = pr->scale, .key_mask = in->mask, .bias = in->bias};
  return zoe_attention(in->q, in->k, in->v, &o, NULL, e);
}

static double worst_bound, worst_rel; /* over every case, printed */

static void check_problem(const problem *pr) {
  inputs in = make(pr);
  zoe_err e = {0};
  zoe_tensor *out = attend(pr, &in, &e);
  CHECK(out != NULL, "%s", e.msg);
  if (!out) {
    release(&in);
    return;
  }
  size_t n = (size_t)(pr->B * pr->Lq * pr->H * pr->Dv);
  double *ref = malloc(n * sizeof *ref), *absref = malloc(n * sizeof *absref);
  double *exact = malloc(n * sizeof *exact), *tmp = malloc(n * sizeof *tmp);
  reference(pr, &in, true, ref, absref);
  reference(pr, &in, false, exact, tmp);
  const float *o = zoe_data(out);
  double worst = 0, num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(o[i] - ref[i]) / (4e-3 * absref[i] + 1e-6);
    if (!(d <= worst)) worst = d;
    num += (o[i] - exact[i]) * (o[i] - exact[i]);
    den += exact[i] * exact[i];
  }
  double rel = den > 0 ? sqrt(num / den) : sqrt(num);
  worst_bound = worst > worst_bound ? worst : worst_bound;
  worst_rel = rel > worst_rel ? rel : worst_rel;
  CHECK(worst <= 1, "B%lld Lq%lld Lk%lld H%lld Dh%lld Dv%lld mask %d bias %d: worst error %.3g of the bf16 bound",
        (long long)pr->B, (long long)pr->Lq, (long long)pr->Lk, (long long)pr->H, (long long)pr->Dh,
        (long long)pr->Dv, pr->mask, pr->bias, worst);
  CHECK(rel < 1e-2, "B%lld Lq%lld Lk%lld: relative error %.3g from f32 inputs", (long long)pr->B, (long long)pr->Lq,
        (long long)pr->Lk, rel);
  if (pr->mask == 2) { /* entry 1 has every key masked */
    double mx = 0;
    for (size_t i = (size_t)(pr->Lq * pr->H * pr->Dv); i < (size_t)(2 * pr->Lq * pr->H * pr->Dv); i++)
      mx = fabs(o[i]) > mx ? fabs(o[i]) : mx;
    CHECK(mx == 0, "a row with every key masked: max |out| %g", mx);
  }
  free(ref);
  free(absref);
  free(exact);
  free(tmp);
  zoe_tensor_release(out);
  release(&in);
}

static bool have_bf16;

static void test_against_definition(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  const problem cases[] = {
      {1, 1, 1, 1, 1, 1, NAN, 1, 0, 0, 0},           /* one of everything */
      {2, 7, 5, 3, 5, 3, NAN, 1, 0, 0, 0},           /* odd head dims, fewer keys than a panel */
      {1, 129, 385, 2, 64, 64, NAN, 1, 0, 0, 0},     /* one past a query tile and a key tile */
      {1, 127, 383, 1, 128, 128, NAN, 1.5, 0, 0, 0}, /* one short of both, Wan's head size */
      {1, 200, 47, 2, 33, 17, 0.3, 1, 0, 0, 3},      /* a given scale, strided heads */
      {2, 130, 769, 2, 128, 128, NAN, 2, 0, 0, 0},   /* peaked: the maximum moves between key tiles */
      {1, 64, 1000, 1, 128, 96, NAN, 1, 0, 0, 0},    /* Dv of two panels */
      {3, 40, 97, 2, 16, 50, NAN, 1, 2, 0, 0},       /* key masks, entry 1 all masked */
      {1, 33, 400, 3, 24, 24, 1.0, 1, 0, 1, 0},      /* a bias per head, as T5's */
      {2, 50, 60, 2, 24, 8, 1.0, 1, 1, 2, 1},        /* a shared bias with masks, strided */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_problem(&cases[i]);
  printf("# worst error %.2f of the bf16 bound; %.2g relative from f32 inputs\n", worst_bound, worst_rel);
}

/* Masked keys do not count: other values there give the same bits. */
static void test_masked_keys_do_not_count(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  problem pr = {2, 70, 450, 2, 32, 40, NAN, 1, 1, 0, 0};
  inputs in = make(&pr);
  zoe_tensor *a = attend(&pr, &in, NULL);
  const float *m = zoe_data(in.mask);
  for (int64_t b = 0; b < pr.B; b++)
    for (int64_t j = 0; j < pr.Lk; j++)
      if (m[b * pr.Lk + j] == 0)
        for (int64_t h = 0; h < pr.H; h++) {
          float *kr = (float *)zoe_data(in.k) + b * in.k->stride[0] + j * in.k->stride[1] + h * in.k->stride[2];
          float *vr = (float *)zoe_data(in.v) + b * in.v->stride[0] + j * in.v->stride[1] + h * in.v->stride[2];
          for (int64_t c = 0; c < pr.Dh; c++) kr[c] = 1e3f;
          for (int64_t c = 0; c < pr.Dv; c++) vr[c] = -1e4f;
        }
  zoe_tensor *b2 = attend(&pr, &in, NULL);
  CHECK(a && b2 && memcmp(zoe_data(a), zoe_data(b2), (size_t)zoe_numel(a) * sizeof(float)) == 0,
        "masked keys changed the result");
  zoe_tensor_release(a);
  zoe_tensor_release(b2);
  release(&in);
}

/* Each (batch entry, head, query tile) is one thread's in one order: the same bits on any thread count. */
static void test_threads_same_bits(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  problem pr = {2, 300, 800, 3, 64, 64, NAN, 1, 0, 0, 0};
  inputs in = make(&pr);
  int threads = zoe_pool_threads();
  zoe_pool_set_threads(1);
  zoe_tensor *one = attend(&pr, &in, NULL);
  zoe_pool_set_threads(threads > 1 ? threads : 2);
  zoe_tensor *many = attend(&pr, &in, NULL);
  zoe_pool_set_threads(threads);
  CHECK(one && many && memcmp(zoe_data(one), zoe_data(many), (size_t)zoe_numel(one) * sizeof(float)) == 0,
        "1 and %d threads differ", threads > 1 ? threads : 2);
  zoe_tensor_release(one);
  zoe_tensor_release(many);
  release(&in);
}

static void test_cancel(void) {
  if (!have_bf16) {
    SKIP("this CPU has no AVX512-BF16");
    return;
  }
  problem pr = {1, 200, 200, 2, 64, 64, NAN, 1, 0, 0, 0};
  inputs in = make(&pr);
  zoe_err e = {0};
  zoe_cancel_request();
  zoe_tensor *out = attend(&pr, &in, &e);
  zoe_cancel_clear();
  CHECK(out == NULL && e.code == ZOE_ECANCELED, "code %d (%s)", e.code, e.msg);
  zoe_tensor_release(out);
  release(&in);
}

/* The kernel runs where products run in bf16: a forced bf16 backend, or ZOE_PRECISION=bf16 above 4 MFLOP. */
static void test_when_chosen(void) {
  zoe_gemm_force(ZOE_GEMM_AUTO);
  const char *was = zoe_gemm_set_precision("auto");
  CHECK(!zoe_attention_bf16_wanted(4096, 4096, 128), "f32 attention stays f32 by default");
  zoe_gemm_set_precision("bf16");
  CHECK(zoe_attention_bf16_wanted(4096, 4096, 128) == have_bf16, "bf16 precision: long attention in bf16");
  CHECK(!zoe_attention_bf16_wanted(40, 40, 64), "bf16 precision: a 40-token prompt's attention stays f32");
  zoe_gemm_set_precision("f32");
  CHECK(!zoe_attention_bf16_wanted(4096, 4096, 128), "f32 precision: f32");
  zoe_gemm_set_precision(was);
  zoe_gemm_force(ZOE_GEMM_BF16);
  CHECK(zoe_attention_bf16_wanted(1, 1, 1) == have_bf16, "a forced bf16 backend: every size");
}

int main(void) {
  zoe_pool_init(0);
  have_bf16 = zoe_bf16_cpu();
  if (!have_bf16) printf("# no AVX512-BF16 on this CPU: only the choice of kernel is tested\n");
  zoe_gemm_force(ZOE_GEMM_BF16);
  RUN(test_against_definition);
  RUN(test_masked_keys_do_not_count);
  RUN(test_threads_same_bits);
  RUN(test_cancel);
  RUN(test_when_chosen);
  zoe_gemm_force(ZOE_GEMM_AUTO);
  zoe_pool_shutdown();
  return test_summary();
}
