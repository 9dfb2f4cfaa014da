/*
** lnn_cogvideox.c: the CogVideoX family's C blocks in zoe.nn: the transformer block over the
** joint [text | video] sequence (runtime/nn/cogvideox/block.c) and the VAE decoder's spatial
** norm (spatial_norm.c). Weights come by role; lua/zoe/arch/cogvideox*.lua maps the
** checkpoint's names to them.
*/
#include "../nn/cogvideox/block.h"
#include "../nn/cogvideox/spatial_norm.h"
#include "lnn.h"
#include "ltask.h"

static const char *const block_roles[] = {
  "mod1", "mod1_bias", "norm1", "norm1_bias", "q", "q_bias", "k", "k_bias", "v", "v_bias", "o", "o_bias",
  "norm_q", "norm_q_bias", "norm_k", "norm_k_bias", "mod2", "mod2_bias", "norm2", "norm2_bias",
  "ffn_in", "ffn_in_bias", "ffn_out", "ffn_out_bias", NULL};

typedef struct cog_task {
  lz_task base;
  zoe_cogvideox_block_w w;
  zoe_cogvideox_block_opts o;
  zoe_tensor *x, *es;
} cog_task;

static int run_block(lz_task *t, zoe_err *e) {
  cog_task *k = (cog_task *)t;
  return lz_task_result(t, zoe_cogvideox_block(&k->w, &k->o, k->x, k->es, e), e);
}

/*
** cogvideox_block(x, silu_emb, weights, {heads =, text =, eps = 1e-5, rope_cos =, rope_sin =,
** ffn_rows = 8192}) -> x'; x [B, T + L, D] with the T text rows first; weights by role:
** {mod1, mod1_bias, norm1, norm1_bias, q, q_bias, k, k_bias, v, v_bias, o, o_bias, norm_q,
** norm_q_bias, norm_k, norm_k_bias, mod2, mod2_bias, norm2, norm2_bias, ffn_in, ffn_in_bias,
** ffn_out, ffn_out_bias}
*/
static int nn_cogvideox_block(lua_State *L) {
  static const char *const known[] = {"heads", "text", "eps", "rope_cos", "rope_sin", "ffn_rows", NULL};
  const char *op = "cogvideox_block";
  zoe_tensor *x = lz_checktensor(L, 1), *es = lz_checktensor(L, 2);
  luaL_checktype(L, 4, LUA_TTABLE);
  lz_opts o = lz_opts_check(L, 4, op, known);
  lua_Integer heads = lz_opt_integer(&o, "heads", 0), text = lz_opt_integer(&o, "text", -1);
  if (heads <= 0 || heads > 1 << 16) return luaL_error(L, "cogvideox_block: options need heads > 0");
  if (text < 0) return luaL_error(L, "cogvideox_block: options need text = the count of text rows");
  zoe_tensor *rc = lz_opt_tensor(&o, "rope_cos"), *rs = lz_opt_tensor(&o, "rope_sin");
  if (!rc != !rs) return luaL_error(L, "cogvideox_block: give both rope_cos and rope_sin, or neither");
  double eps = lz_opt_number(&o, "eps", 1e-5);
  lua_Integer ffn_rows = lz_opt_integer(&o, "ffn_rows", 0);
  lz_opts w = lz_roles_check(L, 3, op, block_roles);
  cog_task *k = LZ_TASK_NEW(L, cog_task, run_block, op);
  lz_task *t = &k->base;
#define ROLE(field, name, need) k->w.field = lz_task_hold(L, t, need ? lz_opt_need_tensor(&w, name) : lz_opt_tensor(&w, name))
  ROLE(mod1_w, "mod1", 1); ROLE(mod1_b, "mod1_bias", 0); ROLE(norm1_w, "norm1", 0); ROLE(norm1_b, "norm1_bias", 0);
  ROLE(q_w, "q", 1); ROLE(q_b, "q_bias", 0); ROLE(k_w, "k", 1); ROLE(k_b, "k_bias", 0);
  ROLE(v_w, "v", 1); ROLE(v_b, "v_bias", 0); ROLE(o_w, "o", 1); ROLE(o_b, "o_bias", 0);
  ROLE(norm_q_w, "norm_q", 0); ROLE(norm_q_b, "norm_q_bias", 0); ROLE(norm_k_w, "norm_k", 0); ROLE(norm_k_b, "norm_k_bias", 0);
  ROLE(mod2_w, "mod2", 1); ROLE(mod2_b, "mod2_bias", 0); ROLE(norm2_w, "norm2", 0); ROLE(norm2_b, "norm2_bias", 0);
  ROLE(ffn0_w, "ffn_in", 1); ROLE(ffn0_b, "ffn_in_bias", 0); ROLE(ffn2_w, "ffn_out", 1); ROLE(ffn2_b, "ffn_out_bias", 0);
#undef ROLE
  k->o = (zoe_cogvideox_block_opts){.heads = (int)heads, .text = text, .eps = eps, .ffn_rows = ffn_rows,
                                    .rope_cos = lz_task_hold(L, t, rc), .rope_sin = lz_task_hold(L, t, rs)};
  k->x = lz_task_hold(L, t, x);
  k->es = lz_task_hold(L, t, es);
  int64_t D = x->ndim == 3 ? x->shape[2] : 0, N = x->ndim == 3 ? x->shape[0] * x->shape[1] : 0;
  int64_t ffn = k->w.ffn0_w->ndim == 2 ? k->w.ffn0_w->shape[0] : 0;
  t->cost = 2.0 * (double)N * (double)D * (4.0 * (double)D + 2.0 * (double)ffn);
  return lz_task_finish(L, t);
}

