/*
** linear.c: linear layers and embedding lookups.
*/
#include "../core/alloc.h"
#include "../core/pool.h"
#include "../core/quant.h"
#include "../ops/gemm.h"
#include "../ops/ops.h"
#include "../ops/out.h"
#include "nn.h"

/* x as a contiguous-rows f32 matrix [N, in]: itself, or a copy when it must be. */
static zoe_tensor *as_rows(const zoe_tensor *x, zoe_err *e) {
  if (x->dtype == ZOE_F32 && zoe_is_contiguous(x)) return zoe_tensor_retain(x);
  return zoe_to_dtype(x, ZOE_F32, e); /* to_dtype always gives a contiguous copy */
}

/* the bias as N contiguous floats: itself, or a widened copy */
static zoe_tensor *bias_f32(const zoe_tensor *b, zoe_err *e) {
  if (b->dtype == ZOE_F32 && b->stride[0] == 1) return zoe_tensor_retain(b);
  return zoe_to_dtype(b, ZOE_F32, e);
}

/* y [rows, nout] += scale_i (x A_i^T) B_i^T for each term, then the activation */
static int low_rank(const zoe_lowrank *lr, int64_t rows, int64_t nout, int64_t nin, zoe_gemm_arg x, float *y,
                    zoe_gemm_act act, zoe_err *e) {
  for (int i = 0; i < lr->n; i++) {
    int64_t r = lr->a[i]->shape[0];
    size_t bytes = (size_t)(rows * r) * sizeof(float);
    float *t = zoe_alloc(bytes ? bytes : 1, e);
    if (!t) return e ? e->code : ZOE_ENOMEM;
    zoe_gemm_arg A = {zoe_data(lr->a[i]), ZOE_F32, true, nin}, B = {zoe_data(lr->b[i]), ZOE_F32, true, r};
    int rc = zoe_gemm(rows, r, nin, 1.0f, x, A, 0.0f, t, r, e);
    if (!rc) rc = zoe_gemm(rows, nout, r, lr->scale[i], (zoe_gemm_arg){t, ZOE_F32, false, r}, B, 1.0f, y, nout, e);
    zoe_free(t, bytes ? bytes : 1);
    if (rc) return rc;
  }
  zoe_gemm_epilogue ep = {NULL, act};
  return zoe_gemm_epilogue_rows(&ep, rows, nout, y, nout) ? zoe_errf(e, ZOE_ECANCELED, "linear: canceled") : 0;
}

zoe_tensor *zoe_linear(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                       zoe_tensor *out, zoe_err *e) {
  return zoe_linear_act(x, w, b, ZOE_ACT_NONE, out, e);
}

zoe_tensor *zoe_linear_act(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, zoe_gemm_act act,
                           zoe_tensor *out, zoe_err *e) {
  char sx[96], sw[96];
  if (w->ndim != 2 || !(zoe_dtype_is_float(w->dtype) || zoe_dtype_is_quant(w->dtype))) {
    zoe_errf(e, ZOE_ESHAPE, "linear: weight must be a 2-D float or quantized matrix [out, in], got %s %s",
             zoe_dtype_name(w->dtype), zoe_shape_str(w, sw, sizeof sw));
    return NULL;
  }
  if (zoe_dtype_is_quant(w->dtype) && (!zoe_is_contiguous(w) || w->offset % zoe_dtype_block(w->dtype))) {
    zoe_errf(e, ZOE_EINVAL, "linear: a %s weight must be whole (a view of it is not): %s", zoe_dtype_name(w->dtype),
             zoe_shape_str(w, sw, sizeof sw));
    return NULL;
  }
  int64_t nout = w->shape[0], nin = w->shape[1];
  if (x->ndim == 0 || x->shape[x->ndim - 1] != nin) {
    zoe_errf(e, ZOE_ESHAPE, "linear: input has %lld features, weight expects %lld (tensor %s, weight %s)",
             x->ndim ? (long long)x->shape[x->ndim - 1] : 0LL, (long long)nin,
             zoe_shape_str(x, sx, sizeof sx), zoe_shape_str(w, sw, sizeof sw));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != nout)) {
    zoe_errf(e, ZOE_ESHAPE, "linear: bias has shape %s, expected %lld", zoe_shape_str(b, sx, sizeof sx),
             (long long)nout);
    return NULL;
  }
  if (w->stride[1] != 1 || w->stride[0] < nin) { /* weights come from files; views of them are rare */
    zoe_errf(e, ZOE_EINVAL, "linear: weight %s must have contiguous rows", zoe_shape_str(w, sw, sizeof sw));
    return NULL;
  }
  int64_t shape[ZOE_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
  shape[x->ndim - 1] = nout;
  zoe_tensor *xr = as_rows(x, e), *bf = NULL;
  if (!xr || (b && !(bf = bias_f32(b, e)))) {
    zoe_tensor_release(xr);
    return NULL;
  }
  bool direct = !out || (out->dtype == ZOE_F32 && zoe_is_contiguous(out));
  zoe_tensor *y = direct ? zoe_out_prepare(out, ZOE_F32, x->ndim, shape, "linear", e)
                         : zoe_empty(ZOE_F32, x->ndim, shape, e);
  zoe_tensor *res = NULL;
  if (!y) goto done;
  int64_t rows = nin ? zoe_numel(xr) / nin : zoe_numel(y) / (nout ? nout : 1);
  zoe_gemm_arg A = {zoe_data(xr), ZOE_F32, false, nin ? nin : 1};
  zoe_gemm_arg B = {zoe_data(w), w->dtype, true, w->stride[0]};
  const zoe_lowrank *lr = w->lowrank;
  zoe_gemm_epilogue ep = {bf ? zoe_data(bf) : NULL, lr ? ZOE_ACT_NONE : act};
  if (zoe_gemm_ep(rows, nout, nin, lr ? lr->weight_scale : 1.0f, A, B, 0.0f, zoe_data(y), nout, &ep, e)) goto done;
  if (lr && low_rank(lr, rows, nout, nin, A, zoe_data(y), act, e)) goto done;
  if (direct) {
    res = zoe_tensor_retain(y);
  } else {
    res = zoe_out_prepare(out, ZOE_F32, x->ndim, shape, "linear", e);
    if (res && zoe_copy_(res, y, e)) {
      zoe_tensor_release(res);
      res = NULL;
    }
  }
done:
  zoe_tensor_release(xr);
  zoe_tensor_release(bf);
  zoe_tensor_release(y);
  return res;
}

