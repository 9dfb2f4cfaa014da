/*
** fused.c: the adaLN modulation x * (1 + scale) + shift and the gated residual
** x + y * gate, one pass each instead of three ops and two temporaries.
*/
#include "../core/iter.h"
#include "../ops/out.h"
#include "nn.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

VECTORIZE static void modulate_k(float *o, const float *x, const float *sh, const float *sc, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = x[i] * (1.0f + sc[i]) + sh[i];
}

VECTORIZE static void gated_k(float *o, const float *x, const float *y, const float *g, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i] * g[i];
}

VECTORIZE static void gated_scalar_k(float *o, const float *x, const float *y, float g, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i] * g;
}

typedef struct fused_ctx {
  bool gated;
  zoe_dtype t[4];
} fused_ctx;

static void fused_inner(void *arg, int64_t n, char **p, const int64_t *s) {
  fused_ctx *c = arg;
  bool f32 = c->t[0] == ZOE_F32 && c->t[1] == ZOE_F32 && c->t[2] == ZOE_F32 && c->t[3] == ZOE_F32;
  if (f32 && s[0] == 4 && s[1] == 4 && s[2] == 4 && s[3] == 4) {
    if (c->gated) gated_k((float *)p[0], (float *)p[1], (float *)p[2], (float *)p[3], n);
    else modulate_k((float *)p[0], (float *)p[1], (float *)p[2], (float *)p[3], n);
    return;
  }
  if (f32 && c->gated && s[0] == 4 && s[1] == 4 && s[2] == 4 && s[3] == 0) { /* one gate (or none: 1) */
    gated_scalar_k((float *)p[0], (float *)p[1], (float *)p[2], *(float *)p[3], n);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    double x = zoe_load_elem(c->t[1], p[1] + i * s[1], 0);
    double a = zoe_load_elem(c->t[2], p[2] + i * s[2], 0);
    double b = zoe_load_elem(c->t[3], p[3] + i * s[3], 0);
    zoe_store_elem(c->t[0], p[0] + i * s[0], 0, c->gated ? x + a * b : x * (1.0 + b) + a);
  }
}

static zoe_tensor *fused(bool gated, const zoe_tensor *x, const zoe_tensor *a, const zoe_tensor *b,
                         zoe_tensor *out, zoe_err *e) {
  const char *name = gated ? "gated_add" : "modulate";
  zoe_tensor *one = NULL;
  if (!b) { /* gate of 1 */
    one = zoe_full(ZOE_F32, 0, NULL, 1.0, e);
    if (!one) return NULL;
    b = one;
  }
  /* the result has x's shape; the others broadcast to it */
  zoe_tensor *o = zoe_out_prepare(out, ZOE_F32, x->ndim, x->shape, name, e);
  if (o) {
    zoe_iter it;
    const zoe_tensor *ops[4] = {o, x, a, b};
    fused_ctx c = {gated, {o->dtype, x->dtype, a->dtype, b->dtype}};
    if (zoe_iter_init(&it, 4, ops, x->ndim, x->shape, name, e) ||
        zoe_out_run(&it, fused_inner, &c, 2, name, e)) {
      zoe_tensor_release(o);
      o = NULL;
    }
  }
  zoe_tensor_release(one);
  return o;
}

zoe_tensor *zoe_modulate(const zoe_tensor *x, const zoe_tensor *shift, const zoe_tensor *scale,
                         zoe_tensor *out, zoe_err *e) {
  return fused(false, x, shift, scale, out, e);
}

zoe_tensor *zoe_gated_add(const zoe_tensor *x, const zoe_tensor *y, const zoe_tensor *gate,
                          zoe_tensor *out, zoe_err *e) {
  return fused(true, x, y, gate, out, e);
}
