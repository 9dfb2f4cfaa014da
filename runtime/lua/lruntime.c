/*
** lruntime.c: the runtime's own settings and counters in the zoe table: version,
** mem, mem_reset_peak, mem_trim, threads, gemm_backend, precision.
*/
#include <lauxlib.h>

#include "../core/alloc.h"
#include "../core/pool.h"
#include "../ops/gemm.h"
#include "lzlib.h"

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
** Second result: the path of quantized weights, "zoe-avx512vnni" or "widened".
*/
static int z_gemm_backend(lua_State *L) {
  static const char *const names[] = {"auto", "openblas", "zoe-avx512bf16", NULL};
  static const zoe_gemm_kind kinds[] = {ZOE_GEMM_AUTO, ZOE_GEMM_OPENBLAS, ZOE_GEMM_BF16};
  if (!lua_isnoneornil(L, 1)) zoe_gemm_force(kinds[luaL_checkoption(L, 1, NULL, names)]);
  lua_pushstring(L, zoe_gemm_backend());
  lua_pushstring(L, zoe_gemm_quant_backend());
  return 2;
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

int lz_open_runtime(lua_State *L) {
  luaL_setfuncs(L, core_funcs, 0);
  lua_pushstring(L, zoe_version());
  lua_setfield(L, -2, "version");
  return 0;
}
