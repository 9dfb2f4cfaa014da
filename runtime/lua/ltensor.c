/*
** ltensor.c: zoe.tensor: creation, views, conversion and inspection.
** The compute ops are in lops.c, printing in lprint.c.
** Dims and indices are 1-based here, as in Lua and torch7; negative counts from the end.
*/
#include <math.h>
#include <string.h>

#include "../ops/ops.h"
#include "../core/rng.h"
#include "lzaux.h"
#include "lzlib.h"
#include "ltensor.h"

/* ---- creation ---- */

/* Shape of nested tables: walks the first element at each level. */
static int table_shape(lua_State *L, int idx, int64_t *shape) {
  int n = 0;
  lua_pushvalue(L, idx);
  while (lua_istable(L, -1)) {
    if (n == ZOE_MAX_DIMS) luaL_error(L, "tensor: more than %d levels of nesting", ZOE_MAX_DIMS);
    shape[n++] = (int64_t)luaL_len(L, -1);
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return n;
}

/* Copy nested tables into 'dst', checking they are regular. */
static void table_fill(lua_State *L, int idx, int dim, int ndim, const int64_t *shape,
                       zoe_tensor *dst, int64_t *pos) {
  if (dim == ndim) {
    int ok;
    lua_Number v = lua_tonumberx(L, idx, &ok);
    if (!ok) luaL_error(L, "tensor: element %d is a %s, not a number", (int)*pos + 1, luaL_typename(L, idx));
    zoe_store_elem(dst->dtype, zoe_data(dst), (*pos)++, v);
    return;
  }
  if (!lua_istable(L, idx) || (int64_t)luaL_len(L, idx) != shape[dim])
    luaL_error(L, "tensor: nested tables are not regular (level %d should have %d elements)", dim + 1,
               (int)shape[dim]);
  for (int64_t i = 1; i <= shape[dim]; i++) {
    lua_geti(L, idx, i);
    table_fill(L, lua_gettop(L), dim + 1, ndim, shape, dst, pos);
    lua_pop(L, 1);
  }
}

static int t_tensor(lua_State *L) {
  zoe_err e = {0};
  int64_t shape[ZOE_MAX_DIMS];
  zoe_dtype dt = lz_optdtype(L, 2, ZOE_F32);
  zoe_tensor *src = lz_totensor(L, 1);
  if (src) return lz_result(L, zoe_to_dtype(src, dt, &e), &e);
  luaL_argexpected(L, lua_istable(L, 1) || lua_isnumber(L, 1), 1, "table or number");
  int ndim = table_shape(L, 1, shape);
  zoe_tensor *t = zoe_empty(dt, ndim, shape, &e);
  if (!t) return lz_error(L, &e);
  lz_pushtensor(L, t); /* owned by Lua before anything can raise */
  int64_t pos = 0;
  table_fill(L, 1, 0, ndim, shape, t, &pos);
  return 1;
}

/* zeros/ones/empty/full share the (shape..., [value], [opts]) signature */
static int make_filled(lua_State *L, int kind) {
  static const char *names[] = {"zeros", "ones", "empty", "full"};
  zoe_err e = {0};
  int64_t shape[ZOE_MAX_DIMS];
  int ndim = lz_checkshape(L, 1, shape, names[kind]);
  int next = lua_istable(L, 1) ? 2 : 1 + ndim;
  double v = kind == 1 ? 1.0 : 0.0;
  if (kind == 3) v = luaL_checknumber(L, next++);
  zoe_dtype dt = lz_optdtype(L, next, ZOE_F32);
  zoe_tensor *t = kind == 2 ? zoe_empty(dt, ndim, shape, &e)
                : v == 0 ? zoe_zeros(dt, ndim, shape, &e) : zoe_full(dt, ndim, shape, v, &e);
  return lz_result(L, t, &e);
}
static int t_zeros(lua_State *L) { return make_filled(L, 0); }
static int t_ones(lua_State *L) { return make_filled(L, 1); }
static int t_empty(lua_State *L) { return make_filled(L, 2); }
static int t_full(lua_State *L) { return make_filled(L, 3); }

static int t_arange(lua_State *L) {
  zoe_err e = {0};
  int nnum = 0;
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) nnum++;
  if (nnum == 0) luaL_argerror(L, 1, "number expected");
  double start = 0, end, step = 1;
  if (nnum == 1) end = lua_tonumber(L, 1);
  else {
    start = lua_tonumber(L, 1);
    end = lua_tonumber(L, 2);
    if (nnum == 3) step = lua_tonumber(L, 3);
  }
  bool ints = lua_isinteger(L, 1) && (nnum < 2 || lua_isinteger(L, 2)) && (nnum < 3 || lua_isinteger(L, 3));
  zoe_dtype dt = lz_optdtype(L, nnum + 1, ints ? ZOE_I32 : ZOE_F32);
  return lz_result(L, zoe_arange(dt, start, end, step, &e), &e);
}

