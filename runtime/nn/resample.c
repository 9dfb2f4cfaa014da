/*
** resample.c: nearest-neighbour upsampling by integer factors, and the DiT's
** patchify / unpatchify. Patchify and unpatchify are pure rearrangements: a
** strided view of the input with the patch dims split out and permuted, then
** one copy into a contiguous result (the dtype is kept).
*/
#include <string.h>

#include "../core/pool.h"
#include "nn.h"

/* ---- nearest upsampling ---- */

typedef struct up_ctx {
  const char *src;
  char *dst;
  size_t es;                  /* element size */
  int64_t T, H, W;            /* input frame count (1 for 2-D), rows, columns */
  int ft, fh, fw;
} up_ctx;

/*
** One unit is one input row (outer, t, y): it is widened along W into its first
** output row, which is then copied to the other fh-1 rows and the other ft-1
** frames that read it. out[.., t*ft + i, y*fh + j, x*fw + k] = in[.., t, y, x]
** (torch's floor(dst / f), which for integer factors equals 'nearest-exact').
*/
static void up_rows(void *arg, int64_t u0, int64_t u1) {
  const up_ctx *c = arg;
  int64_t Wo = c->W * c->fw, Ho = c->H * c->fh, To = c->T * c->ft;
  size_t es = c->es, orow = (size_t)Wo * es;
  for (int64_t u = u0; u < u1; u++) {
    int64_t y = u % c->H, t = (u / c->H) % c->T, o = u / (c->H * c->T);
    const char *s = c->src + (size_t)u * (size_t)c->W * es;
    char *first = c->dst + (size_t)(((o * To + t * c->ft) * Ho + y * c->fh) * Wo) * es;
    if (c->fw == 1) {
      memcpy(first, s, orow);
    } else if (es == 4) {
      const uint32_t *si = (const uint32_t *)s;
      uint32_t *di = (uint32_t *)first;
      for (int64_t x = 0; x < c->W; x++)
        for (int k = 0; k < c->fw; k++) di[x * c->fw + k] = si[x];
    } else {
      for (int64_t x = 0; x < c->W; x++)
        for (int k = 0; k < c->fw; k++) memcpy(first + (size_t)(x * c->fw + k) * es, s + (size_t)x * es, es);
    }
    for (int i = 0; i < c->ft; i++)
      for (int j = 0; j < c->fh; j++) {
        if (i == 0 && j == 0) continue;
        memcpy(first + (size_t)((i * Ho + j) * Wo) * es, first, orow);
      }
  }
}

zoe_tensor *zoe_upsample_nearest(const zoe_tensor *x0, int ndims, const int factor[3], zoe_err *e) {
  const char *op = "upsample_nearest";
  char s[96];
  if (ndims != 2 && ndims != 3) {
    zoe_errf(e, ZOE_EINVAL, "%s: upsamples the last 2 or 3 dims, not %d", op, ndims);
    return NULL;
  }
  if (x0->ndim < ndims) {
    zoe_errf(e, ZOE_ESHAPE, "%s: input %s has fewer than %d dims", op, zoe_shape_str(x0, s, sizeof s), ndims);
    return NULL;
  }
  for (int i = 0; i < ndims; i++)
    if (factor[i] < 1 || factor[i] > 64) {
      zoe_errf(e, ZOE_EINVAL, "%s: factor %d is %d (integers 1..64)", op, i + 1, factor[i]);
      return NULL;
    }
  int nd = x0->ndim;
  int64_t W = x0->shape[nd - 1], H = x0->shape[nd - 2], T = ndims == 3 ? x0->shape[nd - 3] : 1;
  int ft = ndims == 3 ? factor[0] : 1, fh = factor[ndims - 2], fw = factor[ndims - 1];
  int64_t shape[ZOE_MAX_DIMS], outer = 1;
  for (int i = 0; i < nd; i++) shape[i] = x0->shape[i];
  for (int i = 0; i < nd - ndims; i++) outer *= x0->shape[i];
  shape[nd - 1] *= fw;
  shape[nd - 2] *= fh;
  if (ndims == 3) shape[nd - 3] *= ft;
  zoe_tensor *x = zoe_contiguous(x0, e);
  zoe_tensor *y = x ? zoe_empty(x->dtype, nd, shape, e) : NULL;
  if (!y) {
    zoe_tensor_release(x);
    return NULL;
  }
  up_ctx c = {zoe_data(x), zoe_data(y), zoe_dtype_size(x->dtype), T, H, W, ft, fh, fw};
  int64_t rows = outer * T * H;
  int64_t per_row = W * fw * fh * ft;
  if (zoe_parallel_for(rows, 1 + 16384 / (per_row + 1), up_rows, &c)) {
    zoe_errf(e, ZOE_ECANCELED, "%s: canceled", op);
    zoe_tensor_release(y);
    y = NULL;
  }
  zoe_tensor_release(x);
  return y;
}

