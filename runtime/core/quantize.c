/*
** quantize.c: floats -> ggml's blocks, as ggml's reference quantizers choose them
** (quantize_row_*_ref, no importance matrix), so that `zoe convert` writes the
** bytes llama.cpp's and ComfyUI-GGUF's tools write for the same floats.
**
** Bit-equality rests on doing ggml's float operations in ggml's order, each
** rounded: no fused multiply-add (the pragma below), sums accumulated left to
** right, halves rounded to nearest even, and ggml's nearest_int (round half to
** even through the 1.5 * 2^23 trick, valid for |x| < 2^22).
** The search each k-quant runs (what the algorithm is, not how ggml spells it):
**   - q4_K/q5_K: per sub-block of 32, a scale and a min minimizing the error
**     weighted by (rms(x) + |x|), tried over 21 (q4) or 16 (q5) nudged grids; the
**     8 scales and mins are then quantized to 6 bits against the largest, and
**     the values quantized again against the scales as stored;
**   - q6_K: per sub-block of 16, a symmetric scale from 18 nudged grids weighted
**     by x^2; the 16 scales to 8 bits against the largest, then the values again.
*/
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>
#include <math.h>
#include <string.h>

#include "error.h"
#include "quant.h"

static int nearest(float v) {
  float t = v + 12582912.f; /* 1.5 * 2^23: the low mantissa bits are then the rounded integer */
  int32_t i;
  memcpy(&i, &t, 4);
  return (i & 0x007fffff) - 0x00400000;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

static void put_half(uint8_t *p, float f) {
  uint16_t h = zoe_f32_to_f16(f);
  memcpy(p, &h, 2);
}
static float get_half(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return zoe_f16_to_f32(h);
}

/* ---- 32-element blocks ---- */

/* the value of largest magnitude (the first one, on ties) */
static float signed_absmax(const float *x, int n) {
  float amax = 0, v = 0;
  for (int j = 0; j < n; j++)
    if (amax < fabsf(x[j])) {
      amax = fabsf(x[j]);
      v = x[j];
    }
  return v;
}

static void q8_0(const float *x, uint8_t *b) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

/* q4_0 (bits 4) and q5_0 (bits 5): d = -(signed absmax) / 2^(bits-1), q = trunc(x/d + offset + 0.5) */
static void sym_block(const float *x, uint8_t *b, int bits) {
  int half_range = 1 << (bits - 1), top = (1 << bits) - 1;
  float d = signed_absmax(x, 32) / (float)-half_range, id = d != 0 ? 1.0f / d : 0.0f;
  float bias = (float)half_range + 0.5f;
  put_half(b, d);
  uint8_t *qs = b + (bits == 5 ? 6 : 2);
  uint32_t qh = 0;
  for (int j = 0; j < 16; j++) {
    int lo = imin(top, (int8_t)(x[j] * id + bias)), hi = imin(top, (int8_t)(x[j + 16] * id + bias));
    qs[j] = (uint8_t)((lo & 15) | (hi & 15) << 4);
    qh |= (uint32_t)(lo >> 4 & 1) << j | (uint32_t)(hi >> 4 & 1) << (j + 16);
  }
  if (bits == 5) memcpy(b + 2, &qh, 4);
}

/* q4_1 and q5_1: d = (max - min) / (2^bits - 1), m = min, q = trunc((x - min)/d + 0.5) */
static void affine_block(const float *x, uint8_t *b, int bits) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  for (int j = 0; j < 32; j++) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  float d = (hi - lo) / (float)((1 << bits) - 1), id = d != 0 ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, lo);
  uint8_t *qs = b + (bits == 5 ? 8 : 4);
  uint32_t qh = 0;
  for (int j = 0; j < 16; j++) {
    float f0 = (x[j] - lo) * id + 0.5f, f1 = (x[j + 16] - lo) * id + 0.5f;
    int q0 = bits == 4 ? imin(15, (int8_t)f0) : (uint8_t)f0, q1 = bits == 4 ? imin(15, (int8_t)f1) : (uint8_t)f1;
    qs[j] = (uint8_t)((q0 & 15) | (q1 & 15) << 4);
    qh |= (uint32_t)(q0 >> 4 & 1) << j | (uint32_t)(q1 >> 4 & 1) << (j + 16);
  }
  if (bits == 5) memcpy(b + 4, &qh, 4);
}

/* ---- k-quants: the searches ---- */

