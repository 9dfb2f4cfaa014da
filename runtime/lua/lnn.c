/*
** lnn.c: zoe.nn, the model blocks: linear, embedding, norms, attention,
** positions, fused modulation, and T5's encoder layer. The table also gets the
** convolutions (lnn_conv.c) and the Wan and CogVideoX families' blocks (lnn_wan.c,
** lnn_cogvideox.c). Composite blocks take their weights by role, a table that the arch files (lua/zoe/arch) fill from
** a checkpoint's names; no checkpoint name appears in C.
*/
#include <math.h>

#include "../nn/nn.h"
#include "lnn.h"
#include "ltask.h"
#include "lzlib.h"

/* ---- linear and embeddings ---- */

typedef struct linear_task {
  lz_task base;
  zoe_tensor *x, *w, *b, *out;
} linear_task;

static int run_linear(lz_task *t, zoe_err *e) {
  linear_task *l = (linear_task *)t;
  return lz_task_result(t, zoe_linear(l->x, l->w, l->b, l->out, e), e);
}

/* linear(x, w, [b], [out]) */
static int nn_linear(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_checktensor(L, 2), *b = lz_opttensor(L, 3);
  zoe_tensor *out = lz_opttensor(L, 4);
  linear_task *l = LZ_TASK_NEW(L, linear_task, run_linear, "linear");
  l->x = lz_task_hold(L, &l->base, x);
  l->w = lz_task_hold(L, &l->base, w);
  l->b = lz_task_hold(L, &l->base, b);
  l->out = lz_task_hold(L, &l->base, out);
  l->base.cost = 2.0 * (double)zoe_numel(x) * (double)(w->ndim == 2 ? w->shape[0] : 1);
  return lz_task_finish(L, &l->base);
}

typedef struct embedding_task {
  lz_task base;
  zoe_tensor *table, *ids;
} embedding_task;

static int run_embedding(lz_task *t, zoe_err *e) {
  embedding_task *m = (embedding_task *)t;
  return lz_task_result(t, zoe_embedding(m->table, m->ids, e), e);
}

/* embedding(table, ids) */
static int nn_embedding(lua_State *L) {
  zoe_tensor *w = lz_checktensor(L, 1), *ids = lz_checktensor(L, 2);
  embedding_task *m = LZ_TASK_NEW(L, embedding_task, run_embedding, "embedding");
  m->table = lz_task_hold(L, &m->base, w);
  m->ids = lz_task_hold(L, &m->base, ids);
  m->base.cost = (double)zoe_numel(ids) * (double)(w->ndim == 2 ? w->shape[1] : 1);
  return lz_task_finish(L, &m->base);
}

/* ---- norms ---- */

typedef enum { NORM_LAYER, NORM_RMS, NORM_GROUP, NORM_CHANNEL_RMS } norm_kind;

typedef struct norm_task {
  lz_task base;
  norm_kind kind;
  zoe_tensor *x, *w, *b, *out;
  double eps;
  int groups, dim; /* group_norm's groups; channel_rms_norm's channel dim */
} norm_task;

static int run_norm(lz_task *t, zoe_err *e) {
  norm_task *n = (norm_task *)t;
  zoe_tensor *r = NULL;
  switch (n->kind) {
    case NORM_LAYER: r = zoe_layer_norm(n->x, n->w, n->b, n->eps, n->out, e); break;
    case NORM_RMS: r = zoe_rms_norm(n->x, n->w, n->eps, n->out, e); break;
    case NORM_GROUP: r = zoe_group_norm(n->x, n->groups, n->w, n->b, n->eps, n->out, e); break;
    case NORM_CHANNEL_RMS: r = zoe_channel_rms_norm(n->x, n->dim, n->w, n->b, n->out, e); break;
  }
  return lz_task_result(t, r, e);
}

static norm_task *new_norm(lua_State *L, const char *name, norm_kind kind, zoe_tensor *x, zoe_tensor *w,
                           zoe_tensor *b, double per_element) {
  norm_task *n = LZ_TASK_NEW(L, norm_task, run_norm, name);
  n->kind = kind;
  n->x = lz_task_hold(L, &n->base, x);
  n->w = lz_task_hold(L, &n->base, w);
  n->b = lz_task_hold(L, &n->base, b);
  n->base.cost = per_element * (double)zoe_numel(x);
  return n;
}