/* ---- patchify / unpatchify ---- */

static int check_patch(const int patch[3], const char *op, zoe_err *e) {
  for (int i = 0; i < 3; i++)
    if (patch[i] < 1) return zoe_errf(e, ZOE_EINVAL, "%s: patch sizes must be positive, got %dx%dx%d", op,
                                      patch[0], patch[1], patch[2]);
  return 0;
}

/* A copy of the view of 'x' with 'shape' and 'stride' (elements, over x's storage), reshaped to 'rshape'. */
static zoe_tensor *rearrange(const zoe_tensor *x, int nd, const int64_t *shape, const int64_t *stride, int rnd,
                             const int64_t *rshape, zoe_err *e) {
  zoe_tensor *v = zoe_tensor_view_of(x->storage, x->dtype, nd, shape, stride, x->offset, e);
  zoe_tensor *c = v ? zoe_clone(v, e) : NULL;
  zoe_tensor *r = c ? zoe_view(c, rnd, rshape, e) : NULL;
  zoe_tensor_release(v);
  zoe_tensor_release(c);
  return r;
}

zoe_tensor *zoe_patchify(const zoe_tensor *x, const int patch[3], zoe_err *e) {
  const char *op = "patchify";
  char s[96];
  if (check_patch(patch, op, e)) return NULL;
  if (x->ndim != 4) {
    zoe_errf(e, ZOE_ESHAPE, "%s: input must be 4-D [C, F, H, W], got %d-D %s", op, x->ndim,
             zoe_shape_str(x, s, sizeof s));
    return NULL;
  }
  int64_t C = x->shape[0], F = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (F % patch[0] || H % patch[1] || W % patch[2]) {
    zoe_errf(e, ZOE_ESHAPE, "%s: input %s is not divisible into %dx%dx%d patches", op,
             zoe_shape_str(x, s, sizeof s), patch[0], patch[1], patch[2]);
    return NULL;
  }
  int64_t f = F / patch[0], h = H / patch[1], w = W / patch[2];
  const int64_t *st = x->stride;
  /* [f, h, w, C, pt, ph, pw] over x's elements */
  int64_t shape[7] = {f, h, w, C, patch[0], patch[1], patch[2]};
  int64_t stride[7] = {st[1] * patch[0], st[2] * patch[1], st[3] * patch[2], st[0], st[1], st[2], st[3]};
  int64_t rshape[2] = {f * h * w, C * patch[0] * patch[1] * patch[2]};
  return rearrange(x, 7, shape, stride, 2, rshape, e);
}

zoe_tensor *zoe_unpatchify(const zoe_tensor *x, const int64_t grid[3], const int patch[3], int c,
                           zoe_err *e) {
  const char *op = "unpatchify";
  char s[96];
  if (check_patch(patch, op, e)) return NULL;
  if (c < 1 || grid[0] < 0 || grid[1] < 0 || grid[2] < 0) {
    zoe_errf(e, ZOE_EINVAL, "%s: channels must be positive and the grid non-negative", op);
    return NULL;
  }
  int64_t f = grid[0], h = grid[1], w = grid[2], P = (int64_t)patch[0] * patch[1] * patch[2];
  if (x->ndim != 2 || x->shape[0] != f * h * w || x->shape[1] != P * c) {
    zoe_errf(e, ZOE_ESHAPE,
             "%s: input must be [f*h*w, pt*ph*pw*C] = [%lld, %lld] for grid %lldx%lldx%lld, patch %dx%dx%d and "
             "%d channels, got %s",
             op, (long long)(f * h * w), (long long)(P * c), (long long)f, (long long)h, (long long)w, patch[0],
             patch[1], patch[2], c, zoe_shape_str(x, s, sizeof s));
    return NULL;
  }
  /* token (fi, hi, wi) feature (pt, ph, pw, c) -> [C, f, pt, h, ph, w, pw] (Wan: 'fhwpqrc->cfphqwr') */
  int64_t rs = x->stride[0], cs = x->stride[1];
  int64_t shape[7] = {c, f, patch[0], h, patch[1], w, patch[2]};
  int64_t stride[7] = {cs, rs * h * w, cs * c * patch[1] * patch[2], rs * w, cs * c * patch[2], rs, cs * c};
  int64_t rshape[4] = {c, f * patch[0], h * patch[1], w * patch[2]};
  return rearrange(x, 7, shape, stride, 4, rshape, e);
}
