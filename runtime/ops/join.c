/*
** join.c: cat, stack and index_select.
*/
#include "../core/iter.h"
#include "ops.h"

zoe_tensor *zoe_cat(const zoe_tensor *const *ts, int n, int dim, zoe_err *e) {
  char sa[96], sb[96];
  if (n <= 0) {
    zoe_errf(e, ZOE_EINVAL, "cat: no tensors given");
    return NULL;
  }
  const zoe_tensor *first = ts[0];
  int d;
  if (zoe_norm_dim(dim, first->ndim, "cat", e, &d)) return NULL;
  int64_t shape[ZOE_MAX_DIMS];
  for (int i = 0; i < first->ndim; i++) shape[i] = first->shape[i];
  shape[d] = 0;
  zoe_dtype dt = first->dtype;
  for (int k = 0; k < n; k++) {
    const zoe_tensor *t = ts[k];
    bool ok = t->ndim == first->ndim;
    for (int i = 0; ok && i < t->ndim; i++) ok = i == d || t->shape[i] == first->shape[i];
    if (!ok) {
      zoe_errf(e, ZOE_ESHAPE, "cat: tensor %d has shape %s, tensor 1 has %s (only dim %d may differ)",
               k + 1, zoe_shape_str(t, sa, sizeof sa), zoe_shape_str(first, sb, sizeof sb), dim);
      return NULL;
    }
    if (t->dtype != dt) dt = ZOE_F32; /* mixed dtypes meet in f32 */
    shape[d] += t->shape[d];
  }
  zoe_tensor *o = zoe_empty(dt, first->ndim, shape, e);
  if (!o) return NULL;
  int64_t at = 0;
  for (int k = 0; k < n; k++) {
    zoe_tensor *slot = zoe_narrow(o, d, at, ts[k]->shape[d], e);
    int rc = slot ? zoe_copy_(slot, ts[k], e) : -1;
    zoe_tensor_release(slot);
    if (rc) {
      zoe_tensor_release(o);
      return NULL;
    }
    at += ts[k]->shape[d];
  }
  return o;
}

zoe_tensor *zoe_stack(const zoe_tensor *const *ts, int n, int dim, zoe_err *e) {
  char sa[96], sb[96];
  if (n <= 0) {
    zoe_errf(e, ZOE_EINVAL, "stack: no tensors given");
    return NULL;
  }
  for (int k = 1; k < n; k++)
    if (!zoe_same_shape(ts[k], ts[0])) {
      zoe_errf(e, ZOE_ESHAPE, "stack: tensor %d has shape %s, tensor 1 has %s", k + 1,
               zoe_shape_str(ts[k], sa, sizeof sa), zoe_shape_str(ts[0], sb, sizeof sb));
      return NULL;
    }
  const zoe_tensor *views[n];
  int made = 0;
  zoe_tensor *o = NULL;
  for (; made < n; made++) {
    views[made] = zoe_unsqueeze(ts[made], dim, e);
    if (!views[made]) goto done;
  }
  o = zoe_cat(views, n, dim, e);
done:
  for (int k = 0; k < made; k++) zoe_tensor_release((zoe_tensor *)views[k]);
  return o;
}

zoe_tensor *zoe_index_select(const zoe_tensor *a, int dim, const zoe_tensor *index, zoe_err *e) {
  char sa[96];
  int d;
  if (zoe_norm_dim(dim, a->ndim, "index_select", e, &d)) return NULL;
  if (index->ndim != 1 || zoe_dtype_is_float(index->dtype)) {
    zoe_errf(e, ZOE_EINVAL, "index_select: index must be a 1-D integer tensor, got %s %s",
             zoe_dtype_name(index->dtype), zoe_shape_str(index, sa, sizeof sa));
    return NULL;
  }
  int64_t n = index->shape[0], shape[ZOE_MAX_DIMS];
  for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
  shape[d] = n;
  zoe_tensor *o = zoe_empty(a->dtype, a->ndim, shape, e);
  if (!o) return NULL;
  const char *ib = (const char *)index->storage->data + index->offset * (int64_t)zoe_dtype_size(index->dtype);
  for (int64_t k = 0; k < n; k++) {
    int64_t i = (int64_t)zoe_load_elem(index->dtype, ib, k * index->stride[0]);
    if (i < 0 || i >= a->shape[d]) {
      zoe_errf(e, ZOE_ERANGE, "index_select: index %lld at position %lld is out of range for dim of size %lld",
               (long long)i, (long long)k, (long long)a->shape[d]);
      zoe_tensor_release(o);
      return NULL;
    }
    zoe_tensor *src = zoe_select(a, d, i, e), *dst = zoe_select(o, d, k, e);
    int rc = src && dst ? zoe_copy_(dst, src, e) : -1;
    zoe_tensor_release(src);
    zoe_tensor_release(dst);
    if (rc) {
      zoe_tensor_release(o);
      return NULL;
    }
  }
  return o;
}
