/*
** reduce.c: reductions over one dim (or all), with keepdim.
** The input is viewed as [outer, R, inner] (made contiguous f32 first when it
** is not), and each output element reduces R values spaced 'inner' apart.
** Sums accumulate in double.
*/
#include <math.h>

#include "../core/pool.h"
#include "ops.h"

static const char *redop_names[ZOE_NREDOPS] = {"sum", "mean", "var", "max", "min", "argmax", "argmin", "norm"};
const char *zoe_redop_name(zoe_redop op) { return op < ZOE_NREDOPS ? redop_names[op] : "?"; }

#define BLOCK 512 /* inner elements per work unit */

typedef struct red_ctx {
  zoe_redop op;
  const float *x;
  int64_t outer, R, inner, nblocks;
  double p;
  float *out;
  int32_t *idx;
} red_ctx;

static inline double pow_abs(double v, double p) {
  v = fabs(v);
  return p == 2 ? v * v : (p == 1 ? v : pow(v, p));
}

/* Reduce R values for 'n' adjacent output positions starting at x (row stride 'inner'). */
static void reduce_block(const red_ctx *c, const float *x, int64_t n, float *out, int32_t *idx) {
  double acc[BLOCK], acc2[BLOCK];
  int32_t best[BLOCK];
  int64_t R = c->R, inner = c->inner;
  bool extreme = c->op == ZOE_MAX || c->op == ZOE_MIN || c->op == ZOE_ARGMAX || c->op == ZOE_ARGMIN;
  bool want_max = c->op == ZOE_MAX || c->op == ZOE_ARGMAX;
  bool infnorm = c->op == ZOE_NORM && isinf(c->p);
  for (int64_t j = 0; j < n; j++) {
    acc[j] = extreme ? x[j] : 0;
    acc2[j] = 0;
    best[j] = 0;
  }
  if (extreme) {
    for (int64_t r = 1; r < R; r++) {
      const float *row = x + r * inner;
      for (int64_t j = 0; j < n; j++) {
        double v = row[j];
        if (acc[j] != acc[j]) continue; /* NaN wins, first one kept */
        if (v != v || (want_max ? v > acc[j] : v < acc[j])) {
          acc[j] = v;
          best[j] = (int32_t)r;
        }
      }
    }
  } else if (c->op == ZOE_NORM) {
    for (int64_t r = 0; r < R; r++) {
      const float *row = x + r * inner;
      for (int64_t j = 0; j < n; j++) {
        double v = row[j];
        if (infnorm) acc[j] = fmax(acc[j], fabs(v));
        else acc[j] += pow_abs(v, c->p);
      }
    }
  } else {
    for (int64_t r = 0; r < R; r++) {
      const float *row = x + r * inner;
      for (int64_t j = 0; j < n; j++) acc[j] += row[j];
    }
    if (c->op == ZOE_VAR) { /* second pass around the mean */
      for (int64_t r = 0; r < R; r++) {
        const float *row = x + r * inner;
        for (int64_t j = 0; j < n; j++) {
          double d = row[j] - acc[j] / (double)R;
          acc2[j] += d * d;
        }
      }
    }
  }
  for (int64_t j = 0; j < n; j++) {
    double v = acc[j];
    switch (c->op) {
      case ZOE_MEAN: v = R ? v / (double)R : NAN; break;
      case ZOE_VAR: v = R - c->p > 0 ? acc2[j] / ((double)R - c->p) : NAN; break;
      case ZOE_NORM: v = infnorm || c->p == 1 ? v : (c->p == 2 ? sqrt(v) : pow(v, 1.0 / c->p)); break;
      default: break;
    }
    if (idx) idx[j] = best[j];
    else out[j] = (float)v;
  }
}

static void reduce_range(void *arg, int64_t begin, int64_t end) {
  red_ctx *c = arg;
  for (int64_t u = begin; u < end; u++) {
    int64_t o = u / c->nblocks, j0 = (u % c->nblocks) * BLOCK;
    int64_t n = c->inner - j0 < BLOCK ? c->inner - j0 : BLOCK;
    const float *x = c->x + o * c->R * c->inner + j0;
    int64_t at = o * c->inner + j0;
    reduce_block(c, x, n, c->out ? c->out + at : NULL, c->idx ? c->idx + at : NULL);
  }
}

zoe_tensor *zoe_reduce(zoe_redop op, const zoe_tensor *a, int dim, bool keepdim, double p,
                       zoe_err *e) {
  const char *name = zoe_redop_name(op);
  if (op >= ZOE_NREDOPS) {
    zoe_errf(e, ZOE_EINVAL, "reduce: unknown op %d", (int)op);
    return NULL;
  }
  bool all = dim == ZOE_ALL_DIMS;
  int d = 0;
  if (!all && zoe_norm_dim(dim, a->ndim, name, e, &d)) return NULL;
  int64_t R = all ? zoe_numel(a) : a->shape[d];
  if (R == 0 && (op == ZOE_MAX || op == ZOE_MIN || op == ZOE_ARGMAX || op == ZOE_ARGMIN)) {
    zoe_errf(e, ZOE_ESHAPE, "%s: cannot reduce an empty dim", name);
    return NULL;
  }
  /* contiguous f32 input */
  zoe_tensor *x = a->dtype == ZOE_F32 ? zoe_contiguous(a, e) : zoe_to_dtype(a, ZOE_F32, e);
  if (!x) return NULL;
  int64_t outer = 1, inner = 1, shape[ZOE_MAX_DIMS];
  int nd = 0;
  if (all) {
    if (keepdim)
      for (int i = 0; i < a->ndim; i++) shape[nd++] = 1;
  } else {
    for (int i = 0; i < a->ndim; i++) {
      if (i < d) outer *= a->shape[i];
      if (i > d) inner *= a->shape[i];
      if (i != d) shape[nd++] = a->shape[i];
      else if (keepdim) shape[nd++] = 1;
    }
  }
  bool is_arg = op == ZOE_ARGMAX || op == ZOE_ARGMIN;
  zoe_tensor *o = zoe_empty(is_arg ? ZOE_I32 : ZOE_F32, nd, shape, e);
  if (!o) {
    zoe_tensor_release(x);
    return NULL;
  }
  red_ctx c = {.op = op, .x = zoe_data(x), .outer = outer, .R = R, .inner = inner, .p = p};
  c.nblocks = (inner + BLOCK - 1) / BLOCK;
  if (is_arg) c.idx = zoe_data(o);
  else c.out = zoe_data(o);
  int64_t units = outer * c.nblocks;
  int64_t grain = (int64_t)(65536 / (double)(R * (inner < BLOCK ? inner : BLOCK) + 1)) + 1;
  int rc = zoe_parallel_for(units, grain, reduce_range, &c);
  zoe_tensor_release(x);
  if (rc) {
    zoe_tensor_release(o);
    zoe_errf(e, rc, "%s: canceled", name);
    return NULL;
  }
  return o;
}
