/*
** vae_blocks.c: the Wan VAE's residual block (with its chunk cache) and its
** attention block, each built from the nn blocks (channel RMS norm, conv3d,
** attention) and the GEMM interface.
*/
#include <math.h>

#include "../../ops/gemm.h"
#include "../../ops/ops.h"
#include "vae_blocks.h"

/* ---- residual block ---- */

/* SiLU(RMS_norm(x)) over the channel dim of [N, C, T, H, W], f32 contiguous. */
static zoe_tensor *norm_silu(const zoe_tensor *x, const zoe_tensor *gamma, zoe_err *e) {
  zoe_tensor *h = zoe_channel_rms_norm(x, 1, gamma, NULL, NULL, e);
  zoe_tensor *r = h ? zoe_unary(ZOE_SILU, h, h, e) : NULL;
  zoe_tensor_release(h);
  return r;
}

/*
** What the official decode caches for a causal conv after a chunk: the last 2
** frames of its input, or, for a 1-frame chunk, the last cached frame and that one.
*/
static zoe_tensor *cache_frames(const zoe_tensor *prev, const zoe_tensor *h, zoe_err *e) {
  int64_t T = h->shape[2];
  if (T >= 2 || !prev || prev->shape[2] == 0) {
    int64_t k = T < 2 ? T : 2;
    zoe_tensor *v = zoe_narrow(h, 2, T - k, k, e);
    zoe_tensor *c = v ? zoe_clone(v, e) : NULL;
    zoe_tensor_release(v);
    return c;
  }
  zoe_tensor *last = zoe_narrow(prev, 2, prev->shape[2] - 1, 1, e);
  const zoe_tensor *parts[2] = {last, h};
  zoe_tensor *c = last ? zoe_cat(parts, 2, 2, e) : NULL;
  zoe_tensor_release(last);
  return c;
}

/* norm -> SiLU -> causal 3x3x3 conv (pad 1, 2 frames in front or the cached ones) */
static zoe_tensor *norm_silu_conv(const zoe_tensor *x, const zoe_tensor *gamma, const zoe_tensor *w,
                                  const zoe_tensor *b, const zoe_tensor *prev, zoe_tensor **cached,
                                  const char *where, zoe_err *e) {
  zoe_tensor *h = norm_silu(x, gamma, e), *y = NULL;
  if (!h) {
    zoe_err_prefix(e, "vae_resblock (%s)", where);
    return NULL;
  }
  if (cached && !(*cached = cache_frames(prev, h, e))) goto done;
  if (!(y = zoe_conv3d(h, w, b, NULL, (const int[]){1, 1}, 2, prev, NULL, e)))
    zoe_err_prefix(e, "vae_resblock (%s)", where);
done:
  zoe_tensor_release(h);
  return y;
}

