/*
** gemm_quant.c: which path a product with a quantized weight takes, and the
** weight's int8 form for the VNNI kernel (gemm_q8.c).
**
** int8 path: the weight W [N, K] (a linear layer's, rows along K, K a multiple
** of 32, rows contiguous) on a CPU with AVX512-VNNI, unless the run is f32
** (ZOE_PRECISION=f32 or a forced OpenBLAS backend). Each call turns the blocks
** into int8 values q with y = a*q + b per sub-block (q8_0 is read in place),
** once per call rather than once per tile of activations.
** Widening path (any other case): rows of the weight dequantized into panels
** of bf16 (f32 for an f32 run) for the ordinary backends; a panel is most of the
** weight, because the bf16 kernel packs the activations again for each call.
*/
#include "gemm_quant.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/quant.h"
#include "gemm_bf16.h"

bool zoe_q8_cpu(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
}

static float half(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return zoe_f16_to_f32(h);
}

/* ---- one block -> int8 values q, and per sub-block a (scale) and b (min): y = a*q + b ---- */

#define TARGET __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl")))

/* sum of n = 16 or 32 signed bytes: unsigned sums of (q + 128), less 128 n */
TARGET static int32_t sum_s8(const int8_t *q, int n) {
  __m256i v = n == 32 ? _mm256_loadu_si256((const __m256i *)q) : _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q));
  if (n == 16) v = _mm256_inserti128_si256(v, _mm_set1_epi8((char)0x80), 1); /* adds nothing once flipped */
  __m256i s = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
  __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi64(t, _mm_unpackhi_epi64(t, t));
  return (int32_t)_mm_cvtsi128_si64(t) - 128 * n;
}

/* q4_K / q5_K values: 4 chunks of 32 bytes, low nibbles then high nibbles (q5_K: + 16 from qh bits) */
TARGET static void nibbles_k45(const uint8_t *qs, const uint8_t *qh, int8_t *q) {
  const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
  __m256i h = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
  for (int c = 0; c < 4; c++) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if (qh) { /* bit 2c (low half) and 2c+1 (high half) of each qh byte; a 16-bit shift, then one bit per byte */
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c), one), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), one), 4));
    }
    _mm256_storeu_si256((__m256i *)(q + 64 * c), lo);
    _mm256_storeu_si256((__m256i *)(q + 64 * c + 32), hi);
  }
}

/* q6_K values: element h*128 + 32r + l: low 4 bits from ql, high 2 from qh, less 32 */
TARGET static void values_q6k(const uint8_t *ql, const uint8_t *qh, int8_t *q) {
  const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3), off = _mm256_set1_epi8(32);
  for (int h = 0; h < 2; h++) {
    __m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
    for (int r = 0; r < 4; r++) {
      __m256i lb = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + (r & 1) * 32));
      __m256i low = r < 2 ? _mm256_and_si256(lb, m4) : _mm256_and_si256(_mm256_srli_epi16(lb, 4), m4);
      __m256i high = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * r), m2);
      __m256i v = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 4)), off);
      _mm256_storeu_si256((__m256i *)(q + 128 * h + 32 * r), v);
    }
  }
}

/* q4_0, q4_1, q5_0, q5_1: element j < 16 in the low nibble of qs[j], j + 16 in the high one */
static void unpack_32(zoe_dtype dt, const uint8_t *blk, int8_t *q, float *a, float *b) {
  bool min = dt == ZOE_Q4_1 || dt == ZOE_Q5_1, five = dt == ZOE_Q5_0 || dt == ZOE_Q5_1;
  const uint8_t *p = blk + (min ? 4 : 2);
  uint32_t qh = 0;
  if (five) {
    memcpy(&qh, p, 4);
    p += 4;
  }
  int off = min ? 0 : five ? 16 : 8;
  for (int j = 0; j < 16; j++) {
    q[j] = (int8_t)((p[j] & 15) + (int)((qh >> j) & 1) * 16 - off);
    q[j + 16] = (int8_t)((p[j] >> 4) + (int)((qh >> (j + 16)) & 1) * 16 - off);
  }
  a[0] = half(blk);
  if (min) b[0] = half(blk + 2);
}

