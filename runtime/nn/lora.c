/*
** lora.c: LoRA updates on a weight, the two ways lua/zoe/lora.lua applies them.
**   merged:    W' = W + sum_i s_i B_i A_i + sum_j t_j D_j, computed in double and rounded
**              once to f32 (a private copy; the mapped weight is never written);
**   low-rank:  a view of a quantized W carrying the terms (tensor.h), which zoe_linear
**              applies as y += s_i (x A_i^T) B_i^T, so W stays quantized in memory.
*/
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/pool.h"
#include "nn.h"

#define PANEL_ROWS 256 /* rows of W merged per dgemm: a double panel of 256 x K */

static int check_terms(const zoe_tensor *w, int n, const zoe_tensor *const *a, const zoe_tensor *const *b,
                       int nd, const zoe_tensor *const *d, zoe_err *e) {
  char s1[96], s2[96], s3[96];
  int64_t out = w->ndim >= 1 ? w->shape[0] : 1, in = zoe_numel(w) / (out ? out : 1);
  for (int i = 0; i < n; i++) {
    if (a[i]->ndim != 2 || b[i]->ndim != 2 || a[i]->shape[1] != in || b[i]->shape[0] != out ||
        a[i]->shape[0] != b[i]->shape[1])
      return zoe_errf(e, ZOE_ESHAPE, "lora: weight %s takes down %s and up %s of one rank (down [r, %lld], up [%lld, r])",
                      zoe_shape_str(w, s1, sizeof s1), zoe_shape_str(a[i], s2, sizeof s2),
                      zoe_shape_str(b[i], s3, sizeof s3), (long long)in, (long long)out);
  }
  for (int j = 0; j < nd; j++)
    if (zoe_numel(d[j]) != zoe_numel(w))
      return zoe_errf(e, ZOE_ESHAPE, "lora: a full delta %s for weight %s", zoe_shape_str(d[j], s1, sizeof s1),
                      zoe_shape_str(w, s2, sizeof s2));
  return 0;
}

/* a tensor's values as doubles, rows of 'in' (contiguous copy) */
static double *as_double(const zoe_tensor *t, zoe_err *e) {
  zoe_tensor *f = zoe_to_dtype(t, ZOE_F32, e);
  if (!f) return NULL;
  int64_t n = zoe_numel(f);
  double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
  if (d) {
    const float *src = zoe_data(f);
    for (int64_t i = 0; i < n; i++) d[i] = src[i];
  } else {
    zoe_errf(e, ZOE_ENOMEM, "lora: out of memory");
  }
  zoe_tensor_release(f);
  return d;
}

zoe_tensor *zoe_lora_merge(const zoe_tensor *w, int n, const zoe_tensor *const *a, const zoe_tensor *const *b,
                           const double *scale, int nd, const zoe_tensor *const *d, const double *dscale, zoe_err *e) {
  if (check_terms(w, n, a, b, nd, d, e)) return NULL;
  int64_t out = w->ndim >= 1 ? w->shape[0] : 1, in = zoe_numel(w) / (out ? out : 1);
  zoe_tensor *o = zoe_to_dtype(w, ZOE_F32, e); /* the base, as f32 (dequantized if it must be) */
  if (!o) return NULL;
  double **ad = calloc((size_t)(n + nd + 1), sizeof *ad), **bd = calloc((size_t)(n + 1), sizeof *bd);
  double *panel = malloc((size_t)(PANEL_ROWS * (in ? in : 1)) * sizeof *panel);
  int ok = ad && bd && panel;
  for (int i = 0; ok && i < n; i++) ok = (ad[i] = as_double(a[i], e)) && (bd[i] = as_double(b[i], e));
  for (int j = 0; ok && j < nd; j++) ok = (ad[n + j] = as_double(d[j], e)) != NULL;
  if (!ok) {
    if (!e || !e->code) zoe_errf(e, ZOE_ENOMEM, "lora: out of memory");
    zoe_tensor_release(o);
    o = NULL;
    goto done;
  }
  float *y = zoe_data(o);
  double ws = w->lowrank ? w->lowrank->weight_scale : 1.0; /* a scaled fp8 weight's values */
  for (int64_t r0 = 0; r0 < out; r0 += PANEL_ROWS) {
    int64_t rows = out - r0 < PANEL_ROWS ? out - r0 : PANEL_ROWS;
    for (int64_t i = 0; i < rows * in; i++) panel[i] = ws * y[r0 * in + i];
    for (int i = 0; i < n; i++) { /* panel += scale * B[r0.., :] A, in double */
      int r = (int)a[i]->shape[0];
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)in, r, scale[i], bd[i] + r0 * r, r,
                  ad[i], (int)in, 1.0, panel, (int)in);
    }
    for (int j = 0; j < nd; j++)
      for (int64_t i = 0; i < rows * in; i++) panel[i] += dscale[j] * ad[n + j][r0 * in + i];
    for (int64_t i = 0; i < rows * in; i++) y[r0 * in + i] = (float)panel[i]; /* the one rounding */
  }