zoe_tensor *zoe_vae_resblock(const zoe_tensor *x, const zoe_vae_resblock_w *w, const zoe_vae_cache *cache,
                             zoe_vae_cache *next, zoe_err *e) {
  char s[96];
  if (x->ndim != 5) {
    zoe_errf(e, ZOE_ESHAPE, "vae_resblock: input must be 5-D [N, C, T, H, W], got %d-D %s", x->ndim,
             zoe_shape_str(x, s, sizeof s));
    return NULL;
  }
  if (!w->norm1_gamma || !w->conv1_w || !w->norm2_gamma || !w->conv2_w) {
    zoe_errf(e, ZOE_EINVAL, "vae_resblock: norm1, conv1, norm2 and conv2 are required");
    return NULL;
  }
  int64_t cout = w->conv2_w->ndim ? w->conv2_w->shape[0] : 0;
  if (!w->shortcut_w && cout != x->shape[1]) {
    zoe_errf(e, ZOE_ESHAPE, "vae_resblock: input has %lld channels and the block gives %lld, but there is no "
                            "shortcut (input %s)",
             (long long)x->shape[1], (long long)cout, zoe_shape_str(x, s, sizeof s));
    return NULL;
  }
  const zoe_tensor *prev1 = cache ? cache->conv1 : NULL, *prev2 = cache ? cache->conv2 : NULL;
  zoe_tensor *c1 = NULL, *c2 = NULL, *h = NULL, *y = NULL, *sc = NULL;
  if (!(h = norm_silu_conv(x, w->norm1_gamma, w->conv1_w, w->conv1_b, prev1, next ? &c1 : NULL, "conv1", e)))
    goto fail;
  if (!(y = norm_silu_conv(h, w->norm2_gamma, w->conv2_w, w->conv2_b, prev2, next ? &c2 : NULL, "conv2", e)))
    goto fail;
  if (w->shortcut_w) {
    if (!(sc = zoe_conv3d(x, w->shortcut_w, w->shortcut_b, NULL, NULL, 0, NULL, NULL, e))) {
      zoe_err_prefix(e, "vae_resblock (shortcut)");
      goto fail;
    }
  }
  zoe_tensor *sum = zoe_binary(ZOE_ADD, y, sc ? sc : x, y, e);
  if (!sum) {
    zoe_err_prefix(e, "vae_resblock");
    goto fail;
  }
  zoe_tensor_release(sum);
  zoe_tensor_release(h);
  zoe_tensor_release(sc);
  if (next) {
    zoe_tensor_release(next->conv1);
    zoe_tensor_release(next->conv2);
    next->conv1 = c1;
    next->conv2 = c2;
  }
  return y;
fail:
  zoe_tensor_release(c1);
  zoe_tensor_release(c2);
  zoe_tensor_release(h);
  zoe_tensor_release(y);
  zoe_tensor_release(sc);
  return NULL;
}

/* ---- attention block ---- */

/* 'w' holds n x k elements with shape[0] == n (a 1x1 conv weight); contiguous, dtype kept */
static zoe_tensor *matrix_weight(const zoe_tensor *w, int64_t n, int64_t k, const char *name, zoe_err *e) {
  char s[96];
  if (!w || w->ndim < 1 || w->shape[0] != n || zoe_numel(w) != n * k ||
      !(w->dtype == ZOE_F32 || w->dtype == ZOE_F16 || w->dtype == ZOE_BF16)) {
    zoe_errf(e, ZOE_ESHAPE, "vae_attention: %s must be a float [%lld, %lld, 1, 1], got %s %s", name, (long long)n,
             (long long)k, w ? zoe_dtype_name(w->dtype) : "nothing", w ? zoe_shape_str(w, s, sizeof s) : "");
    return NULL;
  }
  return zoe_contiguous(w, e);
}

/* a bias of n elements as an f32 view of 'shape' (nd dims) for broadcasting, or NULL with e set */
static zoe_tensor *bias_as(const zoe_tensor *b, int64_t n, int nd, const int64_t *shape, const char *name,
                           zoe_err *e) {
  if (zoe_numel(b) != n) {
    char s[96];
    zoe_errf(e, ZOE_ESHAPE, "vae_attention: %s has %lld elements, expected %lld (%s)", name,
             (long long)zoe_numel(b), (long long)n, zoe_shape_str(b, s, sizeof s));
    return NULL;
  }
  zoe_tensor *c = zoe_contiguous(b, e);
  zoe_tensor *v = c ? zoe_view(c, nd, shape, e) : NULL;
  zoe_tensor_release(c);
  return v;
}

