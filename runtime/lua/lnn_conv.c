/*
** lnn_conv.c: the convolution half of zoe.nn: conv2d, conv3d,
** upsample_nearest, patchify, unpatchify. Each runs as a task (ltask.h), so the
** loop can move big ones to the compute thread.
*/
#include "../nn/nn.h"
#include "lnn.h"
#include "ltask.h"

/* 'n' values of option 'key': absent -> def; one value -> repeated; else exactly n. */
static void opt_vec(const lz_opts *o, const char *key, int *out, int n, int def) {
  int64_t v[4];
  int k = lz_opt_ints(o, key, v, 1, n);
  if (k > 1 && k != n) luaL_error(o->L, "%s: option '%s' needs 1 or %d entries, got %d", o->op, key, n, k);
  for (int i = 0; i < n; i++) {
    int64_t x = k == 0 ? def : k == 1 ? v[0] : v[i];
    if (x < -(1 << 20) || x > (1 << 20)) luaL_error(o->L, "%s: option '%s' is out of range", o->op, key);
    out[i] = (int)x;
  }
}

double lz_conv_cost(const zoe_tensor *x, const zoe_tensor *w) {
  double kernel = 1;
  for (int i = 0; i < w->ndim; i++) kernel *= (double)w->shape[i];
  double pixels = x->ndim >= 2 ? (double)zoe_numel(x) / (double)(x->shape[1] ? x->shape[1] : 1) : 0;
  return 2.0 * kernel * pixels;
}

/* ---- convolutions ---- */

typedef struct conv_task {
  lz_task base;
  zoe_tensor *x, *w, *b, *prev, *out;
  int stride[3], pad[4], tpad;
  bool three_d;
} conv_task;

static int run_conv(lz_task *t, zoe_err *e) {
  conv_task *c = (conv_task *)t;
  zoe_tensor *r = c->three_d ? zoe_conv3d(c->x, c->w, c->b, c->stride, c->pad, c->tpad, c->prev, c->out, e)
                             : zoe_conv2d(c->x, c->w, c->b, c->stride, c->pad, c->out, e);
  return lz_task_result(t, r, e);
}

static conv_task *new_conv(lua_State *L, const char *op, zoe_tensor *x, zoe_tensor *w, zoe_tensor *b,
                           zoe_tensor *out) {
  conv_task *c = LZ_TASK_NEW(L, conv_task, run_conv, op);
  c->x = lz_task_hold(L, &c->base, x);
  c->w = lz_task_hold(L, &c->base, w);
  c->b = lz_task_hold(L, &c->base, b);
  c->out = lz_task_hold(L, &c->base, out);
  return c;
}

/* conv2d(x, w, [b], {stride = {1, 1}, padding = p | {ph, pw} | {top, bottom, left, right}, out =}) */
static int nn_conv2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "out", NULL};
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_checktensor(L, 2), *b = lz_opttensor(L, 3);
  lz_opts o = lz_opts_check(L, 4, "conv2d", known);
  int stride[2], pad[4];
  int64_t p[4];
  opt_vec(&o, "stride", stride, 2, 1);
  int np = lz_opt_ints(&o, "padding", p, 1, 4);
  if (np == 3) luaL_error(L, "conv2d: option 'padding' needs 1, 2 or 4 entries, got 3");
  for (int i = 0; i < 4; i++) pad[i] = (int)(np == 0 ? 0 : np == 1 ? p[0] : np == 2 ? p[i / 2] : p[i]);
  conv_task *c = new_conv(L, "conv2d", x, w, b, lz_opt_tensor(&o, "out"));
  c->stride[0] = stride[0];
  c->stride[1] = stride[1];
  for (int i = 0; i < 4; i++) c->pad[i] = pad[i];
  c->base.cost = lz_conv_cost(x, w) / ((double)stride[0] * stride[1]);
  return lz_task_finish(L, &c->base);
}

