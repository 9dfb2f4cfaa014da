/*
** norm.c: layer norm, RMS norm, group norm and Wan's channel RMS norm.
** Rows are reduced with 16 float lanes (vectorized), then summed in double.
*/
#include <math.h>

#include "../core/pool.h"
#include "../ops/ops.h"
#include "../ops/out.h"
#include "nn.h"

#define LANES 16
#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

VECTORIZE static double lane_sum(const float *x, int64_t n) {
  float s[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) s[k] += x[i + k];
  double r = 0;
  for (int k = 0; k < LANES; k++) r += s[k];
  for (; i < n; i++) r += x[i];
  return r;
}

/* sum of (x - m)^2 */
VECTORIZE static double lane_sqdev(const float *x, float m, int64_t n) {
  float s[LANES] = {0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) {
      float d = x[i + k] - m;
      s[k] += d * d;
    }
  double r = 0;
  for (int k = 0; k < LANES; k++) r += s[k];
  for (; i < n; i++) r += (double)(x[i] - m) * (x[i] - m);
  return r;
}

/* y = (x - m) * r * w + b, with w/b optional (NULL) */
VECTORIZE static void affine_row(float *y, const float *x, float m, float r, const float *w,
                                 const float *b, int64_t n) {
  if (w && b) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i];
  } else if (b) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r + b[i];
  } else {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r;
  }
}

/* A parameter vector of n elements as contiguous f32 (widened when half). */
static zoe_tensor *param(const zoe_tensor *p, int64_t n, const char *op, const char *what, zoe_err *e) {
  char s[96];
  if (!p) return NULL;
  if (zoe_numel(p) != n) {
    zoe_errf(e, ZOE_ESHAPE, "%s: %s has %lld elements (shape %s), expected %lld", op, what,
             (long long)zoe_numel(p), zoe_shape_str(p, s, sizeof s), (long long)n);
    return NULL;
  }
  return p->dtype == ZOE_F32 ? zoe_contiguous(p, e) : zoe_to_dtype(p, ZOE_F32, e);
}

static zoe_tensor *as_f32(const zoe_tensor *x, zoe_err *e) {
  return x->dtype == ZOE_F32 ? zoe_contiguous(x, e) : zoe_to_dtype(x, ZOE_F32, e);
}

typedef struct row_ctx {
  const float *x;
  float *y;
  const float *w, *b;
  int64_t n;
  double eps;
  bool rms;
} row_ctx;

static void norm_rows(void *arg, int64_t r0, int64_t r1) {
  row_ctx *c = arg;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = c->x + r * c->n;
    float m = 0, rs;
    if (c->rms) {
      rs = (float)(1.0 / sqrt(lane_sqdev(x, 0, c->n) / (double)c->n + c->eps));
    } else {
      m = (float)(lane_sum(x, c->n) / (double)c->n);
      rs = (float)(1.0 / sqrt(lane_sqdev(x, m, c->n) / (double)c->n + c->eps));
    }
    affine_row(c->y + r * c->n, x, m, rs, c->w, c->b, c->n);
  }
}

static zoe_tensor *row_norm(const zoe_tensor *x0, const zoe_tensor *w0, const zoe_tensor *b0,
                            double eps, bool rms, zoe_tensor *out, const char *op, zoe_err *e) {
  if (x0->ndim == 0) {
    zoe_errf(e, ZOE_ESHAPE, "%s: input needs at least 1 dim", op);
    return NULL;
  }
  int64_t n = x0->shape[x0->ndim - 1];
  zoe_tensor *x = NULL, *w = NULL, *b = NULL, *y = NULL, *res = NULL;
  if ((w0 && !(w = param(w0, n, op, "weight", e))) || (b0 && !(b = param(b0, n, op, "bias", e))) ||
      !(x = as_f32(x0, e)))
    goto done;
  bool direct = !out || (out->dtype == ZOE_F32 && zoe_is_contiguous(out));
  y = direct ? zoe_out_prepare(out, ZOE_F32, x0->ndim, x0->shape, op, e) : zoe_empty_like(x, e);
  if (!y) goto done;
  row_ctx c = {zoe_data(x), zoe_data(y), w ? zoe_data(w) : NULL, b ? zoe_data(b) : NULL, n, eps, rms};
  int64_t rows = n ? zoe_numel(x) / n : 0;
  if (zoe_parallel_for(rows, 1 + 32768 / (n + 1), norm_rows, &c)) {
    zoe_errf(e, ZOE_ECANCELED, "%s: canceled", op);
    goto done;
  }
  if (direct) {
    res = zoe_tensor_retain(y);
  } else if ((res = zoe_out_prepare(out, ZOE_F32, x0->ndim, x0->shape, op, e)) && zoe_copy_(res, y, e)) {
    zoe_tensor_release(res);
    res = NULL;
  }
done:
  zoe_tensor_release(x);
  zoe_tensor_release(w);
  zoe_tensor_release(b);
  zoe_tensor_release(y);
  return res;
}

