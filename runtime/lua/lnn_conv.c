/*
** lnn_conv.c: the convolution half of zoe.nn: conv2d, conv3d,
** upsample_nearest, patchify, unpatchify and the Wan VAE blocks
** (vae_resblock, vae_attention). Heavy calls run as tasks (lz_task), so the
** loop can move them to the compute thread.
*/
#include <stdlib.h>
#include <string.h>

#include "../nn/wan/vae_blocks.h"
#include "lnn.h"
#include "lzoe.h"

enum { K_CONV2D, K_CONV3D, K_UPSAMPLE, K_PATCHIFY, K_UNPATCHIFY, K_RESBLOCK, K_VAE_ATTN };

/* What a task holds beyond t->in: weights by name, and the parsed block arguments. */
typedef struct conv_task {
  zoe_tensor *held[16];
  int nheld;
  zoe_vae_resblock_w res;
  zoe_vae_cache cache;
  zoe_vae_attn_w attn;
} conv_task;

static void free_conv_task(void *p) {
  conv_task *c = p;
  if (!c) return;
  for (int i = 0; i < c->nheld; i++) zoe_tensor_release(c->held[i]);
  free(c);
}

static zoe_tensor *in_at(lz_task *t, int i) { return i ? t->in[i] : NULL; }

/* Runs without Lua, maybe on the compute thread. */
static int run_conv(lz_task *t, zoe_err *e) {
  zoe_tensor *r = NULL;
  conv_task *c = t->extra;
  int nres = 1;
  switch (t->kind) {
    case K_CONV2D: {
      int stride[2] = {t->iv[0], t->iv[1]}, pad[4] = {t->iv[2], t->iv[3], t->iv[4], t->iv[5]};
      r = zoe_conv2d(t->in[0], t->in[1], in_at(t, t->iv[6]), stride, pad, t->out, e);
      break;
    }
    case K_CONV3D: {
      int stride[3] = {t->iv[0], t->iv[1], t->iv[2]}, pad[2] = {t->iv[3], t->iv[4]};
      r = zoe_conv3d(t->in[0], t->in[1], in_at(t, t->iv[6]), stride, pad, t->iv[5], in_at(t, t->iv[7]), t->out, e);
      break;
    }
    case K_UPSAMPLE: {
      int f[3] = {t->iv[1], t->iv[2], t->iv[3]};
      r = zoe_upsample_nearest(t->in[0], t->iv[0], f, e);
      break;
    }
    case K_PATCHIFY: r = zoe_patchify(t->in[0], (int[]){t->iv[0], t->iv[1], t->iv[2]}, e); break;
    case K_UNPATCHIFY:
      r = zoe_unpatchify(t->in[0], t->lv, (int[]){t->iv[0], t->iv[1], t->iv[2]}, t->iv[3], e);
      break;
    case K_RESBLOCK: {
      zoe_vae_cache next = {0};
      r = zoe_vae_resblock(t->in[0], &c->res, &c->cache, &next, e);
      t->res[1] = next.conv1;
      t->res[2] = next.conv2;
      nres = 3;
      break;
    }
    case K_VAE_ATTN: r = zoe_vae_attention(t->in[0], &c->attn, e); break;
  }
  if (!r) return e->code ? e->code : ZOE_EINVAL;
  t->res[0] = r;
  t->nres = nres;
  return 0;
}

/* ---- argument helpers (all run before lz_task_new) ---- */

static zoe_tensor *opt_tensor(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : lz_checktensor(L, arg);
}

