/*
** convert.c: bulk dtype conversion of contiguous buffers.
** The loops are written so the compiler vectorizes them; target_clones picks
** the widest instruction set the CPU has at load time.
*/
#include <immintrin.h>

#include <stdatomic.h>

#include "dtype.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

VECTORIZE static void f32_to_bf16(uint16_t *dst, const float *src, int64_t n) {
  const uint32_t *u = (const uint32_t *)src;
  for (int64_t i = 0; i < n; i++) {
    uint32_t x = u[i];
    uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    dst[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : r);
  }
}

VECTORIZE static void bf16_to_f32(float *dst, const uint16_t *src, int64_t n) {
  uint32_t *u = (uint32_t *)dst;
  for (int64_t i = 0; i < n; i++) u[i] = (uint32_t)src[i] << 16;
}

__attribute__((target("avx2,f16c"))) static void f32_to_f16_f16c(uint16_t *dst, const float *src,
                                                                 int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    /* the instruction keeps a NaN's payload; PyTorch writes the canonical 0x7e00 */
    __m256 isnan = _mm256_cmp_ps(_mm256_loadu_ps(src + i), _mm256_loadu_ps(src + i), _CMP_UNORD_Q);
    if (!_mm256_movemask_ps(isnan)) {
      _mm_storeu_si128((__m128i *)(dst + i), h);
    } else {
      for (int k = 0; k < 8; k++) dst[i + k] = zoe_f32_to_f16(src[i + k]);
    }
  }
  for (; i < n; i++) dst[i] = zoe_f32_to_f16(src[i]);
}

__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(float *dst, const uint16_t *src,
                                                                 int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
  for (; i < n; i++) dst[i] = zoe_f16_to_f32(src[i]);
}

static int has_f16c(void) {
  static int cached = -1;
  if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return cached;
}

#define TYPED_LOOP(TD, TS, EXPR)                                                   \
  do {                                                                             \
    TD *d_ = dst;                                                                  \
    const TS *s_ = src;                                                            \
    for (int64_t i = 0; i < n; i++) { TS x = s_[i]; d_[i] = (TD)(EXPR); }       \
  } while (0)

VECTORIZE static void i32_to_f32(float *dst, const int32_t *src, int64_t n) {
  TYPED_LOOP(float, int32_t, x);
}
VECTORIZE static void u8_to_f32(float *dst, const uint8_t *src, int64_t n) {
  TYPED_LOOP(float, uint8_t, x);
}

/* float8 -> bf16 bits, all 256 codes, made once (the values are exact in bf16) */
static uint16_t f8_tables[2][256];
static atomic_int f8_ready;

const uint16_t *zoe_f8_bf16_table(zoe_dtype dt) {
  if (!atomic_load_explicit(&f8_ready, memory_order_acquire)) {
    for (int c = 0; c < 256; c++) { /* racing threads write the same values */
      f8_tables[0][c] = zoe_f32_to_bf16(zoe_f8_e4m3_to_f32((uint8_t)c));
      f8_tables[1][c] = zoe_f32_to_bf16(zoe_f8_e5m2_to_f32((uint8_t)c));
    }
    atomic_store_explicit(&f8_ready, 1, memory_order_release);
  }
  return f8_tables[dt == ZOE_F8_E5M2];
}

static void f8_to_bf16(uint16_t *dst, zoe_dtype from, const uint8_t *src, int64_t n) {
  const uint16_t *t = zoe_f8_bf16_table(from);
  for (int64_t i = 0; i < n; i++) dst[i] = t[src[i]];
}

static void f8_to_f32(float *dst, zoe_dtype from, const uint8_t *src, int64_t n) {
  const uint16_t *t = zoe_f8_bf16_table(from);
  for (int64_t i = 0; i < n; i++) dst[i] = zoe_bf16_to_f32(t[src[i]]);
}

void zoe_convert(zoe_dtype to, void *dst, zoe_dtype from, const void *src, int64_t n) {
  if (n <= 0) return;
  if (to == from) {
    memcpy(dst, src, (size_t)n * zoe_dtype_size(to));
    return;
  }
  if (from == ZOE_F32 && to == ZOE_BF16) { f32_to_bf16(dst, src, n); return; }
  if (from == ZOE_BF16 && to == ZOE_F32) { bf16_to_f32(dst, src, n); return; }
  if (from == ZOE_F32 && to == ZOE_F16 && has_f16c()) { f32_to_f16_f16c(dst, src, n); return; }
  if (from == ZOE_F16 && to == ZOE_F32 && has_f16c()) { f16_to_f32_f16c(dst, src, n); return; }
  if (from == ZOE_I32 && to == ZOE_F32) { i32_to_f32(dst, src, n); return; }
  if (from == ZOE_U8 && to == ZOE_F32) { u8_to_f32(dst, src, n); return; }
  if ((from == ZOE_F8_E4M3 || from == ZOE_F8_E5M2) && to == ZOE_F32) { f8_to_f32(dst, from, src, n); return; }
  if ((from == ZOE_F8_E4M3 || from == ZOE_F8_E5M2) && to == ZOE_BF16) { f8_to_bf16(dst, from, src, n); return; }
  for (int64_t i = 0; i < n; i++) zoe_store_elem(to, dst, i, zoe_load_elem(from, src, i));
}
