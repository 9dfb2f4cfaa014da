/*
** block.c: LTX-Video's transformer block (diffusers' transformer_ltx.py,
** LTXVideoTransformerBlock) in one call, and its rotary embedding:
**   x += attn1(RMS(x) * (1 + m1) + m0) * m2     q/k RMS-normed across heads, then rotated
**   x += attn2(x, text)                         no norm, no gate; keys/values per prompt
**   x += ff(RMS(x) * (1 + m4) + m3) * m5        GELU-tanh, 4x wide
** with m = scale_shift_table + temb chunked in six. Image-to-video gives the first latent
** frame's tokens their own modulation (timestep 0): those rows use temb0.
*/
#include <math.h>

#include "../../core/arena.h"
#include "../../core/pool.h"
#include "../../ops/ops.h"
#include "../../ops/out.h"
#include "block.h"

/* ---- the rotary embedding ---- */

typedef struct rope_ctx {
  float *x;
  const float *cos, *sin;
  int64_t L, D;
} rope_ctx;

static void rope_rows(void *arg, int64_t r0, int64_t r1) {
  rope_ctx *c = arg;
  for (int64_t r = r0; r < r1; r++) { /* r counts (b, l) */
    float *x = c->x + r * c->D;
    const float *co = c->cos + (r % c->L) * c->D, *si = c->sin + (r % c->L) * c->D;
    for (int64_t i = 0; i < c->D; i += 2) {
      float a = x[i], b = x[i + 1];
      x[i] = a * co[i] - b * si[i];
      x[i + 1] = b * co[i + 1] + a * si[i + 1];
    }
  }
}

zoe_tensor *zoe_ltx_rope(const zoe_tensor *x, const zoe_tensor *cos, const zoe_tensor *sin, zoe_tensor *out,
                         zoe_err *e) {
  char a[96], b[96];
  if (x->ndim != 3 || x->shape[2] % 2 || cos->ndim != 2 || sin->ndim != 2 || cos->shape[0] != x->shape[1] ||
      cos->shape[1] != x->shape[2] || sin->shape[0] != cos->shape[0] || sin->shape[1] != cos->shape[1]) {
    zoe_errf(e, ZOE_ESHAPE, "ltx_rope: x must be [B, L, D] (D even) and cos, sin [L, D], got %s and %s",
             zoe_shape_str(x, a, sizeof a), zoe_shape_str(cos, b, sizeof b));
    return NULL;
  }
  if (cos->dtype != ZOE_F32 || sin->dtype != ZOE_F32 || !zoe_is_contiguous(cos) || !zoe_is_contiguous(sin)) {
    zoe_errf(e, ZOE_EDTYPE, "ltx_rope: cos and sin must be contiguous f32 tables");
    return NULL;
  }
  zoe_tensor *o;
  if (out && out == x && x->dtype == ZOE_F32 && zoe_is_contiguous(x)) {
    o = zoe_tensor_retain(x);
  } else {
    o = zoe_empty(ZOE_F32, 3, x->shape, e);
    if (!o || zoe_copy_(o, x, e)) {
      zoe_tensor_release(o);
      return NULL;
    }
  }
  rope_ctx c = {zoe_data(o), zoe_data(cos), zoe_data(sin), x->shape[1], x->shape[2]};
  int rc = zoe_parallel_for(x->shape[0] * x->shape[1], 1 + 8192 / (x->shape[2] + 1), rope_rows, &c);
  if (rc) {
    zoe_errf(e, rc, "ltx_rope: canceled");
    zoe_tensor_release(o);
    return NULL;
  }
  if (out && out != o) {
    zoe_tensor *r = zoe_out_prepare(out, ZOE_F32, 3, x->shape, "ltx_rope", e);
    if (r && zoe_copy_(r, o, e)) {
      zoe_tensor_release(r);
      r = NULL;
    }
    zoe_tensor_release(o);
    return r;
  }
  return o;
}

/* ---- the block ---- */