static int t_linspace(lua_State *L) {
  zoe_err e = {0};
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  return lz_result(L, zoe_linspace(lz_optdtype(L, 4, ZOE_F32), a, b, n, &e), &e);
}

/* ---- random ---- */

#define LZ_RNG "zoe.Generator"

static zoe_rng default_rng;

static zoe_rng *check_rng(lua_State *L, int arg) { return luaL_checkudata(L, arg, LZ_RNG); }

static int random_tensor(lua_State *L, bool normal) {
  zoe_err e = {0};
  int64_t shape[ZOE_MAX_DIMS];
  int ndim = lz_checkshape(L, 1, shape, normal ? "randn" : "rand");
  int opt = lua_istable(L, 1) ? 2 : 1 + ndim;
  static const char *const known[] = {"seed", "generator", "dtype", NULL};
  zoe_rng local, *g = &default_rng;
  zoe_dtype dt = ZOE_F32;
  if (lua_istable(L, opt)) {
    lz_opts o = lz_opts_check(L, opt, normal ? "randn" : "rand", known);
    if (lz_opt_has(&o, "seed")) {
      zoe_rng_init(&local, (uint64_t)lz_opt_integer(&o, "seed", 0));
      g = &local;
    }
    if (lua_getfield(L, opt, "generator") != LUA_TNIL) g = check_rng(L, lua_gettop(L));
    lua_pop(L, 1); /* the table keeps the generator */
    const char *name = lz_opt_string(&o, "dtype", NULL);
    if (name && zoe_dtype_from_name(name, &dt)) luaL_error(L, "unknown dtype '%s' (f32, f16, bf16, i32, u8)", name);
  } else {
    dt = lz_optdtype(L, opt, ZOE_F32);
  }
  zoe_tensor *t = normal ? zoe_randn(dt, ndim, shape, g, &e) : zoe_rand(dt, ndim, shape, g, &e);
  return lz_result(L, t, &e);
}
static int t_rand(lua_State *L) { return random_tensor(L, false); }
static int t_randn(lua_State *L) { return random_tensor(L, true); }