typedef struct emb_ctx {
  const zoe_tensor *w, *ids;
  float *out;
  int64_t d;
} emb_ctx;

static void emb_range(void *arg, int64_t b, int64_t end) {
  emb_ctx *c = arg;
  size_t es = zoe_dtype_size(c->w->dtype);
  const char *base = zoe_data(c->w);
  for (int64_t i = b; i < end; i++) {
    int64_t id = (int64_t)zoe_load_elem(c->ids->dtype, zoe_data(c->ids), i);
    if (zoe_dtype_is_quant(c->w->dtype)) /* a row of blocks: elements counted from the storage */
      zoe_dequant_range(c->w->dtype, c->w->storage->data, c->w->offset + id * c->w->stride[0], c->d, c->out + i * c->d);
    else
      zoe_convert(ZOE_F32, c->out + i * c->d, c->w->dtype, base + (size_t)(id * c->w->stride[0]) * es, c->d);
  }
}

zoe_tensor *zoe_embedding(const zoe_tensor *weight, const zoe_tensor *ids0, zoe_err *e) {
  char s[96];
  if (weight->ndim != 2 || weight->stride[1] != 1 || (zoe_dtype_is_quant(weight->dtype) && !zoe_is_contiguous(weight))) {
    zoe_errf(e, ZOE_ESHAPE, "embedding: table must be a 2-D matrix with contiguous rows, got %s",
             zoe_shape_str(weight, s, sizeof s));
    return NULL;
  }
  if (zoe_dtype_is_float(ids0->dtype)) {
    zoe_errf(e, ZOE_EDTYPE, "embedding: ids must be integers, got %s", zoe_dtype_name(ids0->dtype));
    return NULL;
  }
  zoe_tensor *ids = zoe_contiguous(ids0, e);
  if (!ids) return NULL;
  int64_t n = zoe_numel(ids), v = weight->shape[0];
  for (int64_t i = 0; i < n; i++) {
    int64_t id = (int64_t)zoe_load_elem(ids->dtype, zoe_data(ids), i);
    if (id < 0 || id >= v) {
      zoe_errf(e, ZOE_ERANGE, "embedding: id %lld at position %lld is out of range for a table of %lld rows",
               (long long)id, (long long)i, (long long)v);
      zoe_tensor_release(ids);
      return NULL;
    }
  }
  int64_t shape[ZOE_MAX_DIMS];
  if (ids->ndim >= ZOE_MAX_DIMS) {
    zoe_errf(e, ZOE_EINVAL, "embedding: ids have too many dims");
    zoe_tensor_release(ids);
    return NULL;
  }
  for (int i = 0; i < ids->ndim; i++) shape[i] = ids->shape[i];
  shape[ids->ndim] = weight->shape[1];
  zoe_tensor *o = zoe_empty(ZOE_F32, ids->ndim + 1, shape, e);
  if (o) {
    emb_ctx c = {weight, ids, zoe_data(o), weight->shape[1]};
    zoe_parallel_for(n, 1 + 16384 / (weight->shape[1] + 1), emb_range, &c);
  }
  zoe_tensor_release(ids);
  return o;
}
