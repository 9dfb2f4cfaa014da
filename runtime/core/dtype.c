/*
** dtype.c: element types, scalar and bulk conversions.
*/
#include "dtype.h"

#include <math.h>

#include "error.h"

static const struct {
  const char *name;
  size_t size;
  bool is_float;
} dtypes[ZOE_NDTYPES] = {
  [ZOE_F32] = {"f32", 4, true},  [ZOE_F16] = {"f16", 2, true},
  [ZOE_BF16] = {"bf16", 2, true}, [ZOE_I32] = {"i32", 4, false},
  [ZOE_U8] = {"u8", 1, false},   [ZOE_I64] = {"i64", 8, false},
  [ZOE_BOOL] = {"bool", 1, false}, [ZOE_F64] = {"f64", 8, true},
  [ZOE_F8_E4M3] = {"f8_e4m3", 1, true}, [ZOE_F8_E5M2] = {"f8_e5m2", 1, true},
  /* quantized blocks: bytes per block (ggml's block_* structs) */
  [ZOE_Q4_0] = {"q4_0", 18, false}, [ZOE_Q4_1] = {"q4_1", 20, false},
  [ZOE_Q5_0] = {"q5_0", 22, false}, [ZOE_Q5_1] = {"q5_1", 24, false},
  [ZOE_Q8_0] = {"q8_0", 34, false}, [ZOE_Q2_K] = {"q2_k", 84, false},
  [ZOE_Q3_K] = {"q3_k", 110, false}, [ZOE_Q4_K] = {"q4_k", 144, false},
  [ZOE_Q5_K] = {"q5_k", 176, false}, [ZOE_Q6_K] = {"q6_k", 210, false},
};

size_t zoe_dtype_size(zoe_dtype dt) { return dt < ZOE_NDTYPES ? dtypes[dt].size : 0; }
const char *zoe_dtype_name(zoe_dtype dt) { return dt < ZOE_NDTYPES ? dtypes[dt].name : "?"; }
bool zoe_dtype_is_float(zoe_dtype dt) { return dt < ZOE_NDTYPES && dtypes[dt].is_float; }
size_t zoe_dtype_align(zoe_dtype dt) { return zoe_dtype_is_quant(dt) ? 2 : zoe_dtype_size(dt); }

int zoe_dtype_from_name(const char *name, zoe_dtype *out) {
  static const struct { const char *alias; zoe_dtype dt; } aliases[] = {
    {"float32", ZOE_F32}, {"float", ZOE_F32},   {"float16", ZOE_F16}, {"half", ZOE_F16},
    {"bfloat16", ZOE_BF16}, {"int32", ZOE_I32}, {"int", ZOE_I32},     {"uint8", ZOE_U8},
    {"int64", ZOE_I64}, {"long", ZOE_I64}, {"float64", ZOE_F64}, {"double", ZOE_F64},
    {"int64", ZOE_I64}, {"long", ZOE_I64}, {"float8_e4m3fn", ZOE_F8_E4M3}, {"float8_e5m2", ZOE_F8_E5M2},
    {"q2_K", ZOE_Q2_K}, {"q3_K", ZOE_Q3_K}, {"q4_K", ZOE_Q4_K}, {"q5_K", ZOE_Q5_K}, {"q6_K", ZOE_Q6_K},
  };
  for (int i = 0; i < ZOE_NDTYPES; i++)
    if (strcmp(name, dtypes[i].name) == 0) { *out = (zoe_dtype)i; return 0; }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(name, aliases[i].alias) == 0) { *out = aliases[i].dt; return 0; }
  return ZOE_EINVAL;
}

/* IEEE binary16, round to nearest even; NaN becomes the quiet NaN 0x7e00. */
uint16_t zoe_f32_to_f16(float f) {
  uint32_t x = zoe_f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504 */
  if (ax >= 0x38800000u) {                                /* normal in f16 */
    uint32_t r = ax - 0x38000000u;                         /* rebias 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
  }
  if (ax < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
  uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - e; /* value / 2^-24 = m >> shift */
  uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) q++;
  return (uint16_t)(sign | q);
}

float zoe_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return zoe_bits_f32(sign | 0x7f800000u | (m << 13));
  if (e == 0) { /* zero or subnormal: m * 2^-24 */
    float v = (float)m * 0x1p-24f;
    return sign ? -v : v;
  }
  return zoe_bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* ---- float8 ---- */

static float f8_to_f32(uint8_t b, int mbits, int bias) {
  int e = (b & 0x7f) >> mbits, m = b & ((1 << mbits) - 1);
  float v = e ? ldexpf((float)((1 << mbits) | m), e - bias - mbits) : ldexpf((float)m, 1 - bias - mbits);
  return b & 0x80 ? -v : v;
}

