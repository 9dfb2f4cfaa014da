/*
** test_core.c: the tensor core without Lua: views and their strides, refcounts,
** the allocator's accounting, Philox known answers, the pool and conversions.
*/
#include "../../runtime/core/alloc.h"
#include "../../runtime/core/pool.h"
#include "../../runtime/core/rng.h"
#include "../../runtime/core/tensor.h"
#include "../../runtime/ops/ops.h"
#include "test.h"

static zoe_tensor *iota(int ndim, const int64_t *shape) {
  zoe_tensor *t = zoe_empty(ZOE_F32, ndim, shape, NULL);
  float *p = zoe_data(t);
  for (int64_t i = 0; i < zoe_numel(t); i++) p[i] = (float)i;
  return t;
}

static float at(const zoe_tensor *t, const int64_t *idx) {
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
  return ((float *)zoe_data(t))[off];
}

static void test_views_share_storage(void) {
  zoe_err e = {0};
  int64_t shape[3] = {2, 3, 4};
  zoe_tensor *t = iota(3, shape);
  int perm[3] = {2, 0, 1};
  zoe_tensor *p = zoe_permute(t, perm, &e);
  CHECK(p && p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 3, "permute shape");
  CHECK(p->storage == t->storage, "permute shares storage");
  CHECK(at(p, (int64_t[]){3, 1, 2}) == 1 * 12 + 2 * 4 + 3, "permute value %g", at(p, (int64_t[]){3, 1, 2}));
  zoe_tensor *n = zoe_narrow(t, 2, 1, 2, &e);
  CHECK(n->shape[2] == 2 && at(n, (int64_t[]){1, 2, 0}) == 12 + 8 + 1, "narrow");
  zoe_tensor *s = zoe_select(t, 1, 2, &e);
  CHECK(s->ndim == 2 && at(s, (int64_t[]){1, 3}) == 12 + 8 + 3, "select");
  zoe_tensor *u = zoe_unsqueeze(s, 1, &e);
  CHECK(u->ndim == 3 && u->shape[1] == 1, "unsqueeze");
  zoe_tensor *q = zoe_squeeze(u, 1, &e);
  CHECK(q->ndim == 2 && zoe_same_shape(q, s), "squeeze");
  zoe_tensor *first = zoe_narrow(t, 0, 0, 1, &e);
  zoe_tensor *x = zoe_expand(first, 3, (int64_t[]){5, 3, 4}, &e);
  zoe_tensor_release(first);
  CHECK(x && x->stride[0] == 0 && at(x, (int64_t[]){4, 2, 3}) == 11, "expand");
  zoe_tensor *tt = zoe_transpose(t, 0, 2, &e);
  CHECK(!zoe_is_contiguous(tt), "transposed is not contiguous");
  zoe_tensor *c = zoe_contiguous(tt, &e);
  CHECK(zoe_is_contiguous(c) && c->storage != t->storage, "contiguous copies");
  CHECK(at(c, (int64_t[]){3, 2, 1}) == at(tt, (int64_t[]){3, 2, 1}), "contiguous values");
  zoe_tensor *same = zoe_contiguous(t, &e);
  CHECK(same == t, "contiguous returns itself when already so");
  zoe_tensor_release(same);
  zoe_tensor *views[] = {p, n, s, u, q, tt, c, x};
  for (size_t i = 0; i < sizeof views / sizeof *views; i++) zoe_tensor_release(views[i]);
  CHECK(atomic_load(&t->storage->refcount) >= 1, "storage alive");
  zoe_tensor_release(t);
}

static void test_view_and_reshape(void) {
  zoe_err e = {0};
  zoe_tensor *t = iota(2, (int64_t[]){4, 6});
  zoe_tensor *v = zoe_view(t, 3, (int64_t[]){2, -1, 3}, &e);
  CHECK(v && v->shape[1] == 4 && v->storage == t->storage, "view with -1");
  zoe_tensor *tt = zoe_transpose(t, 0, 1, &e);
  zoe_tensor *bad = zoe_view(tt, 1, (int64_t[]){24}, &e);
  CHECK(!bad && e.code == ZOE_ESHAPE && strstr(e.msg, "reshape"), "view of a transpose fails: %s", e.msg);
  zoe_tensor *r = zoe_reshape(tt, 1, (int64_t[]){24}, &e);
  CHECK(r && r->storage != t->storage && ((float *)zoe_data(r))[1] == 6, "reshape copies");
  /* a view that splits a dim of a non-contiguous tensor works without a copy */
  zoe_tensor *sp = zoe_view(tt, 3, (int64_t[]){2, 3, 4}, &e);
  CHECK(sp && sp->storage == t->storage && at(sp, (int64_t[]){1, 2, 3}) == at(tt, (int64_t[]){5, 3}), "split view");
  zoe_tensor *wrong = zoe_view(t, 2, (int64_t[]){5, 5}, &e);
  CHECK(!wrong && strstr(e.msg, "25"), "wrong numel: %s", e.msg);
  zoe_tensor_release(v);
  zoe_tensor_release(tt);
  zoe_tensor_release(r);
  zoe_tensor_release(sp);
  zoe_tensor_release(t);
}