/* layer_norm(x, [w], [b], [eps = 1e-5]) */
static int nn_layer_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_opttensor(L, 2), *b = lz_opttensor(L, 3);
  double eps = luaL_optnumber(L, 4, 1e-5);
  norm_task *n = new_norm(L, "layer_norm", NORM_LAYER, x, w, b, 4.0);
  n->eps = eps;
  return lz_task_finish(L, &n->base);
}

/* rms_norm(x, [w], [eps = 1e-6]) */
static int nn_rms_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_opttensor(L, 2);
  double eps = luaL_optnumber(L, 3, 1e-6);
  norm_task *n = new_norm(L, "rms_norm", NORM_RMS, x, w, NULL, 3.0);
  n->eps = eps;
  return lz_task_finish(L, &n->base);
}

/* group_norm(x, groups, [w], [b], [eps = 1e-5]) */
static int nn_group_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  lua_Integer groups = luaL_checkinteger(L, 2);
  zoe_tensor *w = lz_opttensor(L, 3), *b = lz_opttensor(L, 4);
  double eps = luaL_optnumber(L, 5, 1e-5);
  luaL_argcheck(L, groups > 0 && groups < 1 << 20, 2, "groups must be positive");
  norm_task *n = new_norm(L, "group_norm", NORM_GROUP, x, w, b, 4.0);
  n->groups = (int)groups;
  n->eps = eps;
  return lz_task_finish(L, &n->base);
}

/* channel_rms_norm(x, dim, gamma, [bias]) */
static int nn_channel_rms_norm(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int dim = lz_checkdim(L, 2, x, "channel_rms_norm", 0);
  zoe_tensor *g = lz_checktensor(L, 3), *b = lz_opttensor(L, 4);
  norm_task *n = new_norm(L, "channel_rms_norm", NORM_CHANNEL_RMS, x, g, b, 3.0);
  n->dim = dim;
  return lz_task_finish(L, &n->base);
}

/* ---- attention and positions ---- */

typedef struct attention_task {
  lz_task base;
  zoe_tensor *q, *k, *v, *mask, *bias, *out;
  double scale;
} attention_task;

static int run_attention(lz_task *t, zoe_err *e) {
  attention_task *a = (attention_task *)t;
  zoe_attn_opts o = {.scale = a->scale, .key_mask = a->mask, .bias = a->bias};
  return lz_task_result(t, zoe_attention(a->q, a->k, a->v, &o, a->out, e), e);
}

/* attention(q, k, v, {scale =, mask =, bias =, out =}) with q/k/v [B, L, H, D] */
static int nn_attention(lua_State *L) {
  static const char *const known[] = {"scale", "mask", "bias", "out", NULL};
  zoe_tensor *q = lz_checktensor(L, 1), *k = lz_checktensor(L, 2), *v = lz_checktensor(L, 3);
  lz_opts o = lz_opts_check(L, 4, "attention", known);
  double scale = lz_opt_number(&o, "scale", NAN);
  zoe_tensor *mask = lz_opt_tensor(&o, "mask"), *bias = lz_opt_tensor(&o, "bias"), *out = lz_opt_tensor(&o, "out");
  attention_task *a = LZ_TASK_NEW(L, attention_task, run_attention, "attention");
  a->q = lz_task_hold(L, &a->base, q);
  a->k = lz_task_hold(L, &a->base, k);
  a->v = lz_task_hold(L, &a->base, v);
  a->mask = lz_task_hold(L, &a->base, mask);
  a->bias = lz_task_hold(L, &a->base, bias);
  a->out = lz_task_hold(L, &a->base, out);
  a->scale = scale;
  a->base.cost = q->ndim == 4 && k->ndim == 4 ? 4.0 * (double)zoe_numel(q) * (double)k->shape[1] : 0;
  return lz_task_finish(L, &a->base);
}

typedef struct rope_task {
  lz_task base;
  zoe_tensor *x, *out;
  int64_t grid[3];
  int pairs[3];
  double theta;
} rope_task;

static int run_rope(lz_task *t, zoe_err *e) {
  rope_task *r = (rope_task *)t;
  return lz_task_result(t, zoe_rope(r->x, r->grid, r->pairs, r->theta, r->out, e), e);
}

