/*
** block.c: CogVideoX's transformer block over the joint sequence [text | video]:
**   m = mod(silu(emb)) -> shift, scale, gate of the video rows, then the text rows'
**   h = LN(x) * (1 + scale) + shift          each stream with its own shift and scale
**   q, k, v = h W + b; LayerNorm per head on q and k (eps 1e-6); RoPE on the video rows
**   x += gate * (softmax(q k^T / sqrt(Dh)) v W_o + b_o)
**   the same with the second LayerNormZero and the GELU-tanh feed-forward
** One call per block: its temporaries come from an arena planned on the first run at a
** shape (as Wan's DiT block), and the feed-forward's 4x-wide hidden layer is made a chunk
** of rows at a time.
*/
#include <math.h>

#include "../../core/arena.h"
#include "../../core/pool.h"
#include "../../ops/ops.h"
#include "block.h"

#define STEP(expr)          \
  do {                      \
    if (!(expr)) goto done; \
  } while (0)

/* [B, S, D] seen as heads [B, S, H, D/H] */
static zoe_tensor *heads(zoe_tensor *t, int h, zoe_err *e) {
  if (!t) return NULL;
  zoe_tensor *v = zoe_view(t, 4, (int64_t[]){t->shape[0], t->shape[1], h, t->shape[2] / h}, e);
  zoe_tensor_release(t);
  return v;
}

/* ---- rotary embedding from a table, on rows row0.. of x [B, S, H, Dh] (contiguous f32) ---- */

typedef struct rope_ctx {
  float *x;
  const float *cos, *sin; /* [L, Dh]: each frequency twice, as the pipeline builds them */
  int64_t S, H, Dh, L, row0;
} rope_ctx;

static void rope_range(void *arg, int64_t r0, int64_t r1) {
  rope_ctx *c = arg;
  for (int64_t r = r0; r < r1; r++) { /* r counts (b, video row) */
    int64_t b = r / c->L, l = r % c->L;
    const float *co = c->cos + l * c->Dh, *si = c->sin + l * c->Dh;
    for (int64_t h = 0; h < c->H; h++) {
      float *x = c->x + ((b * c->S + c->row0 + l) * c->H + h) * c->Dh;
      for (int64_t j = 0; j < c->Dh; j += 2) { /* out = x cos + rot(x) sin, rot(x) = (-x1, x0) */
        float a = x[j], bb = x[j + 1];
        x[j] = a * co[j] - bb * si[j];
        x[j + 1] = bb * co[j + 1] + a * si[j + 1];
      }
    }
  }
}

static int rope_rows(zoe_tensor *x, int64_t row0, const zoe_tensor *cos, const zoe_tensor *sin, zoe_err *e) {
  rope_ctx c = {zoe_data(x), zoe_data(cos), zoe_data(sin), x->shape[1], x->shape[2], x->shape[3], cos->shape[0], row0};
  int rc = zoe_parallel_for(x->shape[0] * c.L, 1 + 4096 / (c.H * c.Dh + 1), rope_range, &c);
  return rc ? zoe_errf(e, rc, "cogvideox_block: canceled") : 0;
}

/* ---- pieces ---- */

/* shift, scale, gate of the video rows, then of the text rows: [B, 1, D] views of mod(es) */
static zoe_tensor *chunks(const zoe_tensor *es, const zoe_tensor *w, const zoe_tensor *b, int64_t D, zoe_tensor *c[6],
                          zoe_err *e) {
  zoe_tensor *m = zoe_linear(es, w, b, NULL, e), *v = NULL;
  if (m && (v = zoe_view(m, 3, (int64_t[]){m->shape[0], 6, D}, e)))
    for (int i = 0; i < 6; i++)
      if (!(c[i] = zoe_narrow(v, 1, i, 1, e))) break;
  zoe_tensor_release(m);
  return v;
}

/* rows [r0, r0 + n) of x [B, S, D] (a view) */
static zoe_tensor *rows(zoe_tensor *x, int64_t r0, int64_t n, zoe_err *e) { return zoe_narrow(x, 1, r0, n, e); }

/* h = LN(x) * (1 + scale) + shift, the text rows with c[4], c[3] and the video rows with c[1], c[0] */
static zoe_tensor *norm_modulate(const zoe_tensor *x, const zoe_tensor *nw, const zoe_tensor *nb, double eps, int64_t T,
                                 zoe_tensor *const c[6], zoe_err *e) {
  zoe_tensor *h = zoe_layer_norm(x, nw, nb, eps, NULL, e), *part = NULL, *r = NULL;
  int64_t S = x->shape[1];
  int ok = h != NULL;
  for (int s = 0; ok && s < 2; s++) { /* s = 0: text, 1: video */
    int64_t r0 = s ? T : 0, n = s ? S - T : T;
    if (n == 0) continue;
    ok = (part = rows(h, r0, n, e)) && (r = zoe_modulate(part, c[s ? 0 : 3], c[s ? 1 : 4], part, e));
    zoe_tensor_release(r);
    zoe_tensor_release(part);
    r = part = NULL;
  }
  if (!ok) {
    zoe_tensor_release(h);
    return NULL;
  }
  return h;
}