#define ERR(e) ((e) && (e)->code ? (e)->code : ZOE_EINVAL)

/* a [B, L, D] tensor seen as heads [B, L, H, D/H] (takes the reference) */
static zoe_tensor *heads(zoe_tensor *t, int h, zoe_err *e) {
  if (!t) return NULL;
  zoe_tensor *v = zoe_view(t, 4, (int64_t[]){t->shape[0], t->shape[1], h, t->shape[2] / h}, e);
  zoe_tensor_release(t);
  return v;
}

/* linear, then the RMS norm across the whole projection (in place) */
static zoe_tensor *project(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, const zoe_tensor *norm,
                           double eps, zoe_err *e) {
  zoe_tensor *y = zoe_linear(x, w, b, NULL, e);
  if (!y || !norm) return y;
  zoe_tensor *r = zoe_rms_norm(y, norm, eps, y, e);
  zoe_tensor_release(y);
  return r;
}

/*
** A run of tokens with one modulation: entry b (-1: every entry) from token t0 on, len
** tokens; mod is the [B or 1, 6, D] modulation that applies to it.
*/
typedef struct span {
  int64_t b, t0, len;
  const zoe_tensor *mod;
} span;

#define MAX_SPANS 256

/* the span's rows of x [B, L, D] (a view) */
static zoe_tensor *rows(zoe_tensor *x, const span *s, zoe_err *e) {
  if (s->b < 0) return zoe_tensor_retain(x);
  zoe_tensor *xb = zoe_narrow(x, 0, s->b, 1, e);
  zoe_tensor *r = xb ? zoe_narrow(xb, 1, s->t0, s->len, e) : NULL;
  zoe_tensor_release(xb);
  return r;
}

/* modulation i (0..5) for the span: [B or 1, 1, D] */
static zoe_tensor *chunk(const span *s, int i, zoe_err *e) {
  zoe_tensor *m = zoe_narrow(s->mod, 1, i, 1, e);
  if (!m || s->b < 0 || m->shape[0] == 1) return m;
  zoe_tensor *r = zoe_narrow(m, 0, s->b, 1, e);
  zoe_tensor_release(m);
  return r;
}

/* h = RMS(x) * (1 + m[i+1]) + m[i] on the span, as a new [.., len, D] tensor */
static zoe_tensor *modulated(zoe_tensor *x, const span *s, int i, double eps, zoe_err *e) {
  zoe_tensor *xs = rows(x, s, e), *h = xs ? zoe_rms_norm(xs, NULL, eps, NULL, e) : NULL;
  zoe_tensor *sh = h ? chunk(s, i, e) : NULL, *sc = sh ? chunk(s, i + 1, e) : NULL;
  zoe_tensor *r = sc ? zoe_modulate(h, sh, sc, h, e) : NULL;
  zoe_tensor_release(r); /* modulate hands back another reference to h */
  zoe_tensor_release(xs);
  zoe_tensor_release(sh);
  zoe_tensor_release(sc);
  if (!r) {
    zoe_tensor_release(h);
    return NULL;
  }
  return h;
}

/* x += y * m[i] on the span (y: the span's rows) */
static int gated(zoe_tensor *x, const zoe_tensor *y, const span *s, int i, zoe_err *e) {
  zoe_tensor *xs = rows(x, s, e), *g = xs ? chunk(s, i, e) : NULL;
  zoe_tensor *r = g ? zoe_gated_add(xs, y, g, xs, e) : NULL;
  int ok = r != NULL;
  zoe_tensor_release(r);
  zoe_tensor_release(g);
  zoe_tensor_release(xs);
  return ok ? 0 : ERR(e);
}

