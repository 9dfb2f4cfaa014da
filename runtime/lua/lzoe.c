/*
** lzoe.c: the zoe module's C core, assembled from its parts' openers (lzlib.h).
** luaopen_zoe_core returns the C half of the library; lua/zoe/init.lua builds
** the rest on top of it. luaopen_zoe lets stock lua5.4 load zoe.so directly.
*/
#include <lauxlib.h>

#include "../core/pool.h"
#include "lzlib.h"

/* zoe.NAME for a module; NULL: the opener fills the zoe table itself */
static const struct {
  const char *name;
  lua_CFunction open;
} parts[] = {
  {NULL, lz_open_runtime},
  {NULL, lz_open_weights},
  {NULL, lz_open_gguf},
  {NULL, lz_open_lora},
  {NULL, lz_open_tokenizer},
  {NULL, lz_open_hash},
  {NULL, lz_open_pages},
  {NULL, lz_open_sandbox},
  {"tensor", lz_open_tensor},
  {NULL, lz_open_loop},
  {NULL, lz_open_job},
  {NULL, lz_open_offload},
  {NULL, lz_open_progress},
  {NULL, lz_open_coroutines},
  {"nn", lz_open_nn},
  {"video", lz_open_video},
  {"image", lz_open_image},
  {"json", lz_open_json},
  {"hiredis", lz_open_hiredis},
  {"http", lz_open_http},
};

int luaopen_zoe_core(lua_State *L) {
  zoe_pool_init(0);
  lua_newtable(L);
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    parts[i].open(L);
    if (parts[i].name) lua_setfield(L, -2, parts[i].name);
  }
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