/* x[rows] += y * gate, in place (x and y [B, n, D] views) */
static int gated(zoe_tensor *x, const zoe_tensor *y, const zoe_tensor *gate, zoe_err *e) {
  zoe_tensor *r = zoe_gated_add(x, y, gate, x, e);
  zoe_tensor_release(r);
  return r ? 0 : (e && e->code ? e->code : ZOE_EINVAL);
}

/* x[r0, r0+n) += gate * ffn(h[r0, r0+n)), a chunk of rows of one batch entry at a time */
static int ffn_rows(const zoe_cogvideox_block_w *w, zoe_tensor *x, const zoe_tensor *h, int64_t r0, int64_t n,
                    const zoe_tensor *gate, int64_t chunk, zoe_err *e) {
  int rc = 0;
  for (int64_t b = 0; b < x->shape[0] && !rc; b++) {
    zoe_tensor *xb = zoe_narrow(x, 0, b, 1, e), *hb = xb ? zoe_narrow(h, 0, b, 1, e) : NULL;
    zoe_tensor *gb = hb ? (gate->shape[0] == 1 ? zoe_tensor_retain(gate) : zoe_narrow(gate, 0, b, 1, e)) : NULL;
    if (!gb) rc = e && e->code ? e->code : ZOE_EINVAL;
    for (int64_t s = r0; s < r0 + n && !rc; s += chunk) {
      int64_t m = s + chunk < r0 + n ? chunk : r0 + n - s;
      zoe_tensor *hc = rows(hb, s, m, e), *mid = NULL, *y = NULL, *xc = NULL;
      if (!(hc && (mid = zoe_linear_act(hc, w->ffn0_w, w->ffn0_b, ZOE_ACT_GELU_TANH, NULL, e)) &&
            (y = zoe_linear(mid, w->ffn2_w, w->ffn2_b, NULL, e)) && (xc = rows(xb, s, m, e))))
        rc = e && e->code ? e->code : ZOE_EINVAL;
      if (!rc) rc = gated(xc, y, gb, e);
      zoe_tensor *all[] = {hc, mid, y, xc};
      for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
    }
    zoe_tensor_release(xb);
    zoe_tensor_release(hb);
    zoe_tensor_release(gb);
  }
  return rc;
}

/* ---- the block ---- */

static int check(const zoe_cogvideox_block_w *w, const zoe_cogvideox_block_opts *o, const zoe_tensor *x,
                 const zoe_tensor *es, zoe_err *e) {
  char a[96], b[96];
  if (x->ndim != 3 || es->ndim != 2 || (es->shape[0] != x->shape[0] && es->shape[0] != 1))
    return zoe_errf(e, ZOE_ESHAPE, "cogvideox_block: x must be [B, T + L, D] and emb [B, E] (got %s and %s)",
                    zoe_shape_str(x, a, sizeof a), zoe_shape_str(es, b, sizeof b));
  int64_t D = x->shape[2];
  if (o->heads <= 0 || D % o->heads)
    return zoe_errf(e, ZOE_EINVAL, "cogvideox_block: width %lld is not divisible by %d heads", (long long)D, o->heads);
  if (o->text < 0 || o->text > x->shape[1])
    return zoe_errf(e, ZOE_EINVAL, "cogvideox_block: %lld text rows in a sequence of %lld", (long long)o->text,
                    (long long)x->shape[1]);
  if (!w->mod1_w || w->mod1_w->ndim != 2 || w->mod1_w->shape[0] != 6 * D || !w->mod2_w || w->mod2_w->ndim != 2 ||
      w->mod2_w->shape[0] != 6 * D)
    return zoe_errf(e, ZOE_ESHAPE, "cogvideox_block: the LayerNormZero projections must give 6 x %lld", (long long)D);
  if (o->rope_cos) {
    const zoe_tensor *c = o->rope_cos, *s = o->rope_sin;
    int64_t L = x->shape[1] - o->text, Dh = D / o->heads;
    if (!s || c->ndim != 2 || s->ndim != 2 || c->shape[0] != L || c->shape[1] != Dh || s->shape[0] != L ||
        s->shape[1] != Dh || c->dtype != ZOE_F32 || s->dtype != ZOE_F32 || !zoe_is_contiguous(c) || !zoe_is_contiguous(s))
      return zoe_errf(e, ZOE_ESHAPE, "cogvideox_block: rope tables must be f32 [%lld, %lld] (video rows x head dim), got %s",
                      (long long)L, (long long)Dh, zoe_shape_str(c, a, sizeof a));
  }
  return 0;
}

