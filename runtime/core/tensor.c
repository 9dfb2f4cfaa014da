/*
** tensor.c: storage lifetime, tensor creation, queries and views.
*/
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "iter.h"
#include "quant.h"

/* ---- storage ---- */

static void release_heap(zoe_storage *s) { zoe_free(s->data, s->nbytes); }

zoe_storage *zoe_storage_new(size_t nbytes, zoe_err *e) {
  zoe_storage *s = malloc(sizeof *s);
  if (!s) {
    zoe_errf(e, ZOE_ENOMEM, "out of memory");
    return NULL;
  }
  s->data = zoe_alloc(nbytes ? nbytes : 1, e);
  if (!s->data) {
    free(s);
    return NULL;
  }
  atomic_init(&s->refcount, 1);
  s->nbytes = nbytes ? nbytes : 1;
  s->release = release_heap;
  s->owner = NULL;
  return s;
}

zoe_storage *zoe_storage_wrap(void *data, size_t nbytes, void (*release)(zoe_storage *),
                              void *owner, zoe_err *e) {
  zoe_storage *s = malloc(sizeof *s);
  if (!s) {
    zoe_errf(e, ZOE_ENOMEM, "out of memory");
    return NULL;
  }
  atomic_init(&s->refcount, 1);
  s->data = data;
  s->nbytes = nbytes;
  s->release = release;
  s->owner = owner;
  return s;
}

zoe_storage *zoe_storage_retain(zoe_storage *s) {
  if (s) atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed);
  return s;
}

void zoe_storage_release(zoe_storage *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) != 1) return;
  if (s->release) s->release(s);
  free(s);
}

/* ---- tensor lifetime ---- */

zoe_tensor *zoe_tensor_retain(const zoe_tensor *t) {
  zoe_tensor *m = (zoe_tensor *)t;
  if (m) atomic_fetch_add_explicit(&m->refcount, 1, memory_order_relaxed);
  return m;
}

void zoe_lowrank_release(zoe_lowrank *l) {
  if (!l || atomic_fetch_sub_explicit(&l->refcount, 1, memory_order_acq_rel) != 1) return;
  for (int i = 0; i < l->n; i++) {
    zoe_tensor_release(l->a[i]);
    zoe_tensor_release(l->b[i]);
  }
  free(l->a);
  free(l->b);
  free(l->scale);
  free(l);
}

void zoe_tensor_release(zoe_tensor *t) {
  if (!t || atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) != 1) return;
  zoe_lowrank_release(t->lowrank);
  zoe_storage_release(t->storage);
  free(t);
}

/* ---- helpers ---- */

char *zoe_shape_str(const zoe_tensor *t, char *buf, size_t n) {
  return zoe_shape_str_n(t->ndim, t->shape, buf, n);
}

zoe_dtype zoe_tensor_dtype(const zoe_tensor *t) { return t->dtype; }
int zoe_tensor_ndim(const zoe_tensor *t) { return t->ndim; }
void *zoe_tensor_data(const zoe_tensor *t) { return zoe_data(t); }

int64_t zoe_tensor_size(const zoe_tensor *t, int dim) {
  int d;
  return zoe_norm_dim(dim, t->ndim, "size", NULL, &d) ? 0 : t->shape[d];
}

int64_t zoe_tensor_stride(const zoe_tensor *t, int dim) {
  int d;
  return zoe_norm_dim(dim, t->ndim, "stride", NULL, &d) ? 0 : t->stride[d];
}

int64_t zoe_numel(const zoe_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

bool zoe_is_contiguous(const zoe_tensor *t) {
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != expect) return false;
    expect *= t->shape[i];
  }
  return true;
}

bool zoe_same_shape(const zoe_tensor *a, const zoe_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

static int check_shape(int ndim, const int64_t *shape, const char *op, zoe_err *e, int64_t *numel) {
  if (ndim < 0 || ndim > ZOE_MAX_DIMS)
    return zoe_errf(e, ZOE_EINVAL, "%s: %d dims (at most %d)", op, ndim, ZOE_MAX_DIMS);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return zoe_errf(e, ZOE_EINVAL, "%s: negative size %lld", op, (long long)shape[i]);
    if (shape[i] && n > INT64_MAX / 16 / shape[i])
      return zoe_errf(e, ZOE_EINVAL, "%s: shape too large", op);
    n *= shape[i];
  }
  *numel = n;
  return 0;
}