static int t_manual_seed(lua_State *L) {
  zoe_rng_init(&default_rng, (uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

static int t_generator(lua_State *L) {
  zoe_rng *g = lua_newuserdatauv(L, sizeof *g, 0);
  zoe_rng_init(g, (uint64_t)luaL_optinteger(L, 1, 0));
  luaL_setmetatable(L, LZ_RNG);
  return 1;
}

/* generator:randn(shape, [dtype]) and :rand */
static int g_draw(lua_State *L, bool normal) {
  zoe_err e = {0};
  zoe_rng *g = check_rng(L, 1);
  int64_t shape[ZOE_MAX_DIMS];
  int ndim = lz_checkshape(L, 2, shape, normal ? "randn" : "rand");
  zoe_dtype dt = lz_optdtype(L, lua_istable(L, 2) ? 3 : 2 + ndim, ZOE_F32);
  zoe_tensor *t = normal ? zoe_randn(dt, ndim, shape, g, &e) : zoe_rand(dt, ndim, shape, g, &e);
  return lz_result(L, t, &e);
}
static int g_randn(lua_State *L) { return g_draw(L, true); }
static int g_rand(lua_State *L) { return g_draw(L, false); }
static int g_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_rng(L, 1)->seed);
  return 1;
}
static int g_offset(lua_State *L) {
  zoe_rng *g = check_rng(L, 1);
  if (!lua_isnoneornil(L, 2)) g->offset = (uint64_t)luaL_checkinteger(L, 2);
  lua_pushinteger(L, (lua_Integer)g->offset);
  return 1;
}

/* ---- inspection ---- */

static int m_shape(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_size(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) return m_shape(L);
  lua_pushinteger(L, t->shape[lz_checkdim(L, 2, t, "size", 0)]);
  return 1;
}

static int m_stride(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->stride[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int m_dim(lua_State *L) {
  lua_pushinteger(L, lz_checktensor(L, 1)->ndim);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, zoe_numel(lz_checktensor(L, 1)));
  return 1;
}

/* bytes of the elements (a quantized tensor's blocks) */
static int m_nbytes(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  lua_pushinteger(L, (lua_Integer)zoe_dtype_bytes(t->dtype, zoe_numel(t)));
  return 1;
}

static int m_dtype(lua_State *L) {
  lua_pushstring(L, zoe_dtype_name(lz_checktensor(L, 1)->dtype));
  return 1;
}

static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, zoe_is_contiguous(lz_checktensor(L, 1)));
  return 1;
}

static int m_item(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  char s[96];
  if (zoe_numel(t) != 1)
    return luaL_error(L, "item: tensor %s has %d elements, not 1", zoe_shape_str(t, s, sizeof s),
                      (int)zoe_numel(t));
  if (zoe_dtype_is_quant(t->dtype)) return luaL_error(L, "item: the tensor is %s (quantized)", zoe_dtype_name(t->dtype));
  double v = zoe_load_elem(t->dtype, zoe_data(t), 0);
  if (zoe_dtype_is_float(t->dtype)) lua_pushnumber(L, v);
  else lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int m_close(lua_State *L) {
  lz_tensor_box *b = luaL_checkudata(L, 1, LZ_TENSOR);
  zoe_tensor_release(b->t);
  b->t = NULL;
  return 0;
}

static int t_is_tensor(lua_State *L) {
  lua_pushboolean(L, lz_totensor(L, 1) != NULL);
  return 1;
}

/* ---- views ---- */

/* Sizes from a table {2, -1} or from the integers at arg.. (-1 allowed: view, reshape, expand). */
static int sizes_at(lua_State *L, int arg, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, arg)) {
    n = (int)luaL_len(L, arg);
    luaL_argcheck(L, n <= ZOE_MAX_DIMS, arg, "too many dims");
    for (int i = 0; i < n; i++) {
      lua_geti(L, arg, i + 1);
      shape[i] = luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
    return n;
  }
  for (; !lua_isnone(L, arg + n); n++) {
    luaL_argcheck(L, n < ZOE_MAX_DIMS, arg + n, "too many dims");
    shape[n] = luaL_checkinteger(L, arg + n);
  }
  return n;
}

static int m_view_or_reshape(lua_State *L, bool reshape) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  int64_t shape[ZOE_MAX_DIMS];
  int n = sizes_at(L, 2, shape);
  zoe_tensor *v = reshape ? zoe_reshape(t, n, shape, &e) : zoe_view(t, n, shape, &e);
  return lz_result(L, v, &e);
}
static int m_view(lua_State *L) { return m_view_or_reshape(L, false); }
static int m_reshape(lua_State *L) { return m_view_or_reshape(L, true); }

static int m_permute(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  int perm[ZOE_MAX_DIMS];
  bool tbl = lua_istable(L, 2);
  int n = tbl ? (int)luaL_len(L, 2) : lua_gettop(L) - 1;
  if (n != t->ndim) {
    char s[96];
    return luaL_error(L, "permute: %d dims given for tensor %s", n, zoe_shape_str(t, s, sizeof s));
  }
  for (int i = 0; i < n; i++) {
    if (tbl) lua_geti(L, 2, i + 1);
    else lua_pushvalue(L, 2 + i);
    perm[i] = lz_checkdim(L, lua_gettop(L), t, "permute", 0);
    lua_pop(L, 1);
  }
  return lz_result(L, zoe_permute(t, perm, &e), &e);
}

