/*
** rng.c: Philox4x32-10 and the uniform and normal fills built on it.
** Element i uses block offset + i/4 and word i%4; normals come from
** Box-Muller on words (0,1) and (2,3) of a block.
*/
#include "rng.h"

#include <math.h>

#include "pool.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void zoe_rng_init(zoe_rng *g, uint64_t seed) {
  g->seed = seed;
  g->offset = 0;
}

void zoe_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* 24 random bits as a float in [0, 1) or (0, 1]. */
static inline double unit_open_hi(uint32_t x) { return (double)(x >> 8) * 0x1p-24; }
static inline double unit_open_lo(uint32_t x) { return (double)((x >> 8) + 1) * 0x1p-24; }

typedef struct fill_ctx {
  zoe_tensor *t;
  uint64_t seed, offset;
  double a, b;
  int normal;
} fill_ctx;

static void fill_range(void *arg, int64_t begin, int64_t end) {
  fill_ctx *c = arg;
  zoe_tensor *t = c->t;
  char *base = zoe_data(t);
  int64_t es = (int64_t)zoe_dtype_size(t->dtype);
  for (int64_t blk = begin; blk < end; blk++) {
    uint32_t w[4];
    double v[4];
    uint64_t n = c->offset + (uint64_t)blk;
    uint32_t ctr[4] = {(uint32_t)n, (uint32_t)(n >> 32), 0, 0};
    uint32_t key[2] = {(uint32_t)c->seed, (uint32_t)(c->seed >> 32)};
    zoe_philox4x32(ctr, key, w);
    if (c->normal) {
      for (int h = 0; h < 2; h++) {
        double r = sqrt(-2.0 * log(unit_open_lo(w[2 * h])));
        double th = 2.0 * M_PI * unit_open_hi(w[2 * h + 1]);
        v[2 * h] = c->a + c->b * r * cos(th);
        v[2 * h + 1] = c->a + c->b * r * sin(th);
      }
    } else {
      for (int k = 0; k < 4; k++) v[k] = c->a + (c->b - c->a) * unit_open_hi(w[k]);
    }
    /* element index -> strided position in t (row-major over its shape) */
    for (int k = 0; k < 4; k++) {
      int64_t i = blk * 4 + k, rem = i, off = 0;
      if (i >= zoe_numel(t)) break;
      for (int d = t->ndim - 1; d >= 0; d--) {
        off += (rem % t->shape[d]) * t->stride[d];
        rem /= t->shape[d];
      }
      if (t->dtype == ZOE_F32) *(float *)(base + off * es) = (float)v[k];
      else zoe_store_elem(t->dtype, base + off * es, 0, v[k]);
    }
  }
}

static int fill(zoe_tensor *t, zoe_rng *g, double a, double b, int normal, zoe_err *e) {
  if (!zoe_dtype_is_float(t->dtype))
    return zoe_errf(e, ZOE_EDTYPE, "%s: tensor must be a float dtype, not %s",
                    normal ? "randn" : "rand", zoe_dtype_name(t->dtype));
  int64_t blocks = (zoe_numel(t) + 3) / 4;
  fill_ctx c = {t, g->seed, g->offset, a, b, normal};
  int rc = zoe_parallel_for(blocks, 1024, fill_range, &c);
  g->offset += (uint64_t)blocks;
  return rc ? zoe_errf(e, rc, "rand: canceled") : 0;
}

int zoe_rand_uniform_(zoe_tensor *t, zoe_rng *g, double lo, double hi, zoe_err *e) {
  return fill(t, g, lo, hi, 0, e);
}

int zoe_rand_normal_(zoe_tensor *t, zoe_rng *g, double mean, double std, zoe_err *e) {
  return fill(t, g, mean, std, 1, e);
}