static void test_errors_name_the_op(void) {
  zoe_err e = {0};
  zoe_tensor *a = iota(2, (int64_t[]){2, 3}), *b = iota(2, (int64_t[]){4, 5});
  CHECK(!zoe_matmul(a, b, NULL, &e), "matmul mismatch fails");
  CHECK(strcmp(e.msg, "matmul: shapes 2x3 and 4x5 do not match (3 ~= 4)") == 0, "%s", e.msg);
  CHECK(!zoe_binary(ZOE_ADD, a, b, NULL, &e) && strstr(e.msg, "add: shapes 2x3 and 4x5 do not broadcast"), "%s", e.msg);
  CHECK(!zoe_narrow(a, 1, 2, 5, &e) && e.code == ZOE_ERANGE, "narrow out of range: %s", e.msg);
  CHECK(!zoe_select(a, 3, 0, &e) && strstr(e.msg, "dim 3 out of range"), "%s", e.msg);
  CHECK(!zoe_empty(ZOE_F32, 2, (int64_t[]){-1, 2}, &e) && strstr(e.msg, "negative"), "%s", e.msg);
  CHECK(!zoe_empty(ZOE_F32, 3, (int64_t[]){1LL << 40, 1LL << 40, 1LL << 40}, &e) && strstr(e.msg, "too large"), "%s", e.msg);
  zoe_tensor_release(a);
  zoe_tensor_release(b);
}

static void test_allocator_counts_and_reuses(void) {
  zoe_mem_stats before, mid, after;
  zoe_mem_get(&before);
  zoe_tensor *t = zoe_empty(ZOE_F32, 1, (int64_t[]){1 << 20}, NULL);
  zoe_mem_get(&mid);
  CHECK(mid.live - before.live >= (4 << 20), "live grew by the tensor: %lld", (long long)(mid.live - before.live));
  zoe_tensor_release(t);
  zoe_mem_get(&after);
  CHECK(after.live == before.live, "live back: %lld vs %lld", (long long)after.live, (long long)before.live);
  CHECK(after.cached >= (4 << 20), "kept in the cache");
  t = zoe_empty(ZOE_F32, 1, (int64_t[]){1 << 20}, NULL);
  zoe_mem_stats again;
  zoe_mem_get(&again);
  CHECK(again.reuses == after.reuses + 1 && again.allocs == after.allocs, "served from the cache");
  zoe_tensor_release(t);
  zoe_mem_trim();
  zoe_mem_get(&after);
  CHECK(after.cached == 0, "trim empties the cache");
  /* alignment */
  void *p = zoe_alloc(100, NULL);
  CHECK(((uintptr_t)p & 63) == 0, "64-byte aligned");
  zoe_free(p, 100);
}

