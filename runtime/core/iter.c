/*
** iter.c: the strided walk over several operands of one broadcast shape.
*/
#include "iter.h"

#include "pool.h"

int zoe_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                        int64_t *out, const char *op, zoe_err *e) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t x = ia >= 0 ? a[ia] : 1, y = ib >= 0 ? b[ib] : 1;
    if (x != y && x != 1 && y != 1) {
      char sa[96], sb[96];
      return zoe_errf(e, ZOE_ESHAPE, "%s: shapes %s and %s do not broadcast (%lld vs %lld in dim %d)",
                      op, zoe_shape_str_n(na, a, sa, sizeof sa), zoe_shape_str_n(nb, b, sb, sizeof sb),
                      (long long)x, (long long)y, i + 1);
    }
    out[i] = x == 1 ? y : x;
  }
  *nout = n;
  return 0;
}

int zoe_iter_init(zoe_iter *it, int nops, const zoe_tensor *const *ops, int ndim,
                  const int64_t *shape, const char *op, zoe_err *e) {
  int64_t st[ZOE_ITER_MAX][ZOE_MAX_DIMS];
  it->nops = nops;
  it->numel = 1;
  for (int i = 0; i < ndim; i++) it->numel *= shape[i];
  for (int k = 0; k < nops; k++) {
    const zoe_tensor *t = ops[k];
    if (zoe_dtype_is_quant(t->dtype)) /* blocks have no per-element address */
      return zoe_errf(e, ZOE_EDTYPE, "%s: operand %d is %s, quantized: dequantize it first (t:to(\"f32\"))", op, k + 1,
                      zoe_dtype_name(t->dtype));
    int lead = ndim - t->ndim;
    int64_t es = (int64_t)zoe_dtype_size(t->dtype);
    if (lead < 0) goto bad;
    for (int i = 0; i < ndim; i++) {
      if (i < lead) {
        st[k][i] = 0;
        continue;
      }
      int64_t have = t->shape[i - lead];
      if (have == shape[i]) st[k][i] = have == 1 ? 0 : t->stride[i - lead] * es;
      else if (have == 1) st[k][i] = 0;
      else goto bad;
    }
    it->base[k] = zoe_data(t);
    continue;
  bad:;
    char a[96], b[96];
    return zoe_errf(e, ZOE_ESHAPE, "%s: operand %d of shape %s does not broadcast to %s", op, k + 1,
                    zoe_shape_str_n(t->ndim, t->shape, a, sizeof a), zoe_shape_str_n(ndim, shape, b, sizeof b));
  }
  /* drop size-1 dims, then merge dims that chain in every operand */
  int n = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 1) continue;
    bool merge = n > 0;
    for (int k = 0; k < nops && merge; k++)
      merge = it->stride[k][n - 1] == st[k][i] * shape[i];
    if (merge) {
      it->shape[n - 1] *= shape[i];
      for (int k = 0; k < nops; k++) it->stride[k][n - 1] = st[k][i];
    } else {
      it->shape[n] = shape[i];
      for (int k = 0; k < nops; k++) it->stride[k][n] = st[k][i];
      n++;
    }
  }
  if (n == 0) { /* a scalar or all-ones shape: one element */
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->stride[k][0] = 0;
    n = 1;
  }
  it->ndim = n;
  return 0;
}

typedef struct run_ctx {
  const zoe_iter *it;
  zoe_inner_fn fn;
  void *ctx;
} run_ctx;

/* Elements [begin, end) in row-major order of the merged shape, one row at a time. */
static void run_range(void *arg, int64_t begin, int64_t end) {
  run_ctx *rc = arg;
  const zoe_iter *it = rc->it;
  int last = it->ndim - 1;
  int64_t idx[ZOE_MAX_DIMS], rem = begin;
  for (int i = last; i >= 0; i--) {
    idx[i] = rem % it->shape[i];
    rem /= it->shape[i];
  }
  char *p[ZOE_ITER_MAX];
  int64_t s[ZOE_ITER_MAX];
  for (int k = 0; k < it->nops; k++) s[k] = it->stride[k][last];
  for (int64_t pos = begin; pos < end;) {
    for (int k = 0; k < it->nops; k++) {
      p[k] = it->base[k];
      for (int i = 0; i <= last; i++) p[k] += idx[i] * it->stride[k][i];
    }
    int64_t n = it->shape[last] - idx[last];
    if (n > end - pos) n = end - pos;
    rc->fn(rc->ctx, n, p, s);
    pos += n;
    idx[last] = 0;
    for (int i = last - 1; i >= 0; i--) {
      if (++idx[i] < it->shape[i]) break;
      idx[i] = 0;
    }
  }
}

int zoe_iter_run(const zoe_iter *it, zoe_inner_fn fn, void *ctx, int64_t grain) {
  if (it->numel == 0) return 0;
  run_ctx rc = {it, fn, ctx};
  return zoe_parallel_for(it->numel, grain, run_range, &rc);
}

int64_t zoe_grain(double cost) {
  /* about 32K element-copies of work per range keeps the hand-out cost negligible */
  int64_t g = (int64_t)(32768.0 / (cost > 0 ? cost : 1));
  return g < 256 ? 256 : g;
}
