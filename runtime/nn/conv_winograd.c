/*
** conv_winograd.c: convolutions with a 3x3 spatial kernel and stride 1 by
** Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for
** Convolutional Neural Networks", 2016). A 4x4 block of output pixels ("tile")
** comes from a 6x6 block of input through 36 products per (input channel, time
** tap) instead of 144, so the GEMMs do 4x fewer flops than im2col's:
**
**   U[xi][co][k] = (G g G^T)[xi]   k = (ci, dt), the weight, once per call
**   V[xi][k][p]  = (B^T d B)[xi]   tile p of the input
**   M[xi][co][p] = sum_k U[xi][co][k] V[xi][k][p]    36 GEMMs
**   Y[co][p]     = A^T M A + bias  the 4x4 output pixels of tile p
**
** with xi = 6r + c over the 6x6 transform domain. In f32 the result differs
** from a direct sum by ~5e-6 relative (measured; a direct f32 sum: ~1e-7).
**
** Work is cut into units of whole tile rows of one output frame (at least ~128
** tiles), shared by the threads; each thread owns its V and M blocks, and K is
** cut into chunks of input channels so V stays a few MB. Along a tile row the
** input row is split into its 4 phases (x mod 4), so the transforms run over
** contiguous vectors of tiles. The units depend only on the frame size, so
** chunked and whole-video calls give the same bits.
*/
#include <stdatomic.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/pool.h"
#include "../ops/gemm.h"
#include "conv_internal.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))
#define XI 36                   /* points of the 6x6 transform domain */
#define UNIT_TILES 128          /* tiles per unit (whole tile rows, so at least one row) */
#define BLOCK_BYTES (4 << 20)   /* cap on each of V and M per thread */

bool zoe__conv_winograd_enabled = true;

bool zoe__conv_winograd_fits(const zoe__conv *c) {
  /* small Cout or K make the 36 GEMMs too thin; tiny frames waste the 4x4 tiles */
  return zoe__conv_winograd_enabled && c->kh == 3 && c->kw == 3 && c->Cout >= 16 && c->Cin * c->kt >= 16 &&
         c->Ho >= 4 && c->Wo >= 4;
}

typedef struct wino_ctx {
  const zoe__conv *c;
  const float *U;   /* [XI][Cout][Kp] */
  int64_t Kp;       /* Cin * kt */
  int64_t th, tw;   /* tile rows and columns of a frame */
  int64_t rows;     /* tile rows per unit */
  int64_t units;    /* units per frame */
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

/* o[r] = (G v)[r] for three vectors v = (a, b, c) */
VECTORIZE static void g3(float *const o[6], const float *a, const float *b, const float *c, int64_t n) {
  float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3], *o4 = o[4], *o5 = o[5];
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
VECTORIZE static void bt6(float *const o[6], const float *const d[6], int64_t n) {
  const float *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3], *d4 = d[4], *d5 = d[5];
  float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3], *o4 = o[4], *o5 = o[5];
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

