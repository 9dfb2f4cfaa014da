/*
** t5.c: one layer of T5's encoder as T5 v1.1 and umT5 have it (Wan's
** wan/modules/t5.py T5SelfAttention, transformers' T5Block):
**   x += o(attention(norm1(x)))     no 1/sqrt(d) scaling, relative position bias,
**                                   padded keys masked
**   x += fc2(fc1(norm2 x) * gelu_tanh(gate(norm2 x)))
** Norms are T5's RMS norm; no linear has a bias.
** On bf16 weights the attention's projections keep nearly f32 accuracy (few rows
** go in as hi + lo, gemm.h): the unscaled attention amplifies their rounding. The
** feed-forward products, 65% of the weights, run in plain bf16: on the random-weight
** fixture the whole encoder then differs from f32 products by 3e-3, against 1e-2
** with plain bf16 everywhere, and hi + lo feed-forwards would make a 40-token
** umT5-XXL prompt a quarter slower for no accuracy the output keeps.
*/
#include <math.h>

#include "../ops/gemm.h"
#include "../ops/ops.h"
#include "nn.h"

#define T5_MAX_DISTANCE 128

static zoe_tensor *heads(zoe_tensor *t, int h, zoe_err *e) {
  if (!t) return NULL;
  zoe_tensor *v = zoe_view(t, 4, (int64_t[]){t->shape[0], t->shape[1], h, t->shape[2] / h}, e);
  zoe_tensor_release(t);
  return v;
}

zoe_tensor *zoe_t5_layer(const zoe_t5_layer_w *w, int nheads, double eps, const zoe_tensor *x0,
                         const zoe_tensor *mask, const zoe_tensor *pos_bias, zoe_err *e) {
  char a[96];
  if (x0->ndim != 3) {
    zoe_errf(e, ZOE_ESHAPE, "t5_layer: x must be [B, L, D], got %s", zoe_shape_str(x0, a, sizeof a));
    return NULL;
  }
  if (nheads <= 0 || w->q->ndim != 2 || w->q->shape[0] % nheads) {
    zoe_errf(e, ZOE_EINVAL, "t5_layer: the attention width is not divisible by %d heads", nheads);
    return NULL;
  }
  if (!pos_bias && !w->pos_table) {
    zoe_errf(e, ZOE_EINVAL, "t5_layer: no position bias and no relative position table");
    return NULL;
  }
  int64_t L = x0->shape[1];
  zoe_tensor *x = NULL, *h = NULL, *q = NULL, *k = NULL, *v = NULL, *y = NULL, *flat = NULL;
  zoe_tensor *bias = NULL, *g = NULL, *res = NULL;
  bool was_exact = zoe_gemm_few_rows_exact(true); /* restored on the way out */
#define STEP(expr) \
  do {             \
    if (!(expr)) goto done; \
  } while (0)
  STEP(x = x0->dtype == ZOE_F32 ? zoe_clone(x0, e) : zoe_to_dtype(x0, ZOE_F32, e));
  STEP(bias = pos_bias ? zoe_tensor_retain(pos_bias) : zoe_t5_position_bias(w->pos_table, L, L, T5_MAX_DISTANCE, e));
  STEP(h = zoe_rms_norm(x, w->norm1, eps, NULL, e));
  STEP(q = heads(zoe_linear(h, w->q, NULL, NULL, e), nheads, e));
  STEP(k = heads(zoe_linear(h, w->k, NULL, NULL, e), nheads, e));
  STEP(v = heads(zoe_linear(h, w->v, NULL, NULL, e), nheads, e));
  zoe_tensor_release(h);
  h = NULL;
  zoe_attn_opts ao = {.scale = 1.0, .key_mask = mask, .bias = bias};
  STEP(y = zoe_attention(q, k, v, &ao, NULL, e));
  STEP(flat = zoe_view(y, 3, (int64_t[]){y->shape[0], L, y->shape[2] * y->shape[3]}, e));
  zoe_tensor_release(y);
  STEP(y = zoe_linear(flat, w->o, NULL, NULL, e));
  STEP(zoe_binary(ZOE_ADD, x, y, x, e));
  zoe_tensor_release(x); /* the in-place add handed back a second reference */
  zoe_tensor_release(y);
  y = NULL;

  STEP(h = zoe_rms_norm(x, w->norm2, eps, NULL, e));
  zoe_gemm_few_rows_exact(false);
  STEP(g = zoe_linear_act(h, w->gate, NULL, ZOE_ACT_GELU_TANH, NULL, e));
  STEP(y = zoe_linear(h, w->fc1, NULL, NULL, e));
  STEP(zoe_binary(ZOE_MUL, y, g, y, e));
  zoe_tensor_release(y);
  zoe_tensor_release(flat);
  STEP(flat = zoe_linear(y, w->fc2, NULL, NULL, e));
  STEP(zoe_binary(ZOE_ADD, x, flat, x, e));
  zoe_tensor_release(x);
  res = zoe_tensor_retain(x);
#undef STEP
done:
  zoe_gemm_few_rows_exact(was_exact);
  zoe_tensor *all[] = {x, h, q, k, v, y, flat, bias, g};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) zoe_tensor_release(all[i]);
  return res;
}
