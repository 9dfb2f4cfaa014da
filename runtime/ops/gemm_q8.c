/*
** gemm_q8.c: C = alpha * A W^T + beta * C with AVX512-VNNI int8 dot products, for
** a quantized weight W [N, K] in its int8 form (gemm_quant.h) and f32 activations
** A [M, K].
**
** Activations: each token's K values are quantized in groups of G (256, or 32)
** to int8 with one scale per group, d = max|x| / 127, q = round(x / d), and
** stored as unsigned bytes u = q + 128, because vpdpbusd multiplies unsigned
** bytes by signed ones: 4 pairs per 32-bit lane. They are packed per call into
** panels of VW tokens, interleaved by fours along K: dword (k/4, j) holds
** u[j][k..k+3], so one 64-byte load feeds 16 tokens. Per panel also: d per group,
** and per weight sub-block the sum of q (for the weight's min, b * sum x).
**
** Sums: for weight row n and token j, per weight sub-block s of 16 or 32 values,
**   I = sum u * q_w = sum q_x * q_w + 128 * sum q_w         (int32, exact)
**   group sum  Sg = sum_s ( a_s * I + b_s * sum q_x ) + corr (corr = -128 * sum_s a_s sum q_w)
**   O[n][j]   += d_x(g) * Sg
** so the int32 sum is turned to float once per sub-block (2 or 3 vector operations
** per 4 to 8 vpdpbusd), and the activation scale once per group.
**
** Micro-kernel: MR = 4 weight rows x VW = 48 tokens: 12 int32 and 12 float
** accumulators; weight dwords are broadcast from the int8 rows (q8_0: from the
** blocks themselves). Blocking as in gemm_bf16.c: K in blocks of KC; units of
** RB weight rows x VB tokens summed in a scratch block, written to C once. Each
** element is summed in one fixed order: the same bits on any number of threads.
*/
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "../core/alloc.h"
#include "gemm_quant.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

#define MR 4
#define VW 48          /* tokens per panel */
#define KC 16384       /* most K values per block (a multiple of 256): whole rows for Wan (measured: 2048 cost 10% at K = 8960) */
#define RB_TILES 16    /* weight micro-tiles per unit: 64 rows */
#define VB_PANELS 4    /* panels per unit: 192 tokens */
#define RB (RB_TILES * MR)
#define VB (VB_PANELS * VW)

typedef struct qjob {
  int64_t M, N, K, G, ng, ns, kc;
  const zoe_q8_weight *w;
  const float *a; /* activations [M, K] */
  int64_t lda;
  uint32_t *xq;  /* panel p: [K/4][nz*16] dwords at xq + p * (K/4) * VW */
  float *dx;     /* panel p: [ng][nz*16] at dx + p * ng * VW */
  float *sx;     /* panel p: [ns][nz*16] at sx + p * ns * VW (weights with a min) */
  int64_t npanels, rtiles, units_r, units_v;
  float *c;
  int64_t ldc;
  float alpha, beta;
  const zoe_gemm_epilogue *ep;
  atomic_int canceled, failed;
} qjob;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- activations: quantize a token, scatter its bytes into its panel ---- */

/* 16 x 16 dwords: r[i] element l becomes r[l] element i */
INLINE void transpose16i(__m512i r[16]) {
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

/* one token's row: u = q + 128 bytes into 'row', its scales into dx and sums of q into sx (lane x) */
TARGET static void quantize_row(const qjob *j, const float *src, uint8_t *row, float *dx, float *sx, int64_t lanes) {
  int64_t G = j->G, sb = j->w->sb;
  for (int64_t g = 0; g < j->ng; g++) {
    const float *xs = src + g * G;
    __m512 mx = _mm512_setzero_ps();
    for (int64_t k = 0; k < G; k += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(xs + k)));
    float amax = _mm512_reduce_max_ps(mx);
    __m512 inv = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    dx[g * lanes] = amax / 127.0f;
    int32_t run = 0; /* the sum of q over the current weight sub-block */
    for (int64_t k = 0; k < G; k += 16) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xs + k), inv)); /* to nearest even */
      q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
      _mm_storeu_si128((__m128i *)(row + g * G + k), _mm512_cvtepi32_epi8(_mm512_add_epi32(q, _mm512_set1_epi32(128))));
      if (sx) {
        run += _mm512_reduce_add_epi32(q);
        if ((k + 16) % sb == 0) {
          sx[((g * G + k) / sb) * lanes] = (float)run;
          run = 0;
        }
      }
    }
  }
}

