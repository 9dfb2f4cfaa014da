/*
** test_conv.c: the convolutions against a direct loop (the definition of a
** convolution, in double), over strides, asymmetric padding, causal time
** padding, prev frames, non-contiguous inputs and half-precision weights;
** chunked causal conv3d against the whole sequence; bad input.
** The comparisons with PyTorch are in tests/lua/test_conv.lua.
*/
#include <stdlib.h>

#include "../../runtime/core/pool.h"
#include "../../runtime/core/rng.h"
#include "../../runtime/nn/conv_internal.h"
#include "../../runtime/nn/nn.h"
#include "../../runtime/ops/ops.h"
#include "test.h"

static zoe_tensor *randn(int nd, const int64_t *shape, uint64_t seed) {
  zoe_rng g;
  zoe_rng_init(&g, seed);
  return zoe_randn(ZOE_F32, nd, shape, &g, NULL);
}

static double at(const zoe_tensor *t, const int64_t *idx) {
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
  return zoe_load_elem(t->dtype, zoe_data(t), off);
}

/*
** Direct causal conv3d: x [N,Ci,T,H,W] with 'tpad' frames in front (zeros, or the
** last of prev's P frames), spatial padding top/bottom/left/right.
*/
static zoe_tensor *naive_conv3d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, const int st[3],
                                const int pad[4], int tpad, const zoe_tensor *prev) {
  int64_t N = x->shape[0], Ci = x->shape[1], T = x->shape[2], H = x->shape[3], W = x->shape[4];
  int64_t Co = w->shape[0], kt = w->shape[2], kh = w->shape[3], kw = w->shape[4];
  int64_t P = prev ? prev->shape[2] : 0;
  int64_t To = (T + tpad - kt) / st[0] + 1, Ho = (H + pad[0] + pad[1] - kh) / st[1] + 1,
          Wo = (W + pad[2] + pad[3] - kw) / st[2] + 1;
  zoe_tensor *y = zoe_empty(ZOE_F32, 5, (int64_t[]){N, Co, To, Ho, Wo}, NULL);
  float *yp = zoe_data(y);
  for (int64_t n = 0; n < N; n++)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t to = 0; to < To; to++)
        for (int64_t oy = 0; oy < Ho; oy++)
          for (int64_t ox = 0; ox < Wo; ox++) {
            double s = b ? at(b, (int64_t[]){co}) : 0;
            for (int64_t ci = 0; ci < Ci; ci++)
              for (int64_t dt = 0; dt < kt; dt++) {
                int64_t tt = to * st[0] + dt - tpad; /* <0: padding or prev */
                const zoe_tensor *src = x;
                if (tt < 0) {
                  if (tt < -P) continue;
                  src = prev;
                  tt += P;
                }
                for (int64_t dy = 0; dy < kh; dy++)
                  for (int64_t dx = 0; dx < kw; dx++) {
                    int64_t yy = oy * st[1] + dy - pad[0], xx = ox * st[2] + dx - pad[2];
                    if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                    s += at(src, (int64_t[]){n, ci, tt, yy, xx}) * at(w, (int64_t[]){co, ci, dt, dy, dx});
                  }
              }
            yp[(((n * Co + co) * To + to) * Ho + oy) * Wo + ox] = (float)s;
          }
  return y;
}