/*
** Scale s and min -m (m >= 0 returned in *neg_min) for n values on levels 0..nmax,
** minimizing sum w (s l + min - x)^2: a first grid over [min(x, 0), max], then
** nstep + 1 grids of (nmax + rmin + rdelta i) steps, each refit by least squares.
*/
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                        float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0], sw = w[0], sx = w[0] * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sw += w[i];
    sx += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    memset(L, 0, (size_t)n);
    *neg_min = -lo;
    return 0.f;
  }
  float inv = (float)nmax / (hi - lo), scale = 1 / inv, best = 0;
  for (int i = 0; i < n; i++) {
    L[i] = (uint8_t)imax(0, imin(nmax, nearest(inv * (x[i] - lo))));
    float diff = scale * L[i] + lo - x[i];
    best += w[i] * (diff * diff);
  }
  uint8_t trial[32];
  for (int k = 0; k <= nstep; k++) {
    inv = (rmin + rdelta * (float)k + (float)nmax) / (hi - lo);
    float sl = 0, sl2 = 0, sxl = 0;
    for (int i = 0; i < n; i++) {
      int l = imax(0, imin(nmax, nearest(inv * (x[i] - lo))));
      trial[i] = (uint8_t)l;
      sl += w[i] * (float)l;
      sl2 += w[i] * (float)l * (float)l;
      sxl += w[i] * (float)l * x[i];
    }
    float det = sw * sl2 - sl * sl;
    if (det <= 0) continue;
    float s = (sw * sxl - sx * sl) / det, m = (sl2 * sx - sl * sxl) / det;
    if (m > 0) {
      m = 0;
      s = sxl / sl2;
    }
    float err = 0;
    for (int i = 0; i < n; i++) {
      float diff = s * trial[i] + m - x[i];
      err += w[i] * (diff * diff);
    }
    if (err < best) {
      memcpy(L, trial, (size_t)n);
      best = err;
      scale = s;
      lo = m;
    }
  }
  *neg_min = -lo;
  return scale;
}

/* the grid of symmetric level l of n values at inverse scale 'inv', weighted by x^2: sum w x l, sum w l^2 */
static void sym_sums(int n, int nmax, const float *x, float inv, float *sxl, float *sl2) {
  *sxl = *sl2 = 0;
  for (int i = 0; i < n; i++) {
    int l = imax(-nmax, imin(nmax - 1, nearest(inv * x[i])));
    float w = x[i] * x[i];
    *sxl += w * x[i] * (float)l;
    *sl2 += w * (float)l * (float)l;
  }
}

static void sym_levels(int n, int nmax, const float *x, float inv, int8_t *L) {
  for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest(inv * x[i]))));
}

/* Symmetric scale for n values on levels -nmax..nmax-1 (stored + nmax), weighted by x^2, best of 19 grids. */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L) {
  float v = signed_absmax(x, n);
  if (fabsf(v) < 1e-15f) {
    memset(L, 0, (size_t)n);
    return 0.f;
  }
  float inv = (float)-nmax / v, sxl, sl2;
  sym_levels(n, nmax, x, inv, L);
  sym_sums(n, nmax, x, inv, &sxl, &sl2);
  float scale = sl2 != 0 ? sxl / sl2 : 0.0f, best = scale * sxl;
  for (int k = -9; k <= 9; k++) {
    if (k == 0) continue;
    inv = -((float)nmax + 0.1f * (float)k) / v;
    sym_sums(n, nmax, x, inv, &sxl, &sl2);
    if (sl2 > 0 && sxl * sxl > best * sl2) {
      sym_levels(n, nmax, x, inv, L);
      scale = sxl / sl2;
      best = scale * sxl;
    }
  }
  return scale;
}

/* ---- k-quants: the blocks ---- */

static void scale_min_k4(int k, const uint8_t *q, int *sc, int *m) {
  if (k < 4) {
    *sc = q[k] & 63;
    *m = q[k + 4] & 63;
  } else {
    *sc = (q[k + 4] & 15) | ((q[k - 4] >> 6) << 4);
    *m = (q[k + 4] >> 4) | ((q[k] >> 6) << 4);
  }
}

