/*
** spatial_norm.c: CogVideoX's SpatialNorm3D, with the SiLU that follows it in the decoder,
** in one pass over f instead of five full-size temporaries:
**   out = silu( GroupNorm(f) * up(cy) + up(cb) )
** cy, cb [N, C, Tz, hz, wz] are the norm's 1x1x1 convs of the latent, which commute with the
** nearest upsampling up() to f's frames and size (integer factors); in time the first frame is
** taken apart when f has an odd count > 1, as diffusers interpolates it.
*/
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/pool.h"
#include "../../ops/vmath.h"
#include "spatial_norm.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

typedef struct sn_ctx {
  const float *f, *cy, *cb, *gw, *gb;
  float *out, *mean, *rstd; /* mean, rstd per (n, group) */
  int64_t N, C, T, H, W, Tz, Hz, Wz, G;
  double eps;
  bool silu;
  atomic_int failed; /* a range could not get its scratch rows */
} sn_ctx;

static void stats_range(void *arg, int64_t g0, int64_t g1) {
  sn_ctx *c = arg;
  int64_t cpg = c->C / c->G, len = cpg * c->T * c->H * c->W;
  for (int64_t g = g0; g < g1; g++) { /* g counts (sample, group); a group's channels are contiguous */
    const float *x = c->f + g * len;
    double s = 0, q = 0;
    for (int64_t i = 0; i < len; i++) s += x[i];
    double m = s / (double)len;
    for (int64_t i = 0; i < len; i++) {
      double d = x[i] - m;
      q += d * d;
    }
    c->mean[g] = (float)m;
    c->rstd[g] = (float)(1.0 / sqrt(q / (double)len + c->eps));
  }
}

/* the latent frame of output frame t (nearest, the first frame apart for odd counts > 1) */
static int64_t frame_of(const sn_ctx *c, int64_t t) {
  if (c->T > 1 && c->T % 2 == 1) return t == 0 ? 0 : 1 + (t - 1) * (c->Tz - 1) / (c->T - 1);
  return t * c->Tz / c->T;
}

VECTORIZE static void row_k(float *o, const float *x, const float *y, const float *b, float sc, float sh, int64_t n,
                            bool silu) {
  for (int64_t i = 0; i < n; i++) {
    float v = (x[i] * sc + sh) * y[i] + b[i];
    o[i] = silu ? v * zv_sigmoid(v) : v;
  }
}

static void apply_range(void *arg, int64_t p0, int64_t p1) {
  sn_ctx *c = arg;
  float *yrow = malloc(2 * (size_t)c->W * sizeof *yrow), *brow = yrow ? yrow + c->W : NULL; /* latent rows at W */
  if (!yrow) {
    atomic_store(&c->failed, 1);
    return;
  }
  int64_t last = -1;
  for (int64_t p = p0; p < p1; p++) { /* p counts (n, channel, frame) */
    int64_t t = p % c->T, ch = (p / c->T) % c->C, n = p / (c->T * c->C);
    int64_t g = n * c->G + ch / (c->C / c->G);
    float sc = c->rstd[g] * (c->gw ? c->gw[ch] : 1.0f);
    float sh = (c->gb ? c->gb[ch] : 0.0f) - c->mean[g] * sc;
    int64_t tz = frame_of(c, t);
    for (int64_t h = 0; h < c->H; h++) {
      int64_t hz = h * c->Hz / c->H, key = ((n * c->C + ch) * c->Tz + tz) * c->Hz + hz;
      if (key != last) {
        const float *ys = c->cy + key * c->Wz, *bs = c->cb + key * c->Wz;
        for (int64_t w = 0; w < c->W; w++) {
          int64_t wz = w * c->Wz / c->W;
          yrow[w] = ys[wz];
          brow[w] = bs[wz];
        }
        last = key;
      }
      int64_t off = ((p * c->H) + h) * c->W;
      row_k(c->out + off, c->f + off, yrow, brow, sc, sh, c->W, c->silu);
    }
  }
  free(yrow);
}

static int is_f32_5d(const zoe_tensor *t) { return t && t->ndim == 5 && t->dtype == ZOE_F32 && zoe_is_contiguous(t); }

zoe_tensor *zoe_cogvideox_spatial_norm(const zoe_tensor *f, const zoe_tensor *cy, const zoe_tensor *cb, int groups,
                                       const zoe_tensor *w, const zoe_tensor *b, double eps, bool silu, zoe_err *e) {
  char s1[96], s2[96];
  if (!is_f32_5d(f) || !is_f32_5d(cy) || !is_f32_5d(cb))
    return zoe_errf(e, ZOE_EINVAL, "cogvideox_spatial_norm: f, y and b must be contiguous f32 [N, C, T, H, W]"), NULL;
  int64_t N = f->shape[0], C = f->shape[1], T = f->shape[2], H = f->shape[3], W = f->shape[4];
  bool same = true;
  for (int i = 0; i < 5; i++) same = same && cy->shape[i] == cb->shape[i];
  int64_t Tz = cy->shape[2], Hz = cy->shape[3], Wz = cy->shape[4];
  if (!same || cy->shape[0] != N || cy->shape[1] != C || Tz < 1 || Hz < 1 || Wz < 1 || Tz > T || H % Hz || W % Wz)
    return zoe_errf(e, ZOE_ESHAPE, "cogvideox_spatial_norm: y %s does not upsample to f %s by whole factors",
                    zoe_shape_str(cy, s1, sizeof s1), zoe_shape_str(f, s2, sizeof s2)), NULL;
  if (groups <= 0 || C % groups)
    return zoe_errf(e, ZOE_EINVAL, "cogvideox_spatial_norm: %lld channels in %d groups", (long long)C, groups), NULL;
  if ((w && (w->dtype != ZOE_F32 || zoe_numel(w) != C || !zoe_is_contiguous(w))) ||
      (b && (b->dtype != ZOE_F32 || zoe_numel(b) != C || !zoe_is_contiguous(b))))
    return zoe_errf(e, ZOE_ESHAPE, "cogvideox_spatial_norm: the GroupNorm's weight and bias must be f32 [%lld]",
                    (long long)C), NULL;
  zoe_tensor *out = zoe_empty(ZOE_F32, 5, f->shape, e);
  zoe_tensor *st = out ? zoe_empty(ZOE_F32, 1, (int64_t[]){2 * N * groups}, e) : NULL;
  if (!st) {
    zoe_tensor_release(out);
    return NULL;
  }
  float *mr = zoe_data(st);
  sn_ctx c = {zoe_data(f), zoe_data(cy), zoe_data(cb), w ? zoe_data(w) : NULL, b ? zoe_data(b) : NULL,
              zoe_data(out), mr, mr + N * groups, N, C, T, H, W, Tz, Hz, Wz, groups, eps, silu, 0};
  int rc = zoe_parallel_for(N * groups, 1, stats_range, &c);
  if (!rc) rc = zoe_parallel_for(N * C * T, 1, apply_range, &c);
  zoe_tensor_release(st);
  if (rc || atomic_load(&c.failed)) {
    zoe_tensor_release(out);
    zoe_errf(e, rc ? rc : ZOE_ENOMEM, "cogvideox_spatial_norm: %s", rc ? "canceled" : "out of memory");
    return NULL;
  }
  return out;
}
