/*
** attention.c: multi-head attention, tiled with an online softmax
** (Milakov & Gimelshein 2018; Dao et al. 2022). For each (batch, head, tile
** of TQ queries) the keys are visited in tiles of TK: S = scale q k^T (+ bias,
** + key mask) by a GEMM, the running row maxima and sums are updated, and the
** output rows are rescaled and accumulated with P v by a second GEMM, straight
** into the result. Scratch is one TQ x TK tile per thread, so memory is
** O(L * Dh) whatever the sequence length. Where products run in bf16
** (zoe_attention_bf16_wanted), the whole attention goes to the AVX512-BF16
** kernel instead (runtime/ops/attention_bf16.c: keys and values packed once
** per call, both products on vdpbf16ps); this file's tiles keep f32 products
** on OpenBLAS.
*/
#include <math.h>
#include <stdatomic.h>

#include "../core/alloc.h"
#include "../ops/attention_bf16.h"
#include "../ops/gemm.h"
#include "../ops/out.h"
#include "../ops/vmath.h"
#include "nn.h"

#define TQ 128 /* queries per tile: each tile packs its key and value tiles (64: 4% slower DiT) */
#define TK 512
#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

typedef struct attn_ctx {
  const zoe_tensor *q, *k, *v, *bias;
  const float *keep; /* [B, Lk] additive 0 / -inf from the key mask, or NULL */
  float *out;        /* [B, Lq, H, Dv] contiguous */
  int64_t B, Lq, Lk, H, Dh, Dv, qtiles;
  float scale;
  atomic_int failed;
} attn_ctx;

