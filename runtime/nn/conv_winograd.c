/*
** conv_winograd.c: convolutions with a 3x3 spatial kernel and stride 1 by
** Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for
** Convolutional Neural Networks", 2016). A 4x4 block of output pixels ("tile")
** comes from a 6x6 block of input through 36 products per (input channel, time
** tap) instead of 144, so the GEMMs do 4x fewer flops than im2col's:
**
**   U[xi][co][k] = (G g G^T)[xi]   k = (ci, dt), the weight, once per call
**   V[k][xi][p]  = (B^T d B)[xi]   tile p of the input
**   M[co][xi][p] = sum_k U[xi][co][k] V[k][xi][p]    36 GEMMs
**   Y[co][p]     = A^T M A + bias  the 4x4 output pixels of tile p
**
** with xi = 6r + c over the 6x6 transform domain. In f32 the result differs
** from a direct sum by ~5e-6 relative (measured; a direct f32 sum: ~1e-7).
**
** Work is cut into units of whole tile rows of one output frame (about 256
** tiles; a small frame also splits its output channels), shared by the threads;
** each thread owns its V and M blocks, and K is
** cut into chunks of input channels so V stays a few MB. Along a tile row the
** input row is split into its 4 phases (x mod 4), so the transforms run over
** contiguous vectors of tiles. The units depend only on the frame size, so
** chunked and whole-video calls give the same bits.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/pool.h"
#include "../ops/gemm.h"
#include "conv_internal.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))
#define XI 36                   /* points of the 6x6 transform domain */
#define UNIT_TILES 256          /* tiles per unit (whole tile rows, so at least one row) */
#define MIN_ITEMS 4             /* work items per frame: small frames split their outputs instead */
#define BLOCK_BYTES (4 << 20)   /* cap on each of V and M per thread */

bool zoe__conv_winograd_enabled = true;

/*
** The products here must stay f32: rounded to bf16, the transformed values give
** ~2e-2 relative error (measured). So a bf16 weight's transform is f32 (4x fewer
** flops in f32 still beat the bf16 kernel's 2x), and with ZOE_PRECISION=bf16, which
** sends f32 products to the bf16 kernel too (gemm_dispatch.c), im2col is used.
*/
static bool f32_products(void) {
  static atomic_int cached = -1;
  int v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v < 0) {
    const char *env = getenv("ZOE_PRECISION");
    v = !(env && strcmp(env, "bf16") == 0);
    atomic_store(&cached, v);
  }
  return v;
}

bool zoe__conv_winograd_fits(const zoe__conv *c) {
  /* small Cout or K make the 36 GEMMs too thin; tiny frames waste the 4x4 tiles */
  return zoe__conv_winograd_enabled && c->kh == 3 && c->kw == 3 && c->Cout >= 16 && c->Cin * c->kt >= 16 &&
         c->Ho >= 4 && c->Wo >= 4 && f32_products();
}

typedef struct wino_ctx {
  const zoe__conv *c;
  const float *U;   /* [XI][Cout][Kp] */
  int64_t Kp;       /* Cin * kt */
  int64_t th, tw;   /* tile rows and columns of a frame */
  int64_t rows;     /* tile rows per unit */
  int64_t units;    /* units per frame */
  int64_t cb, cblocks; /* output channels per work item, and blocks of them */
  int64_t cch;      /* input channels per K chunk */
  atomic_int failed;
  zoe_err err;
} wino_ctx;

static void fail(wino_ctx *w, const zoe_err *e) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&w->failed, &expected, e->code ? e->code : ZOE_EINVAL)) w->err = *e;
}

/* ---- the weight: U = G g G^T for every (co, ci, dt) ---- */

#define KB 64 /* (ci, dt) slices transformed at once */

/*
** The transforms take every vector as its own restrict parameter: GCC 12 does not
** vectorize when restrict pointers are copied out of an array (it finds "no vectype
** for const float"). The array forms below unpack them.
*/