static void scale_min_k4(int k, const uint8_t *q, int *sc, int *m) {
  if (k < 4) {
    *sc = q[k] & 63;
    *m = q[k + 4] & 63;
  } else {
    *sc = (q[k + 4] & 15) | ((q[k - 4] >> 6) << 4);
    *m = (q[k + 4] >> 4) | ((q[k] >> 6) << 4);
  }
}

/* q4_K, q5_K: 8 sub-blocks of 32; a = d*sc, b = -(dmin*m), rounded as ggml's dequantization rounds them */
static void unpack_k45(bool five, const uint8_t *blk, int8_t *q, float *a, float *b) {
  float d = half(blk), dmin = half(blk + 2);
  const uint8_t *sc = blk + 4, *qh = blk + 16, *qs = blk + (five ? 48 : 16);
  for (int k = 0; k < 8; k++) {
    int s, m;
    scale_min_k4(k, sc, &s, &m);
    a[k] = d * (float)s;
    b[k] = -(dmin * (float)m);
  }
  nibbles_k45(qs, five ? qh : NULL, q);
}

/* q6_K: 16 sub-blocks of 16, a = d*sc; element h*128 + 32r + l as in quant.c */
static void unpack_q6k(const uint8_t *blk, int8_t *q, float *a) {
  const uint8_t *ql = blk, *qh = blk + 128;
  const int8_t *sc = (const int8_t *)(blk + 192);
  float d = half(blk + 208);
  for (int k = 0; k < 16; k++) a[k] = d * (float)sc[k];
  values_q6k(ql, qh, q);
}

/* q2_K, q3_K: 16 sub-blocks of 16, element (h, j, s, l) at h*128 + j*32 + s*16 + l is sub-block h*8 + 2j + s */
static void unpack_q23k(zoe_dtype dt, const uint8_t *blk, int8_t *q, float *a, float *b) {
  bool three = dt == ZOE_Q3_K;
  const uint8_t *qs = blk + (three ? 32 : 16), *hmask = blk, *sc = three ? blk + 96 : blk;
  float d = half(blk + (three ? 108 : 80)), dmin = three ? 0 : half(blk + 82);
  for (int k = 0; k < 16; k++) {
    if (three) {
      int lo = k < 8 ? sc[k] & 15 : sc[k - 8] >> 4, hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
      a[k] = d * (float)((lo | hi << 4) - 32);
    } else {
      a[k] = d * (float)(sc[k] & 15);
      b[k] = -(dmin * (float)(sc[k] >> 4));
    }
  }
  for (int h = 0; h < 2; h++)
    for (int j = 0; j < 4; j++)
      for (int s = 0; s < 2; s++)
        for (int l = 0; l < 16; l++) {
          int v = (qs[h * 32 + s * 16 + l] >> (2 * j)) & 3;
          if (three) v -= (hmask[s * 16 + l] >> (4 * h + j)) & 1 ? 0 : 4;
          q[h * 128 + j * 32 + s * 16 + l] = (int8_t)v;
        }
}

static int sub_block(zoe_dtype dt) { return dt == ZOE_Q6_K || dt == ZOE_Q3_K || dt == ZOE_Q2_K ? 16 : 32; }
static bool has_min(zoe_dtype dt) {
  return dt == ZOE_Q4_1 || dt == ZOE_Q5_1 || dt == ZOE_Q4_K || dt == ZOE_Q5_K || dt == ZOE_Q2_K;
}

/* ---- the weight's int8 form for one call, rows in parallel ---- */

typedef struct prep {
  zoe_dtype dt;
  const uint8_t *w; /* the blocks */
  int64_t K, G;
  uint8_t *q;       /* unpacked rows [N][K] (not for q8_0) */
  float *a, *b, *corr;
  int sb;
} prep;