/* ||a - b|| / ||b|| */
static double relerr(const zoe_tensor *a, const zoe_tensor *b) {
  if (!a || !b || !zoe_same_shape(a, b)) return 1e30;
  zoe_tensor *ac = zoe_to_dtype(a, ZOE_F32, NULL), *bc = zoe_to_dtype(b, ZOE_F32, NULL);
  const float *p = zoe_data(ac), *q = zoe_data(bc);
  double num = 0, den = 0;
  for (int64_t i = 0, n = zoe_numel(ac); i < n; i++) {
    num += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
    den += (double)q[i] * q[i];
  }
  zoe_tensor_release(ac);
  zoe_tensor_release(bc);
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

typedef struct case3 {
  int64_t N, Ci, T, H, W, Co, kt, kh, kw;
  int st[3], pad[2], tpad;
} case3;

static void test_conv3d_vs_direct_loop(void) {
  static const case3 cases[] = {
    {1, 4, 5, 8, 8, 6, 3, 3, 3, {1, 1, 1}, {1, 1}, 2},   /* Wan's CausalConv3d(k=3, pad=1) */
    {2, 3, 4, 7, 9, 5, 3, 3, 3, {1, 1, 1}, {1, 1}, 2},   /* odd sizes, two samples */
    {1, 5, 6, 6, 5, 4, 3, 1, 1, {2, 1, 1}, {0, 0}, 0},   /* downsample time_conv: stride (2,1,1) */
    {1, 4, 3, 5, 6, 8, 3, 1, 1, {1, 1, 1}, {0, 0}, 2},   /* upsample time_conv (3,1,1), pad (1,0,0) */
    {1, 6, 3, 4, 4, 7, 1, 1, 1, {1, 1, 1}, {0, 0}, 0},   /* 1x1x1 shortcut: no im2col */
    {1, 3, 4, 9, 11, 4, 2, 3, 3, {1, 2, 2}, {1, 1}, 1},  /* spatial stride 2 */
    {1, 2, 2, 40, 37, 3, 3, 3, 3, {1, 1, 1}, {1, 1}, 2}, /* 3 outputs: direct rows */
    {1, 3, 2, 40, 37, 9, 3, 3, 3, {1, 1, 1}, {1, 1}, 2}, /* several tiles per frame */
    {1, 20, 2, 48, 48, 6, 3, 3, 3, {1, 1, 1}, {1, 1}, 2}, /* K in two chunks of input channels */
    {1, 3, 3, 6, 7, 2, 2, 3, 2, {2, 1, 1}, {2, 0}, 1},   /* direct rows, time stride, padding > 1 */
    /* Winograd F(4x4, 3x3): 16+ outputs, 3x3 spatial, stride 1 */
    {1, 8, 3, 9, 11, 16, 3, 3, 3, {1, 1, 1}, {1, 1}, 2},    /* partial tiles on both edges */
    {2, 6, 2, 12, 8, 20, 3, 3, 3, {1, 1, 1}, {0, 2}, 2},    /* no row padding, 2 columns */
    {1, 16, 4, 7, 41, 17, 1, 3, 3, {1, 1, 1}, {1, 1}, 0},   /* kt 1, wide rows */
    {1, 6, 5, 70, 64, 16, 3, 3, 3, {2, 1, 1}, {1, 1}, 2},   /* several units, time stride */
    {1, 16, 2, 8, 8, 128, 3, 3, 3, {1, 1, 1}, {1, 1}, 2},   /* a small frame: outputs in 2 blocks */
    {1, 8, 1, 6, 9, 200, 3, 3, 3, {1, 1, 1}, {1, 1}, 2},    /* 3 blocks, the last shorter */
  };
  /* every case twice: as it runs by default (Winograd where it fits), and with im2col only */
  for (size_t i = 0; i < 2 * (sizeof cases / sizeof cases[0]); i++) {
    const case3 *c = &cases[i % (sizeof cases / sizeof cases[0])];
    zoe__conv_winograd_enabled = i < sizeof cases / sizeof cases[0];
    zoe_err e = {0};
    zoe_tensor *x = randn(5, (int64_t[]){c->N, c->Ci, c->T, c->H, c->W}, 10 + i);
    zoe_tensor *w = randn(5, (int64_t[]){c->Co, c->Ci, c->kt, c->kh, c->kw}, 20 + i);
    zoe_tensor *b = randn(1, (int64_t[]){c->Co}, 30 + i);
    int pad4[4] = {c->pad[0], c->pad[0], c->pad[1], c->pad[1]};
    zoe_tensor *ref = naive_conv3d(x, w, b, c->st, pad4, c->tpad, NULL);
    zoe_tensor *y = zoe_conv3d(x, w, b, c->st, c->pad, c->tpad, NULL, NULL, &e);
    CHECK(y, "case %zu: %s", i, e.msg);
    double err = relerr(y, ref);
    CHECK(err < 2e-5, "case %zu: relative error %g", i, err); /* Winograd: ~5e-6 */
    zoe_tensor *y2 = zoe_conv3d(x, w, NULL, c->st, c->pad, c->tpad, NULL, NULL, &e); /* no bias */
    zoe_tensor *ref2 = naive_conv3d(x, w, NULL, c->st, pad4, c->tpad, NULL);
    CHECK(relerr(y2, ref2) < 2e-5, "case %zu without bias: %g", i, relerr(y2, ref2));
    zoe_tensor *ts[] = {x, w, b, ref, y, y2, ref2};
    for (int k = 0; k < 7; k++) zoe_tensor_release(ts[k]);
  }
  zoe__conv_winograd_enabled = true;
}

static void test_conv3d_prev_frames(void) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, 3, 4, 6, 7}, 1), *w = randn(5, (int64_t[]){5, 3, 3, 3, 3}, 2);
  for (int P = 1; P <= 2; P++) {
    zoe_tensor *prev = randn(5, (int64_t[]){1, 3, P, 6, 7}, 3 + P);
    zoe_tensor *ref = naive_conv3d(x, w, NULL, (int[]){1, 1, 1}, (int[]){1, 1, 1, 1}, 2, prev);
    zoe_tensor *y = zoe_conv3d(x, w, NULL, NULL, (int[]){1, 1}, 2, prev, NULL, &e);
    CHECK(y && relerr(y, ref) < 1e-5, "P=%d: %s %g", P, e.msg, relerr(y, ref));
    zoe_tensor_release(prev);
    zoe_tensor_release(ref);
    zoe_tensor_release(y);
  }
  zoe_tensor_release(x);
  zoe_tensor_release(w);
}