/* o[r] = (G v)[r] for three vectors v = (a, b, c) */
VECTORIZE static void g3_(float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3,
                          float *restrict o4, float *restrict o5, const float *restrict a,
                          const float *restrict b, const float *restrict c, int64_t n) {
  const float s6 = 1.0f / 6.0f, s12 = 1.0f / 12.0f, s24 = 1.0f / 24.0f; /* products, not divisions */
  for (int64_t k = 0; k < n; k++) {
    float g0 = a[k], g1 = b[k], g2 = c[k];
    o0[k] = g0 * 0.25f;
    o1[k] = -(g0 + g1 + g2) * s6;
    o2[k] = -(g0 - g1 + g2) * s6;
    o3[k] = g0 * s24 + g1 * s12 + g2 * s6;
    o4[k] = g0 * s24 - g1 * s12 + g2 * s6;
    o5[k] = g2;
  }
}

static void g3(float *const o[6], const float *a, const float *b, const float *c, int64_t n) {
  g3_(o[0], o[1], o[2], o[3], o[4], o[5], a, b, c, n);
}

typedef struct wt_ctx {
  const zoe__conv *c;
  float *U;
  int64_t Kp;
} wt_ctx;

/* Blocks of KB slices: gathered as g[a*3+b][k], transformed as vectors, stored as 36 runs. */
static void weight_rows(void *arg, int64_t co0, int64_t co1) {
  const wt_ctx *t = arg;
  int64_t Kp = t->Kp, Cout = t->c->Cout;
  float g[9][KB], h[6][3][KB], u[XI][KB];
  for (int64_t co = co0; co < co1; co++)
    for (int64_t k0 = 0; k0 < Kp; k0 += KB) {
      int64_t kb = Kp - k0 < KB ? Kp - k0 : KB;
      const float *src = t->c->w + (co * Kp + k0) * 9;
      for (int64_t k = 0; k < kb; k++)
        for (int j = 0; j < 9; j++) g[j][k] = src[k * 9 + j];
      for (int b = 0; b < 3; b++) { /* G g: column b */
        float *o[6] = {h[0][b], h[1][b], h[2][b], h[3][b], h[4][b], h[5][b]};
        g3(o, g[b], g[3 + b], g[6 + b], kb);
      }
      for (int r = 0; r < 6; r++) { /* (G g) G^T: row r */
        float *o[6] = {u[r * 6], u[r * 6 + 1], u[r * 6 + 2], u[r * 6 + 3], u[r * 6 + 4], u[r * 6 + 5]};
        g3(o, h[r][0], h[r][1], h[r][2], kb);
      }
      for (int xi = 0; xi < XI; xi++)
        memcpy(t->U + ((int64_t)xi * Cout + co) * Kp + k0, u[xi], sizeof(float) * (size_t)kb);
    }
}

/* ---- transforms over vectors of n tiles ---- */

/* o[r] = (B^T d)[r] for six input vectors d[0..5] */
VECTORIZE static void bt6_(float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3,
                           float *restrict o4, float *restrict o5, const float *restrict d0,
                           const float *restrict d1, const float *restrict d2, const float *restrict d3,
                           const float *restrict d4, const float *restrict d5, int64_t n) {
  for (int64_t p = 0; p < n; p++) {
    float a0 = d0[p], a1 = d1[p], a2 = d2[p], a3 = d3[p], a4 = d4[p], a5 = d5[p];
    o0[p] = 4.0f * a0 - 5.0f * a2 + a4;
    o1[p] = -4.0f * (a1 + a2) + a3 + a4;
    o2[p] = 4.0f * (a1 - a2) - a3 + a4;
    o3[p] = 2.0f * (a3 - a1) - a2 + a4;
    o4[p] = 2.0f * (a1 - a3) - a2 + a4;
    o5[p] = 4.0f * a1 - 5.0f * a3 + a5;
  }
}

static void bt6(float *const o[6], const float *const d[6], int64_t n) {
  bt6_(o[0], o[1], o[2], o[3], o[4], o[5], d[0], d[1], d[2], d[3], d[4], d[5], n);
}