/* q8_0 rows: the scales and the corrections only (the values are read in place) */
TARGET static void prep_q8_0(const prep *p, int64_t r0, int64_t r1) {
  int64_t K = p->K, nb = K / 32, per_g = p->G / 32;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t *blk = p->w + (size_t)(r * nb) * 34;
    float *a = p->a + r * nb, *corr = p->corr + r * (K / p->G);
    for (int64_t g = 0; g < nb / per_g; g++) {
      float csum = 0;
      for (int64_t k = g * per_g; k < (g + 1) * per_g; k++, blk += 34) {
        uint16_t h;
        memcpy(&h, blk, 2);
        float d = _cvtsh_ss(h); /* exact, as zoe_f16_to_f32 */
        a[k] = d;
        csum += -128.0f * d * (float)sum_s8((const int8_t *)(blk + 2), 32);
      }
      corr[g] = csum;
    }
  }
}

static void unpack_block(zoe_dtype dt, const uint8_t *src, int8_t *q, float *a, float *b) {
  switch (dt) {
    case ZOE_Q4_K: case ZOE_Q5_K: unpack_k45(dt == ZOE_Q5_K, src, q, a, b); break;
    case ZOE_Q6_K: unpack_q6k(src, q, a); break;
    case ZOE_Q2_K: case ZOE_Q3_K: unpack_q23k(dt, src, q, a, b); break;
    default: unpack_32(dt, src, q, a, b); break;
  }
}

/* rows made of whole blocks (K a multiple of the block): unpacked straight into place */
static void prep_whole_blocks(const prep *p, int64_t r0, int64_t r1) {
  int64_t K = p->K, bl = zoe_dtype_block(p->dt), ns = K / p->sb, sub = bl / p->sb, per_g = p->G / p->sb;
  size_t bs = zoe_dtype_size(p->dt);
  for (int64_t r = r0; r < r1; r++) {
    float *a = p->a + r * ns, *b = p->b ? p->b + r * ns : NULL, *corr = p->corr + r * (K / p->G);
    const uint8_t *src = p->w + (size_t)(r * (K / bl)) * bs;
    int8_t *q = (int8_t *)p->q + r * K;
    float csum = 0;
    for (int64_t k = 0; k < K; k += bl, src += bs) {
      int64_t s0 = k / p->sb;
      unpack_block(p->dt, src, q + k, a + s0, b ? b + s0 : NULL);
      for (int64_t s = 0; s < sub; s++) {
        csum += -128.0f * a[s0 + s] * (float)sum_s8(q + k + s * p->sb, p->sb);
        if ((s0 + s + 1) % per_g == 0) {
          corr[(s0 + s) / per_g] = csum;
          csum = 0;
        }
      }
    }
  }
}

static void prep_rows(void *arg, int64_t r0, int64_t r1) {
  const prep *p = arg;
  if (p->dt == ZOE_Q8_0) {
    prep_q8_0(p, r0, r1);
    return;
  }
  if (p->K % zoe_dtype_block(p->dt) == 0) {
    prep_whole_blocks(p, r0, r1);
    return;
  }
  int64_t K = p->K, bl = zoe_dtype_block(p->dt), ns = K / p->sb, per_g = p->G / p->sb;
  size_t bs = zoe_dtype_size(p->dt);
  int8_t tq[256];
  float ta[16], tb[16];
  int64_t cur = -1; /* the block in tq */
  for (int64_t r = r0; r < r1; r++) {
    float *a = p->a + r * ns, *b = p->b ? p->b + r * ns : NULL, *corr = p->corr + r * (K / p->G);
    float csum = 0;
    for (int64_t k0 = 0; k0 < K; k0 += 32) { /* 32 values at a time: rows start on 32 (K % 32 == 0) */
      int64_t e = r * K + k0, blk = e / bl, at = e % bl;
      const uint8_t *src = p->w + (size_t)blk * bs;
      const int8_t *q32;
      int nsub = 32 / p->sb;
      if (p->dt == ZOE_Q8_0) {
        q32 = (const int8_t *)(src + 2);
        ta[0] = half(src);
      } else {
        if (blk != cur) { /* a new block: unpack it whole */
          cur = blk;
          unpack_block(p->dt, src, tq, ta, tb);
        }
        q32 = tq + at;
        memcpy(p->q + e, q32, 32);
      }
      int64_t s0 = k0 / p->sb, first = at / p->sb;
      for (int s = 0; s < nsub; s++) {
        int32_t sq = sum_s8(q32 + s * p->sb, p->sb);
        a[s0 + s] = ta[first + s];
        if (b) b[s0 + s] = tb[first + s];
        csum += -128.0f * ta[first + s] * (float)sq;
        if ((s0 + s + 1) % per_g == 0) {
          corr[(s0 + s) / per_g] = csum;
          csum = 0;
        }
      }
    }
  }
}

