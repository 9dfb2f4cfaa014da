/*
** conv.c: 2-D and 3-D convolution as tiled im2col + GEMM.
**
** One output frame (n, t) is out[Cout, Ho*Wo] = W[Cout, K] col[K, Ho*Wo] with
** K = Cin*kt*kh*kw ordered (cin, dt, dy, dx), the weight's own layout. The
** pixels of a frame are cut into tiles of at least 256 columns (the GEMM packs
** the weight once per call, so narrow tiles would spend their time packing);
** K is cut into chunks of whole input channels so that a col block
** [chunk*kt*kh*kw, tile] stays in L2. Each block is gathered (rows copied along
** W, padding zeroed) into a scratch buffer owned by the thread, and one
** single-threaded GEMM per chunk accumulates into the tile's columns of the
** output in place (ldc = the output's channel stride). A col buffer for a whole
** frame is never made (320x192 at 96 channels and 3x3x3 would be 600 MB).
** The threads share the tiles; the tiling depends only on the frame size.
** Two cases take other roads: 3x3 spatial kernels with stride 1 and 16+ output
** channels go through Winograd F(4x4, 3x3) (conv_winograd.c), and up to 4 output
** channels accumulate rows directly (direct_rows below).
**
** Time is padded causally: the padded sequence of a sample is 'tpad - P' zero
** frames, then the P frames of 'prev', then the input's T frames; a frame is
** only a pointer (or NULL for zeros), so nothing is concatenated.
*/
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/alloc.h"
#include "../ops/gemm.h"
#include "../ops/out.h"
#include "conv_internal.h"
#include "nn.h"

#define COL_BYTES (384 << 10) /* target size of one col block: leaves L2 room for the GEMM's packs */
#define TILE_PIXELS 256       /* columns per GEMM: the weight is packed once per this many */
#define TILE_MIN 16
#define TILE_MAX 4096
#define DIRECT_COUT 4 /* up to this many output channels (a VAE's RGB head) skip the GEMM */
#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

typedef zoe__conv_frame frame_src;

typedef struct conv_ctx {
  const frame_src *frames; /* [N][Tp] */
  int64_t Tp, Cin, H, W, To, Ho, Wo, Cout, K;
  int kt, kh, kw, st, sh, sw, ptop, pleft;
  zoe_gemm_arg w;  /* [Cout, K]: f32, or bf16 when the bf16 GEMM kernel takes it in place */
  const float *wf; /* [Cout, K] f32 */
  const float *bias;
  float *out; /* frame (n, t) at out + n*on + t*ot, channel stride oc, pixels contiguous */
  int64_t on, oc, ot;
  int64_t tile, tiles_per_frame;
  int64_t chunk; /* input channels gathered per GEMM: col is [chunk*kt*kh*kw, tile] */
  atomic_int failed;
  zoe_err err; /* written by the one thread that set 'failed' */
} conv_ctx;

static void ctx_fail(conv_ctx *c, const zoe_err *e) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&c->failed, &expected, e->code ? e->code : ZOE_EINVAL)) c->err = *e;
}

