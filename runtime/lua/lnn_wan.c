/*
** lnn_wan.c: the Wan family's C blocks in zoe.nn: the DiT block and its
** cross-attention keys and values (runtime/nn/wan/dit.c), the VAE's residual and
** attention blocks (runtime/nn/wan/vae_blocks.c). Weights come by role;
** lua/zoe/arch/wan.lua and wan_vae.lua map the checkpoint's names to the roles.
*/
#include "../nn/wan/dit.h"
#include "../nn/wan/vae_blocks.h"
#include "lnn.h"
#include "ltask.h"

/* ---- the DiT block ---- */

static const char *const attn_roles[] = {"q", "q_bias", "k", "k_bias", "v", "v_bias", "o", "o_bias",
                                         "norm_q", "norm_k", NULL};
static const char *const block_roles[] = {"modulation", "self_attn", "cross_attn", "norm3", "norm3_bias",
                                          "ffn_in", "ffn_in_bias", "ffn_out", "ffn_out_bias", NULL};

typedef struct wan_task {
  lz_task base;
  zoe_wan_block_w w;
  zoe_wan_block_opts o;
  zoe_tensor *x, *e0, *ck, *cv;
} wan_task;

static void attn_weights(lua_State *L, const lz_opts *block, const char *key, const char *op, lz_task *t,
                         zoe_attn_w *a) {
  lz_opts w = lz_opt_table(block, key, op, attn_roles);
  a->q_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "q"));
  a->q_b = lz_task_hold(L, t, lz_opt_tensor(&w, "q_bias"));
  a->k_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "k"));
  a->k_b = lz_task_hold(L, t, lz_opt_tensor(&w, "k_bias"));
  a->v_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "v"));
  a->v_b = lz_task_hold(L, t, lz_opt_tensor(&w, "v_bias"));
  a->o_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "o"));
  a->o_b = lz_task_hold(L, t, lz_opt_tensor(&w, "o_bias"));
  a->norm_q = lz_task_hold(L, t, lz_opt_tensor(&w, "norm_q"));
  a->norm_k = lz_task_hold(L, t, lz_opt_tensor(&w, "norm_k"));
}

/* The block's weights from the roles table at 'arg', held by the task. */
static void block_weights(lua_State *L, int arg, const char *op, wan_task *k) {
  lz_opts w = lz_roles_check(L, arg, op, block_roles);
  lz_task *t = &k->base;
  k->w.modulation = lz_task_hold(L, t, lz_opt_need_tensor(&w, "modulation"));
  attn_weights(L, &w, "self_attn", lua_pushfstring(L, "%s: self_attn", op), t, &k->w.self_attn);
  attn_weights(L, &w, "cross_attn", lua_pushfstring(L, "%s: cross_attn", op), t, &k->w.cross_attn);
  k->w.norm3_w = lz_task_hold(L, t, lz_opt_tensor(&w, "norm3"));
  k->w.norm3_b = lz_task_hold(L, t, lz_opt_tensor(&w, "norm3_bias"));
  k->w.ffn0_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "ffn_in"));
  k->w.ffn0_b = lz_task_hold(L, t, lz_opt_tensor(&w, "ffn_in_bias"));
  k->w.ffn2_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "ffn_out"));
  k->w.ffn2_b = lz_task_hold(L, t, lz_opt_tensor(&w, "ffn_out_bias"));
}

static int run_wan_block(lz_task *t, zoe_err *e) {
  wan_task *k = (wan_task *)t;
  return lz_task_result(t, zoe_wan_block(&k->w, &k->o, k->x, k->e0, k->ck, k->cv, e), e);
}