/*
** A video fed 1, then 4, then 4 frames, each with the last 2 input frames as prev,
** through each path: im2col + GEMM (6 outputs), direct rows (3), Winograd (16).
*/
static void chunked_equals_whole(int64_t cin, int64_t cout) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, cin, 9, 10, 12}, 5), *w = randn(5, (int64_t[]){cout, cin, 3, 3, 3}, 6);
  zoe_tensor *b = randn(1, (int64_t[]){cout}, 7);
  zoe_tensor *whole = zoe_conv3d(x, w, b, NULL, (int[]){1, 1}, 2, NULL, NULL, &e);
  zoe_tensor *ref = naive_conv3d(x, w, b, (int[]){1, 1, 1}, (int[]){1, 1, 1, 1}, 2, NULL);
  CHECK(relerr(whole, ref) < 2e-5, "cout %lld: whole vs loop %g", (long long)cout, relerr(whole, ref));
  zoe_tensor_release(ref);
  zoe_tensor *parts = zoe_zeros(ZOE_F32, 5, (int64_t[]){1, cout, 9, 10, 12}, NULL);
  int64_t starts[] = {0, 1, 5}, lens[] = {1, 4, 4};
  for (int i = 0; i < 3; i++) {
    zoe_tensor *chunk = zoe_narrow(x, 2, starts[i], lens[i], NULL);
    int64_t p0 = starts[i] >= 2 ? starts[i] - 2 : 0;
    zoe_tensor *prev = starts[i] ? zoe_narrow(x, 2, p0, starts[i] - p0, NULL) : NULL;
    /* the result goes straight into a narrowed view of the whole output */
    zoe_tensor *dst = zoe_narrow(parts, 2, starts[i], lens[i], NULL);
    zoe_tensor *r = zoe_conv3d(chunk, w, b, NULL, (int[]){1, 1}, 2, prev, dst, &e);
    CHECK(r, "chunk %d: %s", i, e.msg);
    zoe_tensor_release(r);
    zoe_tensor_release(dst);
    zoe_tensor_release(chunk);
    zoe_tensor_release(prev);
  }
  CHECK(relerr(parts, whole) == 0, "cout %lld: chunked vs whole: %g", (long long)cout, relerr(parts, whole));
  zoe_tensor *ts[] = {x, w, b, whole, parts};
  for (int k = 0; k < 5; k++) zoe_tensor_release(ts[k]);
}

static void test_conv3d_chunked_equals_whole(void) {
  chunked_equals_whole(4, 6);
  chunked_equals_whole(4, 3);
  chunked_equals_whole(8, 16);
}

/* Winograd against im2col + GEMM where a direct loop would be slow: K in chunks, many units */
static void test_winograd_matches_im2col(void) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, 100, 2, 48, 50}, 13), *w = randn(5, (int64_t[]){24, 100, 3, 3, 3}, 14);
  zoe_tensor *b = randn(1, (int64_t[]){24}, 15);
  zoe_tensor *fast = zoe_conv3d(x, w, b, NULL, (int[]){1, 1}, 2, NULL, NULL, &e);
  zoe__conv_winograd_enabled = false;
  zoe_tensor *plain = zoe_conv3d(x, w, b, NULL, (int[]){1, 1}, 2, NULL, NULL, &e);
  zoe__conv_winograd_enabled = true;
  CHECK(fast && plain && relerr(fast, plain) < 2e-5, "relative error %g", relerr(fast, plain));
  CHECK(fast && plain && relerr(fast, plain) > 0, "the two paths are the same code");
  /* conv2d: Wan's upsample conv, 3x3 pad 1 */
  zoe_tensor *x2 = randn(4, (int64_t[]){3, 40, 21, 18}, 16), *w2 = randn(4, (int64_t[]){20, 40, 3, 3}, 17);
  zoe_tensor *f2 = zoe_conv2d(x2, w2, NULL, NULL, (int[]){1, 1, 1, 1}, NULL, &e);
  zoe__conv_winograd_enabled = false;
  zoe_tensor *p2 = zoe_conv2d(x2, w2, NULL, NULL, (int[]){1, 1, 1, 1}, NULL, &e);
  zoe__conv_winograd_enabled = true;
  CHECK(f2 && p2 && relerr(f2, p2) < 2e-5 && relerr(f2, p2) > 0, "conv2d: relative error %g", relerr(f2, p2));
  zoe_tensor *ts[] = {x, w, b, fast, plain, x2, w2, f2, p2};
  for (int k = 0; k < 9; k++) zoe_tensor_release(ts[k]);
}

