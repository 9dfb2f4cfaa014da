/*
** quant_tensor.c: copies into and out of quantized tensors (zoe_copy_, hence
** to(), clone(), contiguous()), block by block on the pool's threads.
*/
#include <string.h>

#include "pool.h"
#include "quant.h"

#define CHUNK 4096 /* elements per parallel range: a few blocks, about a microsecond of work each */

typedef struct job {
  zoe_dtype qt;
  const void *base; /* the blocks (dequantizing: the storage, elements counted from 'first') */
  int64_t first;
  float *f;     /* the floats */
  void *blocks; /* quantizing: the destination blocks */
} job;

static void dequant_range(void *arg, int64_t b, int64_t e) {
  job *j = arg;
  zoe_dequant_range(j->qt, j->base, j->first + b * CHUNK, (e - b) * CHUNK, j->f + b * CHUNK);
}

static void quant_range(void *arg, int64_t b, int64_t e) {
  job *j = arg;
  int64_t bl = zoe_dtype_block(j->qt);
  zoe_quant_blocks(j->qt, j->f + b * CHUNK, (e - b) * CHUNK / bl, (char *)j->blocks + zoe_dtype_bytes(j->qt, b * CHUNK));
}

/* n floats from src's elements; src contiguous, any offset */
static int dequant_into(float *out, const zoe_tensor *src, zoe_err *e) {
  int64_t n = zoe_numel(src), whole = n / CHUNK * CHUNK;
  job j = {src->dtype, src->storage->data, src->offset, out, NULL};
  int rc = zoe_parallel_for(whole / CHUNK, 1, dequant_range, &j);
  if (rc) return zoe_errf(e, rc, "to: canceled");
  zoe_dequant_range(src->dtype, src->storage->data, src->offset + whole, n - whole, out + whole);
  return 0;
}

static int quant_from(zoe_tensor *dst, const float *in, zoe_err *e) {
  if (!zoe_quant_can_write(dst->dtype))
    return zoe_errf(e, ZOE_EDTYPE, "to: cannot quantize to %s here (it can be read, not written)",
                    zoe_dtype_name(dst->dtype));
  int64_t n = zoe_numel(dst), bl = zoe_dtype_block(dst->dtype), whole = n / CHUNK * CHUNK;
  job j = {dst->dtype, NULL, 0, (float *)in, zoe_data(dst)};
  int rc = zoe_parallel_for(whole / CHUNK, 1, quant_range, &j);
  if (rc) return zoe_errf(e, rc, "to: canceled");
  zoe_quant_blocks(dst->dtype, in + whole, (n - whole) / bl, (char *)zoe_data(dst) + zoe_dtype_bytes(dst->dtype, whole));
  return 0;
}

int zoe_copy_quant(zoe_tensor *dst, const zoe_tensor *src, zoe_err *e) {
  char a[96], b[96];
  if (!zoe_same_shape(dst, src))
    return zoe_errf(e, ZOE_ESHAPE, "copy: %s %s into %s %s: quantized tensors are copied only to the same shape",
                    zoe_dtype_name(src->dtype), zoe_shape_str(src, a, sizeof a), zoe_dtype_name(dst->dtype),
                    zoe_shape_str(dst, b, sizeof b));
  if (zoe_dtype_is_quant(src->dtype) && !zoe_is_contiguous(src))
    return zoe_errf(e, ZOE_EINVAL, "copy: a strided view of a %s tensor %s cannot be read (blocks run along the "
                    "rows); copy the whole tensor", zoe_dtype_name(src->dtype), zoe_shape_str(src, a, sizeof a));
  int64_t n = zoe_numel(dst), bl = zoe_dtype_block(dst->dtype);
  if (zoe_dtype_is_quant(dst->dtype) && (!zoe_is_contiguous(dst) || dst->offset % bl || n % bl))
    return zoe_errf(e, ZOE_EINVAL, "copy: a %s destination must be contiguous whole blocks", zoe_dtype_name(dst->dtype));
  if (dst->dtype == src->dtype && src->offset % bl == 0) { /* same blocks: the bytes */
    memcpy(zoe_data(dst), zoe_data(src), zoe_dtype_bytes(dst->dtype, n));
    return 0;
  }
  bool direct = dst->dtype == ZOE_F32 && zoe_is_contiguous(dst);
  zoe_tensor *f = NULL;
  if (zoe_dtype_is_quant(src->dtype)) {
    if (!direct && !(f = zoe_empty(ZOE_F32, dst->ndim, dst->shape, e))) return e ? e->code : ZOE_ENOMEM;
    int rc = dequant_into(direct ? zoe_data(dst) : zoe_data(f), src, e);
    if (!rc && !direct) rc = zoe_dtype_is_quant(dst->dtype) ? quant_from(dst, zoe_data(f), e) : zoe_copy_(dst, f, e);
    zoe_tensor_release(f);
    return rc;
  }
  /* a plain source into blocks */
  if (src->dtype == ZOE_F32 && zoe_is_contiguous(src)) return quant_from(dst, zoe_data(src), e);
  if (!(f = zoe_to_dtype(src, ZOE_F32, e))) return e ? e->code : ZOE_ENOMEM;
  int rc = quant_from(dst, zoe_data(f), e);
  zoe_tensor_release(f);
  return rc;
}