/*
** wan_block(x, e0, weights, {heads =, grid = {f, h, w}, rope_pairs = {pt, ph, pw},
** rope_theta = 10000, cross_k =, cross_v =, eps = 1e-6, ffn_rows = 8192}); weights by
** role: {modulation, self_attn = {q, q_bias, k, k_bias, v, v_bias, o, o_bias, norm_q,
** norm_k}, cross_attn = {...}, norm3, norm3_bias, ffn_in, ffn_in_bias, ffn_out, ffn_out_bias}
*/
static int nn_wan_block(lua_State *L) {
  static const char *const known[] = {"heads", "grid", "rope_pairs", "rope_theta", "cross_k", "cross_v",
                                      "eps", "ffn_rows", NULL};
  const char *op = "wan_block";
  zoe_tensor *x = lz_checktensor(L, 1), *e0 = lz_checktensor(L, 2);
  luaL_checktype(L, 4, LUA_TTABLE);
  lz_opts o = lz_opts_check(L, 4, op, known);
  zoe_tensor *ck = lz_opt_tensor(&o, "cross_k"), *cv = lz_opt_tensor(&o, "cross_v");
  if (!ck || !cv) return luaL_error(L, "wan_block: options need cross_k and cross_v (from nn.wan_cross_kv)");
  lua_Integer heads = lz_opt_integer(&o, "heads", 0);
  if (heads <= 0 || heads > 1 << 16) return luaL_error(L, "wan_block: options need heads > 0");
  int64_t grid[3], pairs[3];
  if (lz_opt_ints(&o, "grid", grid, 3, 3) != 3) return luaL_error(L, "wan_block: options need grid = {frames, rows, cols}");
  if (lz_opt_ints(&o, "rope_pairs", pairs, 3, 3) != 3)
    return luaL_error(L, "wan_block: options need rope_pairs = {t, h, w} (pairs of the head dim per axis)");
  double eps = lz_opt_number(&o, "eps", 1e-6), theta = lz_opt_number(&o, "rope_theta", 10000);
  lua_Integer ffn_rows = lz_opt_integer(&o, "ffn_rows", 0);
  wan_task *k = LZ_TASK_NEW(L, wan_task, run_wan_block, op);
  block_weights(L, 3, op, k);
  k->o = (zoe_wan_block_opts){.heads = (int)heads, .eps = eps, .grid = {grid[0], grid[1], grid[2]},
                              .rope_pairs = {(int)pairs[0], (int)pairs[1], (int)pairs[2]}, .rope_theta = theta,
                              .ffn_rows = ffn_rows};
  k->x = lz_task_hold(L, &k->base, x);
  k->e0 = lz_task_hold(L, &k->base, e0);
  k->ck = lz_task_hold(L, &k->base, ck);
  k->cv = lz_task_hold(L, &k->base, cv);
  int64_t D = x->ndim == 3 ? x->shape[2] : 0, N = x->ndim == 3 ? x->shape[0] * x->shape[1] : 0;
  int64_t ffn = k->w.ffn0_w->ndim == 2 ? k->w.ffn0_w->shape[0] : 0;
  /* its flops: the linears, self-attention over each entry's L tokens, cross-attention over
     the Lc text tokens. Attention counts as much as the products (it runs near the GEMM's
     rate), so a rate learned at 1200 tokens holds at 32760, where attention is 70% of it. */
  double L1 = x->ndim == 3 ? (double)x->shape[1] : 0, Lc = ck->ndim == 4 ? (double)ck->shape[1] : 0;
  k->base.cost = 2.0 * (double)N * (double)D * (6.0 * (double)D + 2.0 * (double)ffn) +
                 4.0 * (double)N * L1 * (double)D + 4.0 * (double)N * Lc * (double)D;
  return lz_task_finish(L, &k->base);
}

typedef struct cross_kv_task {
  wan_task block;
  zoe_tensor *context;
} cross_kv_task;

static int run_cross_kv(lz_task *t, zoe_err *e) {
  cross_kv_task *c = (cross_kv_task *)t;
  zoe_tensor *k = NULL, *v = NULL;
  if (zoe_wan_cross_kv(&c->block.w, c->block.o.heads, c->block.o.eps, c->context, &k, &v, e))
    return e->code ? e->code : ZOE_EINVAL;
  t->res[0] = k;
  t->res[1] = v;
  t->nres = 2;
  return 0;
}

/* wan_cross_kv(context, weights, {heads =, eps = 1e-6}) -> k, v (weights: wan_block's) */
static int nn_wan_cross_kv(lua_State *L) {
  static const char *const known[] = {"heads", "eps", NULL};
  const char *op = "wan_cross_kv";
  zoe_tensor *ctx = lz_checktensor(L, 1);
  luaL_checktype(L, 3, LUA_TTABLE);
  lz_opts o = lz_opts_check(L, 3, op, known);
  lua_Integer heads = lz_opt_integer(&o, "heads", 0);
  if (heads <= 0 || heads > 1 << 16) return luaL_error(L, "wan_cross_kv: options need heads > 0");
  double eps = lz_opt_number(&o, "eps", 1e-6);
  cross_kv_task *c = LZ_TASK_NEW(L, cross_kv_task, run_cross_kv, op);
  block_weights(L, 2, op, &c->block);
  c->block.o.heads = (int)heads;
  c->block.o.eps = eps;
  c->context = lz_task_hold(L, &c->block.base, ctx);
  const zoe_tensor *kw = c->block.w.cross_attn.k_w;
  c->block.base.cost = 4.0 * (double)zoe_numel(ctx) * (double)(kw->ndim == 2 ? kw->shape[0] : 1);
  return lz_task_finish(L, &c->block.base);
}

/* ---- the VAE's blocks ---- */

typedef struct vae_task {
  lz_task base;
  zoe_vae_resblock_w res;
  zoe_vae_cache cache;
  zoe_vae_attn_w attn;
  zoe_tensor *x;
  bool attention;
} vae_task;

static int run_vae(lz_task *t, zoe_err *e) {
  vae_task *v = (vae_task *)t;
  if (v->attention) return lz_task_result(t, zoe_vae_attention(v->x, &v->attn, e), e);
  zoe_vae_cache next = {0};
  int rc = lz_task_result(t, zoe_vae_resblock(v->x, &v->res, &v->cache, &next, e), e);
  if (rc) return rc;
  t->res[1] = next.conv1;
  t->res[2] = next.conv2;
  t->nres = 3;
  return 0;
}