zoe_tensor *zoe_layer_norm(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                           double eps, zoe_tensor *out, zoe_err *e) {
  return row_norm(x, w, b, eps, false, out, "layer_norm", e);
}

zoe_tensor *zoe_rms_norm(const zoe_tensor *x, const zoe_tensor *w, double eps, zoe_tensor *out,
                         zoe_err *e) {
  return row_norm(x, w, NULL, eps, true, out, "rms_norm", e);
}

/* The result 'y' handed over as is, or copied into 'out' when one is given (y is released). */
static zoe_tensor *into_out(zoe_tensor *y, zoe_tensor *out, const zoe_tensor *x0, const char *op, zoe_err *e) {
  if (!y || !out) return y;
  zoe_tensor *r = zoe_out_prepare(out, ZOE_F32, x0->ndim, x0->shape, op, e);
  if (r && zoe_copy_(r, y, e)) {
    zoe_tensor_release(r);
    r = NULL;
  }
  zoe_tensor_release(y);
  return r;
}

/* ---- group norm: x [N, C, *] ---- */

typedef struct group_ctx {
  const float *x;
  float *y;
  const float *w, *b;
  int64_t C, G, S; /* channels, groups, spatial size */
  double eps;
} group_ctx;

static void group_rows(void *arg, int64_t g0, int64_t g1) {
  group_ctx *c = arg;
  int64_t cpg = c->C / c->G, len = cpg * c->S;
  for (int64_t g = g0; g < g1; g++) { /* g counts (sample, group) */
    const float *x = c->x + g * len;
    float *y = c->y + g * len;
    float m = (float)(lane_sum(x, len) / (double)len);
    float r = (float)(1.0 / sqrt(lane_sqdev(x, m, len) / (double)len + c->eps));
    int64_t c0 = (g % c->G) * cpg;
    for (int64_t ch = 0; ch < cpg; ch++) {
      float wv = c->w ? c->w[c0 + ch] : 1.0f, bv = c->b ? c->b[c0 + ch] : 0.0f;
      affine_row(y + ch * c->S, x + ch * c->S, m, r * wv, NULL, NULL, c->S);
      if (bv != 0)
        for (int64_t i = 0; i < c->S; i++) y[ch * c->S + i] += bv;
    }
  }
}

zoe_tensor *zoe_group_norm(const zoe_tensor *x0, int groups, const zoe_tensor *w0,
                           const zoe_tensor *b0, double eps, zoe_tensor *out, zoe_err *e) {
  char s[96];
  if (x0->ndim < 2 || groups <= 0 || x0->shape[1] % groups) {
    zoe_errf(e, ZOE_ESHAPE, "group_norm: input %s must be [N, C, ...] with C divisible by %d groups",
             zoe_shape_str(x0, s, sizeof s), groups);
    return NULL;
  }
  int64_t C = x0->shape[1], S = 1;
  for (int i = 2; i < x0->ndim; i++) S *= x0->shape[i];
  zoe_tensor *x = NULL, *w = NULL, *b = NULL, *y = NULL;
  if ((w0 && !(w = param(w0, C, "group_norm", "weight", e))) ||
      (b0 && !(b = param(b0, C, "group_norm", "bias", e))) || !(x = as_f32(x0, e)))
    goto done;
  y = zoe_empty_like(x, e);
  if (!y) goto done;
  group_ctx c = {zoe_data(x), zoe_data(y), w ? zoe_data(w) : NULL, b ? zoe_data(b) : NULL, C, groups, S, eps};
  if (zoe_parallel_for(x0->shape[0] * groups, 1, group_rows, &c)) {
    zoe_errf(e, ZOE_ECANCELED, "group_norm: canceled");
    zoe_tensor_release(y);
    y = NULL;
  }
done:
  zoe_tensor_release(x);
  zoe_tensor_release(w);
  zoe_tensor_release(b);
  return into_out(y, out, x0, "group_norm", e);
}