static zoe_tensor *alloc_header(zoe_storage *s, zoe_dtype dt, int ndim, const int64_t *shape,
                                zoe_err *e) {
  zoe_tensor *t = malloc(sizeof *t);
  if (!t) {
    zoe_errf(e, ZOE_ENOMEM, "out of memory");
    return NULL;
  }
  atomic_init(&t->refcount, 1);
  t->dtype = dt;
  t->ndim = ndim;
  t->offset = 0;
  t->storage = s;
  t->lowrank = NULL;
  int64_t st = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    t->shape[i] = shape[i];
    t->stride[i] = st;
    st *= shape[i] ? shape[i] : 1;
  }
  return t;
}

/* A new header sharing t's storage (retained), with t's layout. */
static zoe_tensor *view_header(const zoe_tensor *t, zoe_err *e) {
  zoe_tensor *v = malloc(sizeof *v);
  if (!v) {
    zoe_errf(e, ZOE_ENOMEM, "out of memory");
    return NULL;
  }
  *v = (zoe_tensor){.dtype = t->dtype, .ndim = t->ndim, .offset = t->offset,
                    .storage = zoe_storage_retain(t->storage)};
  atomic_init(&v->refcount, 1);
  for (int i = 0; i < t->ndim; i++) {
    v->shape[i] = t->shape[i];
    v->stride[i] = t->stride[i];
  }
  return v;
}

/* ---- creation ---- */

zoe_tensor *zoe_empty(zoe_dtype dt, int ndim, const int64_t *shape, zoe_err *e) {
  int64_t n;
  if (dt >= ZOE_NDTYPES) {
    zoe_errf(e, ZOE_EDTYPE, "empty: unknown dtype %d", (int)dt);
    return NULL;
  }
  if (check_shape(ndim, shape, "empty", e, &n)) return NULL;
  if (n % zoe_dtype_block(dt)) {
    char a[96];
    zoe_errf(e, ZOE_ESHAPE, "empty: %s (%lld values) is not a whole number of %s blocks of %lld",
             zoe_shape_str_n(ndim, shape, a, sizeof a), (long long)n, zoe_dtype_name(dt), (long long)zoe_dtype_block(dt));
    return NULL;
  }
  zoe_storage *s = zoe_storage_new(zoe_dtype_bytes(dt, n), e);
  if (!s) return NULL;
  zoe_tensor *t = alloc_header(s, dt, ndim, shape, e);
  if (!t) zoe_storage_release(s);
  return t;
}

zoe_tensor *zoe_empty_like(const zoe_tensor *t, zoe_err *e) {
  return zoe_empty(t->dtype, t->ndim, t->shape, e);
}

zoe_tensor *zoe_zeros(zoe_dtype dt, int ndim, const int64_t *shape, zoe_err *e) {
  zoe_tensor *t = zoe_empty(dt, ndim, shape, e);
  if (t) memset(zoe_data(t), 0, zoe_dtype_bytes(dt, zoe_numel(t))); /* all-zero blocks are zeros too */
  return t;
}

zoe_tensor *zoe_full(zoe_dtype dt, int ndim, const int64_t *shape, double v, zoe_err *e) {
  if (zoe_dtype_is_quant(dt)) {
    zoe_errf(e, ZOE_EDTYPE, "full: cannot fill %s (quantized) tensors", zoe_dtype_name(dt));
    return NULL;
  }
  zoe_tensor *t = zoe_empty(dt, ndim, shape, e);
  if (!t) return NULL;
  int64_t n = zoe_numel(t);
  void *d = zoe_data(t);
  if (dt == ZOE_F32) {
    float f = (float)v;
    for (int64_t i = 0; i < n; i++) ((float *)d)[i] = f;
  } else if (n > 0) {
    zoe_store_elem(dt, d, 0, v);
    size_t es = zoe_dtype_size(dt);
    for (int64_t i = 1; i < n; i++) memcpy((char *)d + i * es, d, es);
  }
  return t;
}

zoe_tensor *zoe_arange(zoe_dtype dt, double start, double end, double step, zoe_err *e) {
  if (zoe_dtype_is_quant(dt)) {
    zoe_errf(e, ZOE_EDTYPE, "arange: cannot make a %s (quantized) range", zoe_dtype_name(dt));
    return NULL;
  }
  if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
    zoe_errf(e, ZOE_EINVAL, "arange: step must be non-zero and bounds finite");
    return NULL;
  }
  double count = ceil((end - start) / step);
  if (count > 1e12) {
    zoe_errf(e, ZOE_EINVAL, "arange: %g elements is too many", count);
    return NULL;
  }
  int64_t n = count > 0 ? (int64_t)count : 0;
  zoe_tensor *t = zoe_empty(dt, 1, &n, e);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) zoe_store_elem(dt, zoe_data(t), i, start + (double)i * step);
  return t;
}

