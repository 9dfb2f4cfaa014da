/*
** lweights.c: zoe.load and zoe.save, and the weights object.
**   local w = zoe.load("model.safetensors")   -- or an index .json, or a .pth
**   w["blocks.0.attn.q.weight"]   a tensor (a lazy view over the mapped file), nil if absent
**   w:get(name)                   the same, but an unknown name is an error with close matches
**   w:keys()  w:prefix("blocks.0.")  w:metadata()  w:path()  #w  pairs(w)
**   zoe.save("out.safetensors", {name = tensor, ...}, {key = "value"})
** A prefix view shares the file and sees the names under the prefix, stripped.
** A name that is also a method (keys, get, ...) is reached with w:get(name).
*/
#include <stdlib.h>
#include <string.h>

#include "../io/safetensors.h"
#include "../io/weights.h"
#include "ltask.h"
#include "lzlib.h"

#define LZ_WEIGHTS "zoe.Weights"

typedef struct wbox {
  zoe_weights *w;
} wbox;

/* The box, and its prefix (user value 1) on the stack top: "" for a whole file. */
static zoe_weights *checkweights(lua_State *L, int arg, const char **prefix, size_t *pl) {
  wbox *b = luaL_checkudata(L, arg, LZ_WEIGHTS);
  if (!b->w) luaL_argerror(L, arg, "weights were closed");
  lua_getiuservalue(L, arg, 1);
  *prefix = lua_tolstring(L, -1, pl);
  lua_pop(L, 1); /* the string stays alive: the userdata holds it */
  return b->w;
}

static void pushweights(lua_State *L, zoe_weights *w, const char *prefix, size_t pl) {
  wbox *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->w = NULL;
  luaL_setmetatable(L, LZ_WEIGHTS);
  lua_pushlstring(L, prefix, pl);
  lua_setiuservalue(L, -2, 1);
  b->w = w;
}

/* Push prefix..key (the full name). */
static const char *full_name(lua_State *L, const char *prefix, size_t pl, int keyarg) {
  size_t kl;
  const char *key = luaL_checklstring(L, keyarg, &kl);
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  luaL_addlstring(&buf, prefix, pl);
  luaL_addlstring(&buf, key, kl);
  luaL_pushresult(&buf);
  return lua_tostring(L, -1);
}

static int push_tensor_at(lua_State *L, zoe_weights *w, size_t i) {
  zoe_err e = {0};
  return lz_result(L, zoe_weights_tensor(w, i, &e), &e);
}

static int z_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  zoe_err e = {0};
  zoe_weights *w = zoe_weights_open(path, &e);
  if (!w) return lz_error(L, &e);
  pushweights(L, w, "", 0);
  return 1;
}

static int w_get(lua_State *L) {
  const char *prefix;
  size_t pl;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  const char *name = full_name(L, prefix, pl, 2);
  ptrdiff_t i = zoe_weights_find(w, name);
  if (i >= 0) return push_tensor_at(L, w, (size_t)i);
  const char *near[3];
  size_t n = zoe_weights_suggest(w, name, near, 3);
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  lua_pushfstring(L, "%s has no tensor '%s'", zoe_weights_path(w), name);
  luaL_addvalue(&buf);
  for (size_t k = 0; k < n; k++) {
    luaL_addstring(&buf, k == 0 ? " (did you mean '" : "', '");
    luaL_addstring(&buf, strncmp(near[k], prefix, pl) == 0 ? near[k] + pl : near[k]);
  }
  if (n) luaL_addstring(&buf, "'?)");
  luaL_pushresult(&buf);
  luaL_where(L, 1);
  lua_insert(L, -2);
  lua_concat(L, 2);
  return lua_error(L);
}

/* w[key]: a method, else the tensor or nil */
static int w_index(lua_State *L) {
  if (luaL_getmetafield(L, 1, "__methods") != LUA_TNIL) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 2);
  }
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  const char *prefix;
  size_t pl;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  ptrdiff_t i = zoe_weights_find(w, full_name(L, prefix, pl, 2));
  if (i < 0) return 0;
  return push_tensor_at(L, w, (size_t)i);
}

/* Indices [*lo, *hi) of the names under the prefix. */
static void prefix_range(zoe_weights *w, const char *prefix, size_t pl, size_t *lo, size_t *hi) {
  size_t i = zoe_weights_lower_bound(w, prefix), n = zoe_weights_count(w);
  *lo = i;
  while (i < n && strncmp(zoe_weights_name(w, i), prefix, pl) == 0) i++;
  *hi = i;
}

