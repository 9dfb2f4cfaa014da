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
};

size_t zoe_dtype_size(zoe_dtype dt) { return dt < ZOE_NDTYPES ? dtypes[dt].size : 0; }
const char *zoe_dtype_name(zoe_dtype dt) { return dt < ZOE_NDTYPES ? dtypes[dt].name : "?"; }
bool zoe_dtype_is_float(zoe_dtype dt) { return dt < ZOE_NDTYPES && dtypes[dt].is_float; }

int zoe_dtype_from_name(const char *name, zoe_dtype *out) {
  static const struct { const char *alias; zoe_dtype dt; } aliases[] = {
    {"float32", ZOE_F32}, {"float", ZOE_F32},   {"float16", ZOE_F16}, {"half", ZOE_F16},
    {"bfloat16", ZOE_BF16}, {"int32", ZOE_I32}, {"int", ZOE_I32},     {"uint8", ZOE_U8},
    {"int64", ZOE_I64}, {"long", ZOE_I64}, {"float64", ZOE_F64}, {"double", ZOE_F64},
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
    default: break;
  }
}
