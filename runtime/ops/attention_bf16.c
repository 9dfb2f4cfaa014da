/*
** attention_bf16.c: attention on AVX512-BF16 dot products, flash-attention
** style (Dao et al. 2022): the keys are walked in tiles with an online softmax,
** so nothing of size Lq x Lk is ever stored, whatever the sequence length.
**
** Packing, once per call. A (batch entry, head) is a "pair". Its keys and
** values are rounded to bf16 and packed in the GEMM's pair-interleaved panels
** (gemm_bf16.c), where one 64-byte load feeds 16 columns of vdpbf16ps:
**   K  panels of PW keys:    [Dh/2 pairs][PW] dwords, (p, j) = (k[j][2p], k[j][2p+1])
**   V  panels of PW columns: [Lk/2 pairs][16 nz] dwords, (p, c) = (v[2p][c], v[2p+1][c])
** Pairs are packed in groups whose packs fit PACK_BUDGET (a bf16 copy of every
** head of a guided step at 832x480x81 would be 400 MB); each group is packed by
** both threads, then its units run.
**
** A unit is (pair, tile of TQ queries); units are handed out one at a time from
** a counter, so both cores stay busy to the end of a group. A unit rounds its
** queries to bf16 rows, then walks the keys in tiles of TK (the tile's K and V
** panels, 96 KiB each, stay in L2 for the unit's 16 micro-blocks). Per key tile
** and 8 queries (the micro-kernel's rows, as the GEMM's: 8 x 48 in 24 zmm):
**   S = q k^T          per K panel; each row's maximum is taken as the tile is
**                      stored (no pass of its own)
**   P = 2^(S c - m)    one pass over S in L1: the new running maximum m, the
**                      correction 2^(m_old - m) for what O holds, P rounded to
**                      bf16 rows (the next product broadcasts their pairs) and
**                      its sum; c = scale * log2(e)
**   O = O corr + P v   per V panel, the correction applied as the tile is added
** and at the end out = O / sum. The numerics are those of the tiled attention
** on the bf16 GEMM: q, k, v and P rounded to bf16, products exact, f32 sums.
** Each unit is computed by one thread in one order: the same bits on any
** thread count. A cancel is polled before every unit (at most about 2 GFLOP,
** 128 queries times 32760 keys) and every packing step.
*/
#include "attention_bf16.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/pool.h"
#include "bf16_simd.h"
#include "gemm.h"
#include "gemm_bf16.h"

#define TARGET ZOE_BF16_TARGET
#define INLINE ZOE_BF16_INLINE

#define MR 8    /* queries per micro-block: the micro-kernel's rows */
#define PW 48   /* keys per K panel, columns per V panel: the micro-kernel's 3 zmm */
#define TQ 128  /* queries per unit */
#define TK 384  /* keys per tile: 8 K panels; a multiple of PW */
#define VCHUNK (TK / 2) /* key pairs of V packed per step */
#define PACK_BUDGET ((int64_t)64 << 20)
#define LOG2E 1.4426950408889634f

typedef struct fa_job {
  const zoe_attn_bf16 *a;
  int64_t kpd;    /* pairs along Dh */
  int64_t kpl;    /* pairs along Lk */
  int64_t npk;    /* K panels */
  int64_t nvp;    /* V panels */
  int64_t ldq;    /* a query row in bf16: Dh rounded up to 16, zero-padded */
  int64_t ldo;    /* a row of O: Dv rounded up to 16 */
  int64_t qtiles, vchunks;
  int64_t kwords, vwords; /* one pair's packed K and V, in dwords */
  uint32_t *pack;         /* the group's packs, pair after pair */
  int64_t g0, ng;         /* the group: pairs g0 .. g0 + ng */
  bool packing;           /* the phase: packing the group, or running its units */
  int64_t nitems;
  atomic_llong next;
  atomic_int canceled, failed;
  float c;    /* S to log2 units: scale * log2(e) */
  bool plain; /* no bias nor mask and c > 0: S is stored as q k^T, c applied in the exp pass */
} fa_job;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t up16(int64_t n) { return (n + 15) / 16 * 16; }