static int m_transpose(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  int a, b;
  if (lua_isnoneornil(L, 2)) { /* t() on a matrix */
    if (t->ndim != 2) {
      char s[96];
      return luaL_error(L, "transpose: give two dims for tensor %s", zoe_shape_str(t, s, sizeof s));
    }
    a = 0;
    b = 1;
  } else {
    a = lz_checkdim(L, 2, t, "transpose", 0);
    b = lz_checkdim(L, 3, t, "transpose", 0);
  }
  return lz_result(L, zoe_transpose(t, a, b, &e), &e);
}

static int m_narrow(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  int d = lz_checkdim(L, 2, t, "narrow", 0);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (start < 0) start += t->shape[d] + 1;
  if (start < 1 || len < 0 || start - 1 + len > t->shape[d]) {
    char s[96];
    return luaL_error(L, "narrow: %d elements from %d do not fit dim %d of size %d (tensor %s)",
                      (int)len, (int)start, d + 1, (int)t->shape[d], zoe_shape_str(t, s, sizeof s));
  }
  return lz_result(L, zoe_narrow(t, d, start - 1, len, &e), &e);
}

static int select_index(lua_State *L, zoe_tensor *t, int d, lua_Integer i) {
  zoe_err e = {0};
  if (i < 0) i += t->shape[d] + 1;
  if (i < 1 || i > t->shape[d]) {
    char s[96];
    return luaL_error(L, "select: index %d out of range for dim %d of size %d (tensor %s)", (int)i,
                      d + 1, (int)t->shape[d], zoe_shape_str(t, s, sizeof s));
  }
  return lz_result(L, zoe_select(t, d, i - 1, &e), &e);
}

static int m_select(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  int d = lz_checkdim(L, 2, t, "select", 0);
  return select_index(L, t, d, luaL_checkinteger(L, 3));
}

static int m_expand(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  int64_t shape[ZOE_MAX_DIMS];
  int n = sizes_at(L, 2, shape);
  return lz_result(L, zoe_expand(t, n, shape, &e), &e);
}

static int m_squeeze(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) return lz_result(L, zoe_squeeze_all(t, &e), &e);
  return lz_result(L, zoe_squeeze(t, lz_checkdim(L, 2, t, "squeeze", 0), &e), &e);
}

static int m_unsqueeze(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  return lz_result(L, zoe_unsqueeze(t, lz_checkdim(L, 2, t, "unsqueeze", 1), &e), &e);
}

static int m_contiguous(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  if (zoe_is_contiguous(t)) {
    lua_settop(L, 1);
    return 1;
  }
  return lz_result(L, zoe_contiguous(t, &e), &e);
}

static int m_clone(lua_State *L) {
  zoe_err e = {0};
  return lz_result(L, zoe_clone(lz_checktensor(L, 1), &e), &e);
}

static int m_to(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  zoe_dtype dt = lz_checkdtype(L, 2);
  if (dt == t->dtype) {
    lua_settop(L, 1);
    return 1;
  }
  return lz_result(L, zoe_to_dtype(t, dt, &e), &e);
}

/* t:view_dtype("u8"): the same bytes as another dtype */
static int m_view_dtype(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *t = lz_checktensor(L, 1);
  return lz_result(L, zoe_view_dtype(t, lz_checkdtype(L, 2), &e), &e);
}

static double elem(const zoe_tensor *t, const int64_t *idx) {
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
  return zoe_load_elem(t->dtype, zoe_data(t), off);
}

static void to_table(lua_State *L, const zoe_tensor *t, int d, int64_t *idx) {
  if (d == t->ndim) {
    double v = elem(t, idx);
    if (zoe_dtype_is_float(t->dtype)) lua_pushnumber(L, v);
    else lua_pushinteger(L, (lua_Integer)v);
    return;
  }
  luaL_checkstack(L, 4, "totable");
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    idx[d] = i;
    to_table(L, t, d + 1, idx);
    lua_rawseti(L, -2, i + 1);
  }
}