/* ---- channel RMS norm: x viewed as [outer, C, inner], normalized over C ---- */

typedef struct chan_ctx {
  const float *x;
  float *y;
  const float *g, *b;
  int64_t C, inner;
  float root_c;
} chan_ctx;

#define CBLOCK 256

static void chan_range(void *arg, int64_t u0, int64_t u1) {
  chan_ctx *c = arg;
  int64_t nblocks = (c->inner + CBLOCK - 1) / CBLOCK;
  float acc[CBLOCK];
  for (int64_t u = u0; u < u1; u++) {
    int64_t o = u / nblocks, j0 = (u % nblocks) * CBLOCK;
    int64_t n = c->inner - j0 < CBLOCK ? c->inner - j0 : CBLOCK;
    const float *x = c->x + o * c->C * c->inner + j0;
    float *y = c->y + o * c->C * c->inner + j0;
    for (int64_t j = 0; j < n; j++) acc[j] = 0;
    for (int64_t ch = 0; ch < c->C; ch++)
      for (int64_t j = 0; j < n; j++) acc[j] += x[ch * c->inner + j] * x[ch * c->inner + j];
    for (int64_t j = 0; j < n; j++) { /* F.normalize: x / max(||x||, 1e-12) */
      float norm = sqrtf(acc[j]);
      acc[j] = c->root_c / (norm > 1e-12f ? norm : 1e-12f);
    }
    for (int64_t ch = 0; ch < c->C; ch++) {
      float gv = c->g[ch], bv = c->b ? c->b[ch] : 0.0f;
      for (int64_t j = 0; j < n; j++) y[ch * c->inner + j] = x[ch * c->inner + j] * acc[j] * gv + bv;
    }
  }
}

zoe_tensor *zoe_channel_rms_norm(const zoe_tensor *x0, int cdim, const zoe_tensor *gamma,
                                 const zoe_tensor *bias, zoe_tensor *out, zoe_err *e) {
  int d;
  if (zoe_norm_dim(cdim, x0->ndim, "channel_rms_norm", e, &d)) return NULL;
  int64_t C = x0->shape[d], outer = 1, inner = 1;
  for (int i = 0; i < d; i++) outer *= x0->shape[i];
  for (int i = d + 1; i < x0->ndim; i++) inner *= x0->shape[i];
  zoe_tensor *x = NULL, *g = NULL, *b = NULL, *y = NULL;
  if (!(g = param(gamma, C, "channel_rms_norm", "gamma", e)) ||
      (bias && !(b = param(bias, C, "channel_rms_norm", "bias", e))) || !(x = as_f32(x0, e)))
    goto done;
  y = zoe_empty_like(x, e);
  if (!y) goto done;
  chan_ctx c = {zoe_data(x), zoe_data(y), zoe_data(g), b ? zoe_data(b) : NULL, C, inner, sqrtf((float)C)};
  int64_t units = outer * ((inner + CBLOCK - 1) / CBLOCK);
  if (zoe_parallel_for(units, 1 + 16384 / (C * (inner < CBLOCK ? inner : CBLOCK) + 1), chan_range, &c)) {
    zoe_errf(e, ZOE_ECANCELED, "channel_rms_norm: canceled");
    zoe_tensor_release(y);
    y = NULL;
  }
done:
  zoe_tensor_release(x);
  zoe_tensor_release(g);
  zoe_tensor_release(b);
  return into_out(y, out, x0, "channel_rms_norm", e);
}