float zoe_f8_e4m3_to_f32(uint8_t b) { return (b & 0x7f) == 0x7f ? NAN : f8_to_f32(b, 3, 7); }

float zoe_f8_e5m2_to_f32(uint8_t b) {
  if ((b & 0x7c) == 0x7c) return (b & 3) ? NAN : (b & 0x80) ? -INFINITY : INFINITY;
  return f8_to_f32(b, 2, 15);
}

/* Round |f| to nearest even on a grid of 'mbits' mantissa bits and exponent bias 'bias'; the code
** may run past the largest finite one (the caller decides what overflow is). */
static unsigned f8_round(float a, int mbits, int bias) {
  int e;
  float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
  e -= 1;                  /* a = (2m) * 2^e, 2m in [1, 2) */
  if (e < 1 - bias) return (unsigned)rintf(ldexpf(a, bias - 1 + mbits)); /* subnormal: steps of 2^(1-bias-mbits) */
  unsigned q = (unsigned)rintf(ldexpf(m, mbits + 1)); /* (1 + mant / 2^mbits) * 2^mbits, to nearest even */
  return ((unsigned)(e + bias) << mbits) + (q - (1u << mbits)); /* a carry out of the mantissa bumps the exponent */
}

uint8_t zoe_f32_to_f8_e4m3(float f) {
  uint8_t sign = signbit(f) ? 0x80 : 0;
  if (isnan(f) || isinf(f)) return sign | 0x7f;
  unsigned c = f == 0 ? 0 : f8_round(fabsf(f), 3, 7);
  return sign | (uint8_t)(c >= 0x7f ? 0x7f : c); /* past 448: NaN (e4m3fn has no infinity) */
}

uint8_t zoe_f32_to_f8_e5m2(float f) {
  uint8_t sign = signbit(f) ? 0x80 : 0;
  if (isnan(f)) return sign | 0x7f;
  if (isinf(f)) return sign | 0x7c;
  unsigned c = f == 0 ? 0 : f8_round(fabsf(f), 2, 15);
  return sign | (uint8_t)(c >= 0x7c ? 0x7c : c); /* past 57344: infinity */
}

double zoe_load_elem(zoe_dtype dt, const void *base, int64_t i) {
  switch (dt) {
    case ZOE_F32: return ((const float *)base)[i];
    case ZOE_F16: return zoe_f16_to_f32(((const uint16_t *)base)[i]);
    case ZOE_BF16: return zoe_bf16_to_f32(((const uint16_t *)base)[i]);
    case ZOE_I32: return ((const int32_t *)base)[i];
    case ZOE_U8: return ((const uint8_t *)base)[i];
    case ZOE_I64: return (double)((const int64_t *)base)[i];
    case ZOE_BOOL: return ((const uint8_t *)base)[i] != 0;
    case ZOE_F64: return ((const double *)base)[i];
    case ZOE_F8_E4M3: return zoe_f8_e4m3_to_f32(((const uint8_t *)base)[i]);
    case ZOE_F8_E5M2: return zoe_f8_e5m2_to_f32(((const uint8_t *)base)[i]);
    default: return 0;
  }
}

/* Integer stores truncate toward zero and saturate, so a NaN or a huge value is defined. */
static int64_t to_int(double v, double lo, double hi) {
  if (isnan(v)) return 0;
  if (v < lo) return (int64_t)lo;
  if (v >= hi) return (int64_t)hi;
  return (int64_t)v;
}

void zoe_store_elem(zoe_dtype dt, void *base, int64_t i, double v) {
  switch (dt) {
    case ZOE_F32: ((float *)base)[i] = (float)v; break;
    case ZOE_F16: ((uint16_t *)base)[i] = zoe_f32_to_f16((float)v); break;
    case ZOE_BF16: ((uint16_t *)base)[i] = zoe_f32_to_bf16((float)v); break;
    case ZOE_I32: ((int32_t *)base)[i] = (int32_t)to_int(v, -2147483648.0, 2147483647.0); break;
    case ZOE_U8: ((uint8_t *)base)[i] = (uint8_t)to_int(v, 0, 255); break;
    case ZOE_I64:
      ((int64_t *)base)[i] = v >= 0x1p63 ? INT64_MAX : to_int(v, -0x1p63, 0x1p63);
      break;
    case ZOE_BOOL: ((uint8_t *)base)[i] = v != 0; break;
    case ZOE_F64: ((double *)base)[i] = v; break;
    case ZOE_F8_E4M3: ((uint8_t *)base)[i] = zoe_f32_to_f8_e4m3((float)v); break;
    case ZOE_F8_E5M2: ((uint8_t *)base)[i] = zoe_f32_to_f8_e5m2((float)v); break;
    default: break;
  }
}