typedef struct sn_task {
  lz_task base;
  zoe_tensor *f, *y, *b, *w, *bias;
  int groups;
  double eps;
  bool silu;
} sn_task;

static int run_spatial_norm(lz_task *t, zoe_err *e) {
  sn_task *s = (sn_task *)t;
  return lz_task_result(t, zoe_cogvideox_spatial_norm(s->f, s->y, s->b, s->groups, s->w, s->bias, s->eps, s->silu, e), e);
}

/*
** cogvideox_spatial_norm(f, y, b, groups, [weight], [bias], {eps = 1e-6, silu = false}):
** GroupNorm(f) * up(y) + up(b) (then SiLU), y and b the norm's 1x1x1 convs of the latent
*/
static int nn_cogvideox_spatial_norm(lua_State *L) {
  static const char *const known[] = {"eps", "silu", NULL};
  const char *op = "cogvideox_spatial_norm";
  zoe_tensor *f = lz_checktensor(L, 1), *y = lz_checktensor(L, 2), *b = lz_checktensor(L, 3);
  lua_Integer groups = luaL_checkinteger(L, 4);
  zoe_tensor *w = lz_opttensor(L, 5), *bias = lz_opttensor(L, 6);
  luaL_argcheck(L, groups > 0 && groups < 1 << 20, 4, "groups must be positive");
  double eps = 1e-6;
  bool silu = false;
  if (lua_istable(L, 7)) {
    lz_opts o = lz_opts_check(L, 7, op, known);
    eps = lz_opt_number(&o, "eps", 1e-6);
    silu = lz_opt_boolean(&o, "silu", false);
  }
  sn_task *s = LZ_TASK_NEW(L, sn_task, run_spatial_norm, op);
  s->f = lz_task_hold(L, &s->base, f);
  s->y = lz_task_hold(L, &s->base, y);
  s->b = lz_task_hold(L, &s->base, b);
  s->w = lz_task_hold(L, &s->base, w);
  s->bias = lz_task_hold(L, &s->base, bias);
  s->groups = (int)groups;
  s->eps = eps;
  s->silu = silu;
  s->base.cost = 8.0 * (double)zoe_numel(f);
  return lz_task_finish(L, &s->base);
}

static const luaL_Reg cogvideox_funcs[] = {
  {"cogvideox_block", nn_cogvideox_block},
  {"cogvideox_spatial_norm", nn_cogvideox_spatial_norm},
  {NULL, NULL},
};

void lz_nn_cogvideox_functions(lua_State *L) { luaL_setfuncs(L, cogvideox_funcs, 0); }