VECTORIZE static float row_max(const float *x, int64_t n, float m) {
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

/* x = exp(x - m) in place; returns the sum */
VECTORIZE static float row_exp_sum(float *x, int64_t n, float m) {
  float s[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; k++) {
      float v = zv_exp(x[i + k] - m);
      x[i + k] = v;
      s[k] += v;
    }
  float r = 0;
  for (int k = 0; k < 16; k++) r += s[k];
  for (; i < n; i++) {
    x[i] = zv_exp(x[i] - m);
    r += x[i];
  }
  return r;
}

VECTORIZE static void row_add(float *x, const float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

VECTORIZE static void row_scale(float *x, float s, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

static const float *row_ptr(const zoe_tensor *t, int64_t b, int64_t l, int64_t h) {
  return (const float *)zoe_data(t) + b * t->stride[0] + l * t->stride[1] + h * t->stride[2];
}

static void attn_range(void *arg, int64_t u0, int64_t u1) {
  attn_ctx *c = arg;
  size_t sbytes = (size_t)TQ * TK * sizeof(float);
  float *S = zoe_alloc(sbytes, NULL);
  if (!S) {
    atomic_store(&c->failed, ZOE_ENOMEM);
    return;
  }
  float m[TQ], l[TQ];
  for (int64_t u = u0; u < u1; u++) {
    int64_t qt = u % c->qtiles, h = (u / c->qtiles) % c->H, b = u / (c->qtiles * c->H);
    int64_t q0 = qt * TQ, nq = c->Lq - q0 < TQ ? c->Lq - q0 : TQ;
    int64_t ldo = c->H * c->Dv;
    float *O = c->out + (b * c->Lq + q0) * ldo + h * c->Dv;
    for (int64_t i = 0; i < nq; i++) {
      m[i] = -INFINITY;
      l[i] = 0;
      for (int64_t j = 0; j < c->Dv; j++) O[i * ldo + j] = 0;
    }
    zoe_gemm_arg Q = {row_ptr(c->q, b, q0, h), ZOE_F32, false, c->q->stride[1]};
    for (int64_t k0 = 0; k0 < c->Lk; k0 += TK) {
      int64_t nk = c->Lk - k0 < TK ? c->Lk - k0 : TK;
      zoe_gemm_arg K = {row_ptr(c->k, b, k0, h), ZOE_F32, true, c->k->stride[1]};
      if (zoe_gemm(nq, nk, c->Dh, c->scale, Q, K, 0.0f, S, nk, NULL)) {
        atomic_store(&c->failed, ZOE_ECANCELED);
        goto out;
      }
      for (int64_t i = 0; i < nq; i++) {
        float *s = S + i * nk;
        if (c->bias) {
          const zoe_tensor *bt = c->bias;
          int64_t hb = bt->shape[0] == 1 ? 0 : h;
          row_add(s, (const float *)zoe_data(bt) + hb * bt->stride[0] + (q0 + i) * bt->stride[1] + k0, nk);
        }
        if (c->keep) row_add(s, c->keep + b * c->Lk + k0, nk);
        float mnew = row_max(s, nk, m[i]);
        if (mnew == -INFINITY) { /* every key so far masked: nothing to add */
          for (int64_t j = 0; j < nk; j++) s[j] = 0;
          continue;
        }
        float corr = zv_exp(m[i] - mnew); /* 0 when m[i] is -inf */
        l[i] = l[i] * corr + row_exp_sum(s, nk, mnew);
        if (corr != 1.0f) row_scale(O + i * ldo, corr, c->Dv);
        m[i] = mnew;
      }
      zoe_gemm_arg P = {S, ZOE_F32, false, nk};
      zoe_gemm_arg V = {row_ptr(c->v, b, k0, h), ZOE_F32, false, c->v->stride[1]};
      if (zoe_gemm(nq, c->Dv, nk, 1.0f, P, V, 1.0f, O, ldo, NULL)) {
        atomic_store(&c->failed, ZOE_ECANCELED);
        goto out;
      }
    }
    for (int64_t i = 0; i < nq; i++) /* rows with every key masked come out as zeros */
      row_scale(O + i * ldo, l[i] > 0 ? 1.0f / l[i] : 0.0f, c->Dv);
  }
out:
  zoe_free(S, sbytes);
}

/* q/k/v as f32 with a contiguous last dim (views pass through untouched). */
static zoe_tensor *usable(const zoe_tensor *t, zoe_err *e) {
  if (t->dtype == ZOE_F32 && t->stride[3] == 1 && t->stride[1] >= t->shape[3])
    return zoe_tensor_retain(t);
  return zoe_to_dtype(t, ZOE_F32, e);
}

zoe_tensor *zoe_attention(const zoe_tensor *q0, const zoe_tensor *k0, const zoe_tensor *v0,
                          const zoe_attn_opts *opts, zoe_tensor *out, zoe_err *e) {
  char a[96], b[96], c3[96];
  if (q0->ndim != 4 || k0->ndim != 4 || v0->ndim != 4) {
    zoe_errf(e, ZOE_ESHAPE, "attention: q, k, v must be [B, L, H, D] (got %s, %s, %s)",
             zoe_shape_str(q0, a, sizeof a), zoe_shape_str(k0, b, sizeof b), zoe_shape_str(v0, c3, sizeof c3));
    return NULL;
  }
  int64_t B = q0->shape[0], Lq = q0->shape[1], H = q0->shape[2], Dh = q0->shape[3];
  int64_t Lk = k0->shape[1], Dv = v0->shape[3];
  if (k0->shape[0] != B || v0->shape[0] != B || k0->shape[2] != H || v0->shape[2] != H ||
      k0->shape[3] != Dh || v0->shape[1] != Lk) {
    zoe_errf(e, ZOE_ESHAPE, "attention: q %s, k %s and v %s do not agree (batch, heads, key length or head dim)",
             zoe_shape_str(q0, a, sizeof a), zoe_shape_str(k0, b, sizeof b), zoe_shape_str(v0, c3, sizeof c3));
    return NULL;
  }
  const zoe_tensor *mask = opts ? opts->key_mask : NULL, *bias0 = opts ? opts->bias : NULL;
  if (mask && (mask->ndim != 2 || mask->shape[0] != B || mask->shape[1] != Lk)) {
    zoe_errf(e, ZOE_ESHAPE, "attention: key mask %s should be [%lld, %lld]", zoe_shape_str(mask, a, sizeof a),
             (long long)B, (long long)Lk);
    return NULL;
  }
  if (bias0 && (bias0->ndim != 3 || (bias0->shape[0] != H && bias0->shape[0] != 1) ||
                bias0->shape[1] != Lq || bias0->shape[2] != Lk)) {
    zoe_errf(e, ZOE_ESHAPE, "attention: bias %s should be [%lld or 1, %lld, %lld]",
             zoe_shape_str(bias0, a, sizeof a), (long long)H, (long long)Lq, (long long)Lk);
    return NULL;
  }
  double scale = opts && !isnan(opts->scale) ? opts->scale : 1.0 / sqrt((double)Dh);
  zoe_tensor *q = NULL, *k = NULL, *v = NULL, *bias = NULL, *keep = NULL, *o = NULL, *res = NULL;
  if (!(q = usable(q0, e)) || !(k = usable(k0, e)) || !(v = usable(v0, e))) goto done;
  if (bias0 && !(bias = bias0->dtype == ZOE_F32 && bias0->stride[2] == 1 ? zoe_tensor_retain(bias0)
                                                                         : zoe_to_dtype(bias0, ZOE_F32, e)))
    goto done;
  if (mask) { /* 0 where kept, -inf where masked */
    keep = zoe_empty(ZOE_F32, 2, mask->shape, e);
    if (!keep) goto done;
    float *p = zoe_data(keep);
    for (int64_t i = 0; i < B * Lk; i++) {
      int64_t bi = i / Lk, j = i % Lk;
      double mv = zoe_load_elem(mask->dtype, zoe_data(mask), bi * mask->stride[0] + j * mask->stride[1]);
      p[i] = mv != 0 ? 0.0f : -INFINITY;
    }
  }
  int64_t oshape[4] = {B, Lq, H, Dv};
  bool direct = !out || (out->dtype == ZOE_F32 && zoe_is_contiguous(out));
  o = direct ? zoe_out_prepare(out, ZOE_F32, 4, oshape, "attention", e) : zoe_empty(ZOE_F32, 4, oshape, e);
  if (!o) goto done;
  if (Lk == 0) { /* no keys: zeros, as the masked case */
    float *p = zoe_data(o);
    for (int64_t i = 0; i < zoe_numel(o); i++) p[i] = 0;
  } else if (zoe_attention_bf16_wanted(Lq, Lk, Dh)) {
    zoe_attn_bf16 fa = {.q = zoe_data(q), .k = zoe_data(k), .v = zoe_data(v),
                        .qs = {q->stride[0], q->stride[1], q->stride[2]},
                        .ks = {k->stride[0], k->stride[1], k->stride[2]},
                        .vs = {v->stride[0], v->stride[1], v->stride[2]},
                        .bias = bias ? zoe_data(bias) : NULL,
                        .bs = {bias && bias->shape[0] > 1 ? bias->stride[0] : 0, bias ? bias->stride[1] : 0},
                        .keep = keep ? zoe_data(keep) : NULL, .out = zoe_data(o),
                        .B = B, .Lq = Lq, .Lk = Lk, .H = H, .Dh = Dh, .Dv = Dv, .scale = (float)scale};
    if (zoe_attention_bf16(&fa, e)) goto done;
  } else {
    attn_ctx c = {.q = q, .k = k, .v = v, .bias = bias, .keep = keep ? zoe_data(keep) : NULL,
                  .out = zoe_data(o), .B = B, .Lq = Lq, .Lk = Lk, .H = H, .Dh = Dh, .Dv = Dv,
                  .qtiles = (Lq + TQ - 1) / TQ, .scale = (float)scale};
    atomic_init(&c.failed, 0);
    int rc = zoe_gemm_parallel_for(B * H * c.qtiles, 1, attn_range, &c);
    if (rc || atomic_load(&c.failed)) {
      int code = rc ? rc : atomic_load(&c.failed);
      zoe_errf(e, code, "attention: %s", code == ZOE_ENOMEM ? "out of memory for a tile" : "canceled");
      goto done;
    }
  }
  if (direct) {
    res = zoe_tensor_retain(o);
  } else if ((res = zoe_out_prepare(out, ZOE_F32, 4, oshape, "attention", e)) && zoe_copy_(res, o, e)) {
    zoe_tensor_release(res);
    res = NULL;
  }
done:
  zoe_tensor_release(q);
  zoe_tensor_release(k);
  zoe_tensor_release(v);
  zoe_tensor_release(bias);
  zoe_tensor_release(keep);
  zoe_tensor_release(o);
  return res;
}

/* ---- T5 relative positions ---- */

static int t5_bucket(int64_t rel, int num_buckets, int max_distance, bool bidirectional) {
  int bucket = 0, nb = num_buckets;
  if (bidirectional) {
    nb /= 2;
    if (rel > 0) bucket = nb;
    rel = rel < 0 ? -rel : rel;
  } else {
    rel = rel < 0 ? -rel : 0;
  }
  int max_exact = nb / 2;
  if (rel < max_exact) return bucket + (int)rel;
  /* float math as torch: log(rel / max_exact) / log(max_distance / max_exact) * (nb - max_exact) */
  float large = logf((float)rel / (float)max_exact) / (float)log((double)max_distance / max_exact) *
                (float)(nb - max_exact);
  int v = max_exact + (int)large;
  return bucket + (v < nb - 1 ? v : nb - 1);
}

zoe_tensor *zoe_t5_buckets(int64_t lq, int64_t lk, int num_buckets, int max_distance,
                           bool bidirectional, zoe_err *e) {
  if (num_buckets < 2 || max_distance < 1) {
    zoe_errf(e, ZOE_EINVAL, "t5_buckets: need at least 2 buckets and a positive max distance");
    return NULL;
  }
  zoe_tensor *t = zoe_empty(ZOE_I32, 2, (int64_t[]){lq, lk}, e);
  if (!t) return NULL;
  int32_t *p = zoe_data(t);
  for (int64_t i = 0; i < lq; i++)
    for (int64_t j = 0; j < lk; j++) p[i * lk + j] = t5_bucket(j - i, num_buckets, max_distance, bidirectional);
  return t;
}

zoe_tensor *zoe_t5_position_bias(const zoe_tensor *table, int64_t lq, int64_t lk, int max_distance,
                                 zoe_err *e) {
  char s[96];
  if (table->ndim != 2) {
    zoe_errf(e, ZOE_ESHAPE, "t5_position_bias: table must be [buckets, heads], got %s",
             zoe_shape_str(table, s, sizeof s));
    return NULL;
  }
  int64_t nb = table->shape[0], H = table->shape[1];
  zoe_tensor *o = zoe_empty(ZOE_F32, 3, (int64_t[]){H, lq, lk}, e);
  if (!o) return NULL;
  float *p = zoe_data(o);
  const void *td = zoe_data(table);
  /* the bias depends only on k - q: one value per offset and head */
  for (int64_t i = 0; i < lq; i++)
    for (int64_t j = 0; j < lk; j++) {
      int bk = t5_bucket(j - i, (int)nb, max_distance, true);
      for (int64_t h = 0; h < H; h++)
        p[(h * lq + i) * lk + j] = (float)zoe_load_elem(table->dtype, td, bk * table->stride[0] + h * table->stride[1]);
    }
  return o;
}