static void test_philox_known_answers(void) {
  /* Random123's kat_vectors for philox4x32_10 */
  uint32_t out[4];
  zoe_philox4x32((uint32_t[]){0, 0, 0, 0}, (uint32_t[]){0, 0}, out);
  CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu && out[3] == 0x9b00dbd8u,
        "zero: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
  zoe_philox4x32((uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                 (uint32_t[]){0xffffffffu, 0xffffffffu}, out);
  CHECK(out[0] == 0x408f276du && out[1] == 0x41c83b0eu && out[2] == 0xa20bc7c6u && out[3] == 0x6d5451fdu,
        "ones: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
  zoe_philox4x32((uint32_t[]){0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                 (uint32_t[]){0xa4093822u, 0x299f31d0u}, out);
  CHECK(out[0] == 0xd16cfe09u && out[1] == 0x94fdccebu && out[2] == 0x5001e420u && out[3] == 0x24126ea1u,
        "pi: %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
}

/* The same seed gives the same numbers on 1 and on 2 threads, and normals look normal. */
static void test_randn_thread_independent(void) {
  int64_t n = 1 << 18;
  zoe_rng g;
  zoe_pool_set_threads(1);
  zoe_rng_init(&g, 42);
  zoe_tensor *a = zoe_randn(ZOE_F32, 1, &n, &g, NULL);
  zoe_pool_set_threads(2);
  zoe_rng_init(&g, 42);
  zoe_tensor *b = zoe_randn(ZOE_F32, 1, &n, &g, NULL);
  CHECK(memcmp(zoe_data(a), zoe_data(b), (size_t)n * 4) == 0, "identical bytes");
  double s = 0, s2 = 0;
  float *p = zoe_data(a);
  for (int64_t i = 0; i < n; i++) {
    s += p[i];
    s2 += (double)p[i] * p[i];
  }
  double mean = s / (double)n, var = s2 / (double)n - mean * mean;
  CHECK(fabs(mean) < 0.01 && fabs(var - 1) < 0.01, "mean %g var %g", mean, var);
  zoe_tensor *c = zoe_randn(ZOE_F32, 1, &n, &g, NULL);
  CHECK(memcmp(zoe_data(b), zoe_data(c), 64) != 0, "the generator advances");
  zoe_rng_init(&g, 7);
  zoe_tensor *u = zoe_rand(ZOE_F32, 1, &n, &g, NULL);
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = ((float *)zoe_data(u))[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  CHECK(lo >= 0 && hi < 1 && lo < 0.001 && hi > 0.999, "uniform range [%g, %g]", lo, hi);
  zoe_tensor_release(a);
  zoe_tensor_release(b);
  zoe_tensor_release(c);
  zoe_tensor_release(u);
}

typedef struct { int64_t *hits; } hit_ctx;
static void mark(void *arg, int64_t b, int64_t e) {
  hit_ctx *c = arg;
  for (int64_t i = b; i < e; i++) c->hits[i]++;
}

static void test_pool_covers_every_index_once(void) {
  enum { N = 100003 };
  static int64_t hits[N];
  hit_ctx c = {hits};
  for (int threads = 1; threads <= 3; threads++) {
    zoe_pool_set_threads(threads);
    memset(hits, 0, sizeof hits);
    CHECK(zoe_parallel_for(N, 7, mark, &c) == 0, "runs");
    int bad = 0;
    for (int i = 0; i < N; i++) bad += hits[i] != 1;
    CHECK(bad == 0, "%d indices not visited exactly once with %d threads", bad, threads);
  }
  zoe_cancel_request();
  memset(hits, 0, sizeof hits);
  CHECK(zoe_parallel_for(N, 7, mark, &c) == ZOE_ECANCELED, "a cancel is reported");
  zoe_cancel_clear();
  zoe_pool_set_threads(2);
}

/* Elementwise results do not depend on the thread count either. */
static void test_ops_thread_independent(void) {
  int64_t n = 1 << 20;
  zoe_rng g;
  zoe_rng_init(&g, 3);
  zoe_tensor *x = zoe_randn(ZOE_F32, 1, &n, &g, NULL);
  zoe_pool_set_threads(1);
  zoe_tensor *a = zoe_unary(ZOE_SILU, x, NULL, NULL);
  zoe_tensor *sa = zoe_reduce(ZOE_SUM, x, ZOE_ALL_DIMS, false, 0, NULL);
  zoe_pool_set_threads(2);
  zoe_tensor *b = zoe_unary(ZOE_SILU, x, NULL, NULL);
  zoe_tensor *sb = zoe_reduce(ZOE_SUM, x, ZOE_ALL_DIMS, false, 0, NULL);
  CHECK(memcmp(zoe_data(a), zoe_data(b), (size_t)n * 4) == 0, "silu identical");
  CHECK(memcmp(zoe_data(sa), zoe_data(sb), 4) == 0, "sum identical");
  zoe_tensor *ts[] = {x, a, b, sa, sb};
  for (int i = 0; i < 5; i++) zoe_tensor_release(ts[i]);
}

static void test_f16_conversion_edges(void) {
  /* every f16 value survives f16 -> f32 -> f16 */
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaNs */
    bad += zoe_f32_to_f16(zoe_f16_to_f32((uint16_t)h)) != h;
  }
  CHECK(bad == 0, "%d f16 values do not round-trip", bad);
  bad = 0;
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) continue;
    bad += zoe_f32_to_bf16(zoe_bf16_to_f32((uint16_t)h)) != h;
  }
  CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
  /* the vectorized bulk path agrees with the scalar one on halfway cases */
  enum { N = 4096 };
  static float src[N];
  static uint16_t vec[N];
  for (int i = 0; i < N; i++) src[i] = zoe_bits_f32(0x3f800000u + (uint32_t)i * 0x1000u + 0x1000u / 2);
  zoe_convert(ZOE_F16, vec, ZOE_F32, src, N);
  bad = 0;
  for (int i = 0; i < N; i++) bad += vec[i] != zoe_f32_to_f16(src[i]);
  CHECK(bad == 0, "%d bulk f16 conversions differ from scalar", bad);
  zoe_convert(ZOE_BF16, vec, ZOE_F32, src, N);
  bad = 0;
  for (int i = 0; i < N; i++) bad += vec[i] != zoe_f32_to_bf16(src[i]);
  CHECK(bad == 0, "%d bulk bf16 conversions differ from scalar", bad);
}

int main(void) {
  zoe_pool_init(2);
  RUN(test_views_share_storage);
  RUN(test_view_and_reshape);
  RUN(test_errors_name_the_op);
  RUN(test_allocator_counts_and_reuses);
  RUN(test_philox_known_answers);
  RUN(test_randn_thread_independent);
  RUN(test_pool_covers_every_index_once);
  RUN(test_ops_thread_independent);
  RUN(test_f16_conversion_edges);
  zoe_pool_shutdown();
  return test_summary();
}
