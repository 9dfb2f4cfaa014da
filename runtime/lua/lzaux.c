/*
** lzaux.c: the binding's auxiliary library (lzaux.h): tensors as userdata,
** errors, dims and shapes, dtypes, and options tables.
*/
#include "lzaux.h"

#include <string.h>

#include "../core/alloc.h"
#include "../core/suggest.h"

/* ---- tensors ---- */

zoe_tensor *lz_totensor(lua_State *L, int arg) {
  lz_tensor_box *b = luaL_testudata(L, arg, LZ_TENSOR);
  if (b && !b->t) luaL_argerror(L, arg, "tensor was closed");
  return b ? b->t : NULL;
}

zoe_tensor *lz_opttensor(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : lz_checktensor(L, arg);
}

zoe_tensor *lz_checktensor(lua_State *L, int arg) {
  lz_tensor_box *b = luaL_checkudata(L, arg, LZ_TENSOR);
  if (!b->t) luaL_argerror(L, arg, "tensor was closed");
  return b->t;
}

/*
** Lua sees only a small box per tensor, not the memory behind it, so a loop
** making big temporaries would grow without bound before the GC ran. When live
** C memory passes a threshold, collect fully and reset the threshold to what
** survived plus an eighth of it (torch7's fix, with a floor so small scripts
** never pay for it). An eighth, not torch7's doubling: a full collection costs
** about a millisecond while a big model's temporaries are hundreds of MB each, and
** doubling lets Wan's VAE at 832x480 peak 2 GB higher (11.7 GB against 9.6 GB).
*/
#define GC_FLOOR ((int64_t)64 << 20)
static int64_t gc_threshold = GC_FLOOR;

static void gc_nudge(lua_State *L) {
  zoe_mem_stats m;
  zoe_mem_get(&m);
  if (m.live < gc_threshold) return;
  lua_gc(L, LUA_GCCOLLECT);
  zoe_mem_get(&m);
  gc_threshold = m.live + (m.live / 8 > GC_FLOOR ? m.live / 8 : GC_FLOOR);
}

void lz_pushtensor(lua_State *L, zoe_tensor *t) {
  lz_tensor_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  luaL_setmetatable(L, LZ_TENSOR);
  b->t = t;
  gc_nudge(L);
}

int lz_error(lua_State *L, const zoe_err *e) {
  luaL_where(L, 1);
  lua_pushstring(L, e->msg[0] ? e->msg : zoe_strerror(e->code));
  lua_concat(L, 2);
  return lua_error(L);
}

int lz_result(lua_State *L, zoe_tensor *t, const zoe_err *e) {
  if (!t) return lz_error(L, e);
  lz_pushtensor(L, t);
  return 1;
}

int lz_checkdim(lua_State *L, int arg, const zoe_tensor *t, const char *op, int extra) {
  lua_Integer d = luaL_checkinteger(L, arg);
  int n = t->ndim + extra;
  if (d >= 1 && d <= n) return (int)d - 1;
  if (d < 0 && d >= -n) return (int)(d + n);
  char s[96];
  return luaL_error(L, "%s: dim %d out of range for tensor %s (expected 1..%d or -%d..-1)", op,
                    (int)d, zoe_shape_str(t, s, sizeof s), n, n);
}

int lz_checkshape(lua_State *L, int arg, int64_t *shape, const char *op) {
  int n = 0;
  if (lua_istable(L, arg)) {
    n = (int)luaL_len(L, arg);
    if (n > ZOE_MAX_DIMS) luaL_error(L, "%s: %d dims (at most %d)", op, n, ZOE_MAX_DIMS);
    for (int i = 0; i < n; i++) {
      lua_geti(L, arg, i + 1);
      int ok;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok || v < 0) luaL_error(L, "%s: size %d of the shape must be a non-negative integer", op, i + 1);
      shape[i] = v;
      lua_pop(L, 1);
    }
    return n;
  }
  while (lua_type(L, arg + n) == LUA_TNUMBER) { /* 1e4 is a size too */
    if (n == ZOE_MAX_DIMS) luaL_error(L, "%s: more than %d dims", op, ZOE_MAX_DIMS);
    int ok;
    lua_Integer v = lua_tointegerx(L, arg + n, &ok);
    if (!ok) luaL_error(L, "%s: size %d of the shape must be an integer, got %f", op, n + 1, lua_tonumber(L, arg + n));
    if (v < 0) luaL_error(L, "%s: size %d of the shape is negative (%d)", op, n + 1, (int)v);
    shape[n++] = v;
  }
  if (n == 0 && !lua_isnoneornil(L, arg) && !lua_isstring(L, arg))
    luaL_argerror(L, arg, "shape expected (a table like {2, 3} or integers)");
  return n;
}