static void test_conv2d_asymmetric_padding_and_stride(void) {
  zoe_err e = {0};
  /* Wan's downsample: ZeroPad2d((0,1,0,1)) then a 3x3 conv with stride 2 */
  zoe_tensor *x = randn(4, (int64_t[]){2, 5, 9, 12}, 8), *w = randn(4, (int64_t[]){4, 5, 3, 3}, 9);
  zoe_tensor *b = randn(1, (int64_t[]){4}, 10);
  zoe_tensor *y = zoe_conv2d(x, w, b, (int[]){2, 2}, (int[]){0, 1, 0, 1}, NULL, &e);
  zoe_tensor *x5 = zoe_unsqueeze(x, 2, NULL), *w5 = zoe_unsqueeze(w, 2, NULL);
  zoe_tensor *ref5 = naive_conv3d(x5, w5, b, (int[]){1, 2, 2}, (int[]){0, 1, 0, 1}, 0, NULL);
  zoe_tensor *ref = zoe_squeeze(ref5, 2, NULL);
  CHECK(y && y->ndim == 4 && y->shape[2] == 4 && y->shape[3] == 6, "%s", e.msg);
  CHECK(relerr(y, ref) < 1e-5, "relative error %g", relerr(y, ref));
  zoe_tensor *ts[] = {x, w, b, y, x5, w5, ref5, ref};
  for (int k = 0; k < 8; k++) zoe_tensor_release(ts[k]);
}

/* transposed input, bf16 and f16 weights */
static void test_strided_input_and_half_weights(void) {
  zoe_err e = {0};
  zoe_tensor *xt = randn(5, (int64_t[]){1, 6, 3, 5, 4}, 11); /* [N, T, C, H, W] */
  zoe_tensor *x = zoe_transpose(xt, 1, 2, NULL);              /* [N, C, T, H, W], strided */
  zoe_tensor *w = randn(5, (int64_t[]){4, 3, 3, 3, 3}, 12);
  zoe_tensor *ref = naive_conv3d(x, w, NULL, (int[]){1, 1, 1}, (int[]){1, 1, 1, 1}, 2, NULL);
  zoe_tensor *y = zoe_conv3d(x, w, NULL, NULL, (int[]){1, 1}, 2, NULL, NULL, &e);
  CHECK(y && relerr(y, ref) < 1e-5, "strided: %g %s", relerr(y, ref), e.msg);
  zoe_dtype halves[] = {ZOE_BF16, ZOE_F16};
  for (int i = 0; i < 2; i++) {
    zoe_tensor *wh = zoe_to_dtype(w, halves[i], NULL);
    zoe_tensor *refh = naive_conv3d(x, wh, NULL, (int[]){1, 1, 1}, (int[]){1, 1, 1, 1}, 2, NULL);
    zoe_tensor *yh = zoe_conv3d(x, wh, NULL, NULL, (int[]){1, 1}, 2, NULL, NULL, &e);
    /* the weight is rounded, the math is f32: same as the loop over the rounded weight */
    CHECK(yh && relerr(yh, refh) < 1e-5, "%s: %g", zoe_dtype_name(halves[i]), relerr(yh, refh));
    zoe_tensor_release(wh);
    zoe_tensor_release(refh);
    zoe_tensor_release(yh);
  }
  zoe_tensor *ts[] = {xt, x, w, ref, y};
  for (int k = 0; k < 5; k++) zoe_tensor_release(ts[k]);
}

static void expect_error(zoe_tensor *r, const zoe_err *e, const char *want) {
  CHECK(!r, "expected an error containing '%s'", want);
  CHECK(strstr(e->msg, want), "message '%s' lacks '%s'", e->msg, want);
  zoe_tensor_release(r);
}

