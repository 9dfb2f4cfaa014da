/*
** ltokenizer.c: zoe.tokenizer, Hugging Face tokenizer.json files and sentencepiece
** models (spiece.model, encoded as T5Tokenizer does) from Lua.
**   local tok = zoe.tokenizer("tokenizer.json")   -- or "spiece.model"
**   local ids, mask = tok:encode("a red circle", {length = 512})  -- i32 tensors [512]
**   local ids, mask = tok:encode({"a", "b"}, {length = 16})        -- [2, 16]
**   tok:decode(ids)  tok:vocab_size()  tok:token_to_id("</s>")  tok:id_to_token(1)
** Token ids are values (0-based, as in the file), not indices. Options of encode:
** length (pad and truncate to it; a batch pads to its longest without it),
** add_special_tokens (default true: T5 appends </s>), truncate (default true; false
** makes a text longer than length an error). decode skips special tokens unless
** {skip_special_tokens = false}.
*/
#include <stdlib.h>
#include <string.h>

#include "../io/tokenizer.h"
#include "lzaux.h"
#include "lzlib.h"

#define LZ_TOKENIZER "zoe.Tokenizer"

typedef struct tbox {
  zoe_tokenizer *t;
} tbox;

static zoe_tokenizer *checktok(lua_State *L) {
  tbox *b = luaL_checkudata(L, 1, LZ_TOKENIZER);
  if (!b->t) luaL_argerror(L, 1, "tokenizer was closed");
  return b->t;
}

static int z_tokenizer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  tbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  luaL_setmetatable(L, LZ_TOKENIZER);
  zoe_err e = {0};
  b->t = zoe_tokenizer_load(path, &e);
  if (!b->t) return lz_error(L, &e);
  return 1;
}

/* One encoding, kept in a userdata so a Lua error cannot leak it. */
typedef struct enc {
  int32_t *ids;
  size_t n;
} enc;

static int enc_gc(lua_State *L) {
  enc *v = lua_touserdata(L, 1);
  for (size_t i = 0; v && i < lua_rawlen(L, 1) / sizeof *v; i++) free(v[i].ids);
  return 0;
}

static int t_encode(lua_State *L) {
  zoe_tokenizer *t = checktok(L);
  int batch = lua_istable(L, 2);
  if (!batch) luaL_checkstring(L, 2);
  static const char *const known[] = {"length", "add_special_tokens", "truncate", NULL};
  lz_opts o = lz_opts_check(L, 3, "encode", known);
  long length = -1;
  if (lz_opt_has(&o, "length")) {
    lua_Integer v = lz_opt_integer(&o, "length", 0);
    if (v < 1 || v > 1 << 24) luaL_error(L, "encode: length must be 1..16777216 (got %d)", (int)v);
    length = (long)v;
  }
  int special = lz_opt_boolean(&o, "add_special_tokens", true), truncate = lz_opt_boolean(&o, "truncate", true);
  size_t count = batch ? lua_rawlen(L, 2) : 1;
  if (batch && count == 0) luaL_argerror(L, 2, "empty table of texts");
  enc *v = lua_newuserdatauv(L, count * sizeof *v, 0);
  memset(v, 0, count * sizeof *v);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, enc_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  size_t longest = 0;
  for (size_t i = 0; i < count; i++) {
    size_t len;
    const char *text;
    if (batch) {
      lua_rawgeti(L, 2, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "encode: text %d is a %s, not a string", (int)i + 1, luaL_typename(L, -1));
      text = lua_tolstring(L, -1, &len);
      lua_pop(L, 1); /* the table keeps the string */
    } else {
      text = lua_tolstring(L, 2, &len);
    }
    zoe_err e = {0};
    long limit = length >= 0 && truncate ? length : -1;
    if (zoe_tokenizer_encode(t, text, len, special, limit, &v[i].ids, &v[i].n, &e)) return lz_error(L, &e);
    if (length >= 0 && v[i].n > (size_t)length)
      luaL_error(L, "encode: text %d gives %d tokens, more than length %d (truncate = false)", (int)i + 1, (int)v[i].n,
                 (int)length);
    if (v[i].n > longest) longest = v[i].n;
  }
  int64_t width = length >= 0 ? length : (int64_t)longest, shape[2] = {(int64_t)count, width};
  zoe_err e = {0};
  zoe_tensor *ids = zoe_empty(ZOE_I32, batch ? 2 : 1, batch ? shape : shape + 1, &e);
  if (!ids) return lz_error(L, &e);
  lz_pushtensor(L, ids);
  zoe_tensor *mask = zoe_empty(ZOE_I32, batch ? 2 : 1, batch ? shape : shape + 1, &e);
  if (!mask) return lz_error(L, &e);
  lz_pushtensor(L, mask);
  int32_t pad = zoe_tokenizer_pad_id(t);
  int left = zoe_tokenizer_pad_left(t);
  for (size_t i = 0; i < count; i++) {
    int32_t *row = (int32_t *)zoe_data(ids) + i * (size_t)width, *mrow = (int32_t *)zoe_data(mask) + i * (size_t)width;
    size_t npad = (size_t)width - v[i].n, at = left ? npad : 0;
    for (size_t k = 0; k < (size_t)width; k++) {
      row[k] = pad;
      mrow[k] = 0;
    }
    for (size_t k = 0; k < v[i].n; k++) {
      row[at + k] = v[i].ids[k];
      mrow[at + k] = 1;
    }
  }
  return 2;
}

