/*
** lnn_ltx.c: LTX-Video's C blocks in zoe.nn: the transformer block and its rotary
** embedding (runtime/nn/ltx/block.c). Weights come by role; lua/zoe/arch/ltx.lua maps
** the checkpoint's names to the roles.
*/
#include "../nn/ltx/block.h"
#include "lnn.h"
#include "ltask.h"

static const char *const attn_roles[] = {"q", "q_bias", "k", "k_bias", "v", "v_bias", "o", "o_bias",
                                         "norm_q", "norm_k", NULL};
static const char *const block_roles[] = {"table", "self_attn", "cross_attn", "ff_in", "ff_in_bias", "ff_out",
                                          "ff_out_bias", NULL};

typedef struct ltx_task {
  lz_task base;
  zoe_ltx_block_w w;
  zoe_ltx_block_opts o;
  zoe_tensor *x, *temb, *temb0, *cos, *sin, *ck, *cv, *mask;
} ltx_task;

static void attn_weights(lua_State *L, const lz_opts *block, const char *key, bool self, lz_task *t, zoe_attn_w *a) {
  lz_opts w = lz_opt_table(block, key, lua_pushfstring(L, "ltx_block: %s", key), attn_roles);
  a->q_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "q"));
  a->q_b = lz_task_hold(L, t, lz_opt_tensor(&w, "q_bias"));
  a->o_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "o"));
  a->o_b = lz_task_hold(L, t, lz_opt_tensor(&w, "o_bias"));
  a->norm_q = lz_task_hold(L, t, lz_opt_need_tensor(&w, "norm_q"));
  if (!self) return; /* the cross-attention's keys and values come per prompt */
  a->k_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "k"));
  a->k_b = lz_task_hold(L, t, lz_opt_tensor(&w, "k_bias"));
  a->v_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "v"));
  a->v_b = lz_task_hold(L, t, lz_opt_tensor(&w, "v_bias"));
  a->norm_k = lz_task_hold(L, t, lz_opt_need_tensor(&w, "norm_k"));
}

static int run_block(lz_task *t, zoe_err *e) {
  ltx_task *k = (ltx_task *)t;
  return lz_task_result(t, zoe_ltx_block(&k->w, &k->o, k->x, k->temb, k->temb0, k->cos, k->sin, k->ck, k->cv,
                                         k->mask, e), e);
}