/* Option 'name' of the table at 'arg': a number or a list of at most 'max' integers -> count (0 if absent). */
static int opt_ints(lua_State *L, int arg, const char *op, const char *name, int *out, int max) {
  if (!lua_istable(L, arg)) return 0;
  int n = 0;
  lua_getfield(L, arg, name);
  if (lua_isinteger(L, -1)) {
    out[0] = (int)lua_tointeger(L, -1);
    n = 1;
  } else if (lua_istable(L, -1)) {
    n = (int)luaL_len(L, -1);
    if (n < 1 || n > max) luaL_error(L, "%s: option '%s' has %d entries (1 to %d)", op, name, n, max);
    for (int i = 0; i < n; i++) {
      lua_geti(L, -1, i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok || v < -(1 << 20) || v > (1 << 20)) luaL_error(L, "%s: option '%s' must hold integers", op, name);
      out[i] = (int)v;
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "%s: option '%s' must be an integer or a table of integers, got a %s", op, name,
               luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return n;
}

/* 'n' values from option 'name': absent -> def; one value -> repeated; else exactly n (or 'alt' values, expanded by 'expand'). */
static void opt_vec(lua_State *L, int arg, const char *op, const char *name, int *out, int n, int def) {
  int v[4], k = opt_ints(L, arg, op, name, v, n);
  for (int i = 0; i < n; i++) out[i] = k == 0 ? def : k == 1 ? v[0] : v[i];
  if (k > 1 && k != n) luaL_error(L, "%s: option '%s' needs 1 or %d entries, got %d", op, name, n, k);
}

static zoe_tensor *opt_field_tensor(lua_State *L, int arg, const char *op, const char *name) {
  if (!lua_istable(L, arg)) return NULL;
  lua_getfield(L, arg, name);
  zoe_tensor *t = lua_isnil(L, -1) ? NULL : lz_totensor(L, -1);
  if (!t && !lua_isnil(L, -1)) luaL_error(L, "%s: option '%s' must be a tensor, got a %s", op, name, luaL_typename(L, -1));
  lua_pop(L, 1);
  return t; /* the options table keeps it alive until the task holds it */
}

static void check_opts(lua_State *L, int arg) {
  if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TTABLE);
}

static double conv_cost(const zoe_tensor *x, const zoe_tensor *w) {
  double kernel = 1;
  for (int i = 0; i < w->ndim; i++) kernel *= (double)w->shape[i];
  double pixels = x->ndim >= 2 ? (double)zoe_numel(x) / (double)(x->shape[1] ? x->shape[1] : 1) : 0;
  return 2.0 * kernel * pixels;
}

/* ---- convolutions ---- */

/* conv2d(x, w, [b], {stride = {1, 1}, padding = p | {ph, pw} | {top, bottom, left, right}, out =}) */
static int nn_conv2d(lua_State *L) {
  const char *op = "conv2d";
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_checktensor(L, 2), *b = opt_tensor(L, 3);
  check_opts(L, 4);
  int stride[2], pad[4], p[4];
  opt_vec(L, 4, op, "stride", stride, 2, 1);
  int np = opt_ints(L, 4, op, "padding", p, 4);
  if (np == 3) luaL_error(L, "%s: option 'padding' needs 1, 2 or 4 entries, got 3", op);
  for (int i = 0; i < 4; i++) pad[i] = np == 0 ? 0 : np == 1 ? p[0] : np == 2 ? p[i / 2] : p[i];
  zoe_tensor *out = opt_field_tensor(L, 4, op, "out");
  lz_task *t = lz_task_new(L, run_conv, op, K_CONV2D);
  lz_task_in(t, x);
  lz_task_in(t, w);
  if (b) {
    t->iv[6] = t->nin;
    lz_task_in(t, b);
  }
  t->iv[0] = stride[0];
  t->iv[1] = stride[1];
  for (int i = 0; i < 4; i++) t->iv[2 + i] = pad[i];
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = conv_cost(x, w) / ((double)stride[0] * stride[1]);
  return lz_task_finish(L, t);
}

/* conv3d(x, w, [b], {stride = {1, 1, 1}, padding = p | {ph, pw}, causal_pad = 0, prev =, out =}) */
static int nn_conv3d(lua_State *L) {
  const char *op = "conv3d";
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_checktensor(L, 2), *b = opt_tensor(L, 3);
  check_opts(L, 4);
  int stride[3], pad[2], tpad = 0;
  opt_vec(L, 4, op, "stride", stride, 3, 1);
  opt_vec(L, 4, op, "padding", pad, 2, 0);
  opt_ints(L, 4, op, "causal_pad", &tpad, 1);
  zoe_tensor *prev = opt_field_tensor(L, 4, op, "prev"), *out = opt_field_tensor(L, 4, op, "out");
  lz_task *t = lz_task_new(L, run_conv, op, K_CONV3D);
  lz_task_in(t, x);
  lz_task_in(t, w);
  if (b) {
    t->iv[6] = t->nin;
    lz_task_in(t, b);
  }
  if (prev) {
    t->iv[7] = t->nin;
    lz_task_in(t, prev);
  }
  for (int i = 0; i < 3; i++) t->iv[i] = stride[i];
  t->iv[3] = pad[0];
  t->iv[4] = pad[1];
  t->iv[5] = tpad;
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = conv_cost(x, w) / ((double)stride[0] * stride[1] * stride[2]);
  return lz_task_finish(L, t);
}

/* ---- resampling ---- */

/* A table of 'min'..3 positive integers at 'arg' -> count. */
static int check_ints(lua_State *L, int arg, int *out, int min, const char *what) {
  luaL_checktype(L, arg, LUA_TTABLE);
  int n = (int)luaL_len(L, arg);
  if (n < min || n > 3) luaL_argerror(L, arg, lua_pushfstring(L, "%s: %d to 3 integers expected, got %d", what, min, n));
  for (int i = 0; i < n; i++) {
    lua_geti(L, arg, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > (1 << 24)) luaL_argerror(L, arg, lua_pushfstring(L, "%s: entry %d is not a size", what, i + 1));
    out[i] = (int)v;
    lua_pop(L, 1);
  }
  return n;
}

/* upsample_nearest(x, {fh, fw}) or (x, {ft, fh, fw}): the last 2 or 3 dims */
static int nn_upsample_nearest(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int f[3] = {1, 1, 1};
  int n = check_ints(L, 2, f, 2, "factors");
  lz_task *t = lz_task_new(L, run_conv, "upsample_nearest", K_UPSAMPLE);
  lz_task_in(t, x);
  t->iv[0] = n;
  for (int i = 0; i < 3; i++) t->iv[1 + i] = f[i];
  t->cost = (double)zoe_numel(x) * f[0] * f[1] * f[2];
  return lz_task_finish(L, t);
}

/* patchify(x [C, F, H, W], {pt, ph, pw}) -> [tokens, C*pt*ph*pw] */
static int nn_patchify(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int p[3];
  check_ints(L, 2, p, 3, "patch");
  lz_task *t = lz_task_new(L, run_conv, "patchify", K_PATCHIFY);
  lz_task_in(t, x);
  for (int i = 0; i < 3; i++) t->iv[i] = p[i];
  t->cost = (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* unpatchify(x [f*h*w, pt*ph*pw*C], {f, h, w}, {pt, ph, pw}, C) -> [C, f*pt, h*ph, w*pw] */
static int nn_unpatchify(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int g[3], p[3];
  check_ints(L, 2, g, 3, "grid");
  check_ints(L, 3, p, 3, "patch");
  lua_Integer c = luaL_checkinteger(L, 4);
  luaL_argcheck(L, c >= 1 && c <= (1 << 24), 4, "channels must be positive");
  lz_task *t = lz_task_new(L, run_conv, "unpatchify", K_UNPATCHIFY);
  lz_task_in(t, x);
  for (int i = 0; i < 3; i++) {
    t->lv[i] = g[i];
    t->iv[i] = p[i];
  }
  t->iv[3] = (int)c;
  t->cost = (double)zoe_numel(x);
  return lz_task_finish(L, t);
}

/* ---- VAE blocks: weights by the checkpoint's names under the block's prefix ---- */

static conv_task *new_conv_task(lua_State *L, lz_task *t, const char *op) {
  conv_task *c = calloc(1, sizeof *c);
  if (!c) luaL_error(L, "%s: out of memory", op);
  t->extra = c;
  t->free_extra = free_conv_task;
  return c;
}

static zoe_tensor *hold(lua_State *L, conv_task *c, const char *op, zoe_tensor *x) {
  if (c->nheld == (int)(sizeof c->held / sizeof c->held[0])) luaL_error(L, "%s: too many tensors", op);
  return c->held[c->nheld++] = zoe_tensor_retain(x);
}

/* weights[name] (a table or a weights object), held by the task; NULL when absent and optional */
static const zoe_tensor *weight(lua_State *L, int tbl, conv_task *c, const char *op, const char *name, bool required) {
  lua_getfield(L, tbl, name);
  zoe_tensor *t = lua_isnil(L, -1) ? NULL : lz_totensor(L, -1);
  if (!t && !lua_isnil(L, -1)) luaL_error(L, "%s: weight '%s' is a %s, not a tensor", op, name, luaL_typename(L, -1));
  lua_pop(L, 1);
  if (!t) {
    if (required) luaL_error(L, "%s: the weights have no '%s'", op, name);
    return NULL;
  }
  return hold(L, c, op, t);
}

/* a table of tensors, or a weights object (userdata indexed by name) */
static void check_weights(lua_State *L, int arg) {
  if (!lua_istable(L, arg) && !lua_isuserdata(L, arg)) luaL_typeerror(L, arg, "table of weights");
}

static zoe_tensor *cache_entry(lua_State *L, int tbl, int i, conv_task *c) {
  lua_geti(L, tbl, i);
  zoe_tensor *t = lua_isnil(L, -1) ? NULL : lz_totensor(L, -1);
  if (!t && !lua_isnil(L, -1)) luaL_error(L, "vae_resblock: cache[%d] is a %s, not a tensor", i, luaL_typename(L, -1));
  lua_pop(L, 1);
  return t ? hold(L, c, "vae_resblock", t) : NULL;
}

/* The task: returns y and the two new cache tensors. */
static int resblock_task(lua_State *L) {
  const char *op = "vae_resblock";
  zoe_tensor *x = lz_checktensor(L, 1);
  lz_task *t = lz_task_new(L, run_conv, op, K_RESBLOCK);
  conv_task *c = new_conv_task(L, t, op);
  zoe_vae_resblock_w *w = &c->res;
  w->norm1_gamma = weight(L, 2, c, op, "residual.0.gamma", true);
  w->conv1_w = weight(L, 2, c, op, "residual.2.weight", true);
  w->conv1_b = weight(L, 2, c, op, "residual.2.bias", false);
  w->norm2_gamma = weight(L, 2, c, op, "residual.3.gamma", true);
  w->conv2_w = weight(L, 2, c, op, "residual.6.weight", true);
  w->conv2_b = weight(L, 2, c, op, "residual.6.bias", false);
  w->shortcut_w = weight(L, 2, c, op, "shortcut.weight", false);
  w->shortcut_b = weight(L, 2, c, op, "shortcut.bias", false);
  if (lua_istable(L, 3)) {
    c->cache.conv1 = cache_entry(L, 3, 1, c);
    c->cache.conv2 = cache_entry(L, 3, 2, c);
  }
  lz_task_in(t, x);
  t->cost = conv_cost(x, w->conv1_w) + conv_cost(x, w->conv2_w);
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

/* vae_resblock(x, weights, [cache]) -> y, new_cache; cache = {frames before conv 1, frames before conv 2} */
static int nn_vae_resblock(lua_State *L) {
  lz_checktensor(L, 1);
  check_weights(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_pushcfunction(L, resblock_task);
  lua_insert(L, 1);
  return resblock_done(L, lua_pcallk(L, 3, 3, 0, 0, resblock_done), 0);
}

/* vae_attention(x, weights) */
static int nn_vae_attention(lua_State *L) {
  const char *op = "vae_attention";
  zoe_tensor *x = lz_checktensor(L, 1);
  check_weights(L, 2);
  lz_task *t = lz_task_new(L, run_conv, op, K_VAE_ATTN);
  conv_task *c = new_conv_task(L, t, op);
  c->attn.norm_gamma = weight(L, 2, c, op, "norm.gamma", true);
  c->attn.qkv_w = weight(L, 2, c, op, "to_qkv.weight", true);
  c->attn.qkv_b = weight(L, 2, c, op, "to_qkv.bias", false);
  c->attn.proj_w = weight(L, 2, c, op, "proj.weight", true);
  c->attn.proj_b = weight(L, 2, c, op, "proj.bias", false);
  lz_task_in(t, x);
  double C = x->ndim == 5 ? (double)x->shape[1] : 0, L2 = x->ndim == 5 ? (double)(x->shape[3] * x->shape[4]) : 0;
  t->cost = (double)zoe_numel(x) * (8.0 * C + 4.0 * L2);
  return lz_task_finish(L, t);
}

static const luaL_Reg conv_funcs[] = {
  {"conv2d", nn_conv2d},
  {"conv3d", nn_conv3d},
  {"upsample_nearest", nn_upsample_nearest},
  {"patchify", nn_patchify},
  {"unpatchify", nn_unpatchify},
  {"vae_resblock", nn_vae_resblock},
  {"vae_attention", nn_vae_attention},
  {NULL, NULL},
};

void lz_nn_conv_register(lua_State *L) { luaL_setfuncs(L, conv_funcs, 0); }
