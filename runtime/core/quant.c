/*
** quant.c: dequantization of ggml's block formats (layouts in quant.h).
** Plain scalar C on purpose: the baseline x86-64 target has no FMA, so the
** compiler cannot fuse (d * sc) * q - m into one rounding, and the results
** stay ggml's to the bit. (Hot products do not come here: gemm_quant.c.)
*/
#include "quant.h"

#include <string.h>

static float half(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return zoe_f16_to_f32(h);
}

static void q4_0(const uint8_t *b, float *y) {
  float d = half(b);
  const uint8_t *qs = b + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((qs[j] & 15) - 8) * d;
    y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void q4_1(const uint8_t *b, float *y) {
  float d = half(b), m = half(b + 2);
  const uint8_t *qs = b + 4;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)(qs[j] & 15) * d + m;
    y[j + 16] = (float)(qs[j] >> 4) * d + m;
  }
}

/* q5_0 and q5_1: the fifth bits in a u32, bit j for element j */
static void q5(const uint8_t *b, float *y, int has_min) {
  float d = half(b), m = has_min ? half(b + 2) : 0.0f;
  const uint8_t *p = b + (has_min ? 4 : 2);
  uint32_t qh;
  memcpy(&qh, p, 4);
  const uint8_t *qs = p + 4;
  for (int j = 0; j < 16; j++) {
    int lo = (qs[j] & 15) | (int)((qh >> j) & 1) << 4, hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
    if (has_min) {
      y[j] = (float)lo * d + m;
      y[j + 16] = (float)hi * d + m;
    } else {
      y[j] = (float)(lo - 16) * d;
      y[j + 16] = (float)(hi - 16) * d;
    }
  }
}