/* conv3d(x, w, [b], {stride = {1, 1, 1}, padding = p | {ph, pw}, causal_pad = 0, prev =, out =}) */
static int nn_conv3d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "causal_pad", "prev", "out", NULL};
  zoe_tensor *x = lz_checktensor(L, 1), *w = lz_checktensor(L, 2), *b = lz_opttensor(L, 3);
  lz_opts o = lz_opts_check(L, 4, "conv3d", known);
  int stride[3], pad[2], tpad;
  opt_vec(&o, "stride", stride, 3, 1);
  opt_vec(&o, "padding", pad, 2, 0);
  opt_vec(&o, "causal_pad", &tpad, 1, 0);
  zoe_tensor *prev = lz_opt_tensor(&o, "prev");
  conv_task *c = new_conv(L, "conv3d", x, w, b, lz_opt_tensor(&o, "out"));
  c->three_d = true;
  c->prev = lz_task_hold(L, &c->base, prev);
  for (int i = 0; i < 3; i++) c->stride[i] = stride[i];
  c->pad[0] = pad[0];
  c->pad[1] = pad[1];
  c->tpad = tpad;
  c->base.cost = lz_conv_cost(x, w) / ((double)stride[0] * stride[1] * stride[2]);
  return lz_task_finish(L, &c->base);
}

/* ---- resampling ---- */

typedef enum { RS_UPSAMPLE, RS_PATCHIFY, RS_UNPATCHIFY } resample_kind;

typedef struct resample_task {
  lz_task base;
  resample_kind kind;
  zoe_tensor *x;
  int ndims, factor[3], patch[3], channels;
  int64_t grid[3];
} resample_task;

static int run_resample(lz_task *t, zoe_err *e) {
  resample_task *r = (resample_task *)t;
  zoe_tensor *y = NULL;
  switch (r->kind) {
    case RS_UPSAMPLE: y = zoe_upsample_nearest(r->x, r->ndims, r->factor, e); break;
    case RS_PATCHIFY: y = zoe_patchify(r->x, r->patch, e); break;
    case RS_UNPATCHIFY: y = zoe_unpatchify(r->x, r->grid, r->patch, r->channels, e); break;
  }
  return lz_task_result(t, y, e);
}

/* A table of 'min'..3 sizes at 'arg' -> count. */
static int check_sizes(lua_State *L, int arg, int *out, int min, const char *what) {
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

static resample_task *new_resample(lua_State *L, const char *name, resample_kind kind, zoe_tensor *x, double cost) {
  resample_task *r = LZ_TASK_NEW(L, resample_task, run_resample, name);
  r->kind = kind;
  r->x = lz_task_hold(L, &r->base, x);
  r->base.cost = cost;
  return r;
}

/* upsample_nearest(x, {fh, fw}) or (x, {ft, fh, fw}): the last 2 or 3 dims */
static int nn_upsample_nearest(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int f[3] = {1, 1, 1};
  int n = check_sizes(L, 2, f, 2, "factors");
  resample_task *r = new_resample(L, "upsample_nearest", RS_UPSAMPLE, x, (double)zoe_numel(x) * f[0] * f[1] * f[2]);
  r->ndims = n;
  for (int i = 0; i < 3; i++) r->factor[i] = f[i];
  return lz_task_finish(L, &r->base);
}

/* patchify(x [C, F, H, W], {pt, ph, pw}) -> [tokens, C*pt*ph*pw] */
static int nn_patchify(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int p[3];
  check_sizes(L, 2, p, 3, "patch");
  resample_task *r = new_resample(L, "patchify", RS_PATCHIFY, x, (double)zoe_numel(x));
  for (int i = 0; i < 3; i++) r->patch[i] = p[i];
  return lz_task_finish(L, &r->base);
}

/* unpatchify(x [f*h*w, pt*ph*pw*C], {f, h, w}, {pt, ph, pw}, C) -> [C, f*pt, h*ph, w*pw] */
static int nn_unpatchify(lua_State *L) {
  zoe_tensor *x = lz_checktensor(L, 1);
  int g[3], p[3];
  check_sizes(L, 2, g, 3, "grid");
  check_sizes(L, 3, p, 3, "patch");
  lua_Integer c = luaL_checkinteger(L, 4);
  luaL_argcheck(L, c >= 1 && c <= (1 << 24), 4, "channels must be positive");
  resample_task *r = new_resample(L, "unpatchify", RS_UNPATCHIFY, x, (double)zoe_numel(x));
  for (int i = 0; i < 3; i++) {
    r->grid[i] = g[i];
    r->patch[i] = p[i];
  }
  r->channels = (int)c;
  return lz_task_finish(L, &r->base);
}

static const luaL_Reg conv_funcs[] = {
  {"conv2d", nn_conv2d},
  {"conv3d", nn_conv3d},
  {"upsample_nearest", nn_upsample_nearest},
  {"patchify", nn_patchify},
  {"unpatchify", nn_unpatchify},
  {NULL, NULL},
};

void lz_nn_conv_functions(lua_State *L) { luaL_setfuncs(L, conv_funcs, 0); }
