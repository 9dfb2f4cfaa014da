/*
** out.c: output preparation and walks shared by the ops.
*/
#include "out.h"

zoe_tensor *zoe_out_prepare(zoe_tensor *out, zoe_dtype dt, int ndim, const int64_t *shape,
                            const char *op, zoe_err *e) {
  if (!out) return zoe_empty(dt, ndim, shape, e);
  bool same = out->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = out->shape[i] == shape[i];
  if (!same) {
    char a[96], b[96];
    zoe_errf(e, ZOE_ESHAPE, "%s: out has shape %s, result is %s", op, zoe_shape_str(out, a, sizeof a),
             zoe_shape_str_n(ndim, shape, b, sizeof b));
    return NULL;
  }
  return zoe_tensor_retain(out);
}

int zoe_out_run(const zoe_iter *it, zoe_inner_fn fn, void *ctx, double cost, const char *op,
                zoe_err *e) {
  int rc = zoe_iter_run(it, fn, ctx, zoe_grain(cost));
  return rc ? zoe_errf(e, rc, "%s: canceled", op) : 0;
}
