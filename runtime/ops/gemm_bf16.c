/*
** gemm_bf16.c: C = alpha * op(A) op(B) + beta * C with AVX512-BF16 dot products.
**
** The product is put in one canonical form, O[i, j] = sum_k R(i, k) V(k, j):
** R is the side whose rows run along K, V the other. vdpbf16ps multiplies
** pairs along K, so R is used as it lies in memory: one dword of a row is the
** pair (R(i, 2p), R(i, 2p+1)), broadcast to all 16 lanes. A linear layer's
** bf16 weight W [N, K] is R (then O is C transposed: i runs over C's columns),
** a convolution's weight [Cout, K] too (O is C), so weights are never packed
** nor copied. V is converted to bf16 and packed once per call into panels of
** VW columns, pair-interleaved: dword (p, j) = (V(2p, j), V(2p+1, j)), so one
** 64-byte load feeds 16 columns. When R is not bf16 along K (an f32 product)
** it is converted to bf16 rows first.
**
** The micro-kernel keeps an MR x VW tile of O in 24 zmm accumulators (8 rows
** of R times 3 x 16 columns of V): per pair, 3 loads of V, 8 broadcasts of R
** and 24 vdpbf16ps (latency 6, 2 per cycle on Zen 5, so 12 in flight are needed).
** Cache blocking: K in blocks of at most KC pairs (an R micro-tile, MR x KC
** dwords, stays in L1 across the panels of a V block); V in blocks of
** JB_PANELS panels (in L2, reused by every R micro-tile of a unit). The
** threads share units of (RB_TILES micro-tiles of R) x (a V block); a unit
** sums its block of C in a scratch block and writes C once, with alpha and
** beta. Each element of C is summed in one fixed order: the same bits on any
** number of threads.
*/
#include "gemm_bf16.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "../core/alloc.h"
#include "bf16_simd.h"

#define TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

#define MR 8         /* rows of R in a micro-tile */
#define NZ 3         /* zmm of V columns in a micro-tile */
#define VW (16 * NZ) /* columns of a V panel */
#define KC 768       /* most K pairs per block: an R micro-tile is at most 24 KiB (L1) */
#define JB_PANELS 2  /* V panels per unit: a V block is at most 288 KiB (L2) */
#define RB_TILES 16  /* R micro-tiles per unit: a unit's block of C is 128 x 96 */

bool zoe_bf16_cpu(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

/* Element (x, k) of one side (x: R's row or V's column) is at data[x*sx + k*sk]. */
typedef struct side {
  const void *data;
  zoe_dtype dt;
  int64_t sx, sk;
} side;

typedef struct job {
  int64_t nr, nv, K, kp; /* rows of R, columns of V, K, pairs along K */
  side rs, vs;           /* where R and V come from */
  const uint16_t *r;     /* R as bf16 rows along K: the operand itself, or rpack */
  int64_t ldr;
  uint16_t *rpack;       /* R converted, rows of ldr = K rounded up to even */
  uint32_t *v;           /* V packed: panel q at v + q*VW*kp, [kp][nz*16] dwords */
  float *c;
  int64_t ldc;
  bool ct;               /* O is C transposed: O[i, j] at c[j*ldc + i] */
  float alpha, beta;
  const zoe_gemm_epilogue *ep; /* or NULL */
  int64_t kc; /* pairs per K block: KC at most, the blocks as even as can be */
  int64_t npanels, rtiles, units_r, units_v, rpack_blocks;
  atomic_int canceled, failed;
} job;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- conversion to bf16: vcvtne2ps2bf16 rounds to nearest even and flushes inputs below 2^-126 ---- */

TARGET static void round_to_bf16(const float *in, uint16_t *out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, in + i));
    _mm256_mask_storeu_epi16(out + i, m, (__m256i)h);
  }
}

static float side_elem(const side *s, int64_t x, int64_t k) {
  return (float)zoe_load_elem(s->dt, s->data, x * s->sx + k * s->sk);
}

/* ---- packing V ---- */

