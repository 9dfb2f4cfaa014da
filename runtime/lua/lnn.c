/*
** lnn.c: zoe.nn, the model blocks: linear, embedding, norms, attention,
** positions, fused modulation, and the Wan DiT block and umT5 layer.
** Composite blocks take their weights as a table (or a weights object) keyed
** by the checkpoint's own names under the block's prefix.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../nn/t5.h"
#include "../nn/wan/dit.h"
#include "../ops/ops.h"
#include "lnn.h"
#include "lzoe.h"

enum { K_LINEAR, K_EMBEDDING, K_LAYER_NORM, K_RMS_NORM, K_GROUP_NORM, K_CHANNEL_RMS, K_ATTENTION,
       K_ROPE, K_MODULATE, K_GATED_ADD, K_WAN_BLOCK, K_WAN_CROSS_KV, K_T5_LAYER };

/* Tensors a block task holds (weights may be many), and its parsed arguments. */
typedef struct block_args {
  zoe_tensor *held[48];
  int nheld;
  zoe_wan_block_w wan;
  zoe_wan_block_opts wan_opts;
  zoe_t5_layer_w t5;
  int heads;
  double eps;
} block_args;

static void free_block(void *p) {
  block_args *b = p;
  if (!b) return;
  for (int i = 0; i < b->nheld; i++) zoe_tensor_release(b->held[i]);
  free(b);
}

static int run_nn(lz_task *t, zoe_err *e) {
  zoe_tensor *r = NULL, *r2 = NULL;
  zoe_tensor **in = t->in;
  block_args *b = t->extra;
  switch (t->kind) {
    case K_LINEAR: r = zoe_linear(in[0], in[1], t->nin > 2 ? in[2] : NULL, t->out, e); break;
    case K_EMBEDDING: r = zoe_embedding(in[0], in[1], e); break;
    case K_LAYER_NORM:
      r = zoe_layer_norm(in[0], t->iv[0] ? in[t->iv[0]] : NULL, t->iv[1] ? in[t->iv[1]] : NULL, t->dv[0], t->out, e);
      break;
    case K_RMS_NORM: r = zoe_rms_norm(in[0], t->iv[0] ? in[t->iv[0]] : NULL, t->dv[0], t->out, e); break;
    case K_GROUP_NORM:
      r = zoe_group_norm(in[0], t->iv[2], t->iv[0] ? in[t->iv[0]] : NULL, t->iv[1] ? in[t->iv[1]] : NULL,
                         t->dv[0], t->out, e);
      break;
    case K_CHANNEL_RMS:
      r = zoe_channel_rms_norm(in[0], t->iv[2], in[1], t->nin > 2 ? in[2] : NULL, t->out, e);
      break;
    case K_ATTENTION: {
      zoe_attn_opts o = {.scale = t->dv[0], .key_mask = t->iv[0] ? in[t->iv[0]] : NULL,
                         .bias = t->iv[1] ? in[t->iv[1]] : NULL};
      r = zoe_attention(in[0], in[1], in[2], &o, t->out, e);
      break;
    }
    case K_ROPE: {
      int64_t grid[3] = {t->lv[0], t->lv[1], t->lv[2]};
      int pairs[3] = {t->iv[0], t->iv[1], t->iv[2]};
      r = zoe_rope(in[0], grid, pairs, t->dv[0], t->out, e);
      break;
    }
    case K_MODULATE: r = zoe_modulate(in[0], in[1], in[2], t->out, e); break;
    case K_GATED_ADD: r = zoe_gated_add(in[0], in[1], t->nin > 2 ? in[2] : NULL, t->out, e); break;
    case K_WAN_BLOCK: r = zoe_wan_block(&b->wan, &b->wan_opts, in[0], in[1], in[2], in[3], e); break;
    case K_WAN_CROSS_KV:
      if (zoe_wan_cross_kv(&b->wan, b->heads, b->eps, in[0], &r, &r2, e)) r = NULL;
      break;
    case K_T5_LAYER:
      r = zoe_t5_layer(&b->t5, b->heads, b->eps, in[0], t->iv[0] ? in[t->iv[0]] : NULL,
                       t->iv[1] ? in[t->iv[1]] : NULL, e);
      break;
  }
  if (!r) return e->code ? e->code : ZOE_EINVAL;
  t->res[0] = r;
  t->res[1] = r2;
  t->nres = r2 ? 2 : 1;
  return 0;
}