/*
** Gather the rows of input channels c0 .. c1 into col [(c1-c0)*kt*kh*kw, np] for
** output pixels p0 .. p0+np of frame (n, to). A run of pixels on one output row
** reads one input row at x = ox*sw + dx - pleft: the valid x are copied (memcpy
** when sw == 1), the rest zeroed.
*/
static void im2col(const conv_ctx *c, int64_t n, int64_t to, int64_t c0, int64_t c1, int64_t p0, int64_t np,
                   float *col) {
  const frame_src *fr = c->frames + n * c->Tp + to * c->st;
  float *dst = col;
  for (int64_t ci = c0; ci < c1; ci++)
    for (int dt = 0; dt < c->kt; dt++) {
      frame_src f = fr[dt];
      const float *plane = f.p ? f.p + ci * f.cs : NULL;
      for (int dy = 0; dy < c->kh; dy++)
        for (int dx = 0; dx < c->kw; dx++, dst += np) {
          if (!plane) {
            memset(dst, 0, (size_t)np * sizeof(float));
            continue;
          }
          /* output columns whose input x lies inside the row: lo <= ox < hi */
          int64_t off = dx - c->pleft;
          int64_t lo = off >= 0 ? 0 : (-off + c->sw - 1) / c->sw;
          int64_t hi = c->W - 1 - off < 0 ? 0 : (c->W - 1 - off) / c->sw + 1;
          if (hi > c->Wo) hi = c->Wo;
          if (lo > hi) lo = hi;
          for (int64_t p = p0, j = 0; j < np;) {
            int64_t oy = p / c->Wo, ox0 = p % c->Wo;
            int64_t run = c->Wo - ox0 < np - j ? c->Wo - ox0 : np - j;
            float *d = dst + j;
            int64_t y = oy * c->sh + dy - c->ptop;
            if (y < 0 || y >= c->H) {
              memset(d, 0, (size_t)run * sizeof(float));
            } else {
              const float *row = plane + y * f.hs;
              int64_t a = lo > ox0 ? lo : ox0, b = hi < ox0 + run ? hi : ox0 + run;
              if (b < ox0) b = ox0; /* the valid columns end before this run: all zeros */
              if (a > b) a = b;
              if (a > ox0) memset(d, 0, (size_t)(a - ox0) * sizeof(float));
              if (c->sw == 1) {
                if (b > a) memcpy(d + (a - ox0), row + a + off, (size_t)(b - a) * sizeof(float));
              } else {
                for (int64_t ox = a; ox < b; ox++) d[ox - ox0] = row[ox * c->sw + off];
              }
              if (ox0 + run > b) memset(d + (b - ox0), 0, (size_t)(ox0 + run - b) * sizeof(float));
            }
            p += run;
            j += run;
          }
        }
    }
}

/* ---- few output channels: direct accumulation along rows ---- */

VECTORIZE static void axpy(float *restrict acc, const float *restrict src, float w, int64_t n) {
  for (int64_t i = 0; i < n; i++) acc[i] += w * src[i];
}

/*
** With 3 output channels a GEMM spends its time packing a col block it uses for
** 6 flops per element; here each input row is read once (zero-padded into a
** scratch row) and added, shifted by dx and scaled, into every output row it
** feeds. A unit is one output row (n, to, oy); spatial stride 1 only.
*/
static void direct_rows(void *arg, int64_t begin, int64_t end) {
  conv_ctx *c = arg;
  if (atomic_load(&c->failed)) return;
  zoe_err e = {0};
  int64_t Wp = c->Wo + c->kw - 1; /* padded row: what the outputs of one row read */
  size_t cap = (size_t)(Wp + c->Cout * c->Wo) * sizeof(float);
  float *row = zoe_alloc(cap, &e);
  if (!row) {
    ctx_fail(c, &e);
    return;
  }
  float *acc = row + Wp;
  const float *w = c->wf;
  for (int64_t r = begin; r < end; r++) {
    if (zoe_cancel_requested()) {
      zoe_errf(&e, ZOE_ECANCELED, "canceled");
      ctx_fail(c, &e);
      break;
    }
    int64_t oy = r % c->Ho, to = (r / c->Ho) % c->To, n = r / (c->Ho * c->To);
    for (int64_t co = 0; co < c->Cout; co++)
      for (int64_t x = 0; x < c->Wo; x++) acc[co * c->Wo + x] = c->bias ? c->bias[co] : 0.0f;
    const frame_src *fr = c->frames + n * c->Tp + to * c->st;
    for (int64_t ci = 0; ci < c->Cin; ci++)
      for (int dt = 0; dt < c->kt; dt++) {
        if (!fr[dt].p) continue;
        for (int dy = 0; dy < c->kh; dy++) {
          int64_t y = oy + dy - c->ptop;
          if (y < 0 || y >= c->H) continue;
          const float *src = fr[dt].p + ci * fr[dt].cs + y * fr[dt].hs;
          /* row[j] = input x = j - pleft, zero outside */
          int64_t a = c->pleft < Wp ? c->pleft : Wp, b = c->pleft + c->W < Wp ? c->pleft + c->W : Wp;
          memset(row, 0, (size_t)a * sizeof(float));
          memcpy(row + a, src, (size_t)(b - a) * sizeof(float));
          memset(row + b, 0, (size_t)(Wp - b) * sizeof(float));
          const float *wk = w + ((ci * c->kt + dt) * c->kh + dy) * c->kw;
          for (int dx = 0; dx < c->kw; dx++)
            for (int64_t co = 0; co < c->Cout; co++) axpy(acc + co * c->Wo, row + dx, wk[co * c->K + dx], c->Wo);
        }
      }
    float *o = c->out + n * c->on + to * c->ot + oy * c->Wo;
    for (int64_t co = 0; co < c->Cout; co++) memcpy(o + co * c->oc, acc + co * c->Wo, (size_t)c->Wo * sizeof(float));
  }
  zoe_free(row, cap);
}

