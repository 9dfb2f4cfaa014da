/*
** lsandbox.c: zoe.memory_limited(bytes, fn, ...): call fn(...) with the Lua state's
** allocations capped at 'bytes' more than when the call began, and return what it
** returns (or raise its error). A data-only storyboard runs under it: a count hook
** cannot stop one `s = s .. s` doubling past gigabytes between two of its looks, and
** an allocator can. At the cap the allocator says no, Lua collects once and raises
** "not enough memory" inside fn, which unwinds it. Nothing else runs while fn does
** (it is called, not resumed by the loop), bar finalizers, which share the cap.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "lzlib.h"

typedef struct cap {
  lua_Alloc real;
  void *ud;
  int64_t grown, limit; /* bytes allocated (net) since the call began; the cap */
} cap;

static void *capped(void *ud, void *ptr, size_t osize, size_t nsize) {
  cap *c = ud;
  int64_t old = ptr ? (int64_t)osize : 0;
  if (nsize > 0 && (int64_t)nsize > old && c->grown + ((int64_t)nsize - old) > c->limit) return NULL;
  void *p = c->real(c->ud, ptr, osize, nsize);
  if (p || nsize == 0) c->grown += (int64_t)nsize - old;
  return p;
}

static int restore_and_finish(lua_State *L, cap *c, int status, int base) {
  lua_setallocf(L, c->real, c->ud);
  if (status != LUA_OK) { /* the call's own allocator may be capped too: the message keeps it */
    if (status == LUA_ERRMEM && c->limit >= (1 << 20))
      lua_pushfstring(L, "using more than %d MB of memory", (int)(c->limit >> 20));
    else if (status == LUA_ERRMEM)
      lua_pushfstring(L, "using more than %I bytes of memory", (lua_Integer)c->limit);
    return lua_error(L);
  }
  return lua_gettop(L) - base;
}

static int z_memory_limited(lua_State *L) {
  lua_Integer limit = luaL_checkinteger(L, 1);
  luaL_argcheck(L, limit > 0, 1, "a positive number of bytes");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  cap c;
  c.real = lua_getallocf(L, &c.ud);
  c.grown = 0;
  c.limit = limit;
  int base = 1; /* fn's results replace fn and its arguments, above the limit */
  lua_setallocf(L, capped, &c);
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  return restore_and_finish(L, &c, status, base);
}

int lz_open_sandbox(lua_State *L) {
  lua_pushcfunction(L, z_memory_limited);
  lua_setfield(L, -2, "memory_limited");
  return 0;
}
