/*
** random.c: tensors filled from a generator.
*/
#include "ops.h"

static zoe_tensor *fill(zoe_dtype dt, int ndim, const int64_t *shape, zoe_rng *g, bool normal,
                        zoe_err *e) {
  zoe_tensor *t = zoe_empty(dt, ndim, shape, e);
  if (!t) return NULL;
  int rc = normal ? zoe_rand_normal_(t, g, 0, 1, e) : zoe_rand_uniform_(t, g, 0, 1, e);
  if (rc) {
    zoe_tensor_release(t);
    return NULL;
  }
  return t;
}

zoe_tensor *zoe_rand(zoe_dtype dt, int ndim, const int64_t *shape, zoe_rng *g, zoe_err *e) {
  return fill(dt, ndim, shape, g, false, e);
}

zoe_tensor *zoe_randn(zoe_dtype dt, int ndim, const int64_t *shape, zoe_rng *g, zoe_err *e) {
  return fill(dt, ndim, shape, g, true, e);
}