static void conv_tiles(void *arg, int64_t begin, int64_t end) {
  conv_ctx *c = arg;
  if (atomic_load(&c->failed)) return;
  zoe_err e = {0};
  int64_t taps = (int64_t)c->kt * c->kh * c->kw;
  size_t cap = (size_t)(c->chunk * taps * c->tile) * sizeof(float);
  float *col = zoe_alloc(cap, &e);
  if (!col) {
    ctx_fail(c, &e);
    return;
  }
  int64_t pixels = c->Ho * c->Wo;
  for (int64_t i = begin; i < end; i++) {
    if (zoe_cancel_requested()) {
      zoe_errf(&e, ZOE_ECANCELED, "canceled");
      ctx_fail(c, &e);
      break;
    }
    int64_t frame = i / c->tiles_per_frame, p0 = (i % c->tiles_per_frame) * c->tile;
    int64_t n = frame / c->To, to = frame % c->To;
    int64_t np = pixels - p0 < c->tile ? pixels - p0 : c->tile;
    float *C = c->out + n * c->on + to * c->ot + p0;
    /* C starts as the bias (or zero) and every chunk GEMM adds to it: beta = 1 saves the
       separate zeroing pass that beta = 0 costs in OpenBLAS */
    for (int64_t co = 0; co < c->Cout; co++) {
      float b = c->bias ? c->bias[co] : 0.0f, *r = C + co * c->oc;
      for (int64_t j = 0; j < np; j++) r[j] = b;
    }
    /* K in chunks of whole input channels, accumulated in C (which stays in cache) */
    for (int64_t c0 = 0; c0 < c->Cin; c0 += c->chunk) {
      int64_t c1 = c0 + c->chunk < c->Cin ? c0 + c->chunk : c->Cin;
      im2col(c, n, to, c0, c1, p0, np, col);
      zoe_gemm_arg A = c->w, B = {col, ZOE_F32, false, np};
      A.data = (const char *)A.data + (size_t)(c0 * taps) * zoe_dtype_size(A.dtype);
      if (zoe_gemm(c->Cout, np, (c1 - c0) * taps, 1.0f, A, B, 1.0f, C, c->oc, &e)) {
        ctx_fail(c, &e);
        goto out;
      }
    }
  }
out:
  zoe_free(col, cap);
}

/* ---- arguments ---- */

/* f32 with a unit last stride as it is, else a contiguous f32 copy. */
static zoe_tensor *as_f32_rows(const zoe_tensor *t, zoe_err *e) {
  if (t->dtype == ZOE_F32 && (t->shape[t->ndim - 1] <= 1 || t->stride[t->ndim - 1] == 1))
    return zoe_tensor_retain(t);
  return zoe_to_dtype(t, ZOE_F32, e);
}

static bool is_float(zoe_dtype dt) { return dt == ZOE_F32 || dt == ZOE_F16 || dt == ZOE_BF16; }