/* V(k, x) at f32 data[k*sk + x]: two rows along the columns make one row of pairs. */
TARGET static void pack_v_rows(const job *j, int64_t q, uint32_t *dst) {
  const float *src = j->vs.data;
  int64_t j0 = q * VW, w = min64(VW, j->nv - j0), nz = (w + 15) / 16;
  for (int64_t p = 0; p < j->kp; p++) {
    const float *r0 = src + 2 * p * j->vs.sk + j0;
    const float *r1 = 2 * p + 1 < j->K ? r0 + j->vs.sk : NULL;
    for (int64_t z = 0; z < nz; z++) {
      int64_t n = w - 16 * z;
      __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
      __m512 a = _mm512_maskz_loadu_ps(m, r0 + 16 * z);
      __m512 b = r1 ? _mm512_maskz_loadu_ps(m, r1 + 16 * z) : _mm512_setzero_ps();
      _mm512_storeu_si512(dst + (p * nz + z) * 16, zoe_bf16_interleave_pairs(a, b));
    }
  }
}

/* V(k, x) at f32 data[x*sx + k]: each column is a row of pairs; 16 x 16 blocks are transposed. */
TARGET static void pack_v_cols(const job *j, int64_t q, uint32_t *dst) {
  const float *src = j->vs.data;
  int64_t j0 = q * VW, w = min64(VW, j->nv - j0), nz = (w + 15) / 16;
  for (int64_t z = 0; z < nz; z++) {
    int64_t n = min64(16, w - 16 * z);
    for (int64_t p0 = 0; p0 < j->kp; p0 += 16) {
      int64_t k0 = 2 * p0, nk = min64(32, j->K - k0);
      __mmask16 lo = nk >= 16 ? 0xffff : (__mmask16)((1u << nk) - 1);
      __mmask16 hi = nk >= 32 ? 0xffff : nk > 16 ? (__mmask16)((1u << (nk - 16)) - 1) : 0;
      __m512i x[16];
      for (int t = 0; t < 16; t++) {
        if (t < n) {
          const float *s = src + (j0 + 16 * z + t) * j->vs.sx + k0;
          x[t] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, s + 16), _mm512_maskz_loadu_ps(lo, s));
        } else {
          x[t] = _mm512_setzero_si512();
        }
      }
      zoe_bf16_transpose16(x);
      for (int64_t pp = 0; pp < 16 && p0 + pp < j->kp; pp++)
        _mm512_storeu_si512(dst + ((p0 + pp) * nz + z) * 16, x[pp]);
    }
  }
}

/* Any dtype, any strides: element by element. */
TARGET static void pack_v_any(const job *j, int64_t q, uint32_t *dst) {
  int64_t j0 = q * VW, w = min64(VW, j->nv - j0), nz = (w + 15) / 16;
  float f[2 * VW];
  uint16_t h[2 * VW];
  for (int64_t p = 0; p < j->kp; p++) {
    for (int64_t x = 0; x < nz * 16; x++) {
      bool in = x < w;
      f[2 * x] = in ? side_elem(&j->vs, j0 + x, 2 * p) : 0.0f;
      f[2 * x + 1] = in && 2 * p + 1 < j->K ? side_elem(&j->vs, j0 + x, 2 * p + 1) : 0.0f;
    }
    round_to_bf16(f, h, 2 * nz * 16);
    memcpy(dst + p * nz * 16, h, (size_t)nz * 16 * sizeof(uint32_t));
  }
}

/* ---- packing R (when it is not bf16 along K) ---- */

TARGET static void pack_r_rows(const job *j, int64_t i0, int64_t i1) {
  float f[256];
  for (int64_t i = i0; i < i1; i++) {
    uint16_t *d = j->rpack + i * j->ldr;
    if (j->rs.dt == ZOE_F32 && j->rs.sk == 1) {
      round_to_bf16((const float *)j->rs.data + i * j->rs.sx, d, j->K);
    } else if ((j->rs.dt == ZOE_F8_E4M3 || j->rs.dt == ZOE_F8_E5M2) && j->rs.sk == 1) { /* exact in bf16 */
      zoe_convert(ZOE_BF16, d, j->rs.dt, (const uint8_t *)j->rs.data + i * j->rs.sx, j->K);
    } else {
      for (int64_t k0 = 0; k0 < j->K; k0 += 256) {
        int64_t n = min64(256, j->K - k0);
        for (int64_t k = 0; k < n; k++) f[k] = side_elem(&j->rs, i, k0 + k);
        round_to_bf16(f, d + k0, n);
      }
    }
    if (j->K & 1) d[j->K] = 0;
  }
}

