/*
** softmax.c: softmax and log_softmax over one dim.
** Rows along the last dim are done in place of three passes (max, exp-sum,
** scale) with 16 independent lanes, which the compiler turns into SIMD.
** Other dims are moved last, done, and moved back.
*/
#include <math.h>

#include "../core/pool.h"
#include "ops.h"
#include "out.h"
#include "vmath.h"

#define LANES 16
#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

VECTORIZE static float row_max(const float *x, int64_t n) {
  float m[LANES];
  for (int k = 0; k < LANES; k++) m[k] = -INFINITY;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
  float r = -INFINITY;
  for (int k = 0; k < LANES; k++) r = m[k] > r ? m[k] : r;
  for (; i < n; i++) r = x[i] > r ? x[i] : r;
  return r;
}

/* o = exp(x - m); returns the sum */
VECTORIZE static double row_exp(float *o, const float *x, float m, int64_t n) {
  float s[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) {
      float v = zv_exp(x[i + k] - m);
      o[i + k] = v;
      s[k] += v;
    }
  double r = 0;
  for (int k = 0; k < LANES; k++) r += s[k];
  for (; i < n; i++) {
    o[i] = zv_exp(x[i] - m);
    r += o[i];
  }
  return r;
}

VECTORIZE static void row_scale(float *o, float s, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] *= s;
}

/* o = x - shift, computing sum(exp(x - m)) on the way */
VECTORIZE static double row_expsum(const float *x, float m, int64_t n) {
  float s[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) s[k] += zv_exp(x[i + k] - m);
  double r = 0;
  for (int k = 0; k < LANES; k++) r += s[k];
  for (; i < n; i++) r += zv_exp(x[i] - m);
  return r;
}

VECTORIZE static void row_sub(float *o, const float *x, float shift, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = x[i] - shift;
}

typedef struct sm_ctx {
  const float *x;
  float *o;
  int64_t n;
  bool log;
} sm_ctx;

static void sm_range(void *arg, int64_t begin, int64_t end) {
  sm_ctx *c = arg;
  for (int64_t r = begin; r < end; r++) {
    const float *x = c->x + r * c->n;
    float *o = c->o + r * c->n;
    float m = row_max(x, c->n);
    if (isinf(m) && m < 0) m = 0; /* an all -inf row: exp gives 0s, as torch */
    if (c->log) {
      row_sub(o, x, m + (float)log(row_expsum(x, m, c->n)), c->n);
    } else {
      double s = row_exp(o, x, m, c->n);
      row_scale(o, (float)(1.0 / s), c->n);
    }
  }
}

static zoe_tensor *softmax_last(const zoe_tensor *a, bool log, zoe_tensor *out, const char *name,
                                zoe_err *e) {
  zoe_tensor *x = a->dtype == ZOE_F32 ? zoe_contiguous(a, e) : zoe_to_dtype(a, ZOE_F32, e);
  if (!x) return NULL;
  /* write straight into 'out' when it is contiguous f32, else into a temporary */
  bool direct = out && out->dtype == ZOE_F32 && zoe_is_contiguous(out);
  zoe_tensor *o = direct ? zoe_out_prepare(out, ZOE_F32, a->ndim, a->shape, name, e)
                         : zoe_empty(ZOE_F32, a->ndim, a->shape, e);
  if (!o) goto fail;
  int64_t n = a->ndim ? a->shape[a->ndim - 1] : 1, rows = n ? zoe_numel(a) / n : 0;
  sm_ctx c = {zoe_data(x), zoe_data(o), n, log};
  int rc = zoe_parallel_for(rows, 1 + 16384 / (n + 1), sm_range, &c);
  if (rc) {
    zoe_errf(e, rc, "%s: canceled", name);
    goto fail;
  }
  zoe_tensor_release(x);
  if (out && !direct) {
    zoe_tensor *r = zoe_out_prepare(out, ZOE_F32, a->ndim, a->shape, name, e);
    if (r && zoe_copy_(r, o, e)) {
      zoe_tensor_release(r);
      r = NULL;
    }
    zoe_tensor_release(o);
    return r;
  }
  return o;
fail:
  zoe_tensor_release(x);
  zoe_tensor_release(o);
  return NULL;
}

static zoe_tensor *softmax_dim(const zoe_tensor *a, int dim, bool log, zoe_tensor *out, zoe_err *e) {
  const char *name = log ? "log_softmax" : "softmax";
  int d;
  if (a->ndim == 0) return softmax_last(a, log, out, name, e);
  if (zoe_norm_dim(dim, a->ndim, name, e, &d)) return NULL;
  if (d == a->ndim - 1) return softmax_last(a, log, out, name, e);
  zoe_tensor *t = zoe_transpose(a, d, a->ndim - 1, e);
  if (!t) return NULL;
  zoe_tensor *r = softmax_last(t, log, NULL, name, e);
  zoe_tensor_release(t);
  if (!r) return NULL;
  zoe_tensor *back = zoe_transpose(r, d, a->ndim - 1, e);
  zoe_tensor_release(r);
  if (!back) return NULL;
  zoe_tensor *o = zoe_out_prepare(out, ZOE_F32, a->ndim, a->shape, name, e);
  if (o && zoe_copy_(o, back, e)) {
    zoe_tensor_release(o);
    o = NULL;
  }
  zoe_tensor_release(back);
  return o;
}

zoe_tensor *zoe_softmax(const zoe_tensor *a, int dim, zoe_tensor *out, zoe_err *e) {
  return softmax_dim(a, dim, false, out, e);
}

zoe_tensor *zoe_log_softmax(const zoe_tensor *a, int dim, zoe_tensor *out, zoe_err *e) {
  return softmax_dim(a, dim, true, out, e);
}