/*
** Sixteen tokens (one vector of a panel): each row quantized into a buffer, then the bytes moved
** into the panel's interleaved layout by 16 x 16 dword transposes, one 64-byte store per quad.
*/
TARGET static void quantize_16(const qjob *j, int64_t p, int64_t z) {
  int64_t w = min64(VW, j->M - p * VW), lanes = (w + 15) / 16 * 16, n = min64(16, w - 16 * z), K = j->K;
  if (n <= 0) return; /* the last panel's unused vectors */
  uint32_t *xq = j->xq + p * (K / 4) * VW + 16 * z;
  float *dx = j->dx + p * j->ng * VW + 16 * z, *sx = j->sx ? j->sx + p * j->ns * VW + 16 * z : NULL;
  uint8_t *rows = zoe_alloc((size_t)(16 * K), NULL);
  if (!rows) {
    atomic_store(&((qjob *)j)->failed, 1);
    return;
  }
  memset(rows, 128, (size_t)(16 * K)); /* tokens past the end: q = 0 */
  for (int64_t x = 0; x < n; x++)
    quantize_row(j, j->a + (p * VW + 16 * z + x) * j->lda, rows + x * K, dx + x, sx ? sx + x : NULL, lanes);
  int64_t quads = K / 4, t0 = 0;
  for (; t0 + 16 <= quads; t0 += 16) {
    __m512i r[16];
    for (int x = 0; x < 16; x++) r[x] = _mm512_loadu_si512(rows + x * K + 4 * t0);
    transpose16i(r);
    for (int i = 0; i < 16; i++) _mm512_storeu_si512(xq + (t0 + i) * lanes, r[i]);
  }
  for (; t0 < quads; t0++) /* K not a multiple of 64 */
    for (int x = 0; x < 16; x++) memcpy(xq + t0 * lanes + x, rows + x * K + 4 * t0, 4);
  zoe_free(rows, (size_t)(16 * K));
}

static void quantize_range(void *arg, int64_t b, int64_t e) {
  qjob *j = arg;
  for (int64_t u = b; u < e; u++) quantize_16(j, u / 3, u % 3);
}

/* ---- the micro-kernel ---- */

/*
** S rows r < MR (float, 'lds' apart, the panel's columns) += the K-block's groups g0 .. g1 of
** weight rows wr[r] (int8 rows), scales ar/br (sub-blocks from 0), corrections cr (groups from 0).
*/
#define DEFINE_KERNEL(NZ, SB, MIN)                                                                                  \
  TARGET static void kernel_##NZ##_##SB##_##MIN(const qjob *j, const uint8_t *const wr[MR], const float *const ar[MR], \
                                                const float *const br[MR], const float *const cr[MR], int64_t g0,   \
                                                int64_t g1, const uint32_t *xq, const float *dx, const float *sx,   \
                                                float *S, int64_t lds) {                                            \
    const zoe_q8_weight *w = j->w;                                                                                  \
    const int64_t G = j->G, lanes = NZ * 16;                                                                        \
    for (int64_t g = g0; g < g1; g++) {                                                                             \
      __m512 ag[MR][NZ];                                                                                            \
      _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++)     \
          ag[r][z] = _mm512_setzero_ps();                                                                           \
      for (int64_t s = g * G / SB; s < (g + 1) * G / SB; s++) {                                                     \
        int64_t k0 = s * SB;                                                                                        \
        const uint8_t *wp[MR];                                                                                      \
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) wp[r] =                                                \
            wr[r] + (k0 / 32) * w->bstride + w->boff + k0 % 32;                                                     \
        const uint32_t *xp = xq + (k0 / 4) * lanes;                                                                 \
        __m512i ai[MR][NZ];                                                                                         \
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++)   \
            ai[r][z] = _mm512_setzero_si512();                                                                      \
        _Pragma("GCC unroll 8") for (int t = 0; t < SB / 4; t++) {                                                  \
          __m512i v[NZ];                                                                                            \
          _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) v[z] = _mm512_loadu_si512(xp + t * lanes + 16 * z); \
          _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {                                                    \
            uint32_t q4;                                                                                            \
            memcpy(&q4, wp[r] + 4 * t, 4);                                                                          \
            __m512i wv = _mm512_set1_epi32((int)q4);                                                                \
            _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) ai[r][z] = _mm512_dpbusd_epi32(ai[r][z], v[z], wv); \
          }                                                                                                         \
        }                                                                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {                                                      \
          __m512 sa = _mm512_set1_ps(ar[r][s]);                                                                     \
          _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) ag[r][z] =                                           \
              _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[r][z]), sa, ag[r][z]);                                          \
        }                                                                                                           \
        if (MIN) {                                                                                                  \
          __m512 sv[NZ];                                                                                            \
          _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) sv[z] = _mm512_loadu_ps(sx + s * lanes + 16 * z);    \
          _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {                                                    \
            __m512 sb_ = _mm512_set1_ps(br[r][s]);                                                                  \
            _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) ag[r][z] = _mm512_fmadd_ps(sb_, sv[z], ag[r][z]);  \
          }                                                                                                         \
        }                                                                                                           \
      }                                                                                                             \
      __m512 d[NZ];                                                                                                 \
      _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) d[z] = _mm512_loadu_ps(dx + g * lanes + 16 * z);         \
      _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {                                                        \
        __m512 c = _mm512_set1_ps(cr[r][g]);                                                                        \
        _Pragma("GCC unroll 3") for (int z = 0; z < NZ; z++) {                                                      \
          float *o = S + r * lds + 16 * z;                                                                          \
          _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_add_ps(ag[r][z], c), d[z], _mm512_loadu_ps(o)));               \
        }                                                                                                           \
      }                                                                                                             \
    }                                                                                                               \
  }

