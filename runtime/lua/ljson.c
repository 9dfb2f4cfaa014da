/*
** ljson.c: zoe.json.decode(text) and zoe.json.encode(value, {indent = true}),
** on Debian's cJSON. Objects become tables with string keys, arrays become
** sequences (1-based); JSON null becomes zoe.json.null. Encoding writes a table
** with keys 1..n (and no others) as an array, keys in sorted order otherwise,
** so the same table always gives the same text (records are hashed).
*/
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lzaux.h"
#include "lzlib.h"

#define MAX_DEPTH 200

static void push_value(lua_State *L, const cJSON *v, int depth) {
  luaL_checkstack(L, 4, "json: nested too deeply");
  if (depth > MAX_DEPTH) luaL_error(L, "json: nested more than %d levels", MAX_DEPTH);
  if (cJSON_IsNull(v)) {
    lua_getfield(L, LUA_REGISTRYINDEX, "zoe.json.null");
  } else if (cJSON_IsBool(v)) {
    lua_pushboolean(L, cJSON_IsTrue(v));
  } else if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)d);
    else lua_pushnumber(L, d);
  } else if (cJSON_IsString(v)) {
    lua_pushstring(L, v->valuestring);
  } else if (cJSON_IsArray(v)) {
    lua_createtable(L, cJSON_GetArraySize(v), 0);
    int i = 1;
    for (const cJSON *c = v->child; c; c = c->next) {
      push_value(L, c, depth + 1);
      lua_rawseti(L, -2, i++);
    }
  } else {
    lua_createtable(L, 0, cJSON_GetArraySize(v));
    for (const cJSON *c = v->child; c; c = c->next) {
      push_value(L, c, depth + 1);
      lua_setfield(L, -2, c->string);
    }
  }
}

/* cJSON trees live in a userdata box so a Lua error while converting frees them */
typedef struct json_box {
  cJSON *root;
} json_box;

static int box_gc(lua_State *L) {
  json_box *b = lua_touserdata(L, 1);
  if (b->root) cJSON_Delete(b->root);
  b->root = NULL;
  return 0;
}

static json_box *new_box(lua_State *L) {
  json_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->root = NULL;
  if (luaL_newmetatable(L, "zoe.json.box")) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

static int j_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  json_box *b = new_box(L);
  const char *end = NULL;
  b->root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  if (!b->root) {
    size_t at = end && end >= s ? (size_t)(end - s) : 0;
    return luaL_error(L, "json: malformed input near byte %d", (int)at + 1);
  }
  push_value(L, b->root, 0);
  return 1;
}

/* ---- encode ---- */

static int is_array(lua_State *L, int idx, lua_Integer *len) {
  lua_Integer n = 0, max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    n++;
  }
  *len = n;
  return n == max;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
** cJSON prints 15 digits when they read back within DBL_EPSILON of the value, which
** loses the last bits (0.1 + 0.2 comes back as 0.3). A recipe's sigmas and scales must
** come back exactly (a replay makes the same bytes only then), so a number is written
** with the fewest digits, 15 to 17, that read back equal.
*/
static cJSON *number_node(double d) {
  if (d == floor(d) && fabs(d) < 1e15) return cJSON_CreateNumber(d);
  char buf[40];
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, d);
    if (strtod(buf, NULL) == d) break;
  }
  return cJSON_CreateRaw(buf);
}

static cJSON *to_json(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  if (depth > MAX_DEPTH) luaL_error(L, "json: nested more than %d levels (a cycle?)", MAX_DEPTH);
  lua_getfield(L, LUA_REGISTRYINDEX, "zoe.json.null");
  int is_null = lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  if (is_null) return cJSON_CreateNull();
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, idx);
      if (!isfinite(d)) luaL_error(L, "json: cannot encode %f", d);
      return number_node(d);
    }
    case LUA_TSTRING: return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TTABLE: break;
    default:
      luaL_error(L, "json: cannot encode a %s", luaL_typename(L, idx));
      return NULL;
  }
  luaL_checkstack(L, 6, "json: nested too deeply");
  lua_Integer n;
  json_box *b = new_box(L); /* holds the node being built while we may raise */
  if (is_array(L, idx, &n) && (n > 0 || lua_rawlen(L, idx) == 0)) {
    lua_getmetatable(L, idx) ? (lua_getfield(L, -1, "__jsontype"), lua_remove(L, -2)) : lua_pushnil(L);
    bool as_object = n == 0 && lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "object") == 0;
    lua_pop(L, 1);
    b->root = as_object ? cJSON_CreateObject() : cJSON_CreateArray();
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, idx, i);
      cJSON_AddItemToArray(b->root, to_json(L, -1, depth + 1));
      lua_pop(L, 1);
    }
  } else {
    b->root = cJSON_CreateObject();
    /* sorted keys: the same table gives the same text */
    lua_newtable(L);
    int keys = lua_gettop(L);
    lua_Integer nk = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING && !lua_isinteger(L, -1))
        luaL_error(L, "json: object keys must be strings, got a %s", luaL_typename(L, -1));
      lua_pushvalue(L, -1);
      if (lua_isinteger(L, -1)) lua_tostring(L, -1);
      lua_rawseti(L, keys, ++nk);
    }
    const char **names = lua_newuserdatauv(L, (size_t)(nk ? nk : 1) * sizeof *names, 0);
    for (lua_Integer i = 1; i <= nk; i++) {
      lua_rawgeti(L, keys, i);
      names[i - 1] = lua_tostring(L, -1);
      lua_pop(L, 1); /* the string stays alive in 'keys' */
    }
    qsort(names, (size_t)nk, sizeof *names, cmp_str);
    for (lua_Integer i = 0; i < nk; i++) {
      lua_getfield(L, idx, names[i]);
      if (lua_isnil(L, -1)) { /* integer key written as a string */
        lua_pop(L, 1);
        lua_Integer k = strtoll(names[i], NULL, 10);
        lua_geti(L, idx, k);
      }
      cJSON_AddItemToObject(b->root, names[i], to_json(L, -1, depth + 1));
      lua_pop(L, 1);
    }
    lua_pop(L, 2); /* names, keys */
  }
  cJSON *r = b->root;
  b->root = NULL;
  lua_pop(L, 1); /* box */
  return r;
}

static int j_encode(lua_State *L) {
  luaL_checkany(L, 1);
  static const char *const known[] = {"indent", NULL};
  lz_opts o = lz_opts_check(L, 2, "json.encode", known);
  bool indent = lz_opt_boolean(&o, "indent", false);
  json_box *b = new_box(L);
  b->root = to_json(L, 1, 0);
  char *s = indent ? cJSON_Print(b->root) : cJSON_PrintUnformatted(b->root);
  if (!s) return luaL_error(L, "json: out of memory");
  lua_pushstring(L, s);
  cJSON_free(s);
  return 1;
}


int lz_open_json(lua_State *L) {
  static const luaL_Reg funcs[] = {{"decode", j_decode}, {"encode", j_encode}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  lua_newtable(L); /* json.null: a unique value */
  lua_pushliteral(L, "null");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "zoe.json.null");
  lua_setfield(L, -2, "null");
  return 1;
}