/*
** The spans of x [B, L, D]: everything at once when no token has its own modulation and
** the batch fits max_rows; else per entry, the conditioned tokens first, then the rest in
** pieces of at most max_rows.
*/
static int spans(const zoe_tensor *x, const zoe_ltx_block_opts *o, const zoe_tensor *mod, const zoe_tensor *mod0,
                 int64_t max_rows, span *out, int cap) {
  int64_t B = x->shape[0], L = x->shape[1], n = mod0 ? o->cond_tokens : 0;
  if (n == 0 && B * L <= max_rows) {
    out[0] = (span){-1, 0, L, mod};
    return 1;
  }
  int k = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < L && k < cap;) {
      int64_t end = t < n ? n : L, len = end - t < max_rows ? end - t : max_rows;
      out[k++] = (span){b, t, len, t < n ? mod0 : mod};
      t += len;
    }
  return k;
}

/* how many spans the feed-forward takes (spans() with max_rows) */
static int64_t count_spans(int64_t B, int64_t L, int64_t n, int64_t max_rows) {
  if (n == 0 && B * L <= max_rows) return 1;
  return B * ((n + max_rows - 1) / max_rows + (L - n + max_rows - 1) / max_rows);
}

static int self_attention(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, zoe_tensor *x,
                          const zoe_tensor *mod, const zoe_tensor *mod0, const zoe_tensor *cos,
                          const zoe_tensor *sin, zoe_err *e) {
  span sp[MAX_SPANS];
  int ns = spans(x, o, mod, mod0, INT64_MAX / 4, sp, MAX_SPANS);
  /* h: the modulated rows of every span, in token order ([B, L, D]) */
  zoe_tensor *h = ns == 1 ? modulated(x, &sp[0], 0, o->eps, e) : zoe_empty(ZOE_F32, 3, x->shape, e);
  for (int i = 0; ns > 1 && h && i < ns; i++) {
    zoe_tensor *m = modulated(x, &sp[i], 0, o->eps, e), *dst = m ? rows(h, &sp[i], e) : NULL;
    int bad = !dst || zoe_copy_(dst, m, e);
    zoe_tensor_release(m);
    zoe_tensor_release(dst);
    if (bad) {
      zoe_tensor_release(h);
      h = NULL;
    }
  }
  if (!h) return ERR(e);
  const zoe_attn_w *a = &w->self_attn;
  zoe_tensor *q = project(h, a->q_w, a->q_b, a->norm_q, o->qk_eps, e);
  zoe_tensor *k = q ? project(h, a->k_w, a->k_b, a->norm_k, o->qk_eps, e) : NULL;
  zoe_tensor *v = k ? heads(zoe_linear(h, a->v_w, a->v_b, NULL, e), o->heads, e) : NULL;
  zoe_tensor_release(h);
  zoe_tensor *r1 = v ? zoe_ltx_rope(q, cos, sin, q, e) : NULL, *r2 = r1 ? zoe_ltx_rope(k, cos, sin, k, e) : NULL;
  zoe_tensor_release(r1); /* in place: further references to q and k */
  zoe_tensor_release(r2);
  zoe_tensor *y = NULL, *flat = NULL, *out = NULL;
  if (r2) {
    q = heads(q, o->heads, e);
    k = q ? heads(k, o->heads, e) : k;
    zoe_attn_opts ao = {.scale = NAN};
    y = q && k ? zoe_attention(q, k, v, &ao, NULL, e) : NULL;
    flat = y ? zoe_view(y, 3, x->shape, e) : NULL;
    out = flat ? zoe_linear(flat, a->o_w, a->o_b, NULL, e) : NULL;
  }
  zoe_tensor *all[] = {q, k, v, y, flat};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
  if (!out) return ERR(e);
  int rc = 0;
  for (int i = 0; i < ns && !rc; i++) {
    zoe_tensor *ys = rows(out, &sp[i], e);
    rc = ys ? gated(x, ys, &sp[i], 2, e) : ERR(e);
    zoe_tensor_release(ys);
  }
  zoe_tensor_release(out);
  return rc;
}