#define RPACK_ROWS 64

static void pack_range(void *arg, int64_t b, int64_t e) {
  job *j = arg;
  for (int64_t u = b; u < e; u++) {
    if (u < j->npanels) {
      uint32_t *dst = j->v + u * VW * j->kp;
      if (j->vs.dt == ZOE_F32 && j->vs.sx == 1) pack_v_rows(j, u, dst);
      else if (j->vs.dt == ZOE_F32 && j->vs.sk == 1) pack_v_cols(j, u, dst);
      else pack_v_any(j, u, dst);
    } else {
      int64_t i0 = (u - j->npanels) * RPACK_ROWS;
      pack_r_rows(j, i0, min64(i0 + RPACK_ROWS, j->nr));
    }
  }
}

/* ---- the micro-kernel ---- */

INLINE __m512i broadcast_pair(const uint16_t *p) {
  uint32_t x;
  memcpy(&x, p, sizeof x);
  return _mm512_set1_epi32((int)x);
}

/*
** tile[r][0 .. 16*nz) = sum over pairs p0 .. p1 of R(row r) x V panel, plus, when
** 'half' is set, the lone last element of an odd K (pair p1, read as one word).
** vb points at pair p0 of the panel.
*/
#define DEFINE_KERNEL(NV)                                                                                       \
  TARGET static void kernel_##NV(const uint16_t *const rows[MR], int64_t p0, int64_t p1, bool half,            \
                                 const uint32_t *vb, float *tile) {                                           \
    __m512 acc[MR][NV];                                                                                       \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) \
        acc[r][z] = _mm512_setzero_ps();                                                                      \
    for (int64_t p = p0; p < p1; p++, vb += 16 * NV) {                                                        \
      __m512i b[NV];                                                                                          \
      _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) b[z] = _mm512_loadu_si512(vb + 16 * z);            \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                  \
        __m512i a = broadcast_pair(rows[r] + 2 * p);                                                          \
        _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) acc[r][z] =                                      \
            _mm512_dpbf16_ps(acc[r][z], (__m512bh)a, (__m512bh)b[z]);                                         \
      }                                                                                                       \
    }                                                                                                         \
    if (half) {                                                                                               \
      __m512i b[NV];                                                                                          \
      _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) b[z] = _mm512_loadu_si512(vb + 16 * z);            \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                  \
        __m512i a = _mm512_set1_epi32(rows[r][2 * p1]);                                                       \
        _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) acc[r][z] =                                      \
            _mm512_dpbf16_ps(acc[r][z], (__m512bh)a, (__m512bh)b[z]);                                         \
      }                                                                                                       \
    }                                                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) \
        _mm512_storeu_ps(tile + r * VW + 16 * z, acc[r][z]);                                                  \
  }
DEFINE_KERNEL(1)
DEFINE_KERNEL(2)
DEFINE_KERNEL(3)

/*
** kernel_3 for a panel of 33 to 40 columns (a 40-token prompt): the third vector is a
** ymm, which Zen 4's 256-bit units run in half the time of a zmm. Columns 40..47 of
** the tile are zeros.
*/
TARGET static void kernel_2h(const uint16_t *const rows[MR], int64_t p0, int64_t p1, bool half, const uint32_t *vb,
                             float *tile) {
  __m512 acc[MR][2];
  __m256 acc_h[MR];
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    acc_h[r] = _mm256_setzero_ps();
  }
#define STEP_2H(A)                                                                                 \
  do {                                                                                             \
    __m512i b0 = _mm512_loadu_si512(vb), b1 = _mm512_loadu_si512(vb + 16);                         \
    __m256i bh = _mm256_loadu_si256((const __m256i *)(vb + 32));                                   \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                         \
      __m512i a = (A);                                                                             \
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)a, (__m512bh)b0);                          \
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)a, (__m512bh)b1);                          \
      acc_h[r] = _mm256_dpbf16_ps(acc_h[r], (__m256bh)_mm512_castsi512_si256(a), (__m256bh)bh);    \
    }                                                                                              \
  } while (0)
  for (int64_t p = p0; p < p1; p++, vb += VW) STEP_2H(broadcast_pair(rows[r] + 2 * p));
  if (half) STEP_2H(_mm512_set1_epi32(rows[r][2 * p1])); /* the lone last element of an odd K */
