/*
** tensor.h: refcounted storage and the tensor, a strided view over it: the
** layout, and what the core uses beside the public tensor API (include/zoe.h:
** creation, views, copies, lifetime). Views never copy. Every function that
** returns a tensor returns a new reference the caller releases once (even when
** it is the input itself). Dims are 0-based here; negative dims count from the end.
*/
#ifndef ZOE_TENSOR_H
#define ZOE_TENSOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"
#include "shape.h"

typedef struct zoe_storage zoe_storage;
struct zoe_storage {
  atomic_int refcount;
  void *data;
  size_t nbytes;
  /* Releases 'data' (heap block, file mapping, borrowed buffer); NULL: nothing to do. */
  void (*release)(zoe_storage *s);
  void *owner; /* what 'release' needs: a mapping, a Lua reference, ... */
};

typedef struct zoe_lowrank zoe_lowrank;

/* the public type of include/zoe.h, whose fields the core reads directly */
struct zoe_tensor {
  atomic_int refcount;
  zoe_dtype dtype;
  int ndim;
  int64_t shape[ZOE_MAX_DIMS];
  int64_t stride[ZOE_MAX_DIMS]; /* in elements */
  int64_t offset;               /* in elements, from storage->data */
  zoe_storage *storage;
  /* A linear layer's weight may carry a scale of its own and low-rank additions (scaled
     fp8, LoRAs on a quantized weight: nn/lora.c), which zoe_linear applies; views and
     copies do not inherit them. */
  zoe_lowrank *lowrank;
};

/* weight_scale * W + sum_i scale_i * B_i A_i, kept apart: A_i [r_i, in], B_i [out, r_i] (f32). Refcounted. */
struct zoe_lowrank {
  atomic_int refcount;
  float weight_scale; /* 1, or the weight's own scale (ComfyUI's scale_weight) */
  int n;
  zoe_tensor **a, **b;
  float *scale;
};
void zoe_lowrank_release(zoe_lowrank *l);

/* ---- storage ---- */
zoe_storage *zoe_storage_new(size_t nbytes, zoe_err *e); /* from the caching allocator */
/* Wrap memory owned elsewhere; 'release' (may be NULL) is called when the last view goes. */
zoe_storage *zoe_storage_wrap(void *data, size_t nbytes, void (*release)(zoe_storage *),
                              void *owner, zoe_err *e);
zoe_storage *zoe_storage_retain(zoe_storage *s);
void zoe_storage_release(zoe_storage *s);

/* ---- creation ---- */
zoe_tensor *zoe_empty_like(const zoe_tensor *t, zoe_err *e); /* contiguous, same dtype */
zoe_tensor *zoe_arange(zoe_dtype dt, double start, double end, double step, zoe_err *e);
zoe_tensor *zoe_linspace(zoe_dtype dt, double start, double end, int64_t n, zoe_err *e);
/* A view of 'storage' (retained by the view). Checks the view fits in the storage. */
zoe_tensor *zoe_tensor_view_of(zoe_storage *s, zoe_dtype dt, int ndim, const int64_t *shape,
                               const int64_t *stride, int64_t offset, zoe_err *e);

/* ---- queries ---- */
static inline void *zoe_data(const zoe_tensor *t) { /* a quantized tensor's offset is a whole number of blocks */
  return (char *)t->storage->data + t->offset / zoe_dtype_block(t->dtype) * (int64_t)zoe_dtype_size(t->dtype);
}
bool zoe_same_shape(const zoe_tensor *a, const zoe_tensor *b);

/* ---- views (no copy) ---- */
zoe_tensor *zoe_expand(const zoe_tensor *t, int ndim, const int64_t *shape, zoe_err *e);
zoe_tensor *zoe_squeeze(const zoe_tensor *t, int dim, zoe_err *e);    /* dim must be size 1 */
zoe_tensor *zoe_squeeze_all(const zoe_tensor *t, zoe_err *e);

/*
** The same bytes seen as another dtype (torch's view(dtype)): the last dim must be
** contiguous; its size scales by the ratio of element sizes.
*/
zoe_tensor *zoe_view_dtype(const zoe_tensor *t, zoe_dtype dt, zoe_err *e);

#endif