/*
** The weight as [Cout, K] operands: 'f32' always (the direct and Winograd paths
** compute with it); 'kernel' the bf16 weight itself when the bf16 GEMM kernel runs
** bf16 products (it reads the weight in place, and such products are bf16 by the
** project's rule: gemm_dispatch.c), else NULL. Every tile multiplies by all of the
** weight, so a half-precision one is widened once per call here (at most Cout*K
** floats, 16 MB for Wan's largest) rather than once per tile inside the GEMM.
*/
static int weight_matrix(const zoe_tensor *w, zoe_tensor **f32, zoe_tensor **kernel, zoe_gemm_arg *a, zoe_err *e) {
  int64_t K = 1;
  for (int i = 1; i < w->ndim; i++) K *= w->shape[i];
  *f32 = w->dtype == ZOE_F32 ? zoe_contiguous(w, e) : zoe_to_dtype(w, ZOE_F32, e);
  if (!*f32) return -1;
  *a = (zoe_gemm_arg){zoe_data(*f32), ZOE_F32, false, K};
  if (w->dtype == ZOE_BF16 && strcmp(zoe_gemm_backend(), "zoe-avx512bf16") == 0) {
    if (!(*kernel = zoe_contiguous(w, e))) return -1;
    *a = (zoe_gemm_arg){zoe_data(*kernel), ZOE_BF16, false, K};
  }
  return 0;
}

/* bias (numel Cout, any float dtype, any shape) as a contiguous f32 tensor */
static zoe_tensor *bias_vector(const zoe_tensor *b, int64_t cout, const char *op, zoe_err *e) {
  if (!is_float(b->dtype)) {
    zoe_errf(e, ZOE_EDTYPE, "%s: bias must be a float tensor (f32, f16, bf16), got %s", op,
             zoe_dtype_name(b->dtype));
    return NULL;
  }
  if (zoe_numel(b) != cout) {
    char s[96];
    zoe_errf(e, ZOE_ESHAPE, "%s: bias %s has %lld elements, expected %lld (one per output channel)", op,
             zoe_shape_str(b, s, sizeof s), (long long)zoe_numel(b), (long long)cout);
    return NULL;
  }
  return b->dtype == ZOE_F32 && zoe_is_contiguous(b) ? zoe_tensor_retain(b) : zoe_to_dtype(b, ZOE_F32, e);
}

/* ---- the shared driver ---- */

typedef struct conv_args {
  const char *op;
  const zoe_tensor *shown_x, *shown_w; /* as the caller gave them, for messages */
  const zoe_tensor *x;    /* [N, Cin, T, H, W] (a 2-D conv: T = 1) */
  const zoe_tensor *prev; /* [N, Cin, P, H, W] or NULL */
  const zoe_tensor *w;    /* [Cout, Cin, kt, kh, kw] */
  const zoe_tensor *b;
  int stride[3];
  int pad[4]; /* top, bottom, left, right */
  int tpad;
  int out_ndim; /* 4 for conv2d: the time dim is dropped from the result */
  zoe_tensor *out;
} conv_args;

/* 1x1(x1) kernel, unit stride, no padding: out = W x per sample, no im2col. */
static int conv_pointwise(const zoe_tensor *x, zoe_gemm_arg w, const float *bias, float *out, int64_t on,
                          int64_t oc, int64_t ot, int64_t Cout, zoe_err *e) {
  int64_t N = x->shape[0], Cin = x->shape[1], T = x->shape[2], H = x->shape[3], W = x->shape[4];
  bool rows_chain = x->stride[3] == W || H == 1;
  bool frames_chain = rows_chain && (x->stride[2] == H * W || T == 1) && (ot == H * W || T == 1);
  int64_t span = frames_chain ? T * H * W : H * W, nspans = frames_chain ? 1 : T;
  if (!rows_chain) return 1; /* not a plain matrix: the caller takes the general path */
  for (int64_t n = 0; n < N; n++)
    for (int64_t s = 0; s < nspans; s++) {
      float *C = out + n * on + s * ot;
      if (bias)
        for (int64_t co = 0; co < Cout; co++)
          for (int64_t j = 0; j < span; j++) C[co * oc + j] = bias[co];
      const float *src = (const float *)zoe_data(x) + n * x->stride[0] + s * x->stride[2];
      zoe_gemm_arg B = {src, ZOE_F32, false, x->stride[1]};
      if (zoe_gemm(Cout, span, Cin, 1.0f, w, B, bias ? 1.0f : 0.0f, C, oc, e)) return -1;
    }
  return 0;
}