/*
** ltx_block(x, temb, weights, {heads =, cos =, sin =, cross_k =, cross_v =, mask =, temb0 =,
** cond_tokens = 0, eps = 1e-6, qk_eps = 1e-5, ffn_rows = 8192}); weights by role: {table,
** self_attn = {q, q_bias, k, k_bias, v, v_bias, o, o_bias, norm_q, norm_k}, cross_attn =
** {q, q_bias, o, o_bias, norm_q}, ff_in, ff_in_bias, ff_out, ff_out_bias}
*/
static int nn_ltx_block(lua_State *L) {
  static const char *const known[] = {"heads", "cos", "sin", "cross_k", "cross_v", "mask", "temb0", "cond_tokens",
                                      "eps", "qk_eps", "ffn_rows", NULL};
  const char *op = "ltx_block";
  zoe_tensor *x = lz_checktensor(L, 1), *temb = lz_checktensor(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lz_opts o = lz_opts_check(L, 4, op, known);
  lua_Integer heads = lz_opt_integer(&o, "heads", 0);
  if (heads <= 0 || heads > 1 << 16) return luaL_error(L, "ltx_block: options need heads > 0");
  zoe_tensor *cos = lz_opt_need_tensor(&o, "cos"), *sin = lz_opt_need_tensor(&o, "sin");
  zoe_tensor *ck = lz_opt_need_tensor(&o, "cross_k"), *cv = lz_opt_need_tensor(&o, "cross_v");
  zoe_tensor *mask = lz_opt_tensor(&o, "mask"), *temb0 = lz_opt_tensor(&o, "temb0");
  lua_Integer cond = lz_opt_integer(&o, "cond_tokens", 0), ffn_rows = lz_opt_integer(&o, "ffn_rows", 0);
  double eps = lz_opt_number(&o, "eps", 1e-6), qk_eps = lz_opt_number(&o, "qk_eps", 1e-5);
  lz_opts w = lz_roles_check(L, 3, op, block_roles);
  ltx_task *k = LZ_TASK_NEW(L, ltx_task, run_block, op);
  lz_task *t = &k->base;
  k->w.table = lz_task_hold(L, t, lz_opt_need_tensor(&w, "table"));
  attn_weights(L, &w, "self_attn", true, t, &k->w.self_attn);
  attn_weights(L, &w, "cross_attn", false, t, &k->w.cross_attn);
  k->w.ff0_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "ff_in"));
  k->w.ff0_b = lz_task_hold(L, t, lz_opt_tensor(&w, "ff_in_bias"));
  k->w.ff2_w = lz_task_hold(L, t, lz_opt_need_tensor(&w, "ff_out"));
  k->w.ff2_b = lz_task_hold(L, t, lz_opt_tensor(&w, "ff_out_bias"));
  k->o = (zoe_ltx_block_opts){.heads = (int)heads, .eps = eps, .qk_eps = qk_eps, .cond_tokens = cond,
                              .ffn_rows = ffn_rows};
  zoe_tensor **slots[] = {&k->x, &k->temb, &k->temb0, &k->cos, &k->sin, &k->ck, &k->cv, &k->mask};
  zoe_tensor *vals[] = {x, temb, temb0, cos, sin, ck, cv, mask};
  for (int i = 0; i < 8; i++) *slots[i] = lz_task_hold(L, t, vals[i]);
  int64_t D = x->ndim == 3 ? x->shape[2] : 0, N = x->ndim == 3 ? x->shape[0] * x->shape[1] : 0;
  int64_t Lk = x->ndim == 3 ? x->shape[1] : 0, F = k->w.ff0_w->ndim == 2 ? k->w.ff0_w->shape[0] : 0;
  t->cost = 2.0 * (double)N * (double)D * (6.0 * (double)D + 2.0 * (double)F) + 4.0 * (double)N * (double)Lk * (double)D;
  return lz_task_finish(L, t);
}

typedef struct rope_task {
  lz_task base;
  zoe_tensor *x, *cos, *sin, *out;
} rope_task;

static int run_rope(lz_task *t, zoe_err *e) {
  rope_task *r = (rope_task *)t;
  return lz_task_result(t, zoe_ltx_rope(r->x, r->cos, r->sin, r->out, e), e);
}

/* ltx_rope(x [B, L, D], cos [L, D], sin [L, D], {out = x}) */
static int nn_ltx_rope(lua_State *L) {
  static const char *const known[] = {"out", NULL};
  zoe_tensor *x = lz_checktensor(L, 1), *cos = lz_checktensor(L, 2), *sin = lz_checktensor(L, 3);
  lz_opts o = lz_opts_check(L, 4, "ltx_rope", known);
  zoe_tensor *out = lz_opt_tensor(&o, "out");
  rope_task *r = LZ_TASK_NEW(L, rope_task, run_rope, "ltx_rope");
  r->x = lz_task_hold(L, &r->base, x);
  r->cos = lz_task_hold(L, &r->base, cos);
  r->sin = lz_task_hold(L, &r->base, sin);
  r->out = lz_task_hold(L, &r->base, out);
  r->base.cost = 4.0 * (double)zoe_numel(x);
  return lz_task_finish(L, &r->base);
}

static const luaL_Reg ltx_funcs[] = {
  {"ltx_block", nn_ltx_block},
  {"ltx_rope", nn_ltx_rope},
  {NULL, NULL},
};

void lz_nn_ltx_functions(lua_State *L) { luaL_setfuncs(L, ltx_funcs, 0); }