bool zoe_attention_bf16_wanted(int64_t Lq, int64_t Lk, int64_t Dh) {
  zoe_gemm_arg f32 = {NULL, ZOE_F32, false, 0};
  return zoe_gemm_bf16_wanted(Lq, Lk, Dh, f32, f32);
}

/* ---- packing ---- */

/* K panel pn of one pair (k: its key 0): keys past Lk and the half pair past an odd Dh are zeros. */
TARGET static void pack_k_panel(const fa_job *j, const float *k, int64_t pn, uint32_t *dst) {
  const zoe_attn_bf16 *a = j->a;
  int64_t j0 = pn * PW, w = min64(PW, a->Lk - j0);
  for (int64_t z = 0; z < PW / 16; z++) {
    int64_t n = w - 16 * z;
    for (int64_t p0 = 0; p0 < j->kpd; p0 += 16) {
      int64_t d0 = 2 * p0, nd = min64(32, a->Dh - d0);
      __mmask16 lo = nd >= 16 ? 0xffff : (__mmask16)((1u << nd) - 1);
      __mmask16 hi = nd >= 32 ? 0xffff : nd > 16 ? (__mmask16)((1u << (nd - 16)) - 1) : 0;
      __m512i x[16];
      for (int64_t t = 0; t < 16; t++) {
        if (t < n) { /* key t's 16 pairs */
          const float *s = k + (j0 + 16 * z + t) * a->ks[1] + d0;
          x[t] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, s + 16), _mm512_maskz_loadu_ps(lo, s));
        } else {
          x[t] = _mm512_setzero_si512();
        }
      }
      zoe_bf16_transpose16(x);
      for (int64_t pp = 0; pp < 16 && p0 + pp < j->kpd; pp++)
        _mm512_storeu_si512(dst + (p0 + pp) * PW + 16 * z, x[pp]);
    }
  }
}

/* Key pairs p0 .. p1 of one pair's V (v: its key 0) into every V panel; the key past an odd Lk is zero. */
TARGET static void pack_v_pairs(const fa_job *j, const float *v, int64_t p0, int64_t p1, uint32_t *dst) {
  const zoe_attn_bf16 *a = j->a;
  for (int64_t p = p0; p < p1; p++) {
    const float *r0 = v + 2 * p * a->vs[1];
    const float *r1 = 2 * p + 1 < a->Lk ? r0 + a->vs[1] : NULL;
    for (int64_t vp = 0; vp < j->nvp; vp++) {
      int64_t c0 = vp * PW, w = min64(PW, a->Dv - c0), nz = (w + 15) / 16;
      uint32_t *d = dst + vp * PW * j->kpl + p * nz * 16; /* panels before the last are PW wide */
      for (int64_t z = 0; z < nz; z++) {
        int64_t n = w - 16 * z;
        __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + c0 + 16 * z);
        __m512 x1 = r1 ? _mm512_maskz_loadu_ps(m, r1 + c0 + 16 * z) : _mm512_setzero_ps();
        _mm512_storeu_si512(d + 16 * z, zoe_bf16_interleave_pairs(x0, x1));
      }
    }
  }
}

static void pack_item(fa_job *j, int64_t u) {
  const zoe_attn_bf16 *a = j->a;
  int64_t per = j->npk + j->vchunks, gi = u / per, r = u % per, g = j->g0 + gi;
  int64_t b = g / a->H, h = g % a->H;
  uint32_t *dst = j->pack + gi * (j->kwords + j->vwords);
  if (r < j->npk) {
    pack_k_panel(j, a->k + b * a->ks[0] + h * a->ks[2], r, dst + r * j->kpd * PW);
  } else {
    int64_t p0 = (r - j->npk) * VCHUNK;
    pack_v_pairs(j, a->v + b * a->vs[0] + h * a->vs[2], p0, min64(p0 + VCHUNK, j->kpl), dst + j->kwords);
  }
}