static void test_bad_input(void) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, 32, 5, 8, 8}, 1), *w = randn(5, (int64_t[]){96, 96, 3, 3, 3}, 2);
  expect_error(zoe_conv3d(x, w, NULL, NULL, (int[]){1, 1}, 2, NULL, NULL, &e), &e,
               "conv3d: input has 32 channels, weight expects 96 (input 1x32x5x8x8, weight 96x96x3x3x3)");
  zoe_tensor *x4 = randn(4, (int64_t[]){1, 96, 8, 8}, 3);
  expect_error(zoe_conv3d(x4, w, NULL, NULL, NULL, 0, NULL, NULL, &e), &e,
               "conv3d: input must be 5-D [N, Cin, T, H, W], got 4-D 1x96x8x8");
  zoe_tensor *tiny = randn(5, (int64_t[]){1, 96, 1, 2, 2}, 4);
  expect_error(zoe_conv3d(tiny, w, NULL, NULL, NULL, 0, NULL, NULL, &e), &e,
               "conv3d: kernel 3x3x3 is larger than the padded input 1x2x2");
  zoe_tensor *b = randn(1, (int64_t[]){5}, 5);
  zoe_tensor *w2 = randn(5, (int64_t[]){96, 32, 3, 3, 3}, 6);
  expect_error(zoe_conv3d(x, w2, b, NULL, (int[]){1, 1}, 2, NULL, NULL, &e), &e,
               "bias 5 has 5 elements, expected 96");
  zoe_tensor *prev3 = randn(5, (int64_t[]){1, 32, 3, 8, 8}, 7);
  expect_error(zoe_conv3d(x, w2, NULL, NULL, (int[]){1, 1}, 2, prev3, NULL, &e), &e,
               "prev has 3 frames, more than the 2 frames of causal padding");
  zoe_tensor *prevbad = randn(5, (int64_t[]){1, 32, 2, 8, 7}, 8);
  expect_error(zoe_conv3d(x, w2, NULL, NULL, (int[]){1, 1}, 2, prevbad, NULL, &e), &e,
               "prev 1x32x2x8x7 does not match the input 1x32x5x8x8");
  expect_error(zoe_conv3d(x, w2, NULL, (int[]){0, 1, 1}, (int[]){1, 1}, 2, NULL, NULL, &e), &e,
               "strides must be positive");
  zoe_tensor *w2d = randn(4, (int64_t[]){4, 3, 5, 5}, 9), *x2d = randn(4, (int64_t[]){1, 3, 3, 3}, 10);
  expect_error(zoe_conv2d(x2d, w2d, NULL, NULL, (int[]){0, 0, 1, 0}, NULL, &e), &e,
               "conv2d: kernel 5x5 is larger than the padded input 3x4 (input 1x3x3x3, padding 0,0,1,0)");
  zoe_tensor *out = zoe_empty(ZOE_F32, 5, (int64_t[]){1, 96, 5, 8, 9}, NULL);
  expect_error(zoe_conv3d(x, w2, NULL, NULL, (int[]){1, 1}, 2, NULL, out, &e), &e,
               "conv3d: out has shape 1x96x5x8x9, result is 1x96x5x8x8");
  zoe_tensor *ts[] = {x, w, x4, tiny, b, w2, prev3, prevbad, w2d, x2d, out};
  for (int k = 0; k < 11; k++) zoe_tensor_release(ts[k]);
}

static void test_cancel(void) {
  zoe_err e = {0};
  zoe_tensor *x = randn(5, (int64_t[]){1, 8, 2, 16, 16}, 1), *w = randn(5, (int64_t[]){8, 8, 3, 3, 3}, 2);
  zoe_cancel_request();
  zoe_tensor *y = zoe_conv3d(x, w, NULL, NULL, (int[]){1, 1}, 2, NULL, NULL, &e);
  zoe_cancel_clear();
  CHECK(!y && e.code == ZOE_ECANCELED, "code %d: %s", e.code, e.msg);
  zoe_tensor_release(y);
  zoe_tensor_release(x);
  zoe_tensor_release(w);
}

int main(void) {
  zoe_pool_init(0);
  RUN(test_conv3d_vs_direct_loop);
  RUN(test_conv3d_prev_frames);
  RUN(test_conv3d_chunked_equals_whole);
  RUN(test_winograd_matches_im2col);
  RUN(test_conv2d_asymmetric_padding_and_stride);
  RUN(test_strided_input_and_half_weights);
  RUN(test_bad_input);
  RUN(test_cancel);
  zoe_pool_shutdown();
  return test_summary();
}
