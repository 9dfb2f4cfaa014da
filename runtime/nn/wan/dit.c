/*
** dit.c: Wan's DiT block (wan/modules/model.py, WanAttentionBlock) in one call:
**   x += self_attn(LN(x) * (1 + m1) + m0) * m2        q/k RMS-normed, 3-D RoPE
**   x += cross_attn(LN_affine(x), context)             keys/values cached per prompt;
**                                                      one context per latent frame also works
**   x += ffn(LN(x) * (1 + m4) + m3) * m5               GELU-tanh
** with m = modulation + e0 chunked in six.
*/
#include <math.h>

#include "../../core/arena.h"
#include "../../ops/ops.h"
#include "dit.h"

/* a [B, L, D] tensor seen as heads [B, L, H, D/H] */
static zoe_tensor *heads(zoe_tensor *t, int h, zoe_err *e) {
  if (!t) return NULL;
  int64_t shape[4] = {t->shape[0], t->shape[1], h, t->shape[2] / h};
  zoe_tensor *v = zoe_view(t, 4, shape, e);
  zoe_tensor_release(t);
  return v;
}

/* linear, then the optional RMS norm over the whole projection */
static zoe_tensor *project(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b,
                           const zoe_tensor *norm, double eps, zoe_err *e) {
  zoe_tensor *y = zoe_linear(x, w, b, NULL, e);
  if (!y || !norm) return y;
  zoe_tensor *r = zoe_rms_norm(y, norm, eps, y, e);
  zoe_tensor_release(y);
  return r;
}


int zoe_wan_cross_kv(const zoe_wan_block_w *w, int h, double eps, const zoe_tensor *context,
                     zoe_tensor **k, zoe_tensor **v, zoe_err *e) {
  *k = heads(project(context, w->cross_attn.k_w, w->cross_attn.k_b, w->cross_attn.norm_k, eps, e), h, e);
  *v = *k ? heads(project(context, w->cross_attn.v_w, w->cross_attn.v_b, NULL, eps, e), h, e) : NULL;
  if (*k && *v) return 0;
  zoe_tensor_release(*k);
  *k = NULL;
  return e ? e->code : ZOE_EINVAL;
}

/* x += ffn(LN(x) * (1 + m4) + m3) * m5 on x [1, n, D], a view of the block's rows */
static int ffn_part(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, zoe_tensor *x, zoe_tensor *m3,
                    zoe_tensor *m4, zoe_tensor *m5, zoe_err *e) {
  zoe_tensor *h = zoe_layer_norm(x, NULL, NULL, o->eps, NULL, e), *y = NULL, *r = NULL;
  int ok = h && (r = zoe_modulate(h, m3, m4, h, e));
  zoe_tensor_release(r); /* modulate hands back another reference to h */
  r = NULL;              /* the release below is gated_add's: a failure before it must not repeat this one */
  ok = ok && (y = zoe_linear_act(h, w->ffn0_w, w->ffn0_b, ZOE_ACT_GELU_TANH, NULL, e));
  zoe_tensor_release(h);
  h = NULL;
  ok = ok && (h = zoe_linear(y, w->ffn2_w, w->ffn2_b, NULL, e));
  zoe_tensor_release(y);
  ok = ok && (r = zoe_gated_add(x, h, m5, x, e));
  zoe_tensor_release(r);
  zoe_tensor_release(h);
  return ok ? 0 : (e && e->code ? e->code : ZOE_EINVAL);
}

/* a modulation chunk [B or 1, 1, D] for batch entry b */
static zoe_tensor *entry(zoe_tensor *m, int64_t b, zoe_err *e) {
  return m->shape[0] == 1 ? zoe_tensor_retain(m) : zoe_narrow(m, 0, b, 1, e);
}

