/*
** lpages.c: zoe.drop_pages(tensor or table of tensors): give the memory under weights
** mapped from a file back to the kernel once they are used (a 11 GB text encoder run
** layer by layer need not stay resident). Other tensors are left alone. Returns how
** many tensors had pages dropped.
*/
#include "../io/mapfile.h"
#include "lzaux.h"
#include "lzlib.h"

static int drop(lua_State *L, int idx) {
  zoe_tensor *t = lz_totensor(L, idx);
  return t && zoe_map_drop_pages(t) == 1;
}

static int z_drop_pages(lua_State *L) {
  int n = 0;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      n += drop(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lz_checktensor(L, 1);
    n = drop(L, 1);
  }
  lua_pushinteger(L, n);
  return 1;
}

int lz_open_pages(lua_State *L) {
  lua_pushcfunction(L, z_drop_pages);
  lua_setfield(L, -2, "drop_pages");
  return 0;
}