done:
  for (int i = 0; ad && i < n + nd; i++) free(ad[i]);
  for (int i = 0; bd && i < n; i++) free(bd[i]);
  free(ad);
  free(bd);
  free(panel);
  return o;
}

zoe_tensor *zoe_weight_scaled(const zoe_tensor *w, double scale, zoe_err *e) {
  zoe_tensor *v = zoe_lora_lowrank(w, 0, NULL, NULL, NULL, e);
  if (v) v->lowrank->weight_scale = (float)scale;
  return v;
}

zoe_tensor *zoe_lora_lowrank(const zoe_tensor *w, int n, const zoe_tensor *const *a, const zoe_tensor *const *b,
                             const double *scale, zoe_err *e) {
  if (w->ndim != 2 || check_terms(w, n, a, b, 0, NULL, e)) {
    if (w->ndim != 2) zoe_errf(e, ZOE_ESHAPE, "lora: a low-rank addition needs a 2-D weight");
    return NULL;
  }
  zoe_lowrank *l = calloc(1, sizeof *l);
  zoe_tensor *v = l ? zoe_view(w, w->ndim, w->shape, e) : NULL;
  if (l && v) {
    l->a = calloc((size_t)(n + (w->lowrank ? w->lowrank->n : 0) + 1), sizeof *l->a);
    l->b = calloc((size_t)(n + (w->lowrank ? w->lowrank->n : 0) + 1), sizeof *l->b);
    l->scale = calloc((size_t)(n + (w->lowrank ? w->lowrank->n : 0) + 1), sizeof *l->scale);
  }
  if (!l || !v || !l->a || !l->b || !l->scale) {
    if (l) {
      free(l->a), free(l->b), free(l->scale);
      free(l);
    }
    zoe_tensor_release(v);
    zoe_errf(e, ZOE_ENOMEM, "lora: out of memory");
    return NULL;
  }
  atomic_init(&l->refcount, 1);
  const zoe_lowrank *old = w->lowrank; /* terms already on w stay, and its scale */
  l->weight_scale = old ? old->weight_scale : 1.0f;
  for (int i = 0; old && i < old->n; i++) {
    l->a[l->n] = zoe_tensor_retain(old->a[i]);
    l->b[l->n] = zoe_tensor_retain(old->b[i]);
    l->scale[l->n++] = old->scale[i];
  }
  for (int i = 0; i < n; i++) { /* f32 contiguous copies: the products run on them every step */
    zoe_tensor *af = zoe_to_dtype(a[i], ZOE_F32, e), *bf = af ? zoe_to_dtype(b[i], ZOE_F32, e) : NULL;
    if (!af || !bf) {
      zoe_tensor_release(af);
      zoe_lowrank_release(l);
      zoe_tensor_release(v);
      return NULL;
    }
    l->a[l->n] = af;
    l->b[l->n] = bf;
    l->scale[l->n++] = (float)scale[i];
  }
  v->lowrank = l;
  return v;
}