/* o[u] = (A^T m)[u] for six vectors m[0..5] */
VECTORIZE static void at6_(float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3,
                           const float *restrict m0, const float *restrict m1, const float *restrict m2,
                           const float *restrict m3, const float *restrict m4, const float *restrict m5,
                           int64_t n) {
  for (int64_t p = 0; p < n; p++) {
    float a = m1[p] + m2[p], b = m1[p] - m2[p], c = m3[p] + m4[p], d = m3[p] - m4[p];
    o0[p] = m0[p] + a + c;
    o1[p] = b + 2.0f * d;
    o2[p] = a + 4.0f * c;
    o3[p] = b + 8.0f * d + m5[p];
  }
}

static void at6(float *const o[4], const float *const m[6], int64_t n) {
  at6_(o[0], o[1], o[2], o[3], m[0], m[1], m[2], m[3], m[4], m[5], n);
}

/* o_r[q] = row[4q + r]: a row split into its 4 phases */
VECTORIZE static void deinterleave4(float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3,
                                    const float *restrict row, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    o0[q] = row[4 * q];
    o1[q] = row[4 * q + 1];
    o2[q] = row[4 * q + 2];
    o3[q] = row[4 * q + 3];
  }
}

/* row[4q + v] = y_v[q] + b: 4 phases joined into a row */
VECTORIZE static void interleave4(float *restrict row, const float *restrict y0, const float *restrict y1,
                                  const float *restrict y2, const float *restrict y3, float b, int64_t n) {
  for (int64_t q = 0; q < n; q++) {
    row[4 * q] = y0[q] + b;
    row[4 * q + 1] = y1[q] + b;
    row[4 * q + 2] = y2[q] + b;
    row[4 * q + 3] = y3[q] + b;
  }
}

/*
** V[xi][k][p0 .. p0+tw) for tile row ty: the 6 input rows of the tile row, each
** split into its 4 phases ph[i][r][q] = x(4q + r - pleft), so that column j of tile
** q is ph[i][j % 4][q + j / 4].
*/
static void input_tiles(const wino_ctx *w, const zoe__conv_frame *f, int64_t ci, int64_t ty, float *V,
                        int64_t ldv, float *scratch) {
  const zoe__conv *c = w->c;
  int64_t tw = w->tw, q1 = tw + 1;
  float *ph = scratch;          /* [6][4][tw + 1] */
  float *t = ph + 6 * 4 * q1;   /* [6][6][tw]: B^T along the columns of each row */
  float *prow = t + 6 * 6 * tw; /* [4 * (tw + 1)]: the padded input row, x = j - pleft */
  int64_t plen = 4 * q1, a = c->pleft < plen ? c->pleft : plen, b = c->pleft + c->W < plen ? c->pleft + c->W : plen;
  for (int i = 0; i < 6; i++) {
    int64_t y = 4 * ty + i - c->ptop;
    float *pi = ph + i * 4 * q1;
    if (!f->p || y < 0 || y >= c->H) {
      memset(pi, 0, sizeof(float) * (size_t)(4 * q1));
      continue;
    }
    const float *row = f->p + ci * f->cs + y * f->hs;
    memset(prow, 0, sizeof(float) * (size_t)a);
    memcpy(prow + a, row, sizeof(float) * (size_t)(b - a));
    memset(prow + b, 0, sizeof(float) * (size_t)(plen - b));
    deinterleave4(pi, pi + q1, pi + 2 * q1, pi + 3 * q1, prow, q1);
  }
  for (int i = 0; i < 6; i++) {
    const float *pi = ph + i * 4 * q1;
    const float *d[6] = {pi, pi + q1, pi + 2 * q1, pi + 3 * q1, pi + 1, pi + q1 + 1};
    float *o[6];
    for (int cc = 0; cc < 6; cc++) o[cc] = t + (i * 6 + cc) * tw;
    bt6(o, d, tw);
  }
  for (int cc = 0; cc < 6; cc++) { /* B^T along the rows, into V */
    const float *d[6];
    float *o[6];
    for (int i = 0; i < 6; i++) d[i] = t + (i * 6 + cc) * tw;
    for (int r = 0; r < 6; r++) o[r] = V + (int64_t)(r * 6 + cc) * ldv;
    bt6(o, d, tw);
  }
}