#define DEFINE_KERNELS(NZ) \
  DEFINE_KERNEL(NZ, 32, 0) \
  DEFINE_KERNEL(NZ, 32, 1) \
  DEFINE_KERNEL(NZ, 16, 0) \
  DEFINE_KERNEL(NZ, 16, 1)
DEFINE_KERNELS(1)
DEFINE_KERNELS(2)
DEFINE_KERNELS(3)

typedef void (*kernel_fn)(const qjob *, const uint8_t *const[MR], const float *const[MR], const float *const[MR],
                          const float *const[MR], int64_t, int64_t, const uint32_t *, const float *, const float *,
                          float *, int64_t);

static kernel_fn pick(int nz, int sb, bool min) {
  static const kernel_fn table[3][2][2] = {
    {{kernel_1_32_0, kernel_1_32_1}, {kernel_1_16_0, kernel_1_16_1}},
    {{kernel_2_32_0, kernel_2_32_1}, {kernel_2_16_0, kernel_2_16_1}},
    {{kernel_3_32_0, kernel_3_32_1}, {kernel_3_16_0, kernel_3_16_1}},
  };
  return table[nz - 1][sb == 16][min];
}

/* ---- units ---- */

#define LDS (VB + 16) /* scratch rows padded so they fall in different cache sets */

/* 16 x 16 floats: r[i] element l becomes r[l] element i */
INLINE void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) { /* u[i + s], 128-bit lane L: rows i..i+3 of column 4L + s */
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int s = 0; s < 4; s++) {
    __m512 a = _mm512_shuffle_f32x4(u[s], u[4 + s], 0x88), b = _mm512_shuffle_f32x4(u[s], u[4 + s], 0xdd);
    __m512 c = _mm512_shuffle_f32x4(u[8 + s], u[12 + s], 0x88), d = _mm512_shuffle_f32x4(u[8 + s], u[12 + s], 0xdd);
    r[s] = _mm512_shuffle_f32x4(a, c, 0x88);
    r[8 + s] = _mm512_shuffle_f32x4(a, c, 0xdd);
    r[4 + s] = _mm512_shuffle_f32x4(b, d, 0x88);
    r[12 + s] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
}

/*
** C[token][n] = alpha * S[n][token] + beta * C, in 16 x 16 transposes (S's padding rows and
** columns are read, never written out), then the epilogue on the unit's columns of each row.
*/
TARGET static void block_to_c(const qjob *j, const float *S, int64_t n0, int64_t nn, int64_t m0, int64_t nm) {
  __m512 va = _mm512_set1_ps(j->alpha), vb = _mm512_set1_ps(j->beta);
  const float *bias = j->ep && j->ep->bias ? j->ep->bias + n0 : NULL; /* added here, in the same pass */
  zoe_gemm_epilogue act = {NULL, j->ep ? j->ep->act : ZOE_ACT_NONE};
  for (int64_t x0 = 0; x0 < nm; x0 += 16) {
    for (int64_t y0 = 0; y0 < nn; y0 += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(S + (y0 + i) * LDS + x0);
      transpose16(r);
      __mmask16 m = nn - y0 >= 16 ? 0xffff : (__mmask16)((1u << (nn - y0)) - 1);
      for (int64_t i = 0; i < 16 && x0 + i < nm; i++) {
        float *c = j->c + (m0 + x0 + i) * j->ldc + n0 + y0;
        __m512 v = _mm512_mul_ps(va, r[i]);
        if (j->beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), v);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + y0));
        _mm512_mask_storeu_ps(c, m, v);
      }
    }
    if (act.act != ZOE_ACT_NONE)
      for (int64_t i = 0; i < 16 && x0 + i < nm; i++) zoe_gemm_epilogue_row(&act, j->c + (m0 + x0 + i) * j->ldc + n0, n0, nn);
  }
}