/* Every argument checked against the others; *P gets how many frames 'prev' gives. */
static int check_conv(const conv_args *a, int64_t *P, zoe_err *e) {
  const char *op = a->op;
  const zoe_tensor *x0 = a->x, *w0 = a->w;
  int64_t N = x0->shape[0], Cin = x0->shape[1], T = x0->shape[2], H = x0->shape[3], W = x0->shape[4];
  int kt = (int)w0->shape[2], kh = (int)w0->shape[3], kw = (int)w0->shape[4];
  char sx[96], sw[96];
  if (!is_float(x0->dtype) || !is_float(w0->dtype))
    return zoe_errf(e, ZOE_EDTYPE, "%s: input and weight must be float tensors (f32, f16, bf16), got %s and %s", op,
                    zoe_dtype_name(x0->dtype), zoe_dtype_name(w0->dtype));
  if (w0->shape[1] != Cin) {
    zoe_shape_str(a->shown_x, sx, sizeof sx);
    zoe_shape_str(a->shown_w, sw, sizeof sw);
    return zoe_errf(e, ZOE_ESHAPE, "%s: input has %lld channels, weight expects %lld (input %s, weight %s)", op,
                    (long long)Cin, (long long)w0->shape[1], sx, sw);
  }
  for (int i = 0; i < 3; i++)
    if (a->stride[i] < 1)
      return zoe_errf(e, ZOE_EINVAL, "%s: strides must be positive, got %dx%dx%d", op, a->stride[0], a->stride[1],
                      a->stride[2]);
  for (int i = 0; i < 4; i++)
    if (a->pad[i] < 0 || a->tpad < 0) return zoe_errf(e, ZOE_EINVAL, "%s: padding must not be negative", op);
  *P = 0;
  if (a->prev) {
    const zoe_tensor *p = a->prev;
    *P = p->shape[2];
    if (p->ndim != 5 || p->shape[0] != N || p->shape[1] != Cin || p->shape[3] != H || p->shape[4] != W)
      return zoe_errf(e, ZOE_ESHAPE, "%s: prev %s does not match the input %s (N, C, H and W must agree)", op,
                      zoe_shape_str(p, sw, sizeof sw), zoe_shape_str(x0, sx, sizeof sx));
    if (*P > a->tpad)
      return zoe_errf(e, ZOE_EINVAL, "%s: prev has %lld frames, more than the %d frames of causal padding", op,
                      (long long)*P, a->tpad);
    if (!is_float(p->dtype))
      return zoe_errf(e, ZOE_EDTYPE, "%s: prev must be a float tensor, got %s", op, zoe_dtype_name(p->dtype));
  }
  int64_t Tp = a->tpad + T, Hp = H + a->pad[0] + a->pad[1], Wp = W + a->pad[2] + a->pad[3];
  if (Tp < kt || Hp < kh || Wp < kw) {
    zoe_shape_str(a->shown_x, sx, sizeof sx);
    if (a->out_ndim == 4)
      return zoe_errf(e, ZOE_ESHAPE,
                      "%s: kernel %dx%d is larger than the padded input %lldx%lld (input %s, padding %d,%d,%d,%d)", op,
                      kh, kw, (long long)Hp, (long long)Wp, sx, a->pad[0], a->pad[1], a->pad[2], a->pad[3]);
    return zoe_errf(e, ZOE_ESHAPE,
                    "%s: kernel %dx%dx%d is larger than the padded input %lldx%lldx%lld (input %s, time padding %d, "
                    "padding %dx%d)",
                    op, kt, kh, kw, (long long)Tp, (long long)Hp, (long long)Wp, sx, a->tpad, a->pad[0], a->pad[2]);
  }
  return 0;
}