/* ---- argument helpers ---- */

static zoe_tensor *opt_tensor(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : lz_checktensor(L, arg);
}

/* Field 'name' of the options table at 'arg' as a number, or 'def'. */
static double opt_number(lua_State *L, int arg, const char *name, double def) {
  if (!lua_istable(L, arg)) return def;
  lua_getfield(L, arg, name);
  double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static zoe_tensor *opt_field_tensor(lua_State *L, int arg, const char *name) {
  if (!lua_istable(L, arg)) return NULL;
  lua_getfield(L, arg, name);
  zoe_tensor *t = lua_isnil(L, -1) ? NULL : lz_totensor(L, -1);
  if (!t && !lua_isnil(L, -1)) luaL_error(L, "option '%s' must be a tensor, got a %s", name, luaL_typename(L, -1));
  lua_pop(L, 1);
  return t; /* kept alive by the options table until the task holds it */
}

/* Up to 3 integers from field 'name' (a table) of the options at 'arg'. */
static int opt_ints(lua_State *L, int arg, const char *name, int64_t *out, int max) {
  if (!lua_istable(L, arg)) return 0;
  lua_getfield(L, arg, name);
  int n = 0;
  if (lua_istable(L, -1)) {
    n = (int)luaL_len(L, -1);
    if (n > max) luaL_error(L, "option '%s' has more than %d entries", name, max);
    for (int i = 0; i < n; i++) {
      lua_geti(L, -1, i + 1);
      out[i] = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "option '%s' must be a table of integers", name);
  }
  lua_pop(L, 1);
  return n;
}

/* ---- simple blocks ---- */

static int nn_linear(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_checktensor(L, 2), *b = opt_tensor(L, 3);
  zoe_tensor *out = opt_tensor(L, 4);
  lz_task *t = lz_task_new(L, run_nn, "linear", K_LINEAR);
  lz_task_in(t, x);
  lz_task_in(t, w);
  if (b) lz_task_in(t, b);
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = 2.0 * (double)zoe_numel(x) * (double)(w->ndim == 2 ? w->shape[0] : 1);
  return lz_task_finish(L, t);
}

static int nn_embedding(lua_State *L) {
  zoe_tensor *w = lz_checktensor(L, 1), *ids = lz_checktensor(L, 2);
  lz_task *t = lz_task_new(L, run_nn, "embedding", K_EMBEDDING);
  lz_task_in(t, w);
  lz_task_in(t, ids);
  t->cost = (double)zoe_numel(ids) * (double)(w->ndim == 2 ? w->shape[1] : 1);
  return lz_task_finish(L, t);
}

/* layer_norm(x, [w], [b], [eps = 1e-5]) */
static int nn_layer_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *w = opt_tensor(L, 2), *b = opt_tensor(L, 3);
  double eps = luaL_optnumber(L, 4, 1e-5);
  lz_task *t = lz_task_new(L, run_nn, "layer_norm", K_LAYER_NORM);
  lz_task_in(t, x);
  if (w) { t->iv[0] = t->nin; lz_task_in(t, w); }
  if (b) { t->iv[1] = t->nin; lz_task_in(t, b); }
  t->dv[0] = eps;
  t->cost = 4.0 * (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* rms_norm(x, [w], [eps = 1e-6]) */
static int nn_rms_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *w = opt_tensor(L, 2);
  double eps = luaL_optnumber(L, 3, 1e-6);
  lz_task *t = lz_task_new(L, run_nn, "rms_norm", K_RMS_NORM);
  lz_task_in(t, x);
  if (w) { t->iv[0] = t->nin; lz_task_in(t, w); }
  t->dv[0] = eps;
  t->cost = 3.0 * (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* group_norm(x, groups, [w], [b], [eps = 1e-5]) */
static int nn_group_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  lua_Integer groups = luaL_checkinteger(L, 2);
  zoe_tensor *w = opt_tensor(L, 3), *b = opt_tensor(L, 4);
  double eps = luaL_optnumber(L, 5, 1e-5);
  luaL_argcheck(L, groups > 0 && groups < 1 << 20, 2, "groups must be positive");
  lz_task *t = lz_task_new(L, run_nn, "group_norm", K_GROUP_NORM);
  lz_task_in(t, x);
  if (w) { t->iv[0] = t->nin; lz_task_in(t, w); }
  if (b) { t->iv[1] = t->nin; lz_task_in(t, b); }
  t->iv[2] = (int)groups;
  t->dv[0] = eps;
  t->cost = 4.0 * (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* channel_rms_norm(x, dim, gamma, [bias]) */
static int nn_channel_rms_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int dim = lz_checkdim(L, 2, x, "channel_rms_norm", 0);
  zoe_tensor *g = lz_checktensor(L, 3), *b = opt_tensor(L, 4);
  lz_task *t = lz_task_new(L, run_nn, "channel_rms_norm", K_CHANNEL_RMS);
  lz_task_in(t, x);
  lz_task_in(t, g);
  if (b) lz_task_in(t, b);
  t->iv[2] = dim;
  t->cost = 3.0 * (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* attention(q, k, v, {scale =, mask =, bias =}) with q/k/v [B, L, H, D] */
static int nn_attention(lua_State *L) {
  zoe_tensor *q = lz_checktensor(L, 1), *k = lz_checktensor(L, 2), *v = lz_checktensor(L, 3);
  double scale = opt_number(L, 4, "scale", NAN);
  zoe_tensor *mask = opt_field_tensor(L, 4, "mask"), *bias = opt_field_tensor(L, 4, "bias");
  zoe_tensor *out = opt_field_tensor(L, 4, "out");
  lz_task *t = lz_task_new(L, run_nn, "attention", K_ATTENTION);
  lz_task_in(t, q);
  lz_task_in(t, k);
  lz_task_in(t, v);
  if (mask) { t->iv[0] = t->nin; lz_task_in(t, mask); }
  if (bias) { t->iv[1] = t->nin; lz_task_in(t, bias); }
  if (out) t->out = zoe_tensor_retain(out);
  t->dv[0] = scale;
  t->cost = q->ndim == 4 && k->ndim == 4 ? 4.0 * (double)zoe_numel(q) * (double)k->shape[1] : 0;
  return lz_task_finish(L, t);
}

/* rope(x, {grid = {f, h, w}, pairs = {pt, ph, pw}, theta = 10000, out = x}) */
static int nn_rope(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t grid[3] = {1, 1, 1}, pairs[3] = {0, 0, 0};
  int ng = opt_ints(L, 2, "grid", grid, 3), np = opt_ints(L, 2, "pairs", pairs, 3);
  if (ng == 0 && x->ndim == 4) grid[0] = x->shape[1]; /* 1-D: one position per token */
  if (np == 0 && x->ndim == 4) pairs[0] = x->shape[3] / 2;
  double theta = opt_number(L, 2, "theta", 10000);
  zoe_tensor *out = opt_field_tensor(L, 2, "out");
  lz_task *t = lz_task_new(L, run_nn, "rope", K_ROPE);
  lz_task_in(t, x);
  for (int i = 0; i < 3; i++) {
    t->lv[i] = grid[i];
    t->iv[i] = (int)pairs[i];
  }
  t->dv[0] = theta;
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = 6.0 * (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* timestep_embedding(t, dim, {max_period = 10000, cos_first = true}) */
static int nn_timestep_embedding(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *tt = lz_checktensor(L, 1);
  lua_Integer dim = luaL_checkinteger(L, 2);
  double period = opt_number(L, 3, "max_period", 10000);
  bool cos_first = true;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "cos_first");
    if (!lua_isnil(L, -1)) cos_first = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  luaL_argcheck(L, dim > 0 && dim < 1 << 24, 2, "dim must be positive");
  return lz_result(L, zoe_timestep_embedding(tt, (int)dim, period, cos_first, &e), &e);
}

static int fused(lua_State *L, bool gated) {
  zoe_tensor *x = lz_checktensor(L, 1), *a = lz_checktensor(L, 2);
  zoe_tensor *b = gated ? opt_tensor(L, 3) : lz_checktensor(L, 3), *out = opt_tensor(L, 4);
  lz_task *t = lz_task_new(L, run_nn, gated ? "gated_add" : "modulate", gated ? K_GATED_ADD : K_MODULATE);
  lz_task_in(t, x);
  lz_task_in(t, a);
  if (b) lz_task_in(t, b);
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = 2.0 * (double)zoe_numel(x);
  return lz_task_finish(L, t);
}
static int nn_modulate(lua_State *L) { return fused(L, false); }
static int nn_gated_add(lua_State *L) { return fused(L, true); }

static int nn_t5_buckets(lua_State *L) {
  zoe_err e = {0};
  lua_Integer lq = luaL_checkinteger(L, 1), lk = luaL_checkinteger(L, 2);
  int nb = (int)opt_number(L, 3, "buckets", 32), md = (int)opt_number(L, 3, "max_distance", 128);
  bool bidir = true;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "bidirectional");
    if (!lua_isnil(L, -1)) bidir = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  luaL_argcheck(L, lq >= 0 && lk >= 0, 1, "lengths must be non-negative");
  return lz_result(L, zoe_t5_buckets(lq, lk, nb, md, bidir, &e), &e);
}

static int nn_t5_position_bias(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *table = lz_checktensor(L, 1);
  lua_Integer lq = luaL_checkinteger(L, 2), lk = luaL_checkinteger(L, 3);
  int md = (int)luaL_optinteger(L, 4, 128);
  luaL_argcheck(L, lq >= 0 && lk >= 0, 2, "lengths must be non-negative");
  return lz_result(L, zoe_t5_position_bias(table, lq, lk, md, &e), &e);
}

/* ---- composite blocks: weights from a table by checkpoint name ---- */

/* weights[name] as a tensor held by the block (NULL when missing and optional) */
static const zoe_tensor *weight(lua_State *L, int tbl, block_args *b, const char *op, const char *name,
                                bool required) {
  lua_getfield(L, tbl, name);
  zoe_tensor *t = lua_isnil(L, -1) ? NULL : lz_totensor(L, -1);
  if (!t && !lua_isnil(L, -1))
    luaL_error(L, "%s: weight '%s' is a %s, not a tensor", op, name, luaL_typename(L, -1));
  lua_pop(L, 1);
  if (!t) {
    if (required) luaL_error(L, "%s: the weights have no '%s'", op, name);
    return NULL;
  }
  if (b->nheld == (int)(sizeof b->held / sizeof b->held[0])) luaL_error(L, "%s: too many weights", op);
  b->held[b->nheld++] = zoe_tensor_retain(t);
  return t;
}

static block_args *new_block(lua_State *L, lz_task *t, const char *op) {
  block_args *b = calloc(1, sizeof *b);
  if (!b) luaL_error(L, "%s: out of memory", op);
  t->extra = b;
  t->free_extra = free_block;
  return b;
}

static void attn_weights(lua_State *L, int tbl, block_args *b, const char *op, const char *pre, zoe_attn_w *a) {
  char name[96];
#define W(field, suffix, req)                                            \
  snprintf(name, sizeof name, "%s.%s", pre, suffix);                      \
  a->field = weight(L, tbl, b, op, name, req)
  W(q_w, "q.weight", true);
  W(q_b, "q.bias", false);
  W(k_w, "k.weight", true);
  W(k_b, "k.bias", false);
  W(v_w, "v.weight", true);
  W(v_b, "v.bias", false);
  W(o_w, "o.weight", true);
  W(o_b, "o.bias", false);
  W(norm_q, "norm_q.weight", false);
  W(norm_k, "norm_k.weight", false);
#undef W
}

static void wan_weights(lua_State *L, int tbl, block_args *b, const char *op) {
  luaL_checktype(L, tbl, LUA_TTABLE);
  b->wan.modulation = weight(L, tbl, b, op, "modulation", true);
  attn_weights(L, tbl, b, op, "self_attn", &b->wan.self_attn);
  attn_weights(L, tbl, b, op, "cross_attn", &b->wan.cross_attn);
  b->wan.norm3_w = weight(L, tbl, b, op, "norm3.weight", false);
  b->wan.norm3_b = weight(L, tbl, b, op, "norm3.bias", false);
  b->wan.ffn0_w = weight(L, tbl, b, op, "ffn.0.weight", true);
  b->wan.ffn0_b = weight(L, tbl, b, op, "ffn.0.bias", false);
  b->wan.ffn2_w = weight(L, tbl, b, op, "ffn.2.weight", true);
  b->wan.ffn2_b = weight(L, tbl, b, op, "ffn.2.bias", false);
}

/* wan_block(x, e0, weights, {heads =, eps = 1e-6, grid = {f, h, w}, cross_k =, cross_v =,
   ffn_rows = 8192}) */
static int nn_wan_block(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *e0 = lz_checktensor(L, 2);
  luaL_checktype(L, 4, LUA_TTABLE);
  zoe_tensor *ck = opt_field_tensor(L, 4, "cross_k"), *cv = opt_field_tensor(L, 4, "cross_v");
  if (!ck || !cv) return luaL_error(L, "wan_block: options need cross_k and cross_v (from nn.wan_cross_kv)");
  int heads = (int)opt_number(L, 4, "heads", 0);
  if (heads <= 0) return luaL_error(L, "wan_block: options need heads > 0");
  int64_t grid[3] = {0, 0, 0};
  if (opt_ints(L, 4, "grid", grid, 3) != 3) return luaL_error(L, "wan_block: options need grid = {frames, rows, cols}");
  lz_task *t = lz_task_new(L, run_nn, "wan_block", K_WAN_BLOCK);
  block_args *b = new_block(L, t, "wan_block");
  wan_weights(L, 3, b, "wan_block");
  int64_t dh = x->ndim == 3 ? x->shape[2] / heads : 0;
  b->wan_opts = (zoe_wan_block_opts){.heads = heads, .eps = opt_number(L, 4, "eps", 1e-6),
                                     .grid = {grid[0], grid[1], grid[2]}, .rope_theta = 10000,
                                     .ffn_rows = (int64_t)opt_number(L, 4, "ffn_rows", 0),
                                     /* Wan: the head dim splits as d - 4(d/6) | 2(d/6) | 2(d/6) */
                                     .rope_pairs = {(int)(dh / 2 - 2 * (dh / 6)), (int)(dh / 6), (int)(dh / 6)}};
  lz_task_in(t, x);
  lz_task_in(t, e0);
  lz_task_in(t, ck);
  lz_task_in(t, cv);
  int64_t D = x->ndim == 3 ? x->shape[2] : 0, N = x->ndim == 3 ? x->shape[0] * x->shape[1] : 0;
  int64_t ffn = b->wan.ffn0_w->ndim == 2 ? b->wan.ffn0_w->shape[0] : 0;
  t->cost = 2.0 * (double)N * (double)D * (6.0 * (double)D + 2.0 * (double)ffn);
  return lz_task_finish(L, t);
}

/* wan_cross_kv(context, weights, {heads =, eps = 1e-6}) -> k, v */
static int nn_wan_cross_kv(lua_State *L) {
  zoe_tensor *ctx = lz_checktensor(L, 1);
  luaL_checktype(L, 3, LUA_TTABLE);
  int heads = (int)opt_number(L, 3, "heads", 0);
  if (heads <= 0) return luaL_error(L, "wan_cross_kv: options need heads > 0");
  double eps = opt_number(L, 3, "eps", 1e-6);
  lz_task *t = lz_task_new(L, run_nn, "wan_cross_kv", K_WAN_CROSS_KV);
  block_args *b = new_block(L, t, "wan_cross_kv");
  wan_weights(L, 2, b, "wan_cross_kv");
  b->heads = heads;
  b->eps = eps;
  lz_task_in(t, ctx);
  t->cost = 4.0 * (double)zoe_numel(ctx) * (double)(b->wan.cross_attn.k_w->ndim == 2 ? b->wan.cross_attn.k_w->shape[0] : 1);
  return lz_task_finish(L, t);
}

/*
** t5_layer(x, weights, {heads =, eps = 1e-6, mask =, pos_bias =}); weights by role:
** {norm1, q, k, v, o, norm2, gate, fc1, fc2, pos_table} (pos_table unless pos_bias)
*/
static int nn_t5_layer(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int heads = (int)opt_number(L, 3, "heads", 0);
  if (heads <= 0) return luaL_error(L, "t5_layer: options need heads > 0");
  double eps = opt_number(L, 3, "eps", 1e-6);
  zoe_tensor *mask = opt_field_tensor(L, 3, "mask"), *bias = opt_field_tensor(L, 3, "pos_bias");
  lz_task *t = lz_task_new(L, run_nn, "t5_layer", K_T5_LAYER);
  block_args *b = new_block(L, t, "t5_layer");
  const char *op = "t5_layer";
  b->t5.norm1 = weight(L, 2, b, op, "norm1", true);
  b->t5.q = weight(L, 2, b, op, "q", true);
  b->t5.k = weight(L, 2, b, op, "k", true);
  b->t5.v = weight(L, 2, b, op, "v", true);
  b->t5.o = weight(L, 2, b, op, "o", true);
  b->t5.norm2 = weight(L, 2, b, op, "norm2", true);
  b->t5.gate = weight(L, 2, b, op, "gate", true);
  b->t5.fc1 = weight(L, 2, b, op, "fc1", true);
  b->t5.fc2 = weight(L, 2, b, op, "fc2", true);
  b->t5.pos_table = weight(L, 2, b, op, "pos_table", !bias);
  b->heads = heads;
  b->eps = eps;
  lz_task_in(t, x);
  if (mask) { t->iv[0] = t->nin; lz_task_in(t, mask); }
  if (bias) { t->iv[1] = t->nin; lz_task_in(t, bias); }
  int64_t D = x->ndim == 3 ? x->shape[2] : 0, N = x->ndim == 3 ? x->shape[0] * x->shape[1] : 0;
  t->cost = 2.0 * (double)N * (double)D * 4.0 * (double)D;
  return lz_task_finish(L, t);
}

static const luaL_Reg nn_funcs[] = {
  {"linear", nn_linear}, {"embedding", nn_embedding}, {"layer_norm", nn_layer_norm},
  {"rms_norm", nn_rms_norm}, {"group_norm", nn_group_norm}, {"channel_rms_norm", nn_channel_rms_norm},
  {"attention", nn_attention}, {"rope", nn_rope}, {"timestep_embedding", nn_timestep_embedding},
  {"modulate", nn_modulate}, {"gated_add", nn_gated_add}, {"t5_buckets", nn_t5_buckets},
  {"t5_position_bias", nn_t5_position_bias}, {"wan_block", nn_wan_block},
  {"wan_cross_kv", nn_wan_cross_kv}, {"t5_layer", nn_t5_layer},
  {NULL, NULL},
};

/* weak until runtime/lua/lnn_conv.c lands: the convolution half of zoe.nn */
__attribute__((weak)) void lz_nn_conv_register(lua_State *L);

int lz_open_nn(lua_State *L) {
  luaL_newlib(L, nn_funcs);
  if (lz_nn_conv_register) lz_nn_conv_register(L);
  return 1;
}