static int w_keys(lua_State *L) {
  const char *prefix;
  size_t pl, lo, hi;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  prefix_range(w, prefix, pl, &lo, &hi);
  lua_createtable(L, (int)(hi - lo), 0);
  for (size_t i = lo; i < hi; i++) {
    lua_pushstring(L, zoe_weights_name(w, i) + pl);
    lua_rawseti(L, -2, (lua_Integer)(i - lo + 1));
  }
  return 1;
}

static int w_len(lua_State *L) {
  const char *prefix;
  size_t pl, lo, hi;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  prefix_range(w, prefix, pl, &lo, &hi);
  lua_pushinteger(L, (lua_Integer)(hi - lo));
  return 1;
}

static int w_has(lua_State *L) {
  const char *prefix;
  size_t pl;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  lua_pushboolean(L, zoe_weights_find(w, full_name(L, prefix, pl, 2)) >= 0);
  return 1;
}

static int w_prefix(lua_State *L) {
  const char *prefix;
  size_t pl;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  const char *full = full_name(L, prefix, pl, 2);
  pushweights(L, zoe_weights_retain(w), full, lua_rawlen(L, -1));
  return 1;
}

static int w_metadata(lua_State *L) {
  const char *prefix;
  size_t pl;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  size_t n = zoe_weights_meta_count(w);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, zoe_weights_meta_value(w, i));
    lua_setfield(L, -2, zoe_weights_meta_key(w, i));
  }
  return 1;
}

static int w_path(lua_State *L) {
  const char *prefix;
  size_t pl;
  lua_pushstring(L, zoe_weights_path(checkweights(L, 1, &prefix, &pl)));
  return 1;
}

static int w_format(lua_State *L) {
  const char *prefix;
  size_t pl;
  lua_pushstring(L, zoe_weights_format(checkweights(L, 1, &prefix, &pl)));
  return 1;
}

/* pairs(w): (stripped name, tensor) in name order; the state is the last name. */
static int w_next(lua_State *L) {
  const char *prefix;
  size_t pl, lo, hi;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  prefix_range(w, prefix, pl, &lo, &hi);
  size_t i = lo;
  if (!lua_isnil(L, 2)) {
    i = zoe_weights_lower_bound(w, full_name(L, prefix, pl, 2));
    if (i < hi) i++;
  }
  if (i >= hi) return 0;
  lua_pushstring(L, zoe_weights_name(w, i) + pl);
  push_tensor_at(L, w, i);
  return 2;
}