static void q8_0(const uint8_t *b, float *y) {
  float d = half(b);
  const int8_t *qs = (const int8_t *)(b + 2);
  for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

/*
** q2_K and q3_K share an element order: element (h, j, s, l) sits at
** h*128 + j*32 + s*16 + l (h < 2, j < 4, s < 2, l < 16); its two low bits are
** (qs[h*32 + s*16 + l] >> 2j) & 3 and its scale is number h*8 + 2j + s.
*/
static void q2_k(const uint8_t *b, float *y) {
  const uint8_t *scales = b, *qs = b + 16;
  float d = half(b + 80), dmin = half(b + 82);
  for (int h = 0; h < 2; h++)
    for (int j = 0; j < 4; j++)
      for (int s = 0; s < 2; s++) {
        uint8_t sc = scales[h * 8 + 2 * j + s];
        float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
        for (int l = 0; l < 16; l++) {
          int q = (qs[h * 32 + s * 16 + l] >> (2 * j)) & 3;
          y[h * 128 + j * 32 + s * 16 + l] = dl * (float)q - ml;
        }
      }
}

/* q3_K: 6-bit scales packed in 12 bytes (low nibbles in the first 8, high pairs in the last 4);
** the third bit of element (h, j, s, l) is bit 4h + j of hmask[s*16 + l], and a clear bit means -4 */
static void q3_k(const uint8_t *b, float *y) {
  const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
  float d = half(b + 108);
  for (int h = 0; h < 2; h++)
    for (int j = 0; j < 4; j++)
      for (int s = 0; s < 2; s++) {
        int k = h * 8 + 2 * j + s;
        int lo = k < 8 ? sc[k] & 15 : sc[k - 8] >> 4, hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
        float dl = d * (float)((lo | hi << 4) - 32);
        for (int l = 0; l < 16; l++) {
          int q = ((qs[h * 32 + s * 16 + l] >> (2 * j)) & 3) - ((hmask[s * 16 + l] >> (4 * h + j)) & 1 ? 0 : 4);
          y[h * 128 + j * 32 + s * 16 + l] = dl * (float)q;
        }
      }
}

/* q4_K/q5_K sub-block k's 6-bit scale and min from the 12 packed bytes */
static void scale_min_k4(int k, const uint8_t *q, int *sc, int *m) {
  if (k < 4) {
    *sc = q[k] & 63;
    *m = q[k + 4] & 63;
  } else {
    *sc = (q[k + 4] & 15) | ((q[k - 4] >> 6) << 4);
    *m = (q[k + 4] >> 4) | ((q[k] >> 6) << 4);
  }
}

/* q4_K and q5_K: four chunks of 64; chunk c reads qs[32c .. 32c+32): its first 32 elements
** are the low nibbles (sub-block 2c), the next 32 the high nibbles (sub-block 2c+1); q5_K
** adds 16 where bit 2c (low half) or 2c+1 (high half) of qh[l] is set */
static void q45_k(const uint8_t *b, float *y, int five) {
  float d = half(b), dmin = half(b + 2);
  const uint8_t *scales = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
  for (int c = 0; c < 4; c++) {
    int sc1, m1, sc2, m2;
    scale_min_k4(2 * c, scales, &sc1, &m1);
    scale_min_k4(2 * c + 1, scales, &sc2, &m2);
    float d1 = d * (float)sc1, dm1 = dmin * (float)m1, d2 = d * (float)sc2, dm2 = dmin * (float)m2;
    for (int l = 0; l < 32; l++) {
      int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
      if (five) {
        lo += (qh[l] >> (2 * c)) & 1 ? 16 : 0;
        hi += (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0;
      }
      y[64 * c + l] = d1 * (float)lo - dm1;
      y[64 * c + 32 + l] = d2 * (float)hi - dm2;
    }
  }
}

/* q6_K: halves h of 128; element h*128 + 32r + l (r < 4, l < 32) has low bits from ql[64h..]
** (ql[l] & 15, ql[l+32] & 15, ql[l] >> 4, ql[l+32] >> 4 for r = 0..3), high bits
** (qh[32h + l] >> 2r) & 3, and scale scales[8h + 2r + l/16] */
static void q6_k(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t *scales = (const int8_t *)(b + 192);
  float d = half(b + 208);
  for (int h = 0; h < 2; h++)
    for (int r = 0; r < 4; r++)
      for (int l = 0; l < 32; l++) {
        uint8_t lb = ql[64 * h + l + (r & 1) * 32];
        int low = r < 2 ? lb & 15 : lb >> 4;
        int q = (low | ((qh[32 * h + l] >> (2 * r)) & 3) << 4) - 32;
        y[128 * h + 32 * r + l] = d * (float)scales[8 * h + 2 * r + l / 16] * (float)q;
      }
}

static void one_block(zoe_dtype dt, const uint8_t *b, float *y) {
  switch (dt) {
    case ZOE_Q4_0: q4_0(b, y); break;
    case ZOE_Q4_1: q4_1(b, y); break;
    case ZOE_Q5_0: q5(b, y, 0); break;
    case ZOE_Q5_1: q5(b, y, 1); break;
    case ZOE_Q8_0: q8_0(b, y); break;
    case ZOE_Q2_K: q2_k(b, y); break;
    case ZOE_Q3_K: q3_k(b, y); break;
    case ZOE_Q4_K: q45_k(b, y, 0); break;
    case ZOE_Q5_K: q45_k(b, y, 1); break;
    case ZOE_Q6_K: q6_k(b, y); break;
    default: break;
  }
}

void zoe_dequant_blocks(zoe_dtype dt, const void *src, int64_t nblocks, float *dst) {
  int64_t bl = zoe_dtype_block(dt);
  size_t bs = zoe_dtype_size(dt);
  for (int64_t i = 0; i < nblocks; i++) one_block(dt, (const uint8_t *)src + (size_t)i * bs, dst + i * bl);
}

void zoe_dequant_range(zoe_dtype dt, const void *base, int64_t first, int64_t n, float *dst) {
  int64_t bl = zoe_dtype_block(dt);
  size_t bs = zoe_dtype_size(dt);
  float tmp[256];
  while (n > 0) {
    int64_t blk = first / bl, at = first % bl, take = bl - at < n ? bl - at : n;
    const uint8_t *b = (const uint8_t *)base + (size_t)blk * bs;
    if (at == 0 && take == bl) {
      one_block(dt, b, dst);
    } else {
      one_block(dt, b, tmp);
      memcpy(dst, tmp + at, (size_t)take * sizeof(float));
    }
    dst += take;
    first += take;
    n -= take;
  }
}
