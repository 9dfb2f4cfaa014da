/*
** lzoe.c: binding helpers, the task machinery, and the module openers.
** luaopen_zoe_core returns the C half of the library; lua/zoe/init.lua builds
** the rest on top of it. luaopen_zoe lets stock lua5.4 load zoe.so directly.
*/
#include "lzoe.h"
#include "lnn.h"

#include <string.h>

#include "../core/alloc.h"
#include "../ops/gemm.h"

/* ---- tensors ---- */

zoe_tensor *lz_totensor(lua_State *L, int arg) {
  lz_tensor_box *b = luaL_testudata(L, arg, LZ_TENSOR);
  if (b && !b->t) luaL_argerror(L, arg, "tensor was closed");
  return b ? b->t : NULL;
}

zoe_tensor *lz_checktensor(lua_State *L, int arg) {
  lz_tensor_box *b = luaL_checkudata(L, arg, LZ_TENSOR);
  if (!b->t) luaL_argerror(L, arg, "tensor was closed");
  return b->t;
}

/*
** Lua sees only a small box per tensor, not the memory behind it, so a loop
** making big temporaries would grow without bound before the GC ran. When live
** C memory passes a threshold, collect fully and reset the threshold to what
** survived plus an eighth of it (torch7's fix, with a floor so small scripts
** never pay for it). An eighth, not torch7's doubling: a full collection costs
** about a millisecond while a big model's temporaries are hundreds of MB each, and
** doubling let Wan's VAE at 832x480 peak 2 GB higher (11.7 GB against 9.6 GB).
*/
#define GC_FLOOR ((int64_t)64 << 20)
static int64_t gc_threshold = GC_FLOOR;

static void gc_nudge(lua_State *L) {
  zoe_mem_stats m;
  zoe_mem_get(&m);
  if (m.live < gc_threshold) return;
  lua_gc(L, LUA_GCCOLLECT);
  zoe_mem_get(&m);
  gc_threshold = m.live + (m.live / 8 > GC_FLOOR ? m.live / 8 : GC_FLOOR);
}

void lz_pushtensor(lua_State *L, zoe_tensor *t) {
  lz_tensor_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  luaL_setmetatable(L, LZ_TENSOR);
  b->t = t;
  gc_nudge(L);
}

int lz_error(lua_State *L, const zoe_err *e) {
  luaL_where(L, 1);
  lua_pushstring(L, e->msg[0] ? e->msg : zoe_strerror(e->code));
  lua_concat(L, 2);
  return lua_error(L);
}

int lz_result(lua_State *L, zoe_tensor *t, const zoe_err *e) {
  if (!t) return lz_error(L, e);
  lz_pushtensor(L, t);
  return 1;
}

int lz_checkdim(lua_State *L, int arg, const zoe_tensor *t, const char *op, int extra) {
  lua_Integer d = luaL_checkinteger(L, arg);
  int n = t->ndim + extra;
  if (d >= 1 && d <= n) return (int)d - 1;
  if (d < 0 && d >= -n) return (int)(d + n);
  char s[96];
  return luaL_error(L, "%s: dim %d out of range for tensor %s (expected 1..%d or -%d..-1)", op,
                    (int)d, zoe_shape_str(t, s, sizeof s), n, n);
}

int lz_checkshape(lua_State *L, int arg, int64_t *shape, const char *op) {
  int n = 0;
  if (lua_istable(L, arg)) {
    n = (int)luaL_len(L, arg);
    if (n > ZOE_MAX_DIMS) luaL_error(L, "%s: %d dims (at most %d)", op, n, ZOE_MAX_DIMS);
    for (int i = 0; i < n; i++) {
      lua_geti(L, arg, i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok || v < 0) luaL_error(L, "%s: size %d of the shape must be a non-negative integer", op, i + 1);
      shape[i] = v;
      lua_pop(L, 1);
    }
    return n;
  }
  while (lua_type(L, arg + n) == LUA_TNUMBER) { /* 1e4 is a size too */
    if (n == ZOE_MAX_DIMS) luaL_error(L, "%s: more than %d dims", op, ZOE_MAX_DIMS);
    int ok;
    lua_Integer v = lua_tointegerx(L, arg + n, &ok);
    if (!ok) luaL_error(L, "%s: size %d of the shape must be an integer, got %f", op, n + 1, lua_tonumber(L, arg + n));
    if (v < 0) luaL_error(L, "%s: size %d of the shape is negative (%d)", op, n + 1, (int)v);
    shape[n++] = v;
  }
  if (n == 0 && !lua_isnoneornil(L, arg) && !lua_isstring(L, arg))
    luaL_argerror(L, arg, "shape expected (a table like {2, 3} or integers)");
  return n;
}