#undef STEP_2H
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    _mm512_storeu_ps(tile + r * VW, acc[r][0]);
    _mm512_storeu_ps(tile + r * VW + 16, acc[r][1]);
    _mm256_storeu_ps(tile + r * VW + 32, acc_h[r]);
    _mm256_storeu_ps(tile + r * VW + 40, _mm256_setzero_ps());
  }
}

/*
** ---- from tiles to C ----
** A unit's block of C is summed in a scratch block laid out like C (rows of C,
** padded so that rows fall in different cache sets), then written to C once:
** C = alpha * S + beta * C. A tile written straight into C, transposed for a
** linear layer, touches 48 rows of C whose stride (6 KiB for 1536 features)
** maps them onto 2 of L1's 64 sets: every K block would refetch them.
*/

typedef struct block {
  float *s;       /* scratch: S[x][y] at s[x * lds + y], x a row of C in the block */
  int64_t lds;
  int64_t x0, y0; /* the block's first row and column in C */
  int64_t nx, ny;
} block;

/* tile rows r < mr, columns l < w (O[i0 + r][j0 + l]) into S, adding unless 'first' */
TARGET static void tile_to_block(const job *j, const block *b, const float *tile, int64_t i0, int mr, int64_t j0,
                                 int64_t w, bool first) {
  if (!j->ct) { /* O is C: tile row r is S row i0 + r - x0 */
    for (int r = 0; r < mr; r++) {
      float *d = b->s + (i0 + r - b->x0) * b->lds + (j0 - b->y0);
      for (int64_t z = 0; 16 * z < w; z++) { /* S rows are padded to 16: no masks */
        __m512 y = _mm512_loadu_ps(tile + r * VW + 16 * z);
        if (!first) y = _mm512_add_ps(y, _mm512_loadu_ps(d + 16 * z));
        _mm512_storeu_ps(d + 16 * z, y);
      }
    }
    return;
  }
  /* O is C transposed: tile column l is 8 floats of S row j0 + l - x0; 8 x 16 transposes */
  for (int64_t z = 0; 16 * z < w; z++) {
    __m512 rw[8], t[8], u[8];
    for (int r = 0; r < 8; r++) rw[r] = _mm512_loadu_ps(tile + r * VW + 16 * z);
    for (int r = 0; r < 8; r += 2) {
      t[r] = _mm512_unpacklo_ps(rw[r], rw[r + 1]);
      t[r + 1] = _mm512_unpackhi_ps(rw[r], rw[r + 1]);
    }
    for (int g = 0; g < 8; g += 4) { /* u[g + s], 128-bit lane L: rows g..g+3 of column 4L + s */
      u[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
      u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xee);
      u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
      u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xee);
    }
    __m256 col[16];
    for (int q = 0; q < 4; q++) {
      __m512 lo = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44), hi = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xee);
      lo = _mm512_shuffle_f32x4(lo, lo, 0xd8); /* columns q, 4 + q */
      hi = _mm512_shuffle_f32x4(hi, hi, 0xd8); /* columns 8 + q, 12 + q */
      col[q] = _mm512_castps512_ps256(lo);
      col[4 + q] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(lo), 1));
      col[8 + q] = _mm512_castps512_ps256(hi);
      col[12 + q] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(hi), 1));
    }
    int64_t n = min64(16, w - 16 * z);
    for (int64_t l = 0; l < n; l++) { /* rows past mr are copies: S has room for 8 (RB_TILES x MR columns) */
      float *d = b->s + (j0 + 16 * z + l - b->x0) * b->lds + (i0 - b->y0);
      __m256 y = first ? col[l] : _mm256_add_ps(col[l], _mm256_loadu_ps(d));
      _mm256_storeu_ps(d, y);
    }
  }
  (void)mr;
}