/* Where each padded input frame (n, t) starts: zeros, one of prev's frames, or one of x's. */
static frame_src *frame_table(const conv_args *a, const zoe_tensor *x, const zoe_tensor *prev, int64_t P, int64_t Tp) {
  int64_t N = x->shape[0];
  frame_src *frames = malloc(sizeof *frames * (size_t)(N * Tp));
  if (!frames) return NULL;
  for (int64_t n = 0; n < N; n++)
    for (int64_t t = 0; t < Tp; t++) {
      frame_src *f = frames + n * Tp + t;
      int64_t i = t - (a->tpad - P); /* index into prev then x */
      const zoe_tensor *s = i < 0 ? NULL : i < P ? prev : x;
      if (i >= P) i -= P;
      f->p = s ? (const float *)zoe_data(s) + n * s->stride[0] + i * s->stride[2] : NULL;
      f->cs = s ? s->stride[1] : 0;
      f->hs = s ? s->stride[3] : 0;
    }
  return frames;
}

/* im2col tiles through the GEMM over frames_out frames of Ho x Wo pixels. */
static int run_tiles(conv_ctx *c, int64_t frames_out) {
  int64_t pixels = c->Ho * c->Wo, K = c->K;
  /* as many pixels as fit with all of K, at least TILE_PIXELS (then K is cut in chunks) */
  int64_t tile = COL_BYTES / (K * (int64_t)sizeof(float));
  tile = tile < TILE_PIXELS ? TILE_PIXELS : tile > TILE_MAX ? TILE_MAX : tile;
  /*
  ** Several tiles per frame, for the threads. The tiling depends on the frame
  ** alone, not on how many frames come at once nor on the thread count, so a
  ** frame computes to the same bits whether the video is fed whole or chunk by
  ** chunk, on any number of threads.
  */
  int64_t want = 8;
  while (tile > TILE_MIN && (pixels + tile - 1) / tile < want) tile /= 2;
  if (tile >= pixels) tile = pixels;
  else if (tile > 16) tile -= tile % 16;
  c->tile = tile;
  c->tiles_per_frame = (pixels + tile - 1) / tile;
  int64_t taps = (int64_t)c->kt * c->kh * c->kw;
  c->chunk = COL_BYTES / (tile * taps * (int64_t)sizeof(float));
  c->chunk = c->chunk < 1 ? 1 : c->chunk > c->Cin ? c->Cin : c->chunk;
  return zoe_gemm_parallel_for(frames_out * c->tiles_per_frame, 1, conv_tiles, c);
}

