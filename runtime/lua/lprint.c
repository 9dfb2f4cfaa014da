/*
** lprint.c: a tensor as text (tostring) and as nested Lua tables (totable).
** Big tensors print the first and last three entries of each dim, like torch.
*/
#include <math.h>
#include <stdio.h>

#include "lzoe.h"
#include "ltensor.h"

#define EDGE 3
#define SUMMARIZE_OVER 1000

typedef struct fmt {
  bool is_float, sci;
  int width;
} fmt;

static double elem(const zoe_tensor *t, const int64_t *idx) {
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
  return zoe_load_elem(t->dtype, zoe_data(t), off);
}

static int number(char *buf, size_t n, const fmt *f, double v) {
  if (!f->is_float) return snprintf(buf, n, "%*lld", f->width, (long long)v);
  if (f->sci) return snprintf(buf, n, "%*.4e", f->width, v);
  return snprintf(buf, n, "%*.4f", f->width, v);
}

/* Visit the shown elements to choose the number format. */
static void scan(const zoe_tensor *t, int d, int64_t *idx, bool summarize, double *maxabs,
                 double *minabs) {
  if (d == t->ndim) {
    double v = fabs(elem(t, idx));
    if (isfinite(v)) {
      if (v > *maxabs) *maxabs = v;
      if (v > 0 && v < *minabs) *minabs = v;
    }
    return;
  }
  int64_t n = t->shape[d];
  for (int64_t i = 0; i < n; i++) {
    if (summarize && n > 2 * EDGE && i == EDGE) i = n - EDGE;
    idx[d] = i;
    scan(t, d + 1, idx, summarize, maxabs, minabs);
  }
}

static void emit(luaL_Buffer *b, const zoe_tensor *t, int d, int64_t *idx, bool summarize,
                 const fmt *f) {
  char buf[64];
  if (d == t->ndim) {
    number(buf, sizeof buf, f, elem(t, idx));
    luaL_addstring(b, buf);
    return;
  }
  int64_t n = t->shape[d];
  luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (summarize && n > 2 * EDGE && i == EDGE) {
      luaL_addstring(b, d == t->ndim - 1 ? "..., " : "...,\n");
      for (int k = 0; k <= d && d != t->ndim - 1; k++) luaL_addchar(b, ' ');
      i = n - EDGE;
    }
    idx[d] = i;
    emit(b, t, d + 1, idx, summarize, f);
    if (i + 1 < n) {
      luaL_addchar(b, ',');
      if (d == t->ndim - 1) {
        luaL_addchar(b, ' ');
      } else {
        for (int k = d; k < t->ndim - 1; k++) luaL_addchar(b, '\n');
        for (int k = 0; k <= d; k++) luaL_addchar(b, ' ');
      }
    }
  }
  luaL_addchar(b, ']');
}

int lz_tensor_tostring(lua_State *L) {
  lz_tensor_box *box = luaL_checkudata(L, 1, LZ_TENSOR);
  if (!box->t) {
    lua_pushliteral(L, "zoe.Tensor (closed)");
    return 1;
  }
  const zoe_tensor *t = box->t;
  char shape[96];
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int64_t idx[ZOE_MAX_DIMS] = {0};
  bool summarize = zoe_numel(t) > SUMMARIZE_OVER;
  if (zoe_numel(t) > 0) {
    double maxabs = 0, minabs = INFINITY;
    scan(t, 0, idx, summarize, &maxabs, &minabs);
    fmt f = {zoe_dtype_is_float(t->dtype), false, 0};
    if (f.is_float) f.sci = maxabs >= 1e5 || (minabs < 1e-4 && minabs > 0);
    char tmp[64];
    f.width = number(tmp, sizeof tmp, &f, -maxabs);
    emit(&b, t, 0, idx, summarize, &f);
    luaL_addchar(&b, '\n');
  }
  lua_pushfstring(L, "[zoe.Tensor %s %s]", zoe_dtype_name(t->dtype), zoe_shape_str(t, shape, sizeof shape));
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  return 1;
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
  int64_t idx[ZOE_MAX_DIMS] = {0};
  to_table(L, t, 0, idx);
  return 1;
}

void lz_tensor_print_methods(lua_State *L) {
  static const luaL_Reg funcs[] = {{"totable", m_totable}, {"tostring", lz_tensor_tostring}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}