/* rope(x, {grid = {f, h, w}, pairs = {pt, ph, pw}, theta = 10000, out =}) */
static int nn_rope(lua_State *L) {
  static const char *const known[] = {"grid", "pairs", "theta", "out", NULL};
  zoe_tensor *x = lz_checktensor(L, 1);
  lz_opts o = lz_opts_check(L, 2, "rope", known);
  int64_t grid[3] = {1, 1, 1}, pairs[3] = {0, 0, 0};
  int ng = lz_opt_ints(&o, "grid", grid, 1, 3), np = lz_opt_ints(&o, "pairs", pairs, 1, 3);
  if (ng == 0 && x->ndim == 4) grid[0] = x->shape[1]; /* 1-D: one position per token */
  if (np == 0 && x->ndim == 4) pairs[0] = x->shape[3] / 2;
  double theta = lz_opt_number(&o, "theta", 10000);
  zoe_tensor *out = lz_opt_tensor(&o, "out");
  rope_task *r = LZ_TASK_NEW(L, rope_task, run_rope, "rope");
  r->x = lz_task_hold(L, &r->base, x);
  r->out = lz_task_hold(L, &r->base, out);
  for (int i = 0; i < 3; i++) {
    r->grid[i] = grid[i];
    r->pairs[i] = (int)pairs[i];
  }
  r->theta = theta;
  r->base.cost = 6.0 * (double)zoe_numel(x);
  return lz_task_finish(L, &r->base);
}

/* timestep_embedding(t, dim, {max_period = 10000, cos_first = true}) */
static int nn_timestep_embedding(lua_State *L) {
  static const char *const known[] = {"max_period", "cos_first", NULL};
  zoe_err e = {0};
  zoe_tensor *tt = lz_checktensor(L, 1);
  lua_Integer dim = luaL_checkinteger(L, 2);
  lz_opts o = lz_opts_check(L, 3, "timestep_embedding", known);
  double period = lz_opt_number(&o, "max_period", 10000);
  bool cos_first = lz_opt_boolean(&o, "cos_first", true);
  luaL_argcheck(L, dim > 0 && dim < 1 << 24, 2, "dim must be positive");
  return lz_result(L, zoe_timestep_embedding(tt, (int)dim, period, cos_first, &e), &e);
}

/* ---- fused elementwise ---- */

typedef struct fused_task {
  lz_task base;
  bool gated;
  zoe_tensor *x, *a, *b, *out;
} fused_task;

static int run_fused(lz_task *t, zoe_err *e) {
  fused_task *f = (fused_task *)t;
  zoe_tensor *r = f->gated ? zoe_gated_add(f->x, f->a, f->b, f->out, e) : zoe_modulate(f->x, f->a, f->b, f->out, e);
  return lz_task_result(t, r, e);
}

static int fused(lua_State *L, bool gated) {
  zoe_tensor *x = lz_checktensor(L, 1), *a = lz_checktensor(L, 2);
  zoe_tensor *b = gated ? lz_opttensor(L, 3) : lz_checktensor(L, 3), *out = lz_opttensor(L, 4);
  fused_task *f = LZ_TASK_NEW(L, fused_task, run_fused, gated ? "gated_add" : "modulate");
  f->gated = gated;
  f->x = lz_task_hold(L, &f->base, x);
  f->a = lz_task_hold(L, &f->base, a);
  f->b = lz_task_hold(L, &f->base, b);
  f->out = lz_task_hold(L, &f->base, out);
  f->base.cost = 2.0 * (double)zoe_numel(x);
  return lz_task_finish(L, &f->base);
}
/* modulate(x, shift, scale, [out]) */
static int nn_modulate(lua_State *L) { return fused(L, false); }
/* gated_add(x, y, [gate], [out]) */
static int nn_gated_add(lua_State *L) { return fused(L, true); }

/* ---- T5 ---- */

/* t5_buckets(lq, lk, {buckets = 32, max_distance = 128, bidirectional = true}) */
static int nn_t5_buckets(lua_State *L) {
  static const char *const known[] = {"buckets", "max_distance", "bidirectional", NULL};
  zoe_err e = {0};
  lua_Integer lq = luaL_checkinteger(L, 1), lk = luaL_checkinteger(L, 2);
  lz_opts o = lz_opts_check(L, 3, "t5_buckets", known);
  lua_Integer nb = lz_opt_integer(&o, "buckets", 32), md = lz_opt_integer(&o, "max_distance", 128);
  bool bidir = lz_opt_boolean(&o, "bidirectional", true);
  luaL_argcheck(L, lq >= 0 && lk >= 0, 1, "lengths must be non-negative");
  luaL_argcheck(L, nb > 0 && nb < 1 << 20 && md > 0 && md < 1 << 30, 3, "buckets and max_distance must be positive");
  return lz_result(L, zoe_t5_buckets(lq, lk, (int)nb, (int)md, bidir, &e), &e);
}