/* C = alpha * S + beta * C (+ the epilogue's bias) over the block, then its activation */
TARGET static void block_to_c(const job *j, const block *b) {
  __m512 va = _mm512_set1_ps(j->alpha), vb = _mm512_set1_ps(j->beta);
  int64_t full = b->ny / 16, n = b->ny % 16;
  __mmask16 m = (__mmask16)((1u << n) - 1);
  const float *bias = j->ep && j->ep->bias ? j->ep->bias + b->y0 : NULL;
  zoe_gemm_epilogue act = {NULL, j->ep ? j->ep->act : ZOE_ACT_NONE};
  for (int64_t x = 0; x < b->nx; x++) {
    const float *s = b->s + x * b->lds;
    float *c = j->c + (b->x0 + x) * j->ldc + b->y0;
    for (int64_t z = 0; z < full; z++) { /* masked stores are slow on Zen: only at the edge */
      __m512 y = _mm512_mul_ps(va, _mm512_loadu_ps(s + 16 * z));
      if (j->beta != 0.0f) y = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16 * z), y);
      if (bias) y = _mm512_add_ps(y, _mm512_loadu_ps(bias + 16 * z));
      _mm512_storeu_ps(c + 16 * z, y);
    }
    if (n) {
      __m512 y = _mm512_mul_ps(va, _mm512_loadu_ps(s + 16 * full));
      if (j->beta != 0.0f) y = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c + 16 * full), y);
      if (bias) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, bias + 16 * full));
      _mm512_mask_storeu_ps(c + 16 * full, m, y);
    }
    if (act.act != ZOE_ACT_NONE) zoe_gemm_epilogue_row(&act, c, 0, b->ny); /* the row is still in L1 */
  }
}

/* ---- the blocked loops ---- */

#define RB (RB_TILES * MR)    /* rows of R in a unit */
#define VB (JB_PANELS * VW)   /* columns of V in a unit */
#define BLOCK_FLOATS ((RB > VB ? RB : VB) * ((RB > VB ? VB : RB) + 16) + 16 * 16)

/* One unit: R micro-tiles t0 .. t1 times V panels q0 .. q1, all of K, summed in 'scratch'. */
static void run_unit(job *j, int64_t ur, int64_t uv, float *scratch) {
  float tile[MR * VW] __attribute__((aligned(64)));
  int64_t t0 = ur * RB_TILES, t1 = min64(t0 + RB_TILES, j->rtiles);
  int64_t q0 = uv * JB_PANELS, q1 = min64(q0 + JB_PANELS, j->npanels);
  int64_t i0 = t0 * MR, ni = min64(RB, j->nr - i0), v0 = q0 * VW, nvb = min64(VB, j->nv - v0);
  block b = {.s = scratch};
  if (j->ct) { /* rows of C are V's columns */
    b = (block){scratch, RB + 16, v0, i0, nvb, ni};
  } else {
    b = (block){scratch, VB + 16, i0, v0, ni, nvb};
  }
  for (int64_t kb = 0; kb < j->kp; kb += j->kc) {
    int64_t p1 = min64(kb + j->kc, j->kp);
    bool half = p1 == j->kp && (j->K & 1);
    int64_t pe = half ? p1 - 1 : p1;
    for (int64_t t = t0; t < t1; t++) {
      int64_t r0 = t * MR;
      const uint16_t *rows[MR];
      for (int r = 0; r < MR; r++) rows[r] = j->r + min64(r0 + r, j->nr - 1) * j->ldr; /* past the end: copies */
      for (int64_t q = q0; q < q1; q++) {
        int64_t w = min64(VW, j->nv - q * VW), nz = (w + 15) / 16;
        const uint32_t *vb = j->v + q * VW * j->kp + kb * nz * 16;
        if (nz == 3 && w <= 40) kernel_2h(rows, kb, pe, half, vb, tile);
        else if (nz == 3) kernel_3(rows, kb, pe, half, vb, tile);
        else if (nz == 2) kernel_2(rows, kb, pe, half, vb, tile);
        else kernel_1(rows, kb, pe, half, vb, tile);
        tile_to_block(j, &b, tile, r0, (int)min64(MR, j->nr - r0), q * VW, w, kb == 0);
      }
    }
  }
  block_to_c(j, &b);
}

