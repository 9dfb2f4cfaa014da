/*
** dtype.h: element types and conversions between them.
** Compute is f32; f16 and bf16 are storage types widened inside kernels.
** Narrowing rounds to nearest even, bit-exact with PyTorch.
*/
#ifndef ZOE_DTYPE_H
#define ZOE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum zoe_dtype {
  ZOE_F32,
  ZOE_F16,
  ZOE_BF16,
  ZOE_I32,
  ZOE_U8,
  ZOE_I64,  /* storage only: read from checkpoints, converted before use */
  ZOE_BOOL, /* storage only: one byte, 0 or 1 */
  ZOE_F64,  /* storage only: reference fixtures keep Python floats as F64 */
  ZOE_NDTYPES
} zoe_dtype;

size_t zoe_dtype_size(zoe_dtype dt);
const char *zoe_dtype_name(zoe_dtype dt);           /* "f32", "bf16", ... */
int zoe_dtype_from_name(const char *name, zoe_dtype *out); /* 0 or ZOE_EINVAL */
bool zoe_dtype_is_float(zoe_dtype dt);

static inline uint32_t zoe_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float zoe_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float zoe_bf16_to_f32(uint16_t h) { return zoe_bits_f32((uint32_t)h << 16); }
static inline uint16_t zoe_f32_to_bf16(float f) {
  uint32_t u = zoe_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN, as PyTorch */
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
uint16_t zoe_f32_to_f16(float f);
float zoe_f16_to_f32(uint16_t h);

/* Element 'i' of a buffer of dtype 'dt' as a double, and the reverse. */
double zoe_load_elem(zoe_dtype dt, const void *base, int64_t i);
void zoe_store_elem(zoe_dtype dt, void *base, int64_t i, double v);

/* Convert 'n' contiguous elements; vectorized where the CPU allows. */
void zoe_convert(zoe_dtype to, void *dst, zoe_dtype from, const void *src, int64_t n);

#endif