/* t5_position_bias(table, lq, lk, [max_distance = 128]) */
static int nn_t5_position_bias(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *table = lz_checktensor(L, 1);
  lua_Integer lq = luaL_checkinteger(L, 2), lk = luaL_checkinteger(L, 3);
  lua_Integer md = luaL_optinteger(L, 4, 128);
  luaL_argcheck(L, lq >= 0 && lk >= 0, 2, "lengths must be non-negative");
  luaL_argcheck(L, md > 0 && md < 1 << 30, 4, "max_distance must be positive");
  return lz_result(L, zoe_t5_position_bias(table, lq, lk, (int)md, &e), &e);
}

typedef struct t5_task {
  lz_task base;
  zoe_t5_layer_w w;
  zoe_tensor *x, *mask, *bias;
  int heads;
  double eps;
} t5_task;

static int run_t5(lz_task *t, zoe_err *e) {
  t5_task *k = (t5_task *)t;
  return lz_task_result(t, zoe_t5_layer(&k->w, k->heads, k->eps, k->x, k->mask, k->bias, e), e);
}

/*
** t5_layer(x, weights, {heads =, eps = 1e-6, mask =, pos_bias =}); weights by role:
** {norm1, q, k, v, o, norm2, gate, fc1, fc2, pos_table} (pos_table unless pos_bias)
*/
static int nn_t5_layer(lua_State *L) {
  static const char *const roles[] = {"norm1", "q", "k", "v", "o", "norm2", "gate", "fc1", "fc2", "pos_table", NULL};
  static const char *const known[] = {"heads", "eps", "mask", "pos_bias", NULL};
  const char *op = "t5_layer";
  zoe_tensor *x = lz_checktensor(L, 1);
  lz_opts w = lz_roles_check(L, 2, op, roles);
  luaL_checktype(L, 3, LUA_TTABLE);
  lz_opts o = lz_opts_check(L, 3, op, known);
  lua_Integer heads = lz_opt_integer(&o, "heads", 0);
  if (heads <= 0 || heads > 1 << 16) return luaL_error(L, "t5_layer: options need heads > 0");
  double eps = lz_opt_number(&o, "eps", 1e-6);
  zoe_tensor *mask = lz_opt_tensor(&o, "mask"), *bias = lz_opt_tensor(&o, "pos_bias");
  zoe_tensor *wt[9];
  for (int i = 0; i < 9; i++) wt[i] = lz_opt_need_tensor(&w, roles[i]);
  zoe_tensor *table = bias ? lz_opt_tensor(&w, "pos_table") : lz_opt_need_tensor(&w, "pos_table");
  t5_task *k = LZ_TASK_NEW(L, t5_task, run_t5, op);
  const zoe_tensor **slots[] = {&k->w.norm1, &k->w.q, &k->w.k, &k->w.v, &k->w.o, &k->w.norm2, &k->w.gate, &k->w.fc1, &k->w.fc2};
  for (int i = 0; i < 9; i++) *slots[i] = lz_task_hold(L, &k->base, wt[i]);
  k->w.pos_table = lz_task_hold(L, &k->base, table);
  k->x = lz_task_hold(L, &k->base, x);
  k->mask = lz_task_hold(L, &k->base, mask);
  k->bias = lz_task_hold(L, &k->base, bias);
  k->heads = (int)heads;
  k->eps = eps;
  int64_t D = x->ndim == 3 ? x->shape[2] : 0, N = x->ndim == 3 ? x->shape[0] * x->shape[1] : 0;
  k->base.cost = 2.0 * (double)N * (double)D * 4.0 * (double)D;
  return lz_task_finish(L, &k->base);
}

static const luaL_Reg nn_funcs[] = {
  {"linear", nn_linear}, {"embedding", nn_embedding}, {"layer_norm", nn_layer_norm},
  {"rms_norm", nn_rms_norm}, {"group_norm", nn_group_norm}, {"channel_rms_norm", nn_channel_rms_norm},
  {"attention", nn_attention}, {"rope", nn_rope}, {"timestep_embedding", nn_timestep_embedding},
  {"modulate", nn_modulate}, {"gated_add", nn_gated_add}, {"t5_buckets", nn_t5_buckets},
  {"t5_position_bias", nn_t5_position_bias}, {"t5_layer", nn_t5_layer},
  {NULL, NULL},
};

int lz_open_nn(lua_State *L) {
  luaL_newlib(L, nn_funcs);
  lz_nn_conv_functions(L);
  lz_nn_wan_functions(L);
  lz_nn_cogvideox_functions(L);
  lz_nn_ltx_functions(L);
  return 1;
}