/* out[co, 4ty .. 4ty+3, :] from M[xi][co][p0 .. p0+tw) */
static void output_tiles(const wino_ctx *w, const float *M, int64_t ldm, int64_t co, int64_t ty, float *dst,
                         float *scratch) {
  const zoe__conv *c = w->c;
  int64_t tw = w->tw;
  float *t = scratch;         /* [6][4][tw]: A^T along the columns */
  float *y = t + 6 * 4 * tw;  /* [4][4][tw] */
  float *row = y + 4 * 4 * tw; /* [4 * tw] when the last tile sticks out of the frame */
  for (int r = 0; r < 6; r++) {
    const float *m[6];
    float *o[4];
    for (int cc = 0; cc < 6; cc++) m[cc] = M + (int64_t)(r * 6 + cc) * ldm;
    for (int v = 0; v < 4; v++) o[v] = t + (r * 4 + v) * tw;
    at6(o, m, tw);
  }
  for (int v = 0; v < 4; v++) {
    const float *m[6];
    float *o[4];
    for (int r = 0; r < 6; r++) m[r] = t + (r * 4 + v) * tw;
    for (int u = 0; u < 4; u++) o[u] = y + (u * 4 + v) * tw;
    at6(o, m, tw);
  }
  float b = c->bias ? c->bias[co] : 0.0f;
  bool whole = 4 * tw == c->Wo;
  for (int u = 0; u < 4; u++) {
    int64_t oy = 4 * ty + u;
    if (oy >= c->Ho) break;
    const float *yu = y + u * 4 * tw;
    interleave4(whole ? dst + oy * c->Wo : row, yu, yu + tw, yu + 2 * tw, yu + 3 * tw, b, tw);
    if (!whole) memcpy(dst + oy * c->Wo, row, sizeof(float) * (size_t)c->Wo);
  }
}

static void wino_units(void *arg, int64_t begin, int64_t end) {
  wino_ctx *w = arg;
  const zoe__conv *c = w->c;
  if (atomic_load(&w->failed)) return;
  zoe_err e = {0};
  int64_t P = w->rows * w->tw, Kc = w->cch * c->kt;
  size_t vbytes = sizeof(float) * (size_t)(XI * Kc * P), mbytes = sizeof(float) * (size_t)(XI * w->cb * P);
  /* input: phases, B^T d, padded row; output: A^T M, Y, a row */
  size_t sbytes = sizeof(float) * (size_t)(6 * 4 * (w->tw + 1) + 6 * 6 * w->tw + 4 * (w->tw + 1) + 4 * w->tw);
  size_t cap = vbytes + mbytes + sbytes;
  float *V = zoe_alloc(cap, &e);
  if (!V) {
    fail(w, &e);
    return;
  }
  float *M = V + vbytes / sizeof(float), *scratch = M + mbytes / sizeof(float);
  for (int64_t u = begin; u < end; u++) {
    if (zoe_cancel_requested()) {
      zoe_errf(&e, ZOE_ECANCELED, "canceled");
      fail(w, &e);
      break;
    }
    int64_t item = u / w->cblocks, co0 = (u % w->cblocks) * w->cb;
    int64_t ncb = c->Cout - co0 < w->cb ? c->Cout - co0 : w->cb;
    int64_t frame = item / w->units, ty0 = (item % w->units) * w->rows;
    int64_t n = frame / c->To, to = frame % c->To;
    int64_t nrows = w->th - ty0 < w->rows ? w->th - ty0 : w->rows, np = nrows * w->tw;
    const zoe__conv_frame *fr = c->frames + n * c->Tp + to * c->st;
    for (int64_t c0 = 0; c0 < c->Cin; c0 += w->cch) {
      int64_t c1 = c0 + w->cch < c->Cin ? c0 + w->cch : c->Cin, kc = (c1 - c0) * c->kt;
      /* V[k][xi][p]: the 36 vectors of one (k, tile row) lie together; GEMM xi reads rows XI * P apart */
      for (int64_t ci = c0; ci < c1; ci++)
        for (int dt = 0; dt < c->kt; dt++) {
          int64_t k = (ci - c0) * c->kt + dt;
          for (int64_t r = 0; r < nrows; r++)
            input_tiles(w, &fr[dt], ci, ty0 + r, V + k * XI * P + r * w->tw, P, scratch);
        }
      for (int xi = 0; xi < XI; xi++) {
        zoe_gemm_arg A = {w->U + ((int64_t)xi * c->Cout + co0) * w->Kp + c0 * c->kt, ZOE_F32, false, w->Kp};
        zoe_gemm_arg B = {V + (int64_t)xi * P, ZOE_F32, false, XI * P};
        if (zoe_gemm(ncb, np, kc, 1.0f, A, B, c0 ? 1.0f : 0.0f, M + (int64_t)xi * P, XI * P, &e)) {
          fail(w, &e);
          goto out;
        }
      }
    }
    float *dst = c->out + n * c->on + to * c->ot;
    for (int64_t co = co0; co < co0 + ncb; co++)
      for (int64_t r = 0; r < nrows; r++)
        output_tiles(w, M + (co - co0) * XI * P + r * w->tw, P, co, ty0 + r, dst + co * c->oc, scratch);
  }
out:
  zoe_free(V, cap);
}