zoe_tensor *zoe_vae_attention(const zoe_tensor *x, const zoe_vae_attn_w *w, zoe_err *e) {
  char s[96];
  if (x->ndim != 5) {
    zoe_errf(e, ZOE_ESHAPE, "vae_attention: input must be 5-D [N, C, T, H, W], got %d-D %s", x->ndim,
             zoe_shape_str(x, s, sizeof s));
    return NULL;
  }
  int64_t N = x->shape[0], C = x->shape[1], T = x->shape[2], L = x->shape[3] * x->shape[4], F = N * T;
  zoe_tensor *wq = NULL, *wp = NULL, *xn = NULL, *qkv = NULL, *qkv2 = NULL, *bq = NULL, *bp = NULL, *y = NULL,
             *y2 = NULL, *o = NULL, *q = NULL, *k = NULL, *v = NULL;
  if (!w->norm_gamma) {
    zoe_errf(e, ZOE_EINVAL, "vae_attention: norm is required");
    return NULL;
  }
  if (!(wq = matrix_weight(w->qkv_w, 3 * C, C, "qkv", e)) ||
      !(wp = matrix_weight(w->proj_w, C, C, "proj", e)) ||
      (w->qkv_b && !(bq = bias_as(w->qkv_b, 3 * C, 1, (int64_t[]){3 * C}, "qkv_bias", e))) ||
      (w->proj_b && !(bp = bias_as(w->proj_b, C, 5, (int64_t[]){1, C, 1, 1, 1}, "proj_bias", e))))
    goto done;
  if (!(xn = zoe_channel_rms_norm(x, 1, w->norm_gamma, NULL, NULL, e))) {
    zoe_err_prefix(e, "vae_attention (norm)");
    goto done;
  }
  /* tokens per frame: qkv[f, l, :] = W_qkv xn[n, :, t, l], so q, k, v are [F, L, 1, C] views */
  if (!(qkv = zoe_empty(ZOE_F32, 3, (int64_t[]){F, L, 3 * C}, e))) goto done;
  const float *xp = zoe_data(xn);
  float *qp = zoe_data(qkv);
  zoe_gemm_arg B = {zoe_data(wq), wq->dtype, true, C};
  for (int64_t f = 0; f < F; f++) {
    int64_t n = f / T, t = f % T;
    zoe_gemm_arg A = {xp + (n * C * T + t) * L, ZOE_F32, true, T * L}; /* xn[n, :, t, :] as [L, C] */
    if (zoe_gemm(L, 3 * C, C, 1.0f, A, B, 0.0f, qp + f * L * 3 * C, 3 * C, e)) goto done;
  }
  if (bq) {
    if (!(qkv2 = zoe_binary(ZOE_ADD, qkv, bq, qkv, e))) goto done;
  }
  int64_t shape[4] = {F, L, 1, C}, stride[4] = {L * 3 * C, 3 * C, C, 1};
  if (!(q = zoe_tensor_view_of(qkv->storage, ZOE_F32, 4, shape, stride, qkv->offset, e)) ||
      !(k = zoe_tensor_view_of(qkv->storage, ZOE_F32, 4, shape, stride, qkv->offset + C, e)) ||
      !(v = zoe_tensor_view_of(qkv->storage, ZOE_F32, 4, shape, stride, qkv->offset + 2 * C, e)))
    goto done;
  zoe_attn_opts opts = {.scale = 1.0 / sqrt((double)C)};
  if (!(o = zoe_attention(q, k, v, &opts, NULL, e))) {
    zoe_err_prefix(e, "vae_attention");
    goto done;
  }
  /* y = x + proj_b, then y[n, :, t, :] += W_proj o[f]^T */
  if (!(y = zoe_to_dtype(x, ZOE_F32, e))) goto done;
  if (bp) {
    zoe_tensor *r = zoe_binary(ZOE_ADD, y, bp, y, e);
    if (!r) goto done;
    zoe_tensor_release(r);
  }
  float *yp = zoe_data(y);
  const float *op = zoe_data(o);
  zoe_gemm_arg Ap = {zoe_data(wp), wp->dtype, false, C};
  for (int64_t f = 0; f < F; f++) {
    int64_t n = f / T, t = f % T;
    zoe_gemm_arg Bo = {op + f * L * C, ZOE_F32, true, C};
    if (zoe_gemm(C, L, C, 1.0f, Ap, Bo, 1.0f, yp + (n * C * T + t) * L, T * L, e)) {
      zoe_tensor_release(y);
      y = NULL;
      goto done;
    }
  }
  y2 = y;
  y = NULL;
done:;
  zoe_tensor *ts[] = {wq, wp, xn, qkv, qkv2, bq, bp, y, o, q, k, v};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) zoe_tensor_release(ts[i]);
  return y2;
}