/* nq query rows (q: the first) as bf16 rows of ldq, zero past Dh */
TARGET static void load_queries(const fa_job *j, const float *q, int64_t nq, uint16_t *qb) {
  const zoe_attn_bf16 *a = j->a;
  for (int64_t i = 0; i < nq; i++)
    for (int64_t d0 = 0; d0 < j->ldq; d0 += 16) {
      int64_t n = a->Dh - d0;
      __mmask16 m = n >= 16 ? 0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
      __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, q + i * a->qs[1] + d0));
      _mm256_storeu_si256((__m256i *)(qb + i * j->ldq + d0), (__m256i)h);
    }
}

/* ---- the micro-kernels: 8 rows x 16 NV columns in 24 accumulators at most, as the GEMM's ---- */

INLINE __m512i pair_of(const uint16_t *p) {
  uint32_t x;
  memcpy(&x, p, sizeof x);
  return _mm512_set1_epi32((int)x);
}

/* What S takes besides q k^T when the job is not plain. */
typedef struct s_extra {
  const float *bias[MR]; /* row r's bias at the panel's first key, or NULL */
  const float *keep;     /* the key mask at the panel's first key, or NULL */
  float c;
} s_extra;

/*
** S columns of one K panel (vb: pair 0 of it, PW dwords a pair), w of them real:
** S[r][l] = q_r . k_l (times c, plus bias and mask when x is given), -inf past w;
** mx[r] = max(mx[r], the row's values).
*/
#define DEFINE_S_PANEL(NV)                                                                                        \
  TARGET static void s_panel_##NV(const uint16_t *const rows[MR], int64_t np, const uint32_t *vb, float *S,      \
                                  int64_t w, __m512 mx[MR], const s_extra *x) {                                  \
    __m512 acc[MR][NV];                                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++)   \
        acc[r][z] = _mm512_setzero_ps();                                                                        \
    for (int64_t p = 0; p < np; p++, vb += PW) {                                                                \
      __m512i b[NV];                                                                                            \
      _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) b[z] = _mm512_loadu_si512(vb + 16 * z);              \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                    \
        __m512i a = pair_of(rows[r] + 2 * p);                                                                   \
        _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) acc[r][z] =                                        \
            _mm512_dpbf16_ps(acc[r][z], (__m512bh)a, (__m512bh)b[z]);                                           \
      }                                                                                                         \
    }                                                                                                           \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                      \
      __m512 m = mx[r];                                                                                         \
      _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) {                                                    \
        __m512 s = acc[r][z];                                                                                   \
        int64_t n = w - 16 * z;                                                                                 \
        __mmask16 real = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);                                         \
        if (x) {                                                                                                \
          s = _mm512_mul_ps(s, _mm512_set1_ps(x->c));                                                           \
          if (x->bias[r])                                                                                       \
            s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(real, x->bias[r] + 16 * z), _mm512_set1_ps(LOG2E), s);    \
          if (x->keep) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(real, x->keep + 16 * z));                     \
        }                                                                                                       \
        if (n < 16) s = _mm512_mask_blend_ps(real, _mm512_set1_ps(-INFINITY), s);                               \
        _mm512_storeu_ps(S + r * TK + 16 * z, s);                                                               \
        m = _mm512_max_ps(m, s);                                                                                \
      }                                                                                                         \
      mx[r] = m;                                                                                                \
    }                                                                                                           \
  }
DEFINE_S_PANEL(1)
DEFINE_S_PANEL(2)
DEFINE_S_PANEL(3)

/* O[r][0 .. 16 NV) = O[r] corr[r] + P_r . (V panel), over np key pairs (vb: the first, 16 NV dwords a pair) */
#define DEFINE_PV_PANEL(NV)                                                                                       \
  TARGET static void pv_panel_##NV(const uint16_t *const rows[MR], int64_t np, const uint32_t *vb, float *O,     \
                                   int64_t ldo, const float corr[MR]) {                                         \
    __m512 acc[MR][NV];                                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++)   \
        acc[r][z] = _mm512_setzero_ps();                                                                        \
    for (int64_t p = 0; p < np; p++, vb += 16 * NV) {                                                           \
      __m512i b[NV];                                                                                            \
      _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) b[z] = _mm512_loadu_si512(vb + 16 * z);              \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                    \
        __m512i a = pair_of(rows[r] + 2 * p);                                                                   \
        _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) acc[r][z] =                                        \
            _mm512_dpbf16_ps(acc[r][z], (__m512bh)a, (__m512bh)b[z]);                                           \
      }                                                                                                         \
    }                                                                                                           \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                      \
      __m512 cr = _mm512_set1_ps(corr[r]);                                                                      \
      _Pragma("GCC unroll 3") for (int z = 0; z < NV; z++) {                                                    \
        float *o = O + r * ldo + 16 * z;                                                                        \
        _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_loadu_ps(o), cr, acc[r][z]));                                \
      }                                                                                                         \
    }                                                                                                           \
  }