/* q4_K (nmax 15) and q5_K (nmax 31): d dmin scales[12] [qh[32]] qs[128] */
static void q45_k(const float *x, uint8_t *b, int nmax) {
  uint8_t L[256], *scales = b + 4;
  float sc[8], mn[8], w[32], max_sc = 0, max_mn = 0;
  for (int j = 0; j < 8; j++) {
    const float *xs = x + 32 * j;
    float s2 = 0;
    for (int l = 0; l < 32; l++) s2 += xs[l] * xs[l];
    float av = sqrtf(s2 / 32);
    for (int l = 0; l < 32; l++) w[l] = av + fabsf(xs[l]);
    sc[j] = nmax == 15 ? fit_affine(32, 15, xs, w, L + 32 * j, &mn[j], -1.f, 0.1f, 20)
                       : fit_affine(32, 31, xs, w, L + 32 * j, &mn[j], -0.5f, 0.1f, 15);
    if (sc[j] > max_sc) max_sc = sc[j];
    if (mn[j] > max_mn) max_mn = mn[j];
  }
  float inv_sc = max_sc > 0 ? 63.f / max_sc : 0.f, inv_mn = max_mn > 0 ? 63.f / max_mn : 0.f;
  memset(scales, 0, 12);
  for (int j = 0; j < 8; j++) {
    int ls = imin(63, (uint8_t)nearest(inv_sc * sc[j])), lm = imin(63, (uint8_t)nearest(inv_mn * mn[j]));
    if (j < 4) {
      scales[j] = (uint8_t)ls;
      scales[j + 4] = (uint8_t)lm;
    } else { /* low nibbles in bytes 8..11, the top two bits over bytes 0..7 */
      scales[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
      scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
      scales[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  put_half(b, max_sc / 63.f);
  put_half(b + 2, max_mn / 63.f);
  float d = get_half(b), dmin = get_half(b + 2);
  for (int j = 0; j < 8; j++) { /* again, against the scales as stored (a zero scale keeps the search's levels) */
    int s, m;
    scale_min_k4(j, scales, &s, &m);
    float ds = d * (float)s;
    if (ds == 0) continue;
    float dm = dmin * (float)m;
    for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)imax(0, imin(nmax, nearest((x[32 * j + l] + dm) / ds)));
  }
  uint8_t *qs = b + (nmax == 15 ? 16 : 48), *qh = b + 16;
  if (nmax == 31) memset(qh, 0, 32);
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
      if (nmax == 31) {
        if (lo > 15) qh[l] |= (uint8_t)(1u << (2 * c));
        if (hi > 15) qh[l] |= (uint8_t)(2u << (2 * c));
      }
      qs[32 * c + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
    }
}

/* q6_K: ql[128] qh[64] scales[16] (i8) d */
static void q6_k(const float *x, uint8_t *b) {
  int8_t L[256];
  float sc[16], max_sc = 0, max_abs = 0;
  for (int j = 0; j < 16; j++) {
    sc[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
    if (fabsf(sc[j]) > max_abs) {
      max_abs = fabsf(sc[j]);
      max_sc = sc[j];
    }
  }
  memset(b, 0, 210);
  if (max_abs < 1e-15f) return; /* all zero, d = +0 */
  int8_t *scales = (int8_t *)(b + 192);
  float inv = -128.f / max_sc;
  put_half(b + 208, 1 / inv);
  for (int j = 0; j < 16; j++) scales[j] = (int8_t)imin(127, nearest(inv * sc[j]));
  float d = get_half(b + 208);
  for (int j = 0; j < 16; j++) {
    float ds = d * (float)scales[j];
    if (ds == 0) continue;
    for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(imax(-32, imin(31, nearest(x[16 * j + l] / ds))) + 32);
  }
  uint8_t *ql = b, *qh = b + 128;
  for (int h = 0; h < 2; h++)
    for (int l = 0; l < 32; l++) {
      const int8_t *q = L + 128 * h + l;
      ql[64 * h + l] = (uint8_t)((q[0] & 15) | (q[64] & 15) << 4);
      ql[64 * h + 32 + l] = (uint8_t)((q[32] & 15) | (q[96] & 15) << 4);
      qh[32 * h + l] = (uint8_t)((q[0] >> 4) | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
    }
}

int zoe_quant_can_write(zoe_dtype dt) {
  return zoe_dtype_is_quant(dt) && dt != ZOE_Q2_K && dt != ZOE_Q3_K;
}

int zoe_quant_blocks(zoe_dtype dt, const float *src, int64_t nblocks, void *dst) {
  if (!zoe_quant_can_write(dt)) return ZOE_EDTYPE;
  int64_t bl = zoe_dtype_block(dt);
  size_t bs = zoe_dtype_size(dt);
  for (int64_t i = 0; i < nblocks; i++) {
    const float *x = src + i * bl;
    uint8_t *b = (uint8_t *)dst + (size_t)i * bs;
    switch (dt) {
      case ZOE_Q8_0: q8_0(x, b); break;
      case ZOE_Q4_0: sym_block(x, b, 4); break;
      case ZOE_Q5_0: sym_block(x, b, 5); break;
      case ZOE_Q4_1: affine_block(x, b, 4); break;
      case ZOE_Q5_1: affine_block(x, b, 5); break;
      case ZOE_Q4_K: q45_k(x, b, 15); break;
      case ZOE_Q5_K: q45_k(x, b, 31); break;
      case ZOE_Q6_K: q6_k(x, b); break;
      default: return ZOE_EDTYPE;
    }
  }
  return 0;
}