static int gemm_int8(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                     float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  zoe_dtype dt = B.dtype;
  int G = K % 256 == 0 ? 256 : 32, sb = sub_block(dt);
  int64_t ns = K / sb;
  size_t tbytes = (size_t)(N * ns) * sizeof(float), cbytes = (size_t)(N * (K / G)) * sizeof(float);
  size_t qbytes = dt == ZOE_Q8_0 ? 0 : (size_t)(N * K), abytes = 0;
  prep p = {dt, B.data, K, G, NULL, NULL, NULL, NULL, sb};
  float *af = NULL;
  int rc = 0;
  p.a = zoe_alloc(tbytes, e);
  p.b = p.a && has_min(dt) ? zoe_alloc(tbytes, e) : NULL;
  p.corr = p.a ? zoe_alloc(cbytes, e) : NULL;
  p.q = qbytes && p.corr ? zoe_alloc(qbytes, e) : NULL;
  if (!p.a || (has_min(dt) && !p.b) || !p.corr || (qbytes && !p.q)) {
    rc = e ? e->code : ZOE_ENOMEM;
    goto done;
  }
  const float *a = A.data;
  int64_t lda = A.ld;
  if (A.dtype != ZOE_F32 || A.trans) { /* the kernel quantizes f32 rows */
    abytes = (size_t)(M * K) * sizeof(float);
    if (!(af = zoe_alloc(abytes, e))) {
      rc = e ? e->code : ZOE_ENOMEM;
      goto done;
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t k = 0; k < K; k++)
        af[i * K + k] = (float)zoe_load_elem(A.dtype, A.data, A.trans ? k * A.ld + i : i * A.ld + k);
    a = af;
    lda = K;
  }
  if ((rc = zoe_parallel_for(N, 1 + 65536 / K, prep_rows, &p))) {
    rc = zoe_errf(e, rc, "gemm: canceled");
    goto done;
  }
  zoe_q8_weight w = {dt == ZOE_Q8_0 ? B.data : p.q, dt == ZOE_Q8_0 ? K / 32 * 34 : K, dt == ZOE_Q8_0 ? 34 : 32,
                     dt == ZOE_Q8_0 ? 2 : 0, sb, ns, p.a, p.b, p.corr};
  rc = zoe_gemm_q8(M, N, K, G, alpha, a, lda, &w, beta, C, ldc, ep, e);
done:
  zoe_free(p.a, tbytes);
  zoe_free(p.b, p.b ? tbytes : 0);
  zoe_free(p.corr, cbytes);
  zoe_free(p.q, qbytes);
  zoe_free(af, abytes);
  return rc;
}

/* ---- widening ---- */

typedef struct widen {
  zoe_dtype dt, to;
  const void *w;
  int64_t K, r0;
  void *dst;
} widen;

static void widen_rows(void *arg, int64_t r0, int64_t r1) {
  const widen *x = arg;
  float row[4096];
  for (int64_t r = r0; r < r1; r++)
    for (int64_t k0 = 0; k0 < x->K; k0 += 4096) {
      int64_t n = x->K - k0 < 4096 ? x->K - k0 : 4096;
      zoe_dequant_range(x->dt, x->w, (x->r0 + r) * x->K + k0, n, row);
      void *d = (char *)x->dst + (size_t)(r * x->K + k0) * zoe_dtype_size(x->to);
      zoe_convert(x->to, d, ZOE_F32, row, n);
    }
}