zoe_tensor *zoe_linspace(zoe_dtype dt, double start, double end, int64_t n, zoe_err *e) {
  if (n < 0 || zoe_dtype_is_quant(dt)) {
    zoe_errf(e, ZOE_EINVAL, "linspace: negative count %lld or a quantized dtype", (long long)n);
    return NULL;
  }
  zoe_tensor *t = zoe_empty(dt, 1, &n, e);
  if (!t) return NULL;
  /* as PyTorch: the first half counts up from start, the second half down from end */
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  int64_t half = n / 2;
  if (n == 1) zoe_store_elem(dt, zoe_data(t), 0, start);
  for (int64_t i = 0; i < n && n > 1; i++) {
    double v = i < half ? start + step * (double)i : end - step * (double)(n - 1 - i);
    zoe_store_elem(dt, zoe_data(t), i, v);
  }
  return t;
}

zoe_tensor *zoe_tensor_from_data(zoe_dtype dt, int ndim, const int64_t *shape, const void *data, zoe_err *e) {
  zoe_tensor *t = zoe_empty(dt, ndim, shape, e);
  if (t && zoe_numel(t) > 0) memcpy(zoe_data(t), data, zoe_dtype_bytes(dt, zoe_numel(t)));
  return t;
}

zoe_tensor *zoe_tensor_view_of(zoe_storage *s, zoe_dtype dt, int ndim, const int64_t *shape,
                               const int64_t *stride, int64_t offset, zoe_err *e) {
  int64_t n;
  if (dt >= ZOE_NDTYPES) {
    zoe_errf(e, ZOE_EDTYPE, "view: unknown dtype %d", (int)dt);
    return NULL;
  }
  if (check_shape(ndim, shape, "view", e, &n)) return NULL;
  int64_t lo = offset, hi = offset; /* element range touched */
  for (int i = 0; i < ndim && n > 0; i++) {
    if (stride[i] >= 0) hi += stride[i] * (shape[i] - 1);
    else lo += stride[i] * (shape[i] - 1);
  }
  int64_t bl = zoe_dtype_block(dt); /* quantized: whole blocks up to the last element */
  uint64_t need = (uint64_t)((hi + bl) / bl) * zoe_dtype_size(dt);
  if (offset < 0 || lo < 0 || (n > 0 && need > s->nbytes)) {
    zoe_errf(e, ZOE_ERANGE, "view: layout reaches past its storage of %zu bytes", s->nbytes);
    return NULL;
  }
  zoe_tensor *t = alloc_header(s, dt, ndim, shape, e);
  if (!t) return NULL;
  zoe_storage_retain(s);
  t->offset = offset;
  for (int i = 0; i < ndim; i++) t->stride[i] = stride[i];
  return t;
}

/* ---- views ---- */

/* Resolve one -1 in a requested shape against numel. */
static int infer_shape(const zoe_tensor *t, int ndim, const int64_t *in, int64_t *out,
                       const char *op, zoe_err *e) {
  char a[96], b[96];
  if (ndim < 0 || ndim > ZOE_MAX_DIMS)
    return zoe_errf(e, ZOE_EINVAL, "%s: %d dims (at most %d)", op, ndim, ZOE_MAX_DIMS);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < ndim; i++) {
    out[i] = in[i];
    if (in[i] == -1) {
      if (infer >= 0) return zoe_errf(e, ZOE_EINVAL, "%s: only one size may be -1", op);
      infer = i;
    } else if (in[i] < 0) {
      return zoe_errf(e, ZOE_EINVAL, "%s: invalid size %lld", op, (long long)in[i]);
    } else {
      known *= in[i];
    }
  }
  int64_t n = zoe_numel(t);
  if (infer >= 0) {
    if (known == 0 || n % known)
      return zoe_errf(e, ZOE_ESHAPE, "%s: cannot infer -1 in %s from tensor %s", op,
                      zoe_shape_str_n(ndim, in, a, sizeof a), zoe_shape_str(t, b, sizeof b));
    out[infer] = n / known;
    known *= out[infer];
  }
  if (known != n)
    return zoe_errf(e, ZOE_ESHAPE, "%s: cannot make %s (%lld elements) from tensor %s (%lld)", op,
                    zoe_shape_str_n(ndim, out, a, sizeof a), (long long)known,
                    zoe_shape_str(t, b, sizeof b), (long long)n);
  return 0;
}