zoe_dtype lz_checkdtype(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  zoe_dtype dt;
  if (zoe_dtype_from_name(name, &dt))
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (f32, f16, bf16, i32, u8)", name));
  return dt;
}

zoe_dtype lz_optdtype(lua_State *L, int arg, zoe_dtype def) {
  if (lua_type(L, arg) == LUA_TSTRING) return lz_checkdtype(L, arg);
  if (lua_istable(L, arg)) {
    lua_getfield(L, arg, "dtype");
    zoe_dtype dt = lua_isnil(L, -1) ? def : lz_checkdtype(L, lua_gettop(L));
    lua_pop(L, 1);
    return dt;
  }
  return def;
}

/* ---- tasks ---- */

static lz_offload_fn offload_hook;
static double offload_threshold = 1e300;
static void (*offload_wait)(lz_task *t);

void lz_set_offload(lz_offload_fn fn, double threshold) {
  offload_hook = fn;
  offload_threshold = threshold;
}

double lz_offload_threshold(void) { return offload_threshold; }

void lz_set_offload_wait(void (*wait)(lz_task *t)) { offload_wait = wait; }

static int task_gc(lua_State *L) {
  lz_task *t = luaL_checkudata(L, 1, LZ_TASK);
  if (t->flight && offload_wait) offload_wait(t); /* the compute thread may still use it */
  for (int i = 0; i < t->nin; i++) zoe_tensor_release(t->in[i]);
  for (int i = 0; i < LZ_TASK_RES; i++) zoe_tensor_release(t->res[i]);
  zoe_tensor_release(t->out);
  if (t->free_extra) t->free_extra(t->extra);
  memset(t, 0, sizeof *t);
  return 0;
}

lz_task *lz_task_new(lua_State *L, lz_run_fn run, const char *name, int kind) {
  lz_task *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  if (luaL_newmetatable(L, LZ_TASK)) {
    lua_pushcfunction(L, task_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  t->run = run;
  t->name = name;
  t->kind = kind;
  return t;
}

void lz_task_in(lz_task *t, const zoe_tensor *x) {
  if (t->nin < LZ_TASK_IN) t->in[t->nin++] = zoe_tensor_retain(x);
}

int lz_task_push_results(lua_State *L, lz_task *t) {
  if (t->err.code) return lz_error(L, &t->err);
  for (int i = 0; i < t->nres; i++) {
    zoe_tensor *r = t->res[i];
    t->res[i] = NULL;
    if (r) lz_pushtensor(L, r);
    else lua_pushnil(L);
  }
  return t->nres;
}

void lz_task_run(lz_task *t) {
  int rc = t->run(t, &t->err);
  if (rc && !t->err.code) zoe_errf(&t->err, rc, "%s: %s", t->name, zoe_strerror(rc));
}

int lz_task_finish(lua_State *L, lz_task *t) {
  if (offload_hook && t->cost >= offload_threshold && lua_isyieldable(L)) {
    int n = offload_hook(L, t);
    if (n != LZ_INLINE) return n;
  }
  lz_task_run(t);
  return lz_task_push_results(L, t);
}

/* ---- the module ---- */

static int z_mem(lua_State *L) {
  zoe_mem_stats m;
  if (lua_toboolean(L, 1)) lua_gc(L, LUA_GCCOLLECT);
  zoe_mem_get(&m);
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, m.live + m.cached + m.arena);
  lua_setfield(L, -2, "current");
  lua_pushinteger(L, m.arena);
  lua_setfield(L, -2, "arena");
  lua_pushinteger(L, m.peak);
  lua_setfield(L, -2, "peak");
  lua_pushinteger(L, m.live);
  lua_setfield(L, -2, "live");
  lua_pushinteger(L, m.cached);
  lua_setfield(L, -2, "cached");
  lua_pushinteger(L, m.mapped);
  lua_setfield(L, -2, "mapped");
  lua_pushinteger(L, m.allocs);
  lua_setfield(L, -2, "allocs");
  lua_pushinteger(L, m.reuses);
  lua_setfield(L, -2, "reuses");
  return 1;
}

static int z_mem_reset_peak(lua_State *L) {
  (void)L;
  zoe_mem_reset_peak();
  return 0;
}

static int z_mem_trim(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  zoe_mem_trim();
  return 0;
}

static int z_threads(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 256, 1, "thread count must be 1..256");
    zoe_pool_set_threads((int)n);
  }
  lua_pushinteger(L, zoe_pool_threads());
  return 1;
}

