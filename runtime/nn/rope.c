/*
** rope.c: rotary position embedding (1-D and Wan's 3-D factorized form) and
** the sinusoidal timestep embedding. Angles are computed in double, as the
** reference implementations do, then applied in f32.
*/
#include <math.h>

#include "../core/pool.h"
#include "../ops/out.h"
#include "nn.h"

typedef struct rope_ctx {
  const float *cs;  /* [L, P, 2] cos, sin per token and pair */
  float *x;         /* [B, L, H, Dh] contiguous (the output, already holding the input) */
  int64_t L, H, Dh, P;
} rope_ctx;

static void rope_range(void *arg, int64_t r0, int64_t r1) {
  rope_ctx *c = arg;
  for (int64_t r = r0; r < r1; r++) { /* r counts (b, l) */
    int64_t l = r % c->L;
    const float *cs = c->cs + l * c->P * 2;
    for (int64_t h = 0; h < c->H; h++) {
      float *x = c->x + (r * c->H + h) * c->Dh;
      for (int64_t j = 0; j < c->P; j++) {
        float a = x[2 * j], b = x[2 * j + 1], co = cs[2 * j], si = cs[2 * j + 1];
        x[2 * j] = a * co - b * si;
        x[2 * j + 1] = a * si + b * co;
      }
    }
  }
}

zoe_tensor *zoe_rope(const zoe_tensor *x, const int64_t grid[3], const int npairs[3], double theta,
                     zoe_tensor *out, zoe_err *e) {
  char s[96];
  if (x->ndim != 4) {
    zoe_errf(e, ZOE_ESHAPE, "rope: input must be [B, L, H, Dh], got %s", zoe_shape_str(x, s, sizeof s));
    return NULL;
  }
  int64_t L = x->shape[1], H = x->shape[2], Dh = x->shape[3];
  int64_t P = (int64_t)npairs[0] + npairs[1] + npairs[2];
  if (npairs[0] < 0 || npairs[1] < 0 || npairs[2] < 0 || 2 * P > Dh) {
    zoe_errf(e, ZOE_EINVAL, "rope: %d + %d + %d pairs do not fit a head of %lld dims", npairs[0], npairs[1],
             npairs[2], (long long)Dh);
    return NULL;
  }
  if (grid[0] * grid[1] * grid[2] != L) {
    zoe_errf(e, ZOE_ESHAPE, "rope: grid %lldx%lldx%lld has %lld positions, input has %lld tokens",
             (long long)grid[0], (long long)grid[1], (long long)grid[2],
             (long long)(grid[0] * grid[1] * grid[2]), (long long)L);
    return NULL;
  }
  /* out starts as a contiguous f32 copy of x (or x itself when rotating in place) */
  zoe_tensor *o;
  if (out && out == x && x->dtype == ZOE_F32 && zoe_is_contiguous(x)) {
    o = zoe_tensor_retain(x);
  } else {
    o = zoe_out_prepare(out && out->dtype == ZOE_F32 && zoe_is_contiguous(out) ? out : NULL, ZOE_F32, 4,
                        x->shape, "rope", e);
    if (!o || zoe_copy_(o, x, e)) goto fail;
  }
  zoe_tensor *tab = zoe_empty(ZOE_F32, 3, (int64_t[]){L, P ? P : 1, 2}, e);
  if (!tab) goto fail;
  float *cs = zoe_data(tab);
  for (int64_t l = 0; l < L; l++) {
    int64_t pos[3] = {l / (grid[1] * grid[2]), (l / grid[2]) % grid[1], l % grid[2]};
    int64_t j = 0;
    for (int ax = 0; ax < 3; ax++)
      for (int i = 0; i < npairs[ax]; i++, j++) {
        double ang = (double)pos[ax] * pow(theta, -(double)i / (double)npairs[ax]);
        cs[(l * P + j) * 2] = (float)cos(ang);
        cs[(l * P + j) * 2 + 1] = (float)sin(ang);
      }
  }
  rope_ctx c = {cs, zoe_data(o), L, H, Dh, P};
  int rc = zoe_parallel_for(x->shape[0] * L, 1 + 4096 / (H * Dh + 1), rope_range, &c);
  zoe_tensor_release(tab);
  if (rc) {
    zoe_errf(e, rc, "rope: canceled");
    goto fail;
  }
  if (out && o != out) { /* a destination that could not be written directly */
    zoe_tensor *r = zoe_out_prepare(out, ZOE_F32, 4, x->shape, "rope", e);
    if (r && zoe_copy_(r, o, e)) {
      zoe_tensor_release(r);
      r = NULL;
    }
    zoe_tensor_release(o);
    return r;
  }
  return o;
fail:
  zoe_tensor_release(o);
  return NULL;
}

zoe_tensor *zoe_timestep_embedding(const zoe_tensor *t, int dim, double max_period, bool cos_first,
                                   zoe_err *e) {
  char s[96];
  if (t->ndim != 1 || dim < 2 || dim % 2) {
    zoe_errf(e, ZOE_EINVAL, "timestep_embedding: need t [N] and an even dim (got %s, %d)",
             zoe_shape_str(t, s, sizeof s), dim);
    return NULL;
  }
  int64_t n = t->shape[0], half = dim / 2;
  zoe_tensor *o = zoe_empty(ZOE_F32, 2, (int64_t[]){n, dim}, e);
  if (!o) return NULL;
  float *p = zoe_data(o);
  for (int64_t i = 0; i < n; i++) {
    double tv = zoe_load_elem(t->dtype, zoe_data(t), i * t->stride[0]);
    for (int64_t j = 0; j < half; j++) {
      double ang = tv * pow(max_period, -(double)j / (double)half);
      p[i * dim + (cos_first ? j : j + half)] = (float)cos(ang);
      p[i * dim + (cos_first ? j + half : j)] = (float)sin(ang);
    }
  }
  return o;
}