/* Strides for viewing t as 'shape' without a copy; false when impossible (as torch's computeStride). */
static bool view_strides(const zoe_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  if (zoe_numel(t) == 0 || zoe_is_contiguous(t)) {
    int64_t st = 1;
    for (int i = ndim - 1; i >= 0; i--) {
      stride[i] = st;
      st *= shape[i] ? shape[i] : 1;
    }
    return true;
  }
  /* Walk the old dims from the right in runs whose strides chain; each run
  ** must be covered exactly by a run of new dims (torch's computeStride). */
  int vd = ndim - 1;
  int64_t base = t->stride[t->ndim - 1], tensor_numel = 1, view_numel = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tensor_numel *= t->shape[td];
    bool run_ends = td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * base);
    if (!run_ends) continue;
    while (vd >= 0 && (view_numel < tensor_numel || shape[vd] == 1)) {
      stride[vd] = view_numel * base;
      view_numel *= shape[vd];
      vd--;
    }
    if (view_numel != tensor_numel) return false;
    if (td > 0) {
      base = t->stride[td - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  return vd == -1;
}

zoe_tensor *zoe_view(const zoe_tensor *t, int ndim, const int64_t *shape, zoe_err *e) {
  int64_t sh[ZOE_MAX_DIMS], st[ZOE_MAX_DIMS];
  char a[96], b[96];
  if (infer_shape(t, ndim, shape, sh, "view", e)) return NULL;
  if (!view_strides(t, ndim, sh, st)) {
    zoe_errf(e, ZOE_ESHAPE, "view: tensor %s with its strides cannot be viewed as %s; use reshape",
             zoe_shape_str(t, a, sizeof a), zoe_shape_str_n(ndim, sh, b, sizeof b));
    return NULL;
  }
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  v->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    v->shape[i] = sh[i];
    v->stride[i] = st[i];
  }
  return v;
}

zoe_tensor *zoe_reshape(const zoe_tensor *t, int ndim, const int64_t *shape, zoe_err *e) {
  int64_t sh[ZOE_MAX_DIMS], st[ZOE_MAX_DIMS];
  if (infer_shape(t, ndim, shape, sh, "reshape", e)) return NULL;
  if (view_strides(t, ndim, sh, st)) return zoe_view(t, ndim, sh, e);
  zoe_tensor *c = zoe_contiguous(t, e);
  if (!c) return NULL;
  zoe_tensor *v = zoe_view(c, ndim, sh, e);
  zoe_tensor_release(c);
  return v;
}

zoe_tensor *zoe_permute(const zoe_tensor *t, const int *perm, zoe_err *e) {
  bool seen[ZOE_MAX_DIMS] = {false};
  int p[ZOE_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) {
    if (zoe_norm_dim(perm[i], t->ndim, "permute", e, &p[i])) return NULL;
    if (seen[p[i]]) {
      zoe_errf(e, ZOE_EINVAL, "permute: dim %d repeated", perm[i]);
      return NULL;
    }
    seen[p[i]] = true;
  }
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  for (int i = 0; i < t->ndim; i++) {
    v->shape[i] = t->shape[p[i]];
    v->stride[i] = t->stride[p[i]];
  }
  return v;
}

zoe_tensor *zoe_transpose(const zoe_tensor *t, int d0, int d1, zoe_err *e) {
  int a, b;
  if (zoe_norm_dim(d0, t->ndim, "transpose", e, &a) || zoe_norm_dim(d1, t->ndim, "transpose", e, &b))
    return NULL;
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  v->shape[a] = t->shape[b];
  v->stride[a] = t->stride[b];
  v->shape[b] = t->shape[a];
  v->stride[b] = t->stride[a];
  return v;
}

