/*
** bf16_simd.h: AVX-512 helpers shared by the kernels that pack operands for
** vdpbf16ps (gemm_bf16.c, attention_bf16.c). Only for functions compiled with
** avx512f/bw/bf16 enabled (their callers' target attribute); never called on a
** CPU without them (zoe_bf16_cpu).
*/
#ifndef ZOE_BF16_SIMD_H
#define ZOE_BF16_SIMD_H

#include <immintrin.h>

#define ZOE_BF16_TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl,fma")))
#define ZOE_BF16_INLINE ZOE_BF16_TARGET static inline __attribute__((always_inline))

/* Dword l of the result holds words l and 16 + l of the source: (row k, row k+1) of column l. */
ZOE_BF16_INLINE __m512i zoe_bf16_interleave_pairs(__m512 k0, __m512 k1) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(k1, k0));
}

/* 16 x 16 dwords: r[i] element l becomes r[l] element i. */
ZOE_BF16_INLINE void zoe_bf16_transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) { /* u[i + s], 128-bit lane L: rows i..i+3 of column 4L + s */
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int s = 0; s < 4; s++) {
    __m512i a = _mm512_shuffle_i32x4(u[s], u[4 + s], 0x88), b = _mm512_shuffle_i32x4(u[s], u[4 + s], 0xdd);
    __m512i c = _mm512_shuffle_i32x4(u[8 + s], u[12 + s], 0x88), d = _mm512_shuffle_i32x4(u[8 + s], u[12 + s], 0xdd);
    r[s] = _mm512_shuffle_i32x4(a, c, 0x88);
    r[8 + s] = _mm512_shuffle_i32x4(a, c, 0xdd);
    r[4 + s] = _mm512_shuffle_i32x4(b, d, 0x88);
    r[12 + s] = _mm512_shuffle_i32x4(b, d, 0xdd);
  }
}

#endif