/* Decode one row of ids. */
static void push_decoded(lua_State *L, zoe_tokenizer *t, const int32_t *ids, size_t n, int skip) {
  zoe_err e = {0};
  size_t len;
  char *s = zoe_tokenizer_decode(t, ids, n, skip, &len, &e);
  if (!s) lz_error(L, &e);
  lua_pushlstring(L, s, len); /* may raise on memory: then 's' leaks, as any OOM mid-call */
  free(s);
}

static int t_decode(lua_State *L) {
  zoe_tokenizer *t = checktok(L);
  static const char *const known[] = {"skip_special_tokens", NULL};
  if (lua_gettop(L) >= 3 && lz_totensor(L, 3)) { /* the mask beside encode's ids: decode(encode(text)) */
    lua_pushnil(L);
    lua_replace(L, 3);
  }
  lz_opts o = lz_opts_check(L, 3, "decode", known);
  int skip = lz_opt_boolean(&o, "skip_special_tokens", true);
  zoe_tensor *x = lz_totensor(L, 2);
  if (!x) {
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_rawlen(L, 2);
    int32_t *ids = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ids, 0);
    for (size_t i = 0; i < n; i++) {
      lua_rawgeti(L, 2, (lua_Integer)i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok || v < INT32_MIN || v > INT32_MAX) luaL_error(L, "decode: element %d is not an integer id", (int)i + 1);
      ids[i] = (int32_t)v;
      lua_pop(L, 1);
    }
    push_decoded(L, t, ids, n, skip);
    return 1;
  }
  if (x->ndim != 1 && x->ndim != 2) luaL_argerror(L, 2, "ids must be a 1-D or 2-D tensor");
  zoe_err e = {0};
  zoe_tensor *c = zoe_to_dtype(x, ZOE_I32, &e); /* contiguous i32 */
  if (!c) return lz_error(L, &e);
  lz_pushtensor(L, c);
  int64_t rows = x->ndim == 2 ? x->shape[0] : 1, cols = x->shape[x->ndim - 1];
  if (x->ndim == 1) {
    push_decoded(L, t, zoe_data(c), (size_t)cols, skip);
    return 1;
  }
  lua_createtable(L, (int)rows, 0);
  for (int64_t r = 0; r < rows; r++) {
    push_decoded(L, t, (const int32_t *)zoe_data(c) + r * cols, (size_t)cols, skip);
    lua_rawseti(L, -2, r + 1);
  }
  return 1;
}

static int t_vocab_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)zoe_tokenizer_vocab_size(checktok(L)));
  return 1;
}

static int t_token_to_id(lua_State *L) {
  zoe_tokenizer *t = checktok(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int32_t id = zoe_tokenizer_token_to_id(t, s, len);
  if (id < 0) lua_pushnil(L);
  else lua_pushinteger(L, id);
  return 1;
}

static int t_id_to_token(lua_State *L) {
  zoe_tokenizer *t = checktok(L);
  lua_Integer id = luaL_checkinteger(L, 2);
  size_t len;
  const char *s = id >= INT32_MIN && id <= INT32_MAX ? zoe_tokenizer_id_to_token(t, (int32_t)id, &len) : NULL;
  if (s) lua_pushlstring(L, s, len);
  else lua_pushnil(L);
  return 1;
}

static int t_pad_id(lua_State *L) {
  lua_pushinteger(L, zoe_tokenizer_pad_id(checktok(L)));
  return 1;
}

static int t_close(lua_State *L) {
  tbox *b = luaL_checkudata(L, 1, LZ_TOKENIZER);
  zoe_tokenizer_free(b->t);
  b->t = NULL;
  return 0;
}

static int t_tostring(lua_State *L) {
  tbox *b = luaL_checkudata(L, 1, LZ_TOKENIZER);
  if (b->t) lua_pushfstring(L, "zoe.Tokenizer(%d tokens)", (int)zoe_tokenizer_vocab_size(b->t));
  else lua_pushliteral(L, "zoe.Tokenizer (closed)");
  return 1;
}

static const luaL_Reg methods[] = {
  {"encode", t_encode},           {"decode", t_decode},           {"vocab_size", t_vocab_size},
  {"token_to_id", t_token_to_id}, {"id_to_token", t_id_to_token}, {"pad_id", t_pad_id},
  {"close", t_close},             {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
  {"__gc", t_close}, {"__close", t_close}, {"__tostring", t_tostring}, {"__index", NULL}, {NULL, NULL},
};

int lz_open_tokenizer(lua_State *L) {
  if (luaL_newmetatable(L, LZ_TOKENIZER)) {
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, z_tokenizer);
  lua_setfield(L, -2, "tokenizer");
  return 0;
}