int zoe__conv_winograd(const zoe__conv *c, zoe_err *e) {
  wino_ctx w = {.c = c, .Kp = c->Cin * c->kt, .th = (c->Ho + 3) / 4, .tw = (c->Wo + 3) / 4};
  atomic_init(&w.failed, 0);
  /* units: whole tile rows, about UNIT_TILES tiles, M within BLOCK_BYTES where it can */
  int64_t want = UNIT_TILES, mcap = BLOCK_BYTES / (int64_t)(XI * sizeof(float) * c->Cout);
  if (want > mcap) want = mcap < 16 ? 16 : mcap;
  w.rows = want / w.tw < 1 ? 1 : want / w.tw > w.th ? w.th : want / w.tw;
  w.units = (w.th + w.rows - 1) / w.rows;
  /* a frame with few units splits its output channels (blocks of at least 64), so the
     threads share it; this depends on the frame and Cout only, like everything here */
  w.cblocks = (MIN_ITEMS + w.units - 1) / w.units;
  if (w.cblocks > c->Cout / 64) w.cblocks = c->Cout / 64 > 1 ? c->Cout / 64 : 1;
  w.cb = (c->Cout + w.cblocks - 1) / w.cblocks;
  w.cblocks = (c->Cout + w.cb - 1) / w.cb;
  int64_t P = w.rows * w.tw, kmax = BLOCK_BYTES / (int64_t)(XI * sizeof(float) * P);
  w.cch = kmax / c->kt < 1 ? 1 : kmax / c->kt > c->Cin ? c->Cin : kmax / c->kt;

  size_t ubytes = sizeof(float) * (size_t)(XI * c->Cout * w.Kp);
  float *U = zoe_alloc(ubytes, e);
  if (!U) return e ? e->code : ZOE_ENOMEM;
  wt_ctx wt = {c, U, w.Kp};
  int rc = zoe_parallel_for(c->Cout, 1, weight_rows, &wt);
  w.U = U;
  if (!rc) rc = zoe_gemm_parallel_for(c->N * c->To * w.units * w.cblocks, 1, wino_units, &w);
  zoe_free(U, ubytes);
  if (atomic_load(&w.failed)) {
    if (e) *e = w.err;
    return w.err.code;
  }
  return rc ? zoe_errf(e, rc, "canceled") : 0;
}