DEFINE_PV_PANEL(1)
DEFINE_PV_PANEL(2)
DEFINE_PV_PANEL(3)

/* ---- the softmax pass ---- */

/* 2^x (Cephes' exp2f polynomial on [-0.5, 0.5], a few ulp); 0 below -126; NaN stays NaN */
INLINE __m512 exp2_ps(__m512 x) {
  __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_LT_OQ);
  x = _mm512_max_ps(_mm512_set1_ps(-126.0f), x); /* the second operand when one is NaN */
  __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps((__mmask16)~under, _mm512_scalef_ps(p, n));
}

/*
** One query row over a key tile of nk keys: S (s) times cs, with tmax its maximum
** in log2 units. Moves the running maximum *m and sum *l on, writes P = 2^(S cs - m)
** as bf16 (zero-padded to a whole pair) and returns the factor for what O holds.
*/
TARGET static float softmax_row(const float *s, int64_t nk, float cs, float tmax, float *m, float *l, uint16_t *p) {
  float mn = tmax > *m ? tmax : *m;
  if (mn == -INFINITY) { /* every key so far masked: nothing to add */
    memset(p, 0, (size_t)(nk + (nk & 1)) * sizeof *p);
    return 1.0f;
  }
  float corr = exp2f(*m - mn); /* 0 when *m is -inf */
  __m512 vc = _mm512_set1_ps(cs), vm = _mm512_set1_ps(mn), sum = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= nk; k += 32) {
    __m512 e0 = exp2_ps(_mm512_fmsub_ps(_mm512_loadu_ps(s + k), vc, vm));
    __m512 e1 = exp2_ps(_mm512_fmsub_ps(_mm512_loadu_ps(s + k + 16), vc, vm));
    sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
    _mm512_storeu_si512(p + k, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
  }
  for (; k < nk; k += 16) {
    int64_t n = nk - k;
    __mmask16 real = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    __m512 e = _mm512_maskz_mov_ps(real, exp2_ps(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(real, s + k), vc, vm)));
    sum = _mm512_add_ps(sum, e);
    _mm256_mask_storeu_epi16(p + k, real, (__m256i)_mm512_cvtneps_pbh(e));
  }
  if (nk & 1) p[nk] = 0;
  *l = *l * corr + _mm512_reduce_add_ps(sum);
  *m = mn;
  return corr;
}

/* ---- units ---- */

typedef struct scratch {
  uint16_t *qb; /* [TQ][ldq] the unit's queries */
  uint16_t *p;  /* [MR][TK] P of a micro-block */
  float *o;     /* [TQ][ldo] */
  float *s;     /* [MR][TK] S of a micro-block */
  float *m, *l; /* [TQ] running maximum (log2 units) and sum */
} scratch;

