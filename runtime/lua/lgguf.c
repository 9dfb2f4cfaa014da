/*
** lgguf.c: zoe.gguf_writer, a GGUF file written tensor by tensor (runtime/io/gguf.h).
**   local w = zoe.gguf_writer(path, {{"general.architecture", "str", "wan"}, ...},
**                             {{name = "x", dtype = "q8_0", shape = {1536, 1536}}, ...})
**   w:write(tensor)   -- the next announced tensor, converted by the caller
**   w:close()         -- the file appears whole; an unclosed writer leaves nothing (__gc, __close)
** Metadata types: "u32", "i32", "f32", "bool", "str".
*/
#include <stdlib.h>
#include <string.h>

#include "../io/gguf.h"
#include "lzlib.h"
#include "lzaux.h"

#define LZ_GGUF_WRITER "zoe.GGUFWriter"

typedef struct wbox {
  zoe_gguf_writer *w;
} wbox;

/* the infos and metadata read from Lua tables live in a userdata, so an error frees them */
typedef struct spec {
  size_t nkv, n;
  zoe_gguf_kv *kv;
  zoe_gguf_tensor_info *info;
} spec;

static int spec_gc(lua_State *L) {
  spec *s = lua_touserdata(L, 1);
  free(s->kv);
  free(s->info);
  s->kv = NULL;
  s->info = NULL;
  return 0;
}

static int g_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  spec *s = lua_newuserdatauv(L, sizeof *s, 0); /* index 4 */
  memset(s, 0, sizeof *s);
  lua_newtable(L);
  lua_pushcfunction(L, spec_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  s->nkv = (size_t)luaL_len(L, 2);
  s->n = (size_t)luaL_len(L, 3);
  s->kv = calloc(s->nkv ? s->nkv : 1, sizeof *s->kv);
  s->info = calloc(s->n ? s->n : 1, sizeof *s->info);
  if (!s->kv || !s->info) return luaL_error(L, "gguf_writer: out of memory");
  static const char *const types[] = {"u32", "i32", "f32", "bool", "str", NULL};
  static const int codes[] = {4, 5, 6, 7, 8};
  for (size_t i = 0; i < s->nkv; i++) {
    lua_geti(L, 2, (lua_Integer)i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 2, "each metadata entry is {key, type, value}");
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    lua_geti(L, -3, 3);
    zoe_gguf_kv *kv = &s->kv[i];
    kv->key = luaL_checkstring(L, -3); /* the strings stay alive in argument 2 */
    kv->type = codes[luaL_checkoption(L, -2, NULL, types)];
    if (kv->type == 8) kv->str = luaL_checkstring(L, -1);
    else if (kv->type == 6) kv->real = luaL_checknumber(L, -1);
    else if (kv->type == 7) kv->num = lua_toboolean(L, -1);
    else kv->num = luaL_checkinteger(L, -1);
    lua_pop(L, 4);
  }
  static const char *const tensor_keys[] = {"name", "dtype", "shape", NULL};
  for (size_t i = 0; i < s->n; i++) {
    lua_geti(L, 3, (lua_Integer)i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 3, "each tensor is {name =, dtype =, shape =}");
    lz_opts o = lz_opts_check(L, -1, "gguf_writer: a tensor", tensor_keys);
    zoe_gguf_tensor_info *t = &s->info[i];
    t->name = lz_opt_string(&o, "name", NULL); /* the strings stay alive in argument 3 */
    const char *dtype = lz_opt_string(&o, "dtype", NULL);
    if (!t->name || !dtype) return luaL_error(L, "gguf_writer: tensor %d needs a name and a dtype", (int)i + 1);
    if (zoe_dtype_from_name(dtype, &t->dtype)) return luaL_error(L, "gguf_writer: unknown dtype '%s'", dtype);
    t->ndim = lz_opt_ints(&o, "shape", t->shape, 1, ZOE_MAX_DIMS);
    if (!t->ndim) return luaL_error(L, "gguf_writer: tensor '%s' needs a shape", t->name);
    lua_pop(L, 1);
  }
  wbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->w = NULL;
  luaL_setmetatable(L, LZ_GGUF_WRITER);
  zoe_err e = {0};
  b->w = zoe_gguf_writer_open(path, s->nkv, s->kv, s->n, s->info, &e);
  if (!b->w) return lz_error(L, &e);
  return 1;
}

static zoe_gguf_writer *checkwriter(lua_State *L) {
  wbox *b = luaL_checkudata(L, 1, LZ_GGUF_WRITER);
  if (!b->w) luaL_argerror(L, 1, "the writer was closed");
  return b->w;
}

static int w_write(lua_State *L) {
  zoe_gguf_writer *w = checkwriter(L);
  zoe_err e = {0};
  if (zoe_gguf_writer_put(w, lz_checktensor(L, 2), &e)) return lz_error(L, &e);
  return 0;
}

static int w_close(lua_State *L) {
  zoe_gguf_writer *w = checkwriter(L);
  wbox *b = lua_touserdata(L, 1);
  b->w = NULL;
  zoe_err e = {0};
  if (zoe_gguf_writer_close(w, &e)) return lz_error(L, &e);
  return 0;
}

static int w_gc(lua_State *L) {
  wbox *b = luaL_checkudata(L, 1, LZ_GGUF_WRITER);
  zoe_gguf_writer_abort(b->w);
  b->w = NULL;
  return 0;
}

int lz_open_gguf(lua_State *L) {
  static const luaL_Reg methods[] = {{"write", w_write}, {"close", w_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, LZ_GGUF_WRITER)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, w_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, w_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, g_writer);
  lua_setfield(L, -2, "gguf_writer");
  return 0;
}