static int w_pairs(lua_State *L) {
  luaL_checkudata(L, 1, LZ_WEIGHTS);
  lua_pushcfunction(L, w_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int w_tostring(lua_State *L) {
  wbox *b = luaL_checkudata(L, 1, LZ_WEIGHTS);
  if (!b->w) {
    lua_pushliteral(L, "zoe.Weights (closed)");
    return 1;
  }
  const char *prefix;
  size_t pl, lo, hi;
  zoe_weights *w = checkweights(L, 1, &prefix, &pl);
  prefix_range(w, prefix, pl, &lo, &hi);
  lua_pushfstring(L, "zoe.Weights(%s%s%s%s, %d tensors, %s)", zoe_weights_path(w), pl ? " prefix '" : "",
                  prefix, pl ? "'" : "", (int)(hi - lo), zoe_weights_format(w));
  return 1;
}

static int w_close(lua_State *L) {
  wbox *b = luaL_checkudata(L, 1, LZ_WEIGHTS);
  zoe_weights_release(b->w);
  b->w = NULL;
  return 0;
}

/* ---- zoe.save ---- */

typedef struct save_task {
  lz_task base;
  size_t n, nmeta;
  const char **names;
  zoe_tensor **tensors;
  const char **keys, **values;
  char *path;
} save_task;

static void free_save(lz_task *t) {
  save_task *s = (save_task *)t;
  for (size_t i = 0; i < s->n; i++) {
    free((char *)s->names[i]);
    zoe_tensor_release(s->tensors[i]);
  }
  for (size_t i = 0; i < s->nmeta; i++) {
    free((char *)s->keys[i]);
    free((char *)s->values[i]);
  }
  free(s->names);
  free(s->tensors);
  free(s->keys);
  free(s->values);
  free(s->path);
}

static int run_save(lz_task *t, zoe_err *e) {
  save_task *s = (save_task *)t;
  return zoe_st_save(s->path, s->n, s->names, s->tensors, s->nmeta, s->keys, s->values, e);
}

static size_t table_count(lua_State *L, int idx) {
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
  }
  return n;
}

static char *dupstr(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (!d) luaL_error(L, "zoe.save: out of memory");
  return d;
}

static void add_tensor(lua_State *L, save_task *s, const char *name, zoe_tensor *t) {
  s->names[s->n] = dupstr(L, name);
  s->tensors[s->n++] = zoe_tensor_retain(t); /* counted only once both are set */
}

static int z_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  wbox *wb = luaL_testudata(L, 2, LZ_WEIGHTS);
  if (!wb) luaL_checktype(L, 2, LUA_TTABLE);
  int has_meta = !lua_isnoneornil(L, 3);
  if (has_meta) luaL_checktype(L, 3, LUA_TTABLE);
  const char *prefix = "";
  size_t pl = 0, lo = 0, hi = 0;
  if (wb) {
    zoe_weights *w = checkweights(L, 2, &prefix, &pl);
    prefix_range(w, prefix, pl, &lo, &hi);
  }
  size_t n = wb ? hi - lo : table_count(L, 2), nmeta = has_meta ? table_count(L, 3) : 0;
  save_task *s = LZ_TASK_NEW(L, save_task, run_save, "zoe.save");
  lz_task *t = &s->base;
  t->cleanup = free_save;
  s->names = calloc(n + 1, sizeof *s->names);
  s->tensors = calloc(n + 1, sizeof *s->tensors);
  s->keys = calloc(nmeta + 1, sizeof *s->keys);
  s->values = calloc(nmeta + 1, sizeof *s->values);
  if (!s->names || !s->tensors || !s->keys || !s->values) return luaL_error(L, "zoe.save: out of memory");
  s->path = dupstr(L, path);
  if (wb) {
    for (size_t i = lo; i < hi; i++) {
      zoe_err e = {0};
      zoe_tensor *x = zoe_weights_tensor(wb->w, i, &e);
      if (!x) return lz_error(L, &e);
      char *name = strdup(zoe_weights_name(wb->w, i) + pl);
      if (!name) {
        zoe_tensor_release(x);
        return luaL_error(L, "zoe.save: out of memory");
      }
      s->names[s->n] = name;
      s->tensors[s->n++] = x;
      t->cost += (double)zoe_numel(x) * (double)zoe_dtype_size(x->dtype);
    }
  } else {
    lua_pushnil(L);
    while (lua_next(L, 2) && s->n < n) {
      if (lua_type(L, -2) != LUA_TSTRING)
        return luaL_error(L, "zoe.save: tensor names must be strings (got a %s key)", luaL_typename(L, -2));
      zoe_tensor *x = lz_totensor(L, -1);
      if (!x)
        return luaL_error(L, "zoe.save: '%s' is a %s, not a tensor", lua_tostring(L, -2), luaL_typename(L, -1));
      add_tensor(L, s, lua_tostring(L, -2), x);
      t->cost += (double)zoe_numel(x) * (double)zoe_dtype_size(x->dtype);
      lua_pop(L, 1);
    }
  }
  if (has_meta) {
    lua_pushnil(L);
    while (lua_next(L, 3) && s->nmeta < nmeta) {
      if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        return luaL_error(L, "zoe.save: metadata must map strings to strings (key %s is a %s)",
                          luaL_tolstring(L, -2, NULL), luaL_typename(L, -2));
      s->keys[s->nmeta] = dupstr(L, lua_tostring(L, -2));
      s->values[s->nmeta] = strdup(lua_tostring(L, -1));
      if (!s->values[s->nmeta++]) return luaL_error(L, "zoe.save: out of memory");
      lua_pop(L, 1);
    }
  }
  return lz_task_finish(L, t);
}

static const luaL_Reg funcs[] = {{"load", z_load}, {"save", z_save}, {NULL, NULL}};

static const luaL_Reg methods[] = {
  {"get", w_get},       {"keys", w_keys},     {"prefix", w_prefix}, {"metadata", w_metadata},
  {"path", w_path},     {"format", w_format}, {"has", w_has},       {"close", w_close},
  {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
  {"__index", w_index}, {"__len", w_len},   {"__pairs", w_pairs}, {"__tostring", w_tostring},
  {"__close", w_close}, {"__gc", w_close},  {NULL, NULL},
};

int lz_open_weights(lua_State *L) {
  if (luaL_newmetatable(L, LZ_WEIGHTS)) {
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__methods");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