static zoe_tensor *conv_run(const conv_args *a, zoe_err *e) {
  const char *op = a->op;
  const zoe_tensor *x0 = a->x, *w0 = a->w;
  int64_t N = x0->shape[0], Cin = x0->shape[1], T = x0->shape[2], H = x0->shape[3], W = x0->shape[4];
  int64_t Cout = w0->shape[0];
  int kt = (int)w0->shape[2], kh = (int)w0->shape[3], kw = (int)w0->shape[4];
  int64_t P = 0;
  if (check_conv(a, &P, e)) return NULL;
  int64_t Tp = a->tpad + T, Hp = H + a->pad[0] + a->pad[1], Wp = W + a->pad[2] + a->pad[3];
  int64_t To = (Tp - kt) / a->stride[0] + 1, Ho = (Hp - kh) / a->stride[1] + 1, Wo = (Wp - kw) / a->stride[2] + 1;
  int64_t oshape5[5] = {N, Cout, To, Ho, Wo}, oshape4[4] = {N, Cout, Ho, Wo};
  const int64_t *oshape = a->out_ndim == 4 ? oshape4 : oshape5;

  zoe_tensor *x = NULL, *prev = NULL, *wm = NULL, *wk = NULL, *bias = NULL, *res = NULL, *dst = NULL;
  frame_src *frames = NULL;
  conv_ctx *c = NULL;
  zoe_gemm_arg wa;
  if (!(x = as_f32_rows(x0, e)) || (a->prev && P > 0 && !(prev = as_f32_rows(a->prev, e))) ||
      weight_matrix(w0, &wm, &wk, &wa, e) || (a->b && !(bias = bias_vector(a->b, Cout, op, e))))
    goto done;
  /* the result goes straight into 'out' when its frames are f32 with contiguous pixels */
  if (a->out) {
    if (!(res = zoe_out_prepare(a->out, a->out->dtype, a->out_ndim, oshape, op, e))) goto done;
    int d = a->out_ndim - 1;
    bool direct = res->dtype == ZOE_F32 && (Wo == 1 || res->stride[d] == 1) && (Ho == 1 || res->stride[d - 1] == Wo);
    dst = direct ? zoe_tensor_retain(res) : zoe_empty(ZOE_F32, a->out_ndim, oshape, e);
  } else {
    dst = zoe_empty(ZOE_F32, a->out_ndim, oshape, e);
  }
  if (!dst) goto done;
  float *out = zoe_data(dst);
  int64_t on = dst->stride[0], oc = dst->stride[1], ot = a->out_ndim == 4 ? 0 : dst->stride[2];
  if (N == 0 || Cout == 0 || To == 0 || Ho * Wo == 0) goto finish;
  const float *bptr = bias ? zoe_data(bias) : NULL;
  int64_t K = Cin * kt * kh * kw;
  if (K == 0) { /* no input channels: the bias alone */
    zoe_tensor *z = bias ? zoe_view(bias, 5, (int64_t[]){1, Cout, 1, 1, 1}, e) : zoe_zeros(ZOE_F32, 0, NULL, e);
    zoe_tensor *zv = z && a->out_ndim == 4 ? zoe_squeeze(z, 2, e) : zoe_tensor_retain(z);
    int rc = zv ? zoe_copy_(dst, zv, e) : -1;
    zoe_tensor_release(z);
    zoe_tensor_release(zv);
    if (rc) goto fail;
    goto finish;
  }

  if (kt == 1 && kh == 1 && kw == 1 && a->tpad == 0 && !prev && a->pad[0] == 0 && a->pad[1] == 0 && a->pad[2] == 0 &&
      a->pad[3] == 0 && a->stride[0] == 1 && a->stride[1] == 1 && a->stride[2] == 1) {
    int rc = conv_pointwise(x, wa, bptr, out, on, oc, ot, Cout, e);
    if (rc < 0) goto fail;
    if (rc == 0) goto finish;
  }

  frames = frame_table(a, x, prev, P, Tp);
  c = calloc(1, sizeof *c);
  if (!frames || !c) {
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", op);
    goto fail;
  }
  *c = (conv_ctx){.frames = frames, .Tp = Tp, .Cin = Cin, .H = H, .W = W, .To = To, .Ho = Ho, .Wo = Wo,
                  .Cout = Cout, .K = K, .kt = kt, .kh = kh, .kw = kw, .st = a->stride[0], .sh = a->stride[1],
                  .sw = a->stride[2], .ptop = a->pad[0], .pleft = a->pad[2], .w = wa, .wf = zoe_data(wm), .bias = bptr,
                  .out = out, .on = on, .oc = oc, .ot = ot};
  atomic_init(&c->failed, 0);
  int64_t frames_out = N * To;
  int rc;
  if (a->stride[1] == 1 && a->stride[2] == 1) {
    zoe__conv wc = {.frames = frames, .N = N, .Tp = Tp, .Cin = Cin, .H = H, .W = W, .To = To, .Ho = Ho,
                    .Wo = Wo, .Cout = Cout, .kt = kt, .kh = kh, .kw = kw, .st = a->stride[0], .ptop = a->pad[0],
                    .pleft = a->pad[2], .w = zoe_data(wm), .bias = bptr, .out = out, .on = on, .oc = oc, .ot = ot};
    if (zoe__conv_winograd_fits(&wc)) {
      if (zoe__conv_winograd(&wc, e)) {
        zoe_err_prefix(e, "%s", op);
        goto fail;
      }
      goto finish;
    }
  }
  if (Cout <= DIRECT_COUT && a->stride[1] == 1 && a->stride[2] == 1) {
    rc = zoe_parallel_for(frames_out * Ho, 1 + 65536 / (K * Wo + 1), direct_rows, c);
    goto ran;
  }
  rc = run_tiles(c, frames_out);
ran:
  if (atomic_load(&c->failed)) {
    zoe_errf(e, c->err.code, "%s: %s", op, c->err.msg);
    goto fail;
  }
  if (rc) {
    zoe_errf(e, rc, "%s: canceled", op);
    goto fail;
  }

finish:
  if (!res) {
    res = dst;
    dst = NULL;
  } else if (dst != res && zoe_copy_(res, dst, e)) {
    goto fail;
  }
  goto done;
fail:
  zoe_tensor_release(res);
  res = NULL;
done:
  free(frames);
  free(c);
  zoe_tensor_release(x);
  zoe_tensor_release(prev);
  zoe_tensor_release(wm);
  zoe_tensor_release(wk);
  zoe_tensor_release(bias);
  zoe_tensor_release(dst);
  return res;
}