zoe_dtype lz_checkdtype(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  zoe_dtype dt;
  if (zoe_dtype_from_name(name, &dt))
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (f32, f16, bf16, i32, u8)", name));
  return dt;
}

zoe_dtype lz_optdtype(lua_State *L, int arg, zoe_dtype def) {
  static const char *const known[] = {"dtype", NULL};
  if (lua_type(L, arg) == LUA_TSTRING) return lz_checkdtype(L, arg);
  if (lua_istable(L, arg)) {
    lz_opts o = lz_opts_check(L, arg, "tensor", known);
    const char *name = lz_opt_string(&o, "dtype", NULL);
    zoe_dtype dt = def;
    if (name && zoe_dtype_from_name(name, &dt)) luaL_error(L, "unknown dtype '%s' (f32, f16, bf16, i32, u8)", name);
    return dt;
  }
  return def;
}

/* ---- options ---- */

static const char *name_in(const void *ctx, size_t i) { return ((const char *const *)ctx)[i]; }

/* Raise "op: unknown what 'key' (did you mean 'x'?); known: a, b, c" (known sorted). */
static int unknown_key(lua_State *L, const char *op, const char *what, const char *key, const char *const known[]) {
  size_t n = 0;
  while (known[n]) n++;
  const char *sorted[64];
  if (n > sizeof sorted / sizeof *sorted) n = sizeof sorted / sizeof *sorted;
  for (size_t i = 0; i < n; i++) { /* insertion sort: a few names */
    size_t k = i;
    while (k > 0 && strcmp(sorted[k - 1], known[i]) > 0) {
      sorted[k] = sorted[k - 1];
      k--;
    }
    sorted[k] = known[i];
  }
  const char *near;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "%s: unknown %s '%s'", op, what, key);
  luaL_addvalue(&b);
  if (zoe_suggest(key, name_in, sorted, n, &near, 1)) {
    lua_pushfstring(L, " (did you mean '%s'?)", near);
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, "; known: ");
  for (size_t i = 0; i < n; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, sorted[i]);
  }
  luaL_pushresult(&b);
  luaL_where(L, 1);
  lua_insert(L, -2);
  lua_concat(L, 2);
  return lua_error(L);
}

static lz_opts check_keys(lua_State *L, int arg, const char *op, const char *what, const char *const known[]) {
  lz_opts o = {L, 0, op, what};
  if (lua_isnoneornil(L, arg)) return o;
  arg = lua_absindex(L, arg);
  if (!lua_istable(L, arg)) {
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: a table of %ss expected, got a %s", op, what, luaL_typename(L, arg)));
  }
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: %s names must be strings, got a %s", op, what, luaL_typename(L, -1));
    const char *key = lua_tostring(L, -1);
    size_t i = 0;
    while (known[i] && strcmp(known[i], key) != 0) i++;
    if (!known[i]) unknown_key(L, op, what, key, known);
  }
  o.arg = arg;
  return o;
}

lz_opts lz_opts_check(lua_State *L, int arg, const char *op, const char *const known[]) {
  return check_keys(L, arg, op, "option", known);
}

lz_opts lz_roles_check(lua_State *L, int arg, const char *op, const char *const known[]) {
  if (!lua_istable(L, arg)) luaL_argerror(L, arg, lua_pushfstring(L, "%s: a table of weights by role expected", op));
  return check_keys(L, arg, op, "weight", known);
}

/* Push o's value at 'key' (nil without a table); returns its type. */
static int get(const lz_opts *o, const char *key) {
  if (!o->arg) {
    lua_pushnil(o->L);
    return LUA_TNIL;
  }
  return lua_getfield(o->L, o->arg, key);
}