/* one micro-block (queries r0 .. r0 + MR of the unit) over the key tile at k0 */
TARGET static void micro_block(const fa_job *j, const scratch *sc, const uint32_t *kpack, const uint32_t *vpack,
                               int64_t k0, int64_t r0, int64_t nq, const float *bias, const float *keep) {
  const zoe_attn_bf16 *a = j->a;
  int64_t nk = min64(TK, a->Lk - k0), npan = (nk + PW - 1) / PW;
  const uint16_t *rows[MR];
  __m512 mx[MR];
  for (int r = 0; r < MR; r++) {
    rows[r] = sc->qb + min64(r0 + r, nq - 1) * j->ldq; /* rows past the unit's queries: copies */
    mx[r] = _mm512_set1_ps(-INFINITY);
  }
  for (int64_t pn = 0; pn < npan; pn++) {
    int64_t w = min64(PW, nk - pn * PW), col = k0 + pn * PW;
    s_extra x, *xp = NULL;
    if (!j->plain) {
      x.c = j->c;
      for (int r = 0; r < MR; r++) x.bias[r] = bias ? bias + min64(r0 + r, nq - 1) * a->bs[1] + col : NULL;
      x.keep = keep ? keep + col : NULL;
      xp = &x;
    }
    const uint32_t *vb = kpack + (col / PW) * j->kpd * PW;
    float *S = sc->s + pn * PW;
    if (w > 32) s_panel_3(rows, j->kpd, vb, S, w, mx, xp);
    else if (w > 16) s_panel_2(rows, j->kpd, vb, S, w, mx, xp);
    else s_panel_1(rows, j->kpd, vb, S, w, mx, xp);
  }
  float cs = j->plain ? j->c : 1.0f, corr[MR];
  const uint16_t *prow[MR];
  for (int r = 0; r < MR; r++) {
    float tmax = _mm512_reduce_max_ps(mx[r]) * cs;
    corr[r] = softmax_row(sc->s + r * TK, nk, cs, tmax, sc->m + r0 + r, sc->l + r0 + r, sc->p + r * TK);
    prow[r] = sc->p + r * TK;
  }
  int64_t npairs = (nk + 1) / 2;
  for (int64_t vp = 0; vp < j->nvp; vp++) {
    int64_t w = min64(PW, a->Dv - vp * PW);
    float *O = sc->o + r0 * j->ldo + vp * PW;
    const uint32_t *vb = vpack + vp * PW * j->kpl;
    if (w > 32) pv_panel_3(prow, npairs, vb + (k0 / 2) * 48, O, j->ldo, corr);
    else if (w > 16) pv_panel_2(prow, npairs, vb + (k0 / 2) * 32, O, j->ldo, corr);
    else pv_panel_1(prow, npairs, vb + (k0 / 2) * 16, O, j->ldo, corr);
  }
}

TARGET static void run_unit(const fa_job *j, int64_t u, const scratch *sc) {
  const zoe_attn_bf16 *a = j->a;
  int64_t g = j->g0 + u / j->qtiles, b = g / a->H, h = g % a->H;
  int64_t q0 = u % j->qtiles * TQ, nq = min64(TQ, a->Lq - q0), nr = (nq + MR - 1) / MR * MR;
  const uint32_t *kpack = j->pack + (g - j->g0) * (j->kwords + j->vwords), *vpack = kpack + j->kwords;
  load_queries(j, a->q + b * a->qs[0] + q0 * a->qs[1] + h * a->qs[2], nq, sc->qb);
  memset(sc->o, 0, (size_t)(nr * j->ldo) * sizeof(float));
  for (int64_t i = 0; i < nr; i++) {
    sc->m[i] = -INFINITY;
    sc->l[i] = 0.0f;
  }
  const float *bias = a->bias ? a->bias + h * a->bs[0] + q0 * a->bs[1] : NULL;
  const float *keep = a->keep ? a->keep + b * a->Lk : NULL;
  for (int64_t k0 = 0; k0 < a->Lk; k0 += TK)
    for (int64_t r0 = 0; r0 < nq; r0 += MR) micro_block(j, sc, kpack, vpack, k0, r0, nq, bias, keep);
  for (int64_t i = 0; i < nq; i++) { /* rows with every key masked come out as zeros */
    __m512 inv = _mm512_set1_ps(sc->l[i] == 0.0f ? 0.0f : 1.0f / sc->l[i]);
    float *out = a->out + ((b * a->Lq + q0 + i) * a->H + h) * a->Dv;
    for (int64_t c0 = 0; c0 < a->Dv; c0 += 16) {
      int64_t n = a->Dv - c0;
      __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
      _mm512_mask_storeu_ps(out + c0, m, _mm512_mul_ps(_mm512_loadu_ps(sc->o + i * j->ldo + c0), inv));
    }
  }
}

