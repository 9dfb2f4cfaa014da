/*
** llora.c: the C half of zoe.lora (lua/zoe/lora.lua), in the zoe table:
**   zoe.lora_merge(w, {{A, B, scale}, ...}, {{D, scale}, ...})  -> a new f32 weight (private copy)
**   zoe.lora_lowrank(w, {{A, B, scale}, ...})                    -> w carrying the low-rank terms
**   zoe.weight_scaled(w, scale)                                   -> w whose products are scaled (scaled fp8)
*/
#include <stdlib.h>

#include "../nn/nn.h"
#include "lzlib.h"
#include "lzaux.h"

#define MAX_TERMS 64

/* terms {{t1, t2?, scale}, ...} at 'arg': tensors into x (and y when pairs), scales into s */
static int terms(lua_State *L, int arg, bool pairs, const zoe_tensor **x, const zoe_tensor **y, double *s) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  int n = (int)luaL_len(L, arg);
  luaL_argcheck(L, n <= MAX_TERMS, arg, "too many terms");
  for (int i = 0; i < n; i++) {
    lua_geti(L, arg, i + 1);
    luaL_argcheck(L, lua_istable(L, -1), arg, pairs ? "each term is {A, B, scale}" : "each term is {D, scale}");
    lua_geti(L, -1, 1);
    x[i] = lz_checktensor(L, -1);
    if (pairs) {
      lua_geti(L, -2, 2);
      y[i] = lz_checktensor(L, -1);
    }
    lua_geti(L, -2 - pairs, pairs ? 3 : 2);
    s[i] = luaL_checknumber(L, -1);
    lua_pop(L, 3 + pairs); /* the tensors stay alive in the argument's table */
  }
  return n;
}

static int z_lora_merge(lua_State *L) {
  zoe_tensor *w = lz_checktensor(L, 1);
  const zoe_tensor *a[MAX_TERMS], *b[MAX_TERMS], *d[MAX_TERMS];
  double s[MAX_TERMS], ds[MAX_TERMS];
  int n = terms(L, 2, true, a, b, s), nd = terms(L, 3, false, d, NULL, ds);
  zoe_err e = {0};
  return lz_result(L, zoe_lora_merge(w, n, a, b, s, nd, d, ds, &e), &e);
}

static int z_lora_lowrank(lua_State *L) {
  zoe_tensor *w = lz_checktensor(L, 1);
  const zoe_tensor *a[MAX_TERMS], *b[MAX_TERMS];
  double s[MAX_TERMS];
  int n = terms(L, 2, true, a, b, s);
  zoe_err e = {0};
  return lz_result(L, zoe_lora_lowrank(w, n, a, b, s, &e), &e);
}

static int z_weight_scaled(lua_State *L) {
  zoe_tensor *w = lz_checktensor(L, 1);
  double s = luaL_checknumber(L, 2);
  zoe_err e = {0};
  return lz_result(L, zoe_weight_scaled(w, s, &e), &e);
}

int lz_open_lora(lua_State *L) {
  static const luaL_Reg funcs[] = {{"lora_merge", z_lora_merge}, {"lora_lowrank", z_lora_lowrank},
                                   {"weight_scaled", z_weight_scaled}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