/*
** The feed-forward, a batch entry and at most ffn_rows tokens at a time when x is longer:
** its hidden layer is ffn_dim wide (5.8x D in Wan) and the GEMM packs a bf16 copy of it,
** so in one piece it would grow with the video (832x480x81 with guidance: 65k rows, 4 GB);
** in pieces it costs a bounded amount. Rows are independent, so the result is the same.
*/
static int ffn(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, zoe_tensor *x, zoe_tensor *const mc[6],
               zoe_err *e) {
  int64_t B = x->shape[0], L = x->shape[1], rows = o->ffn_rows > 0 ? o->ffn_rows : 8192;
  if (B * L <= rows) return ffn_part(w, o, x, mc[3], mc[4], mc[5], e);
  int rc = 0;
  for (int64_t b = 0; b < B && !rc; b++) {
    zoe_tensor *m3 = entry(mc[3], b, e), *m4 = entry(mc[4], b, e), *m5 = entry(mc[5], b, e);
    zoe_tensor *xb = m3 && m4 && m5 ? zoe_narrow(x, 0, b, 1, e) : NULL;
    if (!xb) rc = e && e->code ? e->code : ZOE_EINVAL;
    for (int64_t r0 = 0; r0 < L && !rc; r0 += rows) {
      zoe_tensor *xc = zoe_narrow(xb, 1, r0, r0 + rows < L ? rows : L - r0, e);
      rc = xc ? ffn_part(w, o, xc, m3, m4, m5, e) : (e && e->code ? e->code : ZOE_EINVAL);
      zoe_tensor_release(xc);
    }
    zoe_tensor *all[] = {m3, m4, m5, xb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
  }
  return rc;
}

static int check(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, const zoe_tensor *x,
                 const zoe_tensor *e0, const zoe_tensor *ck, const zoe_tensor *cv, zoe_err *e) {
  char a[96], b[96];
  int64_t B = x->shape[0];
  if (!ck || !cv || ck->ndim != 4 || cv->ndim != 4 || ck->shape[2] != o->heads ||
      cv->shape[0] != ck->shape[0] || (ck->shape[0] != B && ck->shape[0] != B * o->grid[0]))
    return zoe_errf(e, ZOE_ESHAPE,
                    "wan_block: cross keys/values must be [B, Lc, %d, Dh] or, one context per latent frame, "
                    "[B*%lld, Lc, %d, Dh] for x %s",
                    o->heads, (long long)o->grid[0], o->heads, zoe_shape_str(x, a, sizeof a));
  if (x->ndim != 3 || e0->ndim != 3 || e0->shape[1] != 6 || e0->shape[2] != x->shape[2] ||
      (e0->shape[0] != x->shape[0] && e0->shape[0] != 1))
    return zoe_errf(e, ZOE_ESHAPE, "wan_block: x must be [B, L, D] and e0 [B, 6, D] (got %s and %s)",
                    zoe_shape_str(x, a, sizeof a), zoe_shape_str(e0, b, sizeof b));
  if (o->heads <= 0 || x->shape[2] % o->heads)
    return zoe_errf(e, ZOE_EINVAL, "wan_block: dim %lld is not divisible by %d heads", (long long)x->shape[2], o->heads);
  if (!w->modulation || zoe_numel(w->modulation) != 6 * x->shape[2])
    return zoe_errf(e, ZOE_ESHAPE, "wan_block: modulation must have 6 x %lld elements", (long long)x->shape[2]);
  return 0;
}

static zoe_tensor *block(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, const zoe_tensor *x0,
                         const zoe_tensor *e0, const zoe_tensor *ck, const zoe_tensor *cv, zoe_err *e);

/* Every block of a step allocates the same: its activations come from one arena per shape. */
zoe_tensor *zoe_wan_block(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, const zoe_tensor *x0,
                          const zoe_tensor *e0, const zoe_tensor *ck, const zoe_tensor *cv, zoe_err *e) {
  if (check(w, o, x0, e0, ck, cv, e)) return NULL;
  int64_t sizes[] = {x0->shape[0], x0->shape[1], x0->shape[2], x0->dtype, e0->shape[0], ck->shape[0],
                     ck->shape[1], cv->shape[1], o->ffn_rows, w->ffn0_w->shape[0], w->ffn0_w->dtype};
  zoe_arena_enter(zoe_arena_key("wan_block", (int)(sizeof sizes / sizeof *sizes), sizes));
  zoe_tensor *r = block(w, o, x0, e0, ck, cv, e);
  zoe_arena_leave();
  return r;
}

static zoe_tensor *block(const zoe_wan_block_w *w, const zoe_wan_block_opts *o, const zoe_tensor *x0,
                         const zoe_tensor *e0, const zoe_tensor *ck, const zoe_tensor *cv, zoe_err *e) {
  int64_t D = x0->shape[2];
  zoe_tensor *m = NULL, *modv = NULL, *x = NULL, *h = NULL, *q = NULL, *k = NULL, *v = NULL;
  zoe_tensor *y = NULL, *flat = NULL, *mc[6] = {0};
  zoe_tensor *res = NULL;
  /* m = modulation + e0, as [B, 6, D] */
  if (!(modv = zoe_view(w->modulation, 3, (int64_t[]){1, 6, D}, e)) ||
      !(m = zoe_binary(ZOE_ADD, e0, modv, NULL, e)))
    goto done;
  for (int i = 0; i < 6; i++)
    if (!(mc[i] = zoe_narrow(m, 1, i, 1, e))) goto done; /* [B, 1, D] */
  if (!(x = x0->dtype == ZOE_F32 ? zoe_clone(x0, e) : zoe_to_dtype(x0, ZOE_F32, e))) goto done;

  /* self-attention */
#define STEP(expr) \
  do {             \
    if (!(expr)) goto done; \
  } while (0)
  STEP(h = zoe_layer_norm(x, NULL, NULL, o->eps, NULL, e));
  STEP(zoe_modulate(h, mc[0], mc[1], h, e));
  zoe_tensor_release(h); /* modulate returned a second reference to h */
  const zoe_attn_w *sa = &w->self_attn;
  STEP(q = heads(project(h, sa->q_w, sa->q_b, sa->norm_q, o->eps, e), o->heads, e));
  STEP(k = heads(project(h, sa->k_w, sa->k_b, sa->norm_k, o->eps, e), o->heads, e));
  STEP(v = heads(zoe_linear(h, sa->v_w, sa->v_b, NULL, e), o->heads, e));
  zoe_tensor_release(h);
  h = NULL;
  /* in place: each call hands back another reference to its 'out' */
  STEP(zoe_rope(q, o->grid, o->rope_pairs, o->rope_theta, q, e));
  zoe_tensor_release(q);
  STEP(zoe_rope(k, o->grid, o->rope_pairs, o->rope_theta, k, e));
  zoe_tensor_release(k);
  zoe_attn_opts ao = {.scale = NAN};
  STEP(y = zoe_attention(q, k, v, &ao, NULL, e));
  zoe_tensor_release(q);
  zoe_tensor_release(k);
  zoe_tensor_release(v);
  q = k = v = NULL;
  STEP(flat = zoe_view(y, 3, x->shape, e));
  zoe_tensor_release(y);
  STEP(y = zoe_linear(flat, sa->o_w, sa->o_b, NULL, e));
  zoe_tensor_release(flat);
  flat = NULL;
  STEP(zoe_gated_add(x, y, mc[2], x, e));
  zoe_tensor_release(x);
  zoe_tensor_release(y);
  y = NULL;

  /* cross-attention over the cached text keys/values */
  const zoe_attn_w *ca = &w->cross_attn;
  STEP(h = w->norm3_w ? zoe_layer_norm(x, w->norm3_w, w->norm3_b, o->eps, NULL, e) : zoe_tensor_retain(x));
  STEP(q = heads(project(h, ca->q_w, ca->q_b, ca->norm_q, o->eps, e), o->heads, e));
  zoe_tensor_release(h);
  h = NULL;
  if (ck->shape[0] != x->shape[0]) { /* a context per latent frame: the frame's tokens are a batch entry */
    int64_t F = o->grid[0];
    zoe_tensor *qf = zoe_view(q, 4, (int64_t[]){q->shape[0] * F, q->shape[1] / F, q->shape[2], q->shape[3]}, e);
    zoe_tensor_release(q);
    STEP(q = qf);
  }
  STEP(y = zoe_attention(q, ck, cv, &ao, NULL, e));
  zoe_tensor_release(q);
  q = NULL;
  STEP(flat = zoe_view(y, 3, x->shape, e));
  zoe_tensor_release(y);
  STEP(y = zoe_linear(flat, ca->o_w, ca->o_b, NULL, e));
  zoe_tensor_release(flat);
  flat = NULL;
  STEP(zoe_gated_add(x, y, NULL, x, e));
  zoe_tensor_release(x);
  zoe_tensor_release(y);
  y = NULL;

  if (ffn(w, o, x, mc, e)) goto done;
  res = zoe_tensor_retain(x);
#undef STEP
done:
  for (int i = 0; i < 6; i++) zoe_tensor_release(mc[i]);
  zoe_tensor *all[] = {m, modv, x, h, q, k, v, y, flat};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
  return res;
}