static int cross_attention(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, zoe_tensor *x,
                           const zoe_tensor *ck, const zoe_tensor *cv, const zoe_tensor *mask, zoe_err *e) {
  const zoe_attn_w *a = &w->cross_attn;
  zoe_tensor *q = heads(project(x, a->q_w, a->q_b, a->norm_q, o->qk_eps, e), o->heads, e);
  zoe_attn_opts ao = {.scale = NAN, .key_mask = mask};
  zoe_tensor *y = q ? zoe_attention(q, ck, cv, &ao, NULL, e) : NULL;
  zoe_tensor *flat = y ? zoe_view(y, 3, x->shape, e) : NULL;
  zoe_tensor *out = flat ? zoe_linear(flat, a->o_w, a->o_b, NULL, e) : NULL;
  zoe_tensor *r = out ? zoe_gated_add(x, out, NULL, x, e) : NULL;
  int ok = r != NULL;
  zoe_tensor *all[] = {q, y, flat, out, r};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
  return ok ? 0 : ERR(e);
}

/*
** The feed-forward a span at a time: its hidden layer is 4 D wide (8192 for the 2B model)
** and the GEMM packs a copy of its input, so at 7392 tokens with guidance it would take
** 1 GB in one piece; in pieces of at most ffn_rows tokens it takes a bounded amount.
** Rows are independent, so the result is the same.
*/
static int feed_forward(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, zoe_tensor *x, const zoe_tensor *mod,
                        const zoe_tensor *mod0, zoe_err *e) {
  span sp[MAX_SPANS];
  int64_t max_rows = o->ffn_rows > 0 ? o->ffn_rows : 8192;
  int ns = spans(x, o, mod, mod0, max_rows, sp, MAX_SPANS);
  int rc = 0;
  for (int i = 0; i < ns && !rc; i++) {
    zoe_tensor *h = modulated(x, &sp[i], 3, o->eps, e);
    zoe_tensor *y = h ? zoe_linear_act(h, w->ff0_w, w->ff0_b, ZOE_ACT_GELU_TANH, NULL, e) : NULL;
    zoe_tensor_release(h);
    h = y ? zoe_linear(y, w->ff2_w, w->ff2_b, NULL, e) : NULL;
    zoe_tensor_release(y);
    rc = h ? gated(x, h, &sp[i], 5, e) : ERR(e);
    zoe_tensor_release(h);
  }
  return rc;
}

static int check(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, const zoe_tensor *x, const zoe_tensor *temb,
                 const zoe_tensor *temb0, const zoe_tensor *ck, const zoe_tensor *cv, const zoe_tensor *mask,
                 zoe_err *e) {
  char a[96], b[96];
  if (x->ndim != 3 || o->heads <= 0 || x->shape[2] % o->heads)
    return zoe_errf(e, ZOE_ESHAPE, "ltx_block: x must be [B, L, D] with D divisible by %d heads, got %s", o->heads,
                    zoe_shape_str(x, a, sizeof a));
  int64_t B = x->shape[0], L = x->shape[1], D = x->shape[2];
  for (int i = 0; i < 2; i++) {
    const zoe_tensor *t = i ? temb0 : temb;
    if (t && (t->ndim != 3 || (t->shape[0] != B && t->shape[0] != 1) || t->shape[1] != 6 || t->shape[2] != D))
      return zoe_errf(e, ZOE_ESHAPE, "ltx_block: %s must be [%lld, 6, %lld], got %s", i ? "temb0" : "temb",
                      (long long)B, (long long)D, zoe_shape_str(t, a, sizeof a));
  }
  if (!w->table || zoe_numel(w->table) != 6 * D)
    return zoe_errf(e, ZOE_ESHAPE, "ltx_block: the scale-shift table must have 6 x %lld entries", (long long)D);
  if (o->cond_tokens < 0 || o->cond_tokens > L || (o->cond_tokens > 0 && !temb0))
    return zoe_errf(e, ZOE_EINVAL, "ltx_block: %lld conditioned tokens need temb0 and at most %lld tokens",
                    (long long)o->cond_tokens, (long long)L);
  if (!ck || !cv || ck->ndim != 4 || cv->ndim != 4 || ck->shape[0] != B || cv->shape[0] != B ||
      ck->shape[2] != o->heads || ck->shape[1] != cv->shape[1])
    return zoe_errf(e, ZOE_ESHAPE, "ltx_block: cross keys/values must be [%lld, Lc, %d, Dh] (got %s and %s)",
                    (long long)B, o->heads, ck ? zoe_shape_str(ck, a, sizeof a) : "none",
                    cv ? zoe_shape_str(cv, b, sizeof b) : "none");
  if (mask && (mask->ndim != 2 || mask->shape[0] != B || mask->shape[1] != ck->shape[1]))
    return zoe_errf(e, ZOE_ESHAPE, "ltx_block: the key mask must be [%lld, %lld], got %s", (long long)B,
                    (long long)ck->shape[1], zoe_shape_str(mask, a, sizeof a));
  int64_t max_rows = o->ffn_rows > 0 ? o->ffn_rows : 8192;
  if (count_spans(B, L, temb0 ? o->cond_tokens : 0, max_rows) > MAX_SPANS || count_spans(B, L, temb0 ? o->cond_tokens : 0, INT64_MAX / 4) > MAX_SPANS)
    return zoe_errf(e, ZOE_EINVAL, "ltx_block: %lld x %lld tokens in pieces of %lld take more than %d pieces",
                    (long long)B, (long long)L, (long long)max_rows, MAX_SPANS);
  return 0;
}