/* ---- threads ---- */

static size_t scratch_bytes(const fa_job *j) {
  return (size_t)(TQ * j->ldq + MR * TK) * sizeof(uint16_t) + (size_t)(TQ * j->ldo + MR * TK + 2 * TQ) * sizeof(float);
}

/* Each thread takes items from the counter until none is left (or a cancel). */
static void worker(void *arg, int64_t b, int64_t e) {
  (void)b;
  (void)e;
  fa_job *j = arg;
  size_t bytes = j->packing ? 0 : scratch_bytes(j);
  scratch sc = {0};
  if (bytes) {
    float *f = zoe_alloc(bytes, NULL);
    if (!f) {
      atomic_store(&j->failed, 1);
      return;
    }
    sc.o = f;
    sc.s = sc.o + TQ * j->ldo;
    sc.m = sc.s + MR * TK;
    sc.l = sc.m + TQ;
    sc.qb = (uint16_t *)(sc.l + TQ);
    sc.p = sc.qb + TQ * j->ldq;
  }
  for (;;) {
    if (zoe_cancel_requested()) {
      atomic_store(&j->canceled, 1);
      break;
    }
    int64_t u = atomic_fetch_add(&j->next, 1);
    if (u >= j->nitems) break;
    if (j->packing) pack_item(j, u);
    else run_unit(j, u, &sc);
  }
  if (bytes) zoe_free(sc.o, bytes);
}

static int run_phase(fa_job *j, bool packing, int64_t nitems) {
  j->packing = packing;
  j->nitems = nitems;
  atomic_store(&j->next, 0);
  int rc = zoe_parallel_for(zoe_pool_threads(), 1, worker, j);
  if (!rc && atomic_load(&j->canceled)) rc = ZOE_ECANCELED;
  if (!rc && atomic_load(&j->failed)) rc = ZOE_ENOMEM;
  return rc;
}

int zoe_attention_bf16(const zoe_attn_bf16 *a, zoe_err *e) {
  fa_job jb = {.a = a}, *j = &jb;
  j->kpd = (a->Dh + 1) / 2;
  j->kpl = (a->Lk + 1) / 2;
  j->npk = (a->Lk + PW - 1) / PW;
  j->nvp = (a->Dv + PW - 1) / PW;
  j->ldq = up16(2 * j->kpd);
  j->ldo = up16(a->Dv); /* the V panels side by side: PW, ..., PW, then 16 nz */
  j->qtiles = (a->Lq + TQ - 1) / TQ;
  j->vchunks = (j->kpl + VCHUNK - 1) / VCHUNK;
  j->kwords = j->npk * j->kpd * PW;
  j->vwords = j->kpl * j->ldo;
  j->c = a->scale * LOG2E;
  j->plain = !a->bias && !a->keep && j->c > 0.0f;
  atomic_init(&j->next, 0);
  atomic_init(&j->canceled, 0);
  atomic_init(&j->failed, 0);
  int64_t pairs = a->B * a->H, pair_bytes = (j->kwords + j->vwords) * (int64_t)sizeof(uint32_t);
  int64_t gsize = PACK_BUDGET / pair_bytes;
  gsize = gsize < 1 ? 1 : gsize > pairs ? pairs : gsize;
  size_t pbytes = (size_t)(gsize * pair_bytes);
  if (!(j->pack = zoe_alloc(pbytes, e))) return e ? e->code : ZOE_ENOMEM;
  int rc = 0;
  for (int64_t g0 = 0; g0 < pairs && !rc; g0 += gsize) {
    j->g0 = g0;
    j->ng = min64(gsize, pairs - g0);
    rc = run_phase(j, true, j->ng * (j->npk + j->vchunks));
    if (!rc) rc = run_phase(j, false, j->ng * j->qtiles);
  }
  zoe_free(j->pack, pbytes);
  if (rc == ZOE_ECANCELED) return zoe_errf(e, rc, "attention: canceled");
  if (rc) return zoe_errf(e, rc, "attention: out of memory for a tile");
  return 0;
}