static int m_totable(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  if (zoe_dtype_is_quant(t->dtype)) return luaL_error(L, "totable: a %s tensor is quantized; to(\"f32\") first", zoe_dtype_name(t->dtype));
  int64_t idx[ZOE_MAX_DIMS] = {0};
  to_table(L, t, 0, idx);
  return 1;
}

/* The C core's own text: [zoe.Tensor f32 2x3] (zoe's Lua library prints the entries too). */
static int m_tostring(lua_State *L) {
  lz_tensor_box *box = luaL_checkudata(L, 1, LZ_TENSOR);
  if (!box->t) {
    lua_pushliteral(L, "zoe.Tensor (closed)");
    return 1;
  }
  char shape[96];
  lua_pushfstring(L, "[zoe.Tensor %s %s]", zoe_dtype_name(box->t->dtype), zoe_shape_str(box->t, shape, sizeof shape));
  return 1;
}

/* __index: integer keys select along dim 1; strings look up methods */
static int m_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    zoe_tensor *t = lz_checktensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "index: cannot index a 0-dim tensor");
    return select_index(L, t, 0, luaL_checkinteger(L, 2));
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int m_len(lua_State *L) {
  zoe_tensor *t = lz_checktensor(L, 1);
  lua_pushinteger(L, t->ndim ? t->shape[0] : 1);
  return 1;
}

static const luaL_Reg module_funcs[] = {
  {"tensor", t_tensor},       {"zeros", t_zeros},       {"ones", t_ones},
  {"empty", t_empty},         {"full", t_full},         {"arange", t_arange},
  {"linspace", t_linspace},   {"rand", t_rand},         {"randn", t_randn},
  {"manual_seed", t_manual_seed}, {"generator", t_generator}, {"is_tensor", t_is_tensor},
  {NULL, NULL},
};

static const luaL_Reg methods[] = {
  {"shape", m_shape},         {"size", m_size},         {"stride", m_stride},
  {"dim", m_dim},             {"numel", m_numel},       {"dtype", m_dtype}, {"nbytes", m_nbytes},
  {"is_contiguous", m_is_contiguous}, {"item", m_item}, {"close", m_close},
  {"view", m_view},           {"reshape", m_reshape},   {"permute", m_permute},
  {"transpose", m_transpose}, {"t", m_transpose},       {"narrow", m_narrow},
  {"select", m_select},       {"expand", m_expand},     {"squeeze", m_squeeze},
  {"unsqueeze", m_unsqueeze}, {"contiguous", m_contiguous}, {"clone", m_clone},
  {"to", m_to},               {"view_dtype", m_view_dtype}, {"totable", m_totable},
  {NULL, NULL},
};

static const luaL_Reg gen_methods[] = {
  {"randn", g_randn}, {"rand", g_rand}, {"seed", g_seed}, {"offset", g_offset}, {NULL, NULL},
};

static int tensor_gc(lua_State *L) { return m_close(L); }

int lz_open_tensor(lua_State *L) {
  /* the tensor metatable: metamethods here, methods in a 'methods' table */
  luaL_newmetatable(L, LZ_TENSOR);
  lua_pushcfunction(L, tensor_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, m_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, m_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_len);
  lua_setfield(L, -2, "__len");
  lua_pushliteral(L, "zoe.Tensor");
  lua_setfield(L, -2, "__name");
  luaL_newlib(L, methods);
  lz_tensor_ops_methods(L);  /* math methods, lops.c */
  lua_setfield(L, -2, "methods");
  lz_tensor_ops_metamethods(L); /* __add etc., lops.c */
  lua_pushcfunction(L, m_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, LZ_RNG);
  luaL_newlib(L, gen_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  zoe_rng_init(&default_rng, 0);

  luaL_newlib(L, module_funcs);
  lz_tensor_ops_functions(L); /* T.add, T.cat, ... */
  return 1;
}