static int wrong(const lz_opts *o, const char *key, const char *expected) {
  return luaL_error(o->L, "%s: %s '%s' must be %s, got a %s", o->op, o->what, key, expected, luaL_typename(o->L, -1));
}

bool lz_opt_has(const lz_opts *o, const char *key) {
  bool has = get(o, key) != LUA_TNIL;
  lua_pop(o->L, 1);
  return has;
}

double lz_opt_number(const lz_opts *o, const char *key, double def) {
  int t = get(o, key);
  if (t != LUA_TNIL && t != LUA_TNUMBER) wrong(o, key, "a number");
  double v = t == LUA_TNIL ? def : lua_tonumber(o->L, -1);
  lua_pop(o->L, 1);
  return v;
}

lua_Integer lz_opt_integer(const lz_opts *o, const char *key, lua_Integer def) {
  int t = get(o, key), ok = 1;
  lua_Integer v = t == LUA_TNIL ? def : lua_tointegerx(o->L, -1, &ok);
  if (t != LUA_TNIL && (t != LUA_TNUMBER || !ok)) wrong(o, key, "an integer");
  lua_pop(o->L, 1);
  return v;
}

bool lz_opt_boolean(const lz_opts *o, const char *key, bool def) {
  int t = get(o, key);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) wrong(o, key, "a boolean");
  bool v = t == LUA_TNIL ? def : lua_toboolean(o->L, -1);
  lua_pop(o->L, 1);
  return v;
}

const char *lz_opt_string(const lz_opts *o, const char *key, const char *def) {
  int t = get(o, key);
  if (t != LUA_TNIL && t != LUA_TSTRING) wrong(o, key, "a string");
  const char *v = t == LUA_TNIL ? def : lua_tostring(o->L, -1);
  lua_pop(o->L, 1); /* the table keeps the string alive */
  return v;
}

zoe_tensor *lz_opt_tensor(const lz_opts *o, const char *key) {
  int t = get(o, key);
  zoe_tensor *v = t == LUA_TNIL ? NULL : lz_totensor(o->L, -1);
  if (t != LUA_TNIL && !v) wrong(o, key, "a tensor");
  lua_pop(o->L, 1); /* the table keeps the tensor alive */
  return v;
}

zoe_tensor *lz_opt_need_tensor(const lz_opts *o, const char *key) {
  zoe_tensor *v = lz_opt_tensor(o, key);
  if (!v) {
    if (strcmp(o->what, "weight") == 0) luaL_error(o->L, "%s: the weights have no '%s'", o->op, key);
    luaL_error(o->L, "%s: option '%s' is required", o->op, key);
  }
  return v;
}

int lz_opt_ints(const lz_opts *o, const char *key, int64_t *out, int min, int max) {
  lua_State *L = o->L;
  int t = get(o, key), n = 0;
  if (t == LUA_TNUMBER) {
    int ok;
    out[0] = lua_tointegerx(L, -1, &ok);
    if (!ok) wrong(o, key, "an integer or a table of integers");
    n = 1;
  } else if (t == LUA_TTABLE) {
    n = (int)luaL_len(L, -1);
    if (n < 1 || n > max) luaL_error(L, "%s: %s '%s' has %d entries (%d to %d)", o->op, o->what, key, n, min > 1 ? min : 1, max);
    for (int i = 0; i < n; i++) {
      int ok;
      lua_geti(L, -1, i + 1);
      out[i] = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_error(L, "%s: %s '%s' must hold integers (entry %d is not one)", o->op, o->what, key, i + 1);
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    wrong(o, key, "an integer or a table of integers");
  }
  if (n && n < min) luaL_error(L, "%s: %s '%s' has %d entries (%d to %d)", o->op, o->what, key, n, min, max);
  lua_pop(L, 1);
  return n;
}

lz_opts lz_opt_table(const lz_opts *o, const char *key, const char *op, const char *const known[]) {
  int t = get(o, key);
  if (t == LUA_TNIL) {
    lua_pop(o->L, 1);
    return (lz_opts){o->L, 0, op, o->what};
  }
  if (t != LUA_TTABLE) wrong(o, key, "a table");
  return check_keys(o->L, -1, op, o->what, known); /* stays on the stack */
}