static zoe_tensor *block(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, const zoe_tensor *x0,
                         const zoe_tensor *temb, const zoe_tensor *temb0, const zoe_tensor *cos, const zoe_tensor *sin,
                         const zoe_tensor *ck, const zoe_tensor *cv, const zoe_tensor *mask, zoe_err *e) {
  int64_t D = x0->shape[2];
  zoe_tensor *table = zoe_view(w->table, 3, (int64_t[]){1, 6, D}, e);
  zoe_tensor *mod = table ? zoe_binary(ZOE_ADD, temb, table, NULL, e) : NULL;
  zoe_tensor *mod0 = mod && temb0 && o->cond_tokens > 0 ? zoe_binary(ZOE_ADD, temb0, table, NULL, e) : NULL;
  zoe_tensor *x = mod && (mod0 || !o->cond_tokens) ? (x0->dtype == ZOE_F32 ? zoe_clone(x0, e) : zoe_to_dtype(x0, ZOE_F32, e)) : NULL;
  int ok = x && !self_attention(w, o, x, mod, mod0, cos, sin, e) && !cross_attention(w, o, x, ck, cv, mask, e) &&
           !feed_forward(w, o, x, mod, mod0, e);
  zoe_tensor_release(table);
  zoe_tensor_release(mod);
  zoe_tensor_release(mod0);
  if (!ok) {
    zoe_tensor_release(x);
    return NULL;
  }
  return x;
}

/* Every block of a step allocates the same: its activations come from one arena per shape. */
zoe_tensor *zoe_ltx_block(const zoe_ltx_block_w *w, const zoe_ltx_block_opts *o, const zoe_tensor *x,
                          const zoe_tensor *temb, const zoe_tensor *temb0, const zoe_tensor *cos,
                          const zoe_tensor *sin, const zoe_tensor *cross_k, const zoe_tensor *cross_v,
                          const zoe_tensor *key_mask, zoe_err *e) {
  if (check(w, o, x, temb, temb0, cross_k, cross_v, key_mask, e)) return NULL;
  int64_t sizes[] = {x->shape[0], x->shape[1], x->shape[2], x->dtype, cross_k->shape[1], o->cond_tokens,
                     o->ffn_rows, w->ff0_w->shape[0], w->ff0_w->dtype, key_mask != NULL};
  zoe_arena_enter(zoe_arena_key("ltx_block", (int)(sizeof sizes / sizeof *sizes), sizes));
  zoe_tensor *r = block(w, o, x, temb, temb0, cos, sin, cross_k, cross_v, key_mask, e);
  zoe_arena_leave();
  return r;
}
