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

#include "../../include/zoe.h"

/* Elements per block: 32 or 256 for quantized types, 1 for the others. */
static inline int64_t zoe_dtype_block(zoe_dtype dt) {
  return dt >= ZOE_Q4_0 && dt <= ZOE_Q8_0 ? 32 : dt >= ZOE_Q2_K && dt < ZOE_NDTYPES ? 256 : 1;
}
static inline bool zoe_dtype_is_quant(zoe_dtype dt) { return dt >= ZOE_Q4_0 && dt < ZOE_NDTYPES; }
/* Bytes of 'n' elements (for quantized types n is a whole number of blocks). */
static inline size_t zoe_dtype_bytes(zoe_dtype dt, int64_t n) {
  return (size_t)(n / zoe_dtype_block(dt)) * zoe_dtype_size(dt);
}
/* The alignment a typed load of this dtype needs (a block's f16 scales need 2). */
size_t zoe_dtype_align(zoe_dtype dt);

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
/* float8: exact widening; narrowing rounds to nearest even (e4m3fn: past 448 is NaN, as PyTorch) */
float zoe_f8_e4m3_to_f32(uint8_t b);
float zoe_f8_e5m2_to_f32(uint8_t b);
uint8_t zoe_f32_to_f8_e4m3(float f);
uint8_t zoe_f32_to_f8_e5m2(float f);
/* bf16 bits of each of the 256 float8 codes (every one is exact in bf16; NaN codes give a NaN) */
const uint16_t *zoe_f8_bf16_table(zoe_dtype dt);

/* Element 'i' of a buffer of dtype 'dt' as a double, and the reverse. */
double zoe_load_elem(zoe_dtype dt, const void *base, int64_t i);
void zoe_store_elem(zoe_dtype dt, void *base, int64_t i, double v);

/* Convert 'n' contiguous elements; vectorized where the CPU allows. */
void zoe_convert(zoe_dtype to, void *dst, zoe_dtype from, const void *src, int64_t n);

#endif