static zoe_tensor *block(const zoe_cogvideox_block_w *w, const zoe_cogvideox_block_opts *o, const zoe_tensor *x0,
                         const zoe_tensor *es, zoe_err *e) {
  int64_t B = x0->shape[0], S = x0->shape[1], D = x0->shape[2], T = o->text, L = S - T;
  zoe_tensor *c1[6] = {0}, *c2[6] = {0}, *m1 = NULL, *m2 = NULL;
  zoe_tensor *x = NULL, *h = NULL, *q = NULL, *k = NULL, *v = NULL, *y = NULL, *flat = NULL, *r = NULL;
  zoe_tensor *xs = NULL, *ys = NULL, *res = NULL;
  STEP(m1 = chunks(es, w->mod1_w, w->mod1_b, D, c1, e));
  STEP(c1[5]);
  STEP(m2 = chunks(es, w->mod2_w, w->mod2_b, D, c2, e));
  STEP(c2[5]);
  STEP(x = x0->dtype == ZOE_F32 ? zoe_clone(x0, e) : zoe_to_dtype(x0, ZOE_F32, e));

  /* attention over the joint sequence */
  STEP(h = norm_modulate(x, w->norm1_w, w->norm1_b, o->eps, T, c1, e));
  STEP(q = heads(zoe_linear(h, w->q_w, w->q_b, NULL, e), o->heads, e));
  STEP(k = heads(zoe_linear(h, w->k_w, w->k_b, NULL, e), o->heads, e));
  STEP(v = heads(zoe_linear(h, w->v_w, w->v_b, NULL, e), o->heads, e));
  zoe_tensor_release(h);
  h = NULL;
  STEP(r = zoe_layer_norm(q, w->norm_q_w, w->norm_q_b, 1e-6, q, e)); /* in place */
  zoe_tensor_release(r);
  STEP(r = zoe_layer_norm(k, w->norm_k_w, w->norm_k_b, 1e-6, k, e));
  zoe_tensor_release(r);
  r = NULL;
  if (o->rope_cos && L > 0 && (rope_rows(q, T, o->rope_cos, o->rope_sin, e) || rope_rows(k, T, o->rope_cos, o->rope_sin, e)))
    goto done;
  zoe_attn_opts ao = {.scale = NAN};
  STEP(y = zoe_attention(q, k, v, &ao, NULL, e));
  zoe_tensor_release(q);
  zoe_tensor_release(k);
  zoe_tensor_release(v);
  q = k = v = NULL;
  STEP(flat = zoe_view(y, 3, (int64_t[]){B, S, D}, e));
  zoe_tensor_release(y);
  STEP(y = zoe_linear(flat, w->o_w, w->o_b, NULL, e));
  zoe_tensor_release(flat);
  flat = NULL;
  for (int s = 0; s < 2; s++) { /* x += gate * y, each stream with its gate */
    int64_t r0 = s ? T : 0, n = s ? L : T;
    if (n == 0) continue;
    STEP(xs = rows(x, r0, n, e));
    STEP(ys = rows(y, r0, n, e));
    if (gated(xs, ys, s ? c1[2] : c1[5], e)) goto done;
    zoe_tensor_release(xs);
    zoe_tensor_release(ys);
    xs = ys = NULL;
  }
  zoe_tensor_release(y);
  y = NULL;

  /* feed-forward: the text rows with their gate, the video rows in chunks with theirs */
  STEP(h = norm_modulate(x, w->norm2_w, w->norm2_b, o->eps, T, c2, e));
  int64_t chunk = o->ffn_rows > 0 ? o->ffn_rows : 8192;
  if (T > 0 && ffn_rows(w, x, h, 0, T, c2[5], chunk, e)) goto done;
  if (L > 0 && ffn_rows(w, x, h, T, L, c2[2], chunk, e)) goto done;
  res = zoe_tensor_retain(x);
done:
  for (int i = 0; i < 6; i++) {
    zoe_tensor_release(c1[i]);
    zoe_tensor_release(c2[i]);
  }
  zoe_tensor *all[] = {m1, m2, x, h, q, k, v, y, flat, xs, ys};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
  if (!res && e && !e->code) zoe_errf(e, ZOE_ENOMEM, "cogvideox_block: out of memory");
  return res;
}

/* Every block of a step allocates the same: its activations come from one arena per shape. */
zoe_tensor *zoe_cogvideox_block(const zoe_cogvideox_block_w *w, const zoe_cogvideox_block_opts *o,
                                const zoe_tensor *x, const zoe_tensor *es, zoe_err *e) {
  if (check(w, o, x, es, e)) return NULL;
  int64_t sizes[] = {x->shape[0], x->shape[1], x->shape[2], x->dtype, o->text, es->shape[0], o->ffn_rows,
                     w->ffn0_w->shape[0], w->ffn0_w->dtype, o->rope_cos != NULL};
  zoe_arena_enter(zoe_arena_key("cogvideox_block", (int)(sizeof sizes / sizeof *sizes), sizes));
  zoe_tensor *r = block(w, o, x, es, e);
  zoe_arena_leave();
  return r;
}