static void compute_range(void *arg, int64_t begin, int64_t end) {
  job *j = arg;
  size_t bytes = BLOCK_FLOATS * sizeof(float);
  float *scratch = zoe_alloc(bytes, NULL);
  if (!scratch) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t u = begin; u < end; u++) {
    if (zoe_cancel_requested()) {
      atomic_store(&j->canceled, 1);
      break;
    }
    run_unit(j, u / j->units_v, u % j->units_v, scratch);
  }
  zoe_free(scratch, bytes);
}

/* K == 0: C = beta * C */
static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t x = 0; x < N; x++) C[i * ldc + x] = beta == 0.0f ? 0.0f : beta * C[i * ldc + x];
}

int zoe_gemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                  float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  if (K == 0) {
    scale_c(M, N, beta, C, ldc);
    return zoe_gemm_epilogue_rows(ep, M, N, C, ldc) ? zoe_errf(e, ZOE_ECANCELED, "gemm: canceled") : 0;
  }
  /* op(A)(m, k) and op(B)(k, n) as sides indexed (row or column, k) */
  side sa = {A.data, A.dtype, A.trans ? 1 : A.ld, A.trans ? A.ld : 1};
  side sb = {B.data, B.dtype, B.trans ? B.ld : 1, B.trans ? 1 : B.ld};
  job jb = {0}, *j = &jb;
  /* R is a bf16 operand along K when there is one (read in place), else the one along K */
  bool b_direct = sb.dt == ZOE_BF16 && sb.sk == 1, a_direct = sa.dt == ZOE_BF16 && sa.sk == 1;
  /* a float8 weight along K is R too: its rows widen through a table, never element by element as V */
  bool b_f8 = (sb.dt == ZOE_F8_E4M3 || sb.dt == ZOE_F8_E5M2) && sb.sk == 1;
  bool transposed = b_direct || (!a_direct && (b_f8 || (sa.sk != 1 && sb.sk == 1)));
  j->ct = transposed;
  j->rs = transposed ? sb : sa;
  j->vs = transposed ? sa : sb;
  j->nr = transposed ? N : M;
  j->nv = transposed ? M : N;
  j->K = K;
  j->kp = (K + 1) / 2;
  j->c = C;
  j->ldc = ldc;
  j->alpha = alpha;
  j->beta = beta;
  j->ep = ep;
  int64_t kblocks = (j->kp + KC - 1) / KC;
  j->kc = (j->kp + kblocks - 1) / kblocks;
  j->npanels = (j->nv + VW - 1) / VW;
  j->rtiles = (j->nr + MR - 1) / MR;
  j->units_r = (j->rtiles + RB_TILES - 1) / RB_TILES;
  j->units_v = (j->npanels + JB_PANELS - 1) / JB_PANELS;
  atomic_init(&j->canceled, 0);
  atomic_init(&j->failed, 0);
  size_t vbytes = (size_t)(j->npanels * VW * j->kp) * sizeof(uint32_t), rbytes = 0;
  int rc = 0;
  j->v = zoe_alloc(vbytes, e);
  if (!j->v) goto fail;
  if (j->rs.dt == ZOE_BF16 && j->rs.sk == 1) {
    j->r = j->rs.data;
    j->ldr = j->rs.sx;
  } else {
    j->ldr = K + (K & 1);
    rbytes = (size_t)(j->nr * j->ldr) * sizeof(uint16_t);
    if (!(j->rpack = zoe_alloc(rbytes, e))) goto fail;
    j->r = j->rpack;
    j->rpack_blocks = (j->nr + RPACK_ROWS - 1) / RPACK_ROWS;
  }
  rc = zoe_parallel_for(j->npanels + j->rpack_blocks, 1, pack_range, j);
  if (!rc) rc = zoe_parallel_for(j->units_r * j->units_v, 1, compute_range, j);
  if (!rc && atomic_load(&j->canceled)) rc = ZOE_ECANCELED;
  zoe_free(j->v, vbytes);
  zoe_free(j->rpack, rbytes);
  if (rc) return zoe_errf(e, rc, "gemm: canceled");
  if (atomic_load(&j->failed)) return zoe_errf(e, ZOE_ENOMEM, "gemm: out of memory for a block");
  return 0;
fail:
  zoe_free(j->v, vbytes);
  return e ? e->code : ZOE_ENOMEM;
}