static void run_unit(qjob *j, int64_t ur, int64_t uv, float *S) {
  const zoe_q8_weight *w = j->w;
  int64_t t0 = ur * RB_TILES, t1 = min64(t0 + RB_TILES, j->rtiles);
  int64_t q0 = uv * VB_PANELS, q1 = min64(q0 + VB_PANELS, j->npanels);
  int64_t n0 = t0 * MR, nn = min64(RB, j->N - n0), m0 = q0 * VW, nm = min64(VB, j->M - m0);
  memset(S, 0, (size_t)(RB * LDS) * sizeof(float));
  bool min = w->b != NULL;
  int64_t gper = j->kc / j->G;
  for (int64_t kb = 0; kb < j->K; kb += j->kc) {
    int64_t g0 = kb / j->G, g1 = min64(g0 + gper, j->ng);
    for (int64_t t = t0; t < t1; t++) {
      const uint8_t *wr[MR];
      const float *ar[MR], *br[MR], *cr[MR];
      for (int r = 0; r < MR; r++) {
        int64_t n = min64(t * MR + r, j->N - 1); /* rows past the end: copies, never written */
        wr[r] = w->q + n * w->row_bytes;
        ar[r] = w->a + n * w->ns;
        br[r] = min ? w->b + n * w->ns : NULL;
        cr[r] = w->corr + n * j->ng;
      }
      float *Srow = S + (t - t0) * MR * LDS;
      for (int64_t q = q0; q < q1; q++) {
        int64_t nz = (min64(VW, j->M - q * VW) + 15) / 16;
        const uint32_t *xq = j->xq + q * (j->K / 4) * VW;
        const float *dx = j->dx + q * j->ng * VW, *sx = j->sx ? j->sx + q * j->ns * VW : NULL;
        pick((int)nz, w->sb, min)(j, wr, ar, br, cr, g0, g1, xq, dx, sx, Srow + (q - q0) * VW, LDS);
      }
    }
  }
  block_to_c(j, S, n0, nn, m0, nm);
}

static void compute_range(void *arg, int64_t begin, int64_t end) {
  qjob *j = arg;
  size_t bytes = (size_t)(RB * LDS) * sizeof(float);
  float *S = zoe_alloc(bytes, NULL);
  if (!S) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (int64_t u = begin; u < end; u++) {
    if (zoe_cancel_requested()) {
      atomic_store(&j->canceled, 1);
      break;
    }
    run_unit(j, u / j->units_v, u % j->units_v, S);
  }
  zoe_free(S, bytes);
}

int zoe_gemm_q8(int64_t M, int64_t N, int64_t K, int G, float alpha, const float *A, int64_t lda,
                const zoe_q8_weight *w, float beta, float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  qjob jb = {0}, *j = &jb;
  j->M = M;
  j->N = N;
  j->K = K;
  j->G = G;
  j->ng = K / G;
  j->ns = K / w->sb;
  j->kc = KC;
  j->w = w;
  j->a = A;
  j->lda = lda;
  j->c = C;
  j->ldc = ldc;
  j->alpha = alpha;
  j->beta = beta;
  j->ep = ep;
  j->npanels = (M + VW - 1) / VW;
  j->rtiles = (N + MR - 1) / MR;
  j->units_r = (j->rtiles + RB_TILES - 1) / RB_TILES;
  j->units_v = (j->npanels + VB_PANELS - 1) / VB_PANELS;
  atomic_init(&j->canceled, 0);
  atomic_init(&j->failed, 0);
  size_t xbytes = (size_t)(j->npanels * (K / 4) * VW) * 4, dbytes = (size_t)(j->npanels * j->ng * VW) * 4;
  size_t sbytes = w->b ? (size_t)(j->npanels * j->ns * VW) * 4 : 0;
  j->xq = zoe_alloc(xbytes, e);
  j->dx = j->xq ? zoe_alloc(dbytes, e) : NULL;
  j->sx = j->dx && sbytes ? zoe_alloc(sbytes, e) : NULL;
  int rc = 0;
  if (!j->xq || !j->dx || (sbytes && !j->sx)) {
    rc = e ? e->code : ZOE_ENOMEM;
    goto done;
  }
  memset(j->xq, 0, xbytes); /* the padding tokens of the last panel */
  memset(j->dx, 0, dbytes);
  if (sbytes) memset(j->sx, 0, sbytes);
  rc = zoe_parallel_for(j->npanels * 3, 1, quantize_range, j); /* units: 16 tokens (a panel has 3) */
  if (!rc) rc = zoe_parallel_for(j->units_r * j->units_v, 1, compute_range, j);
  if (!rc && atomic_load(&j->canceled)) rc = ZOE_ECANCELED;
  if (rc) rc = zoe_errf(e, rc, "gemm: canceled");
  else if (atomic_load(&j->failed)) rc = zoe_errf(e, ZOE_ENOMEM, "gemm: out of memory for a block");
done:
  zoe_free(j->xq, xbytes);
  zoe_free(j->dx, dbytes);
  zoe_free(j->sx, sbytes);
  return rc;
}