zoe_tensor *zoe_narrow(const zoe_tensor *t, int dim, int64_t start, int64_t len, zoe_err *e) {
  int d;
  char a[96];
  if (zoe_norm_dim(dim, t->ndim, "narrow", e, &d)) return NULL;
  if (start < 0 || len < 0 || start + len > t->shape[d]) {
    zoe_errf(e, ZOE_ERANGE, "narrow: range [%lld, %lld) is outside dim %d of size %lld (tensor %s)",
             (long long)start, (long long)(start + len), dim, (long long)t->shape[d],
             zoe_shape_str(t, a, sizeof a));
    return NULL;
  }
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  v->offset += start * t->stride[d];
  v->shape[d] = len;
  return v;
}

zoe_tensor *zoe_select(const zoe_tensor *t, int dim, int64_t index, zoe_err *e) {
  int d;
  char a[96];
  if (zoe_norm_dim(dim, t->ndim, "select", e, &d)) return NULL;
  if (index < 0) index += t->shape[d];
  if (index < 0 || index >= t->shape[d]) {
    zoe_errf(e, ZOE_ERANGE, "select: index %lld out of range for dim %d of size %lld (tensor %s)",
             (long long)index, dim, (long long)t->shape[d], zoe_shape_str(t, a, sizeof a));
    return NULL;
  }
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  v->offset += index * t->stride[d];
  for (int i = d; i < t->ndim - 1; i++) {
    v->shape[i] = t->shape[i + 1];
    v->stride[i] = t->stride[i + 1];
  }
  v->ndim--;
  return v;
}

zoe_tensor *zoe_expand(const zoe_tensor *t, int ndim, const int64_t *shape, zoe_err *e) {
  char a[96], b[96];
  if (ndim < t->ndim || ndim > ZOE_MAX_DIMS) {
    zoe_errf(e, ZOE_ESHAPE, "expand: cannot expand tensor %s to %d dims",
             zoe_shape_str(t, a, sizeof a), ndim);
    return NULL;
  }
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  int lead = ndim - t->ndim;
  v->ndim = ndim;
  for (int i = ndim - 1; i >= 0; i--) {
    int64_t want = shape[i];
    if (i < lead) {
      if (want < 0) goto bad;
      v->shape[i] = want;
      v->stride[i] = 0;
      continue;
    }
    int64_t have = t->shape[i - lead];
    if (want == -1) want = have;
    if (want == have) {
      v->shape[i] = have;
      v->stride[i] = t->stride[i - lead];
    } else if (have == 1 && want >= 0) {
      v->shape[i] = want;
      v->stride[i] = 0;
    } else {
      goto bad;
    }
  }
  return v;
bad:
  zoe_tensor_release(v);
  zoe_errf(e, ZOE_ESHAPE, "expand: tensor %s cannot be expanded to %s", zoe_shape_str(t, a, sizeof a),
           zoe_shape_str_n(ndim, shape, b, sizeof b));
  return NULL;
}

zoe_tensor *zoe_squeeze(const zoe_tensor *t, int dim, zoe_err *e) {
  int d;
  char a[96];
  if (zoe_norm_dim(dim, t->ndim, "squeeze", e, &d)) return NULL;
  if (t->shape[d] != 1) {
    zoe_errf(e, ZOE_ESHAPE, "squeeze: dim %d has size %lld, not 1 (tensor %s)", dim,
             (long long)t->shape[d], zoe_shape_str(t, a, sizeof a));
    return NULL;
  }
  return zoe_select(t, d, 0, e);
}

zoe_tensor *zoe_squeeze_all(const zoe_tensor *t, zoe_err *e) {
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  int k = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] == 1) continue;
    v->shape[k] = t->shape[i];
    v->stride[k] = t->stride[i];
    k++;
  }
  v->ndim = k;
  return v;
}

zoe_tensor *zoe_unsqueeze(const zoe_tensor *t, int dim, zoe_err *e) {
  int d;
  if (t->ndim >= ZOE_MAX_DIMS) {
    zoe_errf(e, ZOE_EINVAL, "unsqueeze: tensor already has %d dims", ZOE_MAX_DIMS);
    return NULL;
  }
  if (zoe_norm_dim(dim, t->ndim + 1, "unsqueeze", e, &d)) return NULL;
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  for (int i = t->ndim; i > d; i--) {
    v->shape[i] = t->shape[i - 1];
    v->stride[i] = t->stride[i - 1];
  }
  v->shape[d] = 1;
  v->stride[d] = d < t->ndim ? t->stride[d] * t->shape[d] : 1;
  v->ndim = t->ndim + 1;
  return v;
}