#define PANEL_ELEMS ((int64_t)32 << 20) /* a widened panel holds at most this many values (64 MB of bf16) */

/* rows [0, N) of a quantized W [N, K] (rows contiguous), widened panel by panel */
static int gemm_widened(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                        float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  zoe_dtype to = strcmp(zoe_gemm_precision(), "f32") == 0 ? ZOE_F32 : ZOE_BF16;
  int64_t rows = K ? PANEL_ELEMS / K : N;
  if (rows < 512) rows = 512;
  if (rows > N) rows = N;
  size_t bytes = (size_t)(rows * K) * zoe_dtype_size(to);
  void *buf = zoe_alloc(bytes ? bytes : 1, e);
  if (!buf) return e ? e->code : ZOE_ENOMEM;
  int rc = 0;
  for (int64_t r0 = 0; r0 < N && !rc; r0 += rows) {
    int64_t n = N - r0 < rows ? N - r0 : rows;
    widen x = {B.dtype, to, B.data, K, r0, buf};
    if ((rc = zoe_parallel_for(n, 1 + 65536 / (K + 1), widen_rows, &x))) {
      rc = zoe_errf(e, rc, "gemm: canceled");
      break;
    }
    zoe_gemm_epilogue pe = {ep && ep->bias ? ep->bias + r0 : NULL, ep ? ep->act : ZOE_ACT_NONE};
    zoe_gemm_arg W = {buf, to, true, K};
    rc = zoe_gemm_ep(M, n, K, alpha, A, W, beta, C + r0, ldc, &pe, e);
  }
  zoe_free(buf, bytes ? bytes : 1);
  return rc;
}

/* any other layout: the quantized side widened whole to f32 */
static int gemm_whole(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                      float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  zoe_gemm_arg *q = zoe_dtype_is_quant(A.dtype) ? &A : &B;
  int64_t rows = q == &A ? (A.trans ? K : M) : (B.trans ? N : K), cols = q == &A ? (A.trans ? M : K) : (B.trans ? K : N);
  if (q->ld != cols)
    return zoe_errf(e, ZOE_EINVAL, "gemm: a %s operand must have contiguous rows", zoe_dtype_name(q->dtype));
  size_t bytes = (size_t)(rows * cols) * sizeof(float);
  float *f = zoe_alloc(bytes ? bytes : 1, e);
  if (!f) return e ? e->code : ZOE_ENOMEM;
  zoe_dequant_range(q->dtype, q->data, 0, rows * cols, f);
  q->data = f;
  q->dtype = ZOE_F32;
  int rc = zoe_gemm_ep(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
  zoe_free(f, bytes ? bytes : 1);
  return rc;
}

static bool int8_cpu(void) {
  static atomic_int cpu = -1;
  if (atomic_load_explicit(&cpu, memory_order_relaxed) < 0) atomic_store(&cpu, zoe_q8_cpu());
  return atomic_load_explicit(&cpu, memory_order_relaxed);
}

const char *zoe_gemm_quant_backend(void) { return int8_cpu() && zoe_gemm_int8_allowed() ? "zoe-avx512vnni" : "widened"; }

int zoe_gemm_quant(int64_t M, int64_t N, int64_t K, float alpha, zoe_gemm_arg A, zoe_gemm_arg B, float beta,
                   float *C, int64_t ldc, const zoe_gemm_epilogue *ep, zoe_err *e) {
  bool weight = zoe_dtype_is_quant(B.dtype) && !zoe_dtype_is_quant(A.dtype) && B.trans && B.ld == K;
  if (!weight) return gemm_whole(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
  bool int8 = int8_cpu() && K % 32 == 0 && zoe_gemm_int8_allowed();
  if (int8) return gemm_int8(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
  return gemm_widened(M, N, K, alpha, A, B, beta, C, ldc, ep, e);
}