/* o[u] = (A^T m)[u] for six vectors m[0..5] */
VECTORIZE static void at6(float *const o[4], const float *const m[6], int64_t n) {
  const float *m0 = m[0], *m1 = m[1], *m2 = m[2], *m3 = m[3], *m4 = m[4], *m5 = m[5];
  float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
  for (int64_t p = 0; p < n; p++) {
    float a = m1[p] + m2[p], b = m1[p] - m2[p], c = m3[p] + m4[p], d = m3[p] - m4[p];
    o0[p] = m0[p] + a + c;
    o1[p] = b + 2.0f * d;
    o2[p] = a + 4.0f * c;
    o3[p] = b + 8.0f * d + m5[p];
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
  for (int i = 0; i < 6; i++) {
    int64_t y = 4 * ty + i - c->ptop;
    float *pi = ph + i * 4 * q1;
    if (!f->p || y < 0 || y >= c->H) {
      memset(pi, 0, sizeof(float) * (size_t)(4 * q1));
      continue;
    }
    const float *row = f->p + ci * f->cs + y * f->hs;
    for (int r = 0; r < 4; r++) {
      /* x = 4q + r - pleft lies in the row for qa <= q < qb */
      float *o = pi + r * q1;
      int64_t off = r - c->pleft;
      int64_t qa = off >= 0 ? 0 : (-off + 3) / 4, qb = c->W - off <= 0 ? 0 : (c->W - off + 3) / 4;
      if (qb > q1) qb = q1;
      if (qa > qb) qa = qb;
      for (int64_t q = 0; q < qa; q++) o[q] = 0.0f;
      const float *src = row + off;
      for (int64_t q = qa; q < qb; q++) o[q] = src[4 * q];
      for (int64_t q = qb; q < q1; q++) o[q] = 0.0f;
    }
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
  for (int u = 0; u < 4; u++) {
    int64_t oy = 4 * ty + u;
    if (oy >= c->Ho) break;
    float *orow = dst + oy * c->Wo;
    for (int v = 0; v < 4; v++) {
      const float *yv = y + (u * 4 + v) * tw;
      for (int64_t q = 0, x = v; q < tw && x < c->Wo; q++, x += 4) orow[x] = yv[q] + b;
    }
  }
}

static void wino_units(void *arg, int64_t begin, int64_t end) {
  wino_ctx *w = arg;
  const zoe__conv *c = w->c;
  if (atomic_load(&w->failed)) return;
  zoe_err e = {0};
  int64_t P = w->rows * w->tw, Kc = w->cch * c->kt;
  size_t vbytes = sizeof(float) * (size_t)(XI * Kc * P), mbytes = sizeof(float) * (size_t)(XI * c->Cout * P);
  size_t sbytes = sizeof(float) * (size_t)(6 * 4 * (w->tw + 1) + 6 * 6 * w->tw);
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
    int64_t frame = u / w->units, ty0 = (u % w->units) * w->rows;
    int64_t n = frame / c->To, to = frame % c->To;
    int64_t nrows = w->th - ty0 < w->rows ? w->th - ty0 : w->rows, np = nrows * w->tw;
    const zoe__conv_frame *fr = c->frames + n * c->Tp + to * c->st;
    for (int64_t c0 = 0; c0 < c->Cin; c0 += w->cch) {
      int64_t c1 = c0 + w->cch < c->Cin ? c0 + w->cch : c->Cin, kc = (c1 - c0) * c->kt;
      /* V[xi][k][p] with ld P between k rows, XI blocks of Kc * P */
      for (int64_t ci = c0; ci < c1; ci++)
        for (int dt = 0; dt < c->kt; dt++) {
          int64_t k = (ci - c0) * c->kt + dt;
          for (int64_t r = 0; r < nrows; r++)
            input_tiles(w, &fr[dt], ci, ty0 + r, V + k * P + r * w->tw, Kc * P, scratch);
        }
      for (int xi = 0; xi < XI; xi++) {
        zoe_gemm_arg A = {w->U + ((int64_t)xi * c->Cout) * w->Kp + c0 * c->kt, ZOE_F32, false, w->Kp};
        zoe_gemm_arg B = {V + (int64_t)xi * Kc * P, ZOE_F32, false, P};
        if (zoe_gemm(c->Cout, np, kc, 1.0f, A, B, c0 ? 1.0f : 0.0f, M + (int64_t)xi * c->Cout * P, P, &e)) {
          fail(w, &e);
          goto out;
        }
      }
    }
    float *dst = c->out + n * c->on + to * c->ot;
    for (int64_t co = 0; co < c->Cout; co++)
      for (int64_t r = 0; r < nrows; r++)
        output_tiles(w, M + co * P + r * w->tw, c->Cout * P, co, ty0 + r, dst + co * c->oc, scratch);
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
  int64_t P = w.rows * w.tw, kmax = BLOCK_BYTES / (int64_t)(XI * sizeof(float) * P);
  w.cch = kmax / c->kt < 1 ? 1 : kmax / c->kt > c->Cin ? c->Cin : kmax / c->kt;

  size_t ubytes = sizeof(float) * (size_t)(XI * c->Cout * w.Kp);
  float *U = zoe_alloc(ubytes, e);
  if (!U) return e ? e->code : ZOE_ENOMEM;
  wt_ctx wt = {c, U, w.Kp};
  int rc = zoe_parallel_for(c->Cout, 1, weight_rows, &wt);
  w.U = U;
  if (!rc) rc = zoe_gemm_parallel_for(c->N * c->To * w.units, 1, wino_units, &w);
  zoe_free(U, ubytes);
  if (atomic_load(&w.failed)) {
    if (e) *e = w.err;
    return w.err.code;
  }
  return rc ? zoe_errf(e, rc, "canceled") : 0;
}