/*
** zoe.gemm_backend([name]): the backend that runs products with bf16 weights,
** "zoe-avx512bf16" or "openblas". A name ("auto" restores the choice by CPU and
** ZOE_PRECISION) runs every product on that backend, for tests and comparisons.
*/
static int z_gemm_backend(lua_State *L) {
  static const char *const names[] = {"auto", "openblas", "zoe-avx512bf16", NULL};
  static const zoe_gemm_kind kinds[] = {ZOE_GEMM_AUTO, ZOE_GEMM_OPENBLAS, ZOE_GEMM_BF16};
  if (!lua_isnoneornil(L, 1)) zoe_gemm_force(kinds[luaL_checkoption(L, 1, NULL, names)]);
  lua_pushstring(L, zoe_gemm_backend());
  return 1;
}

/*
** zoe.precision([mode]): "f32", "auto" (the default: bf16 weights run in bf16, f32
** products in f32) or "bf16" (f32 products in bf16 too). Returns the precision in
** force and the previous request. ZOE_PRECISION=f32 keeps f32 whatever is asked.
*/
static int z_precision(lua_State *L) {
  static const char *const modes[] = {"f32", "auto", "bf16", NULL};
  const char *mode = lua_isnoneornil(L, 1) ? NULL : modes[luaL_checkoption(L, 1, NULL, modes)];
  const char *old = zoe_gemm_set_precision(mode);
  lua_pushstring(L, zoe_gemm_precision());
  lua_pushstring(L, old);
  return 2;
}

static const luaL_Reg core_funcs[] = {
  {"gemm_backend", z_gemm_backend},
  {"precision", z_precision},
  {"mem", z_mem},
  {"mem_reset_peak", z_mem_reset_peak},
  {"mem_trim", z_mem_trim},
  {"threads", z_threads},
  {NULL, NULL},
};

#ifndef ZOE_VERSION
#define ZOE_VERSION "0.1.0"
#endif

int luaopen_zoe_core(lua_State *L);
int luaopen_zoe(lua_State *L);
int lz_open_video(lua_State *L);
int lz_open_image(lua_State *L);
int lz_open_json(lua_State *L);
void lz_hash_functions(lua_State *L);
void lz_pages_functions(lua_State *L);

int luaopen_zoe_core(lua_State *L) {
  zoe_pool_init(0);
  luaL_newlib(L, core_funcs);
  lua_pushliteral(L, ZOE_VERSION);
  lua_setfield(L, -2, "version");
  lz_weights_functions(L);
  lz_tokenizer_functions(L);
  lz_hash_functions(L);
  lz_pages_functions(L);
  lz_open_tensor(L);
  lua_setfield(L, -2, "tensor");
  lz_open_loop(L);
  lz_open_nn(L);
  lua_setfield(L, -2, "nn");
  lz_open_video(L); /* lvideo.c */
  lua_setfield(L, -2, "video");
  lz_open_image(L);
  lua_setfield(L, -2, "image");
  lz_open_json(L);
  lua_setfield(L, -2, "json");
  return 1;
}

/*
** Stock lua5.4 loading zoe.so as "zoe": hand over to the Lua library
** (zoe/init.lua, which requires "zoe.core" from this same file) when it is on
** package.path, else give the C core alone.
*/
int luaopen_zoe(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "zoe.init");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) return 1;
  lua_pop(L, 1);
  luaL_requiref(L, "zoe.core", luaopen_zoe_core, 0);
  return 1;
}