static zoe_tensor *cache_entry(lua_State *L, int tbl, int i) {
  lua_geti(L, tbl, i);
  zoe_tensor *t = lua_isnil(L, -1) ? NULL : lz_totensor(L, -1);
  if (!t && !lua_isnil(L, -1)) luaL_error(L, "vae_resblock: cache[%d] is a %s, not a tensor", i, luaL_typename(L, -1));
  lua_pop(L, 1);
  return t; /* the cache table keeps it alive until the task holds it */
}

/* The task: returns y and the two new cache tensors. */
static int resblock_task(lua_State *L) {
  static const char *const roles[] = {"norm1", "conv1", "conv1_bias", "norm2", "conv2", "conv2_bias",
                                      "shortcut", "shortcut_bias", NULL};
  const char *op = "vae_resblock";
  zoe_tensor *x = lz_checktensor(L, 1);
  lz_opts w = lz_roles_check(L, 2, op, roles);
  zoe_tensor *c1 = lua_istable(L, 3) ? cache_entry(L, 3, 1) : NULL, *c2 = lua_istable(L, 3) ? cache_entry(L, 3, 2) : NULL;
  vae_task *v = LZ_TASK_NEW(L, vae_task, run_vae, op);
  lz_task *t = &v->base;
  v->res.norm1_gamma = lz_task_hold(L, t, lz_opt_need_tensor(&w, "norm1"));
  v->res.conv1_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "conv1"));
  v->res.conv1_b = lz_task_hold(L, t, lz_opt_tensor(&w, "conv1_bias"));
  v->res.norm2_gamma = lz_task_hold(L, t, lz_opt_need_tensor(&w, "norm2"));
  v->res.conv2_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "conv2"));
  v->res.conv2_b = lz_task_hold(L, t, lz_opt_tensor(&w, "conv2_bias"));
  v->res.shortcut_w = lz_task_hold(L, t, lz_opt_tensor(&w, "shortcut"));
  v->res.shortcut_b = lz_task_hold(L, t, lz_opt_tensor(&w, "shortcut_bias"));
  v->cache.conv1 = lz_task_hold(L, t, c1);
  v->cache.conv2 = lz_task_hold(L, t, c2);
  v->x = lz_task_hold(L, t, x);
  t->cost = lz_conv_cost(x, v->res.conv1_w) + lz_conv_cost(x, v->res.conv2_w);
  return lz_task_finish(L, t);
}

/* After the task (maybe resumed from a yield): y, c1, c2 -> y, {c1, c2}; errors get the caller's line. */
static int resblock_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
  }
  lua_createtable(L, 2, 0); /* y c1 c2 {} */
  lua_rotate(L, -3, 1);     /* y {} c1 c2 */
  lua_seti(L, -3, 2);
  lua_seti(L, -2, 1);
  return 2;
}

/*
** vae_resblock(x, weights, [cache]) -> y, new_cache; cache = {frames before conv 1,
** frames before conv 2}; weights by role: {norm1, conv1, conv1_bias, norm2, conv2,
** conv2_bias, shortcut, shortcut_bias}
*/
static int nn_vae_resblock(lua_State *L) {
  lz_checktensor(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_pushcfunction(L, resblock_task);
  lua_insert(L, 1);
  return resblock_done(L, lua_pcallk(L, 3, 3, 0, 0, resblock_done), 0);
}

/* vae_attention(x, weights); weights by role: {norm, qkv, qkv_bias, proj, proj_bias} */
static int nn_vae_attention(lua_State *L) {
  static const char *const roles[] = {"norm", "qkv", "qkv_bias", "proj", "proj_bias", NULL};
  const char *op = "vae_attention";
  zoe_tensor *x = lz_checktensor(L, 1);
  lz_opts w = lz_roles_check(L, 2, op, roles);
  vae_task *v = LZ_TASK_NEW(L, vae_task, run_vae, op);
  lz_task *t = &v->base;
  v->attention = true;
  v->attn.norm_gamma = lz_task_hold(L, t, lz_opt_need_tensor(&w, "norm"));
  v->attn.qkv_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "qkv"));
  v->attn.qkv_b = lz_task_hold(L, t, lz_opt_tensor(&w, "qkv_bias"));
  v->attn.proj_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "proj"));
  v->attn.proj_b = lz_task_hold(L, t, lz_opt_tensor(&w, "proj_bias"));
  v->x = lz_task_hold(L, t, x);
  double C = x->ndim == 5 ? (double)x->shape[1] : 0, L2 = x->ndim == 5 ? (double)(x->shape[3] * x->shape[4]) : 0;
  t->cost = (double)zoe_numel(x) * (8.0 * C + 4.0 * L2);
  return lz_task_finish(L, t);
}

static const luaL_Reg wan_funcs[] = {
  {"wan_block", nn_wan_block},
  {"wan_cross_kv", nn_wan_cross_kv},
  {"vae_resblock", nn_vae_resblock},
  {"vae_attention", nn_vae_attention},
  {NULL, NULL},
};

void lz_nn_wan_functions(lua_State *L) { luaL_setfuncs(L, wan_funcs, 0); }