zoe_tensor *zoe_view_dtype(const zoe_tensor *t, zoe_dtype dt, zoe_err *e) {
  size_t from = zoe_dtype_size(t->dtype), to = zoe_dtype_size(dt);
  char a[96];
  if (!to) {
    zoe_errf(e, ZOE_EDTYPE, "view_dtype: unknown dtype %d", (int)dt);
    return NULL;
  }
  int last = t->ndim - 1;
  bool ok = t->ndim > 0 && (t->shape[last] == 1 || t->stride[last] == 1) &&
            (int64_t)(t->shape[last] * (int64_t)from) % (int64_t)to == 0 &&
            (t->offset * (int64_t)from) % (int64_t)to == 0;
  for (int i = 0; ok && i < last; i++) ok = (t->stride[i] * (int64_t)from) % (int64_t)to == 0;
  if (!ok) {
    zoe_errf(e, ZOE_ESHAPE, "view_dtype: tensor %s %s cannot be seen as %s (the last dim must be contiguous and divide evenly)",
             zoe_dtype_name(t->dtype), zoe_shape_str(t, a, sizeof a), zoe_dtype_name(dt));
    return NULL;
  }
  zoe_tensor *v = view_header(t, e);
  if (!v) return NULL;
  v->dtype = dt;
  v->offset = t->offset * (int64_t)from / (int64_t)to;
  for (int i = 0; i < last; i++) v->stride[i] = t->stride[i] * (int64_t)from / (int64_t)to;
  v->shape[last] = t->shape[last] * (int64_t)from / (int64_t)to;
  v->stride[last] = 1;
  return v;
}

/* ---- copies (with broadcast and dtype conversion) ---- */

typedef struct copy_ctx {
  zoe_dtype to, from;
} copy_ctx;

static void copy_inner(void *arg, int64_t n, char **p, const int64_t *s) {
  copy_ctx *c = arg;
  size_t es_to = zoe_dtype_size(c->to), es_from = zoe_dtype_size(c->from);
  if (s[0] == (int64_t)es_to && s[1] == (int64_t)es_from) {
    zoe_convert(c->to, p[0], c->from, p[1], n);
    return;
  }
  if (c->to == c->from) {
    char *d = p[0];
    const char *src = p[1];
    switch (es_to) {
      case 4: for (int64_t i = 0; i < n; i++) *(uint32_t *)(d + i * s[0]) = *(const uint32_t *)(src + i * s[1]); return;
      case 2: for (int64_t i = 0; i < n; i++) *(uint16_t *)(d + i * s[0]) = *(const uint16_t *)(src + i * s[1]); return;
      case 1: for (int64_t i = 0; i < n; i++) d[i * s[0]] = src[i * s[1]]; return;
      default: for (int64_t i = 0; i < n; i++) memcpy(d + i * s[0], src + i * s[1], es_to); return;
    }
  }
  for (int64_t i = 0; i < n; i++)
    zoe_store_elem(c->to, p[0] + i * s[0], 0, zoe_load_elem(c->from, p[1] + i * s[1], 0));
}

int zoe_copy_(zoe_tensor *dst, const zoe_tensor *src, zoe_err *e) {
  if (zoe_dtype_is_quant(dst->dtype) || zoe_dtype_is_quant(src->dtype)) return zoe_copy_quant(dst, src, e);
  zoe_iter it;
  const zoe_tensor *ops[2] = {dst, src};
  int rc = zoe_iter_init(&it, 2, ops, dst->ndim, dst->shape, "copy", e);
  if (rc) return rc;
  copy_ctx c = {dst->dtype, src->dtype};
  rc = zoe_iter_run(&it, copy_inner, &c, zoe_grain(1));
  if (rc) return zoe_errf(e, rc, "copy: canceled");
  return 0;
}


zoe_tensor *zoe_contiguous(const zoe_tensor *t, zoe_err *e) {
  if (zoe_is_contiguous(t)) return zoe_tensor_retain(t);
  return zoe_clone(t, e);
}

zoe_tensor *zoe_clone(const zoe_tensor *t, zoe_err *e) { return zoe_to_dtype(t, t->dtype, e); }

zoe_tensor *zoe_to_dtype(const zoe_tensor *t, zoe_dtype dt, zoe_err *e) {
  zoe_tensor *o = zoe_empty(dt, t->ndim, t->shape, e);
  if (!o) return NULL;
  if (zoe_copy_(o, t, e)) {
    zoe_tensor_release(o);
    return NULL;
  }
  return o;
}