/* ---- the public entry points ---- */

static int check_dims(const zoe_tensor *t, int nd, const char *op, const char *what, const char *layout, zoe_err *e) {
  if (t->ndim == nd) return 0;
  char s[96];
  return zoe_errf(e, ZOE_ESHAPE, "%s: %s must be %d-D %s, got %d-D %s", op, what, nd, layout, t->ndim,
                  zoe_shape_str(t, s, sizeof s));
}

zoe_tensor *zoe_conv2d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, const int stride[2],
                       const int pad[4], zoe_tensor *out, zoe_err *e) {
  const char *op = "conv2d";
  if (check_dims(x, 4, op, "input", "[N, Cin, H, W]", e) || check_dims(w, 4, op, "weight", "[Cout, Cin, kh, kw]", e))
    return NULL;
  zoe_tensor *x5 = zoe_unsqueeze(x, 2, e), *w5 = x5 ? zoe_unsqueeze(w, 2, e) : NULL;
  zoe_tensor *r = NULL;
  if (x5 && w5) {
    conv_args a = {.op = op, .shown_x = x, .shown_w = w, .x = x5, .w = w5, .b = b, .out_ndim = 4, .out = out};
    a.stride[0] = 1;
    a.stride[1] = stride ? stride[0] : 1;
    a.stride[2] = stride ? stride[1] : 1;
    for (int i = 0; i < 4; i++) a.pad[i] = pad ? pad[i] : 0;
    r = conv_run(&a, e);
  }
  zoe_tensor_release(x5);
  zoe_tensor_release(w5);
  return r;
}

zoe_tensor *zoe_conv3d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, const int stride[3],
                       const int pad_hw[2], int tpad, const zoe_tensor *prev, zoe_tensor *out, zoe_err *e) {
  const char *op = "conv3d";
  if (check_dims(x, 5, op, "input", "[N, Cin, T, H, W]", e) ||
      check_dims(w, 5, op, "weight", "[Cout, Cin, kt, kh, kw]", e) ||
      (prev && check_dims(prev, 5, op, "prev", "[N, Cin, P, H, W]", e)))
    return NULL;
  if (prev && tpad == 0) {
    zoe_errf(e, ZOE_EINVAL, "%s: prev frames given but the causal padding is 0", op);
    return NULL;
  }
  conv_args a = {.op = op, .shown_x = x, .shown_w = w, .x = x, .prev = prev, .w = w, .b = b, .tpad = tpad, .out_ndim = 5, .out = out};
  for (int i = 0; i < 3; i++) a.stride[i] = stride ? stride[i] : 1;
  a.pad[0] = a.pad[1] = pad_hw ? pad_hw[0] : 0;
  a.pad[2] = a.pad[3] = pad_hw ? pad_hw[1] : 0;
  return conv_run(&a, e);
}
