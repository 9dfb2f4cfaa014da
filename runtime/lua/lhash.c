/*
** lhash.c: zoe.hash(string) and zoe.hash_file(path): 16 hex digits of XXH64.
** Files are hashed as a task, so a big checkpoint is read off the loop thread.
*/
#include <stdlib.h>
#include <string.h>

#include "../io/hash.h"
#include "lzoe.h"

static int h_string(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char hex[17];
  zoe_hash_hex(zoe_hash64(s, n, (uint64_t)luaL_optinteger(L, 2, 0)), hex);
  lua_pushstring(L, hex);
  return 1;
}

static void free_path(void *p) { free(p); }

/* On the compute thread: the digest goes into lv[0]; no tensor results. */
static int run_hash(lz_task *t, zoe_err *e) {
  uint64_t h;
  int rc = zoe_hash_file(t->extra, &h, e);
  if (rc) return rc;
  t->lv[0] = (int64_t)h;
  t->nres = 0;
  return 0;
}

/* Runs the task given as its argument (which keeps it on this frame's stack). */
static int finish(lua_State *L) { return lz_task_finish(L, lua_touserdata(L, 1)); }

/* After the task, maybe resumed from the loop: the task is still on h_file's stack. */
static int hash_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  char hex[17];
  zoe_hash_hex((uint64_t)((lz_task *)ctx)->lv[0], hex);
  lua_pushstring(L, hex);
  return 1;
}

static int h_file(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  lz_task *t = lz_task_new(L, run_hash, "hash_file", 0);
  char *copy = malloc(n + 1);
  if (!copy) return luaL_error(L, "hash_file: out of memory");
  memcpy(copy, path, n + 1);
  t->extra = copy;
  t->free_extra = free_path;
  t->cost = 1e12; /* reading a file: always worth taking off the loop thread */
  lua_pushcfunction(L, finish);
  lua_pushvalue(L, 2);
  lua_callk(L, 1, 0, (lua_KContext)t, hash_done);
  return hash_done(L, LUA_OK, (lua_KContext)t);
}

void lz_hash_functions(lua_State *L);

/* adds hash and hash_file to the table on top */
void lz_hash_functions(lua_State *L) {
  static const luaL_Reg funcs[] = {{"hash", h_string}, {"hash_file", h_file}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}
