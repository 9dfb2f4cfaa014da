/*
** lhash.c: zoe.hash(string) and zoe.hash_file(path): 16 hex digits of XXH64.
** Files are hashed as a task, so a big checkpoint is read off the loop thread.
*/
#include <string.h>

#include "../io/hash.h"
#include "ltask.h"
#include "lzlib.h"

static int h_string(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char hex[17];
  zoe_hash_hex(zoe_hash64(s, n, (uint64_t)luaL_optinteger(L, 2, 0)), hex);
  lua_pushstring(L, hex);
  return 1;
}

typedef struct hash_task {
  lz_task base;
  uint64_t digest;
  char path[]; /* the task's userdata holds the copy */
} hash_task;

/* On the compute thread: the digest goes into the task; no tensor results. */
static int run_hash(lz_task *t, zoe_err *e) {
  hash_task *h = (hash_task *)t;
  return zoe_hash_file(h->path, &h->digest, e);
}

/* Runs the task given as its argument (which keeps it on this frame's stack). */
static int finish(lua_State *L) { return lz_task_finish(L, lua_touserdata(L, 1)); }

/* After the task, maybe resumed from the loop: the task is still on h_file's stack. */
static int hash_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  char hex[17];
  zoe_hash_hex(((hash_task *)ctx)->digest, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int h_file(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  lua_settop(L, 1);
  hash_task *h = (hash_task *)lz_task_new(L, sizeof(hash_task) + n + 1, run_hash, "hash_file");
  memcpy(h->path, path, n + 1);
  h->base.cost = 1e12; /* reading a file: always worth taking off the loop thread */
  lua_pushcfunction(L, finish);
  lua_pushvalue(L, 2);
  lua_callk(L, 1, 0, (lua_KContext)h, hash_done);
  return hash_done(L, LUA_OK, (lua_KContext)h);
}

int lz_open_hash(lua_State *L) {
  static const luaL_Reg funcs[] = {{"hash", h_string}, {"hash_file", h_file}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
