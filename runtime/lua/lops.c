/*
** lops.c: zoe.tensor math: elementwise, reductions, softmax, matmul, joins.
** Each op checks its arguments here, then runs as a task (lz_task), so the
** loop can move big ones to the compute thread.
** Forms: a:add(b) allocates; a:add_(b) writes into a; T.add(a, b, out) writes into out.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/ops.h"
#include "lzoe.h"
#include "ltensor.h"

enum { K_BINARY, K_UNARY, K_CLAMP, K_WHERE, K_LERP, K_REDUCE, K_SOFTMAX, K_MATMUL, K_CAT,
       K_STACK, K_INDEX_SELECT, K_COPY, K_FILL };

typedef struct tensor_list {
  int n;
  zoe_tensor *ts[];
} tensor_list;

static void free_list(void *p) {
  tensor_list *l = p;
  if (!l) return;
  for (int i = 0; i < l->n; i++) zoe_tensor_release(l->ts[i]);
  free(l);
}

/* One place that runs every op of this file; no Lua here. */
static int run_op(lz_task *t, zoe_err *e) {
  zoe_tensor *r = NULL, *r2 = NULL;
  switch (t->kind) {
    case K_BINARY:
      if (t->iv[1] == 1) r = zoe_binary_scalar(t->iv[0], t->in[0], t->dv[0], false, t->out, e);
      else if (t->iv[1] == 2) r = zoe_binary_scalar(t->iv[0], t->in[0], t->dv[0], true, t->out, e);
      else r = zoe_binary(t->iv[0], t->in[0], t->in[1], t->out, e);
      break;
    case K_UNARY: r = zoe_unary(t->iv[0], t->in[0], t->out, e); break;
    case K_CLAMP: r = zoe_clamp(t->in[0], t->dv[0], t->dv[1], t->out, e); break;
    case K_WHERE: r = zoe_where(t->in[0], t->in[1], t->in[2], t->out, e); break;
    case K_LERP: r = zoe_lerp(t->in[0], t->in[1], t->nin > 2 ? t->in[2] : NULL, t->dv[0], t->out, e); break;
    case K_REDUCE: {
      r = zoe_reduce(t->iv[0], t->in[0], t->iv[1], t->iv[2], t->dv[0], e);
      if (r && t->iv[3] >= 0) { /* max/min with a dim also give indices */
        r2 = zoe_reduce(t->iv[3], t->in[0], t->iv[1], t->iv[2], 0, e);
        if (!r2) {
          zoe_tensor_release(r);
          r = NULL;
        }
      }
      break;
    }
    case K_SOFTMAX:
      r = t->iv[1] ? zoe_log_softmax(t->in[0], t->iv[0], t->out, e) : zoe_softmax(t->in[0], t->iv[0], t->out, e);
      break;
    case K_MATMUL: r = zoe_matmul(t->in[0], t->in[1], t->out, e); break;
    case K_CAT:
    case K_STACK: {
      tensor_list *l = t->extra;
      const zoe_tensor *const *ts = (const zoe_tensor *const *)l->ts;
      r = t->kind == K_CAT ? zoe_cat(ts, l->n, t->iv[0], e) : zoe_stack(ts, l->n, t->iv[0], e);
      break;
    }
    case K_INDEX_SELECT: r = zoe_index_select(t->in[0], t->iv[0], t->in[1], e); break;
    case K_COPY:
      if (zoe_copy_(t->out, t->in[0], e) == 0) r = zoe_tensor_retain(t->out);
      break;
    case K_FILL: {
      zoe_tensor *v = zoe_full(t->out->dtype, 0, NULL, t->dv[0], e);
      if (v && zoe_copy_(t->out, v, e) == 0) r = zoe_tensor_retain(t->out);
      zoe_tensor_release(v);
      break;
    }
  }
  if (!r) return e->code ? e->code : ZOE_EINVAL;
  /* indices go to Lua 1-based */
  zoe_tensor *idx = t->kind == K_REDUCE ? (r2 ? r2 : (r->dtype == ZOE_I32 ? r : NULL)) : NULL;
  if (idx) {
    int32_t *p = zoe_data(idx);
    for (int64_t i = 0, n = zoe_numel(idx); i < n; i++) p[i]++;
  }
  t->res[0] = r;
  t->res[1] = r2;
  t->nres = r2 ? 2 : 1;
  return 0;
}

static lz_task *new_op(lua_State *L, const char *name, int kind) {
  return lz_task_new(L, run_op, name, kind);
}

/* Optional destination at 'arg': a tensor, or nil. Call before pushing the task. */
static zoe_tensor *opt_out(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : lz_checktensor(L, arg);
}

static double numel_cost(const zoe_tensor *t, double per) { return (double)zoe_numel(t) * per; }

/* ---- elementwise ---- */

static const char *bin_names[ZOE_NBINOPS] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};

/* a op b into 'out_arg' (0: new, -1: into a) */
static int binary(lua_State *L, zoe_binop op, int out_arg) {
  zoe_tensor *a = lz_totensor(L, 1), *b = lz_totensor(L, 2);
  if (!a && !b) {
    luaL_checknumber(L, 1); /* say which argument is wrong */
    if (lua_isnumber(L, 2)) return luaL_error(L, "%s: one operand must be a tensor", bin_names[op]);
    return luaL_typeerror(L, 2, "tensor or number");
  }
  if (!a) luaL_argexpected(L, lua_isnumber(L, 1), 1, "tensor or number");
  if (!b) luaL_argexpected(L, lua_isnumber(L, 2), 2, "tensor or number");
  zoe_tensor *out = out_arg > 0 ? opt_out(L, out_arg) : NULL;
  lz_task *t = new_op(L, bin_names[op], K_BINARY);
  t->iv[0] = op;
  if (a && b) {
    lz_task_in(t, a);
    lz_task_in(t, b);
  } else {
    lz_task_in(t, a ? a : b);
    t->iv[1] = a ? 1 : 2;
    t->dv[0] = lua_tonumber(L, a ? 2 : 1);
  }
  if (out_arg < 0) t->out = zoe_tensor_retain(a ? a : b);
  else if (out) t->out = zoe_tensor_retain(out);
  t->cost = numel_cost(a ? a : b, 1) + (a && b ? numel_cost(b, 0) : 0);
  return lz_task_finish(L, t);
}

#define BINARY_FUNCS(NAME, OP)                                                  \
  static int m_##NAME(lua_State *L) { return binary(L, OP, 0); }               \
  static int m_##NAME##_(lua_State *L) { return binary(L, OP, -1); }           \
  static int f_##NAME(lua_State *L) { return binary(L, OP, 3); }

BINARY_FUNCS(add, ZOE_ADD)
BINARY_FUNCS(sub, ZOE_SUB)
BINARY_FUNCS(mul, ZOE_MUL)
BINARY_FUNCS(div, ZOE_DIV)
BINARY_FUNCS(pow, ZOE_POW)
BINARY_FUNCS(maximum, ZOE_MAXIMUM)
BINARY_FUNCS(minimum, ZOE_MINIMUM)

static int unary(lua_State *L, zoe_unop op, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1);
  zoe_tensor *out = out_arg > 0 ? opt_out(L, out_arg) : NULL;
  lz_task *t = new_op(L, zoe_unop_name(op), K_UNARY);
  t->iv[0] = op;
  lz_task_in(t, a);
  if (out_arg < 0) t->out = zoe_tensor_retain(a);
  else if (out) t->out = zoe_tensor_retain(out);
  t->cost = numel_cost(a, 4);
  return lz_task_finish(L, t);
}

#define UNARY_FUNCS(NAME, OP)                                                   \
  static int m_##NAME(lua_State *L) { return unary(L, OP, 0); }                \
  static int m_##NAME##_(lua_State *L) { return unary(L, OP, -1); }            \
  static int f_##NAME(lua_State *L) { return unary(L, OP, 2); }

UNARY_FUNCS(neg, ZOE_NEG)
UNARY_FUNCS(abs, ZOE_ABS)
UNARY_FUNCS(exp, ZOE_EXP)
UNARY_FUNCS(log, ZOE_LOG)
UNARY_FUNCS(sqrt, ZOE_SQRT)
UNARY_FUNCS(rsqrt, ZOE_RSQRT)
UNARY_FUNCS(sin, ZOE_SIN)
UNARY_FUNCS(cos, ZOE_COS)
UNARY_FUNCS(tanh, ZOE_TANH)
UNARY_FUNCS(sigmoid, ZOE_SIGMOID)
UNARY_FUNCS(silu, ZOE_SILU)
UNARY_FUNCS(gelu_tanh, ZOE_GELU_TANH)

/* gelu(x, [approximate]) as torch: approximate = "tanh" or "none" */
static int gelu(lua_State *L, int out_arg) {
  const char *approx = luaL_optstring(L, 2, "none");
  zoe_unop op = ZOE_GELU;
  if (strcmp(approx, "tanh") == 0) op = ZOE_GELU_TANH;
  else if (strcmp(approx, "none") != 0)
    return luaL_argerror(L, 2, "approximate must be \"none\" or \"tanh\"");
  lua_settop(L, 1);
  if (out_arg > 0) out_arg = 0;
  return unary(L, op, out_arg);
}
static int m_gelu(lua_State *L) { return gelu(L, 0); }
static int m_gelu_(lua_State *L) { return gelu(L, -1); }

static int clamp(lua_State *L, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1);
  double lo = luaL_opt(L, luaL_checknumber, 2, -HUGE_VAL), hi = luaL_opt(L, luaL_checknumber, 3, HUGE_VAL);
  zoe_tensor *out = out_arg > 0 ? opt_out(L, out_arg) : NULL;
  lz_task *t = new_op(L, "clamp", K_CLAMP);
  lz_task_in(t, a);
  t->dv[0] = lo;
  t->dv[1] = hi;
  if (out_arg < 0) t->out = zoe_tensor_retain(a);
  else if (out) t->out = zoe_tensor_retain(out);
  t->cost = numel_cost(a, 1);
  return lz_task_finish(L, t);
}
static int m_clamp(lua_State *L) { return clamp(L, 0); }
static int m_clamp_(lua_State *L) { return clamp(L, -1); }
static int f_clamp(lua_State *L) { return clamp(L, 4); }

static int f_where(lua_State *L) {
  zoe_tensor *c = lz_checktensor(L, 1), *a = lz_checktensor(L, 2), *b = lz_checktensor(L, 3);
  zoe_tensor *out = opt_out(L, 4);
  lz_task *t = new_op(L, "where", K_WHERE);
  lz_task_in(t, c);
  lz_task_in(t, a);
  lz_task_in(t, b);
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = numel_cost(a, 1);
  return lz_task_finish(L, t);
}

/* a:lerp(b, w) with w a number or a tensor */
static int lerp(lua_State *L, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1), *b = lz_checktensor(L, 2), *w = lz_totensor(L, 3);
  if (!w) luaL_checknumber(L, 3);
  zoe_tensor *out = out_arg > 0 ? opt_out(L, out_arg) : NULL;
  lz_task *t = new_op(L, "lerp", K_LERP);
  lz_task_in(t, a);
  lz_task_in(t, b);
  if (w) lz_task_in(t, w);
  else t->dv[0] = lua_tonumber(L, 3);
  if (out_arg < 0) t->out = zoe_tensor_retain(a);
  else if (out) t->out = zoe_tensor_retain(out);
  t->cost = numel_cost(a, 1);
  return lz_task_finish(L, t);
}
static int m_lerp(lua_State *L) { return lerp(L, 0); }
static int m_lerp_(lua_State *L) { return lerp(L, -1); }
static int f_lerp(lua_State *L) { return lerp(L, 4); }

/* ---- reductions ---- */

/* t:sum([dim], [keepdim]); no dim reduces everything */
static int reduce(lua_State *L, zoe_redop op, int dim_arg, double p) {
  zoe_tensor *a = lz_checktensor(L, 1);
  const char *name = zoe_redop_name(op);
  bool all = lua_isnoneornil(L, dim_arg);
  int dim = all ? ZOE_ALL_DIMS : lz_checkdim(L, dim_arg, a, name, 0);
  bool keepdim = lua_toboolean(L, dim_arg + 1);
  lz_task *t = new_op(L, name, K_REDUCE);
  lz_task_in(t, a);
  t->iv[0] = op;
  t->iv[1] = dim;
  t->iv[2] = keepdim;
  t->iv[3] = -1;
  if (!all && (op == ZOE_MAX || op == ZOE_MIN)) t->iv[3] = op == ZOE_MAX ? ZOE_ARGMAX : ZOE_ARGMIN;
  t->dv[0] = p;
  t->cost = numel_cost(a, 1);
  return lz_task_finish(L, t);
}
static int m_sum(lua_State *L) { return reduce(L, ZOE_SUM, 2, 0); }
static int m_mean(lua_State *L) { return reduce(L, ZOE_MEAN, 2, 0); }
static int m_max(lua_State *L) { return reduce(L, ZOE_MAX, 2, 0); }
static int m_min(lua_State *L) { return reduce(L, ZOE_MIN, 2, 0); }
static int m_argmax(lua_State *L) { return reduce(L, ZOE_ARGMAX, 2, 0); }
static int m_argmin(lua_State *L) { return reduce(L, ZOE_ARGMIN, 2, 0); }
/* t:var([dim], [keepdim], [correction = 1]) */
static int m_var(lua_State *L) { return reduce(L, ZOE_VAR, 2, luaL_optnumber(L, 4, 1)); }
/* t:norm([p = 2], [dim], [keepdim]); p may be math.huge */
static int m_norm(lua_State *L) {
  double p = luaL_optnumber(L, 2, 2);
  luaL_argcheck(L, p > 0, 2, "norm order must be positive");
  return reduce(L, ZOE_NORM, 3, p);
}

static int softmax(lua_State *L, bool log) {
  zoe_tensor *a = lz_checktensor(L, 1);
  const char *name = log ? "log_softmax" : "softmax";
  int dim = lua_isnoneornil(L, 2) ? a->ndim - 1 : lz_checkdim(L, 2, a, name, 0);
  zoe_tensor *out = opt_out(L, 3);
  lz_task *t = new_op(L, name, K_SOFTMAX);
  lz_task_in(t, a);
  t->iv[0] = dim < 0 ? 0 : dim;
  t->iv[1] = log;
  if (out) t->out = zoe_tensor_retain(out);
  t->cost = numel_cost(a, 4);
  return lz_task_finish(L, t);
}
static int m_softmax(lua_State *L) { return softmax(L, false); }
static int m_log_softmax(lua_State *L) { return softmax(L, true); }

/* ---- products and joins ---- */

static int matmul(lua_State *L, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1), *b = lz_checktensor(L, 2);
  zoe_tensor *out = out_arg > 0 ? opt_out(L, out_arg) : NULL;
  lz_task *t = new_op(L, "matmul", K_MATMUL);
  lz_task_in(t, a);
  lz_task_in(t, b);
  if (out) t->out = zoe_tensor_retain(out);
  /* 2*M*N*K over the broadcast batch, roughly */
  double na = (double)zoe_numel(a), nb = b->ndim ? (double)b->shape[b->ndim - 1] : 1;
  t->cost = 2 * na * nb;
  return lz_task_finish(L, t);
}
static int m_matmul(lua_State *L) { return matmul(L, 0); }
static int f_matmul(lua_State *L) { return matmul(L, 3); }

/* T.cat({a, b, ...}, dim) and T.stack */
static int join(lua_State *L, bool stack) {
  const char *name = stack ? "stack" : "cat";
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  if (n == 0) return luaL_error(L, "%s: no tensors given", name);
  for (int i = 1; i <= n; i++) { /* check the list before the task exists */
    if (lua_geti(L, 1, i) != LUA_TUSERDATA || !lz_totensor(L, -1))
      return luaL_error(L, "%s: element %d of the list is a %s, not a tensor", name, i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lua_geti(L, 1, 1);
  zoe_tensor *first = lz_totensor(L, -1);
  lua_pop(L, 1);
  /* the dim is checked against the first tensor (one more dim for stack) */
  int dim = lua_isnoneornil(L, 2) ? 0 : lz_checkdim(L, 2, first, name, stack ? 1 : 0);
  lz_task *t = new_op(L, name, stack ? K_STACK : K_CAT);
  tensor_list *l = calloc(1, sizeof *l + (size_t)n * sizeof(zoe_tensor *));
  if (!l) return luaL_error(L, "%s: out of memory", name);
  t->extra = l;
  t->free_extra = free_list;
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    l->ts[l->n] = zoe_tensor_retain(lz_totensor(L, -1));
    t->cost += (double)zoe_numel(l->ts[l->n++]);
    lua_pop(L, 1);
  }
  t->iv[0] = dim;
  return lz_task_finish(L, t);
}
static int f_cat(lua_State *L) { return join(L, false); }
static int f_stack(lua_State *L) { return join(L, true); }

/* t:index_select(dim, index): index holds 1-based positions */
static int m_index_select(lua_State *L) {
  zoe_err e = {0};
  zoe_tensor *a = lz_checktensor(L, 1);
  int dim = lz_checkdim(L, 2, a, "index_select", 0);
  zoe_tensor *idx = lz_checktensor(L, 3);
  if (idx->ndim != 1 || zoe_dtype_is_float(idx->dtype)) {
    char s[96];
    return luaL_error(L, "index_select: index must be a 1-D integer tensor, got %s %s",
                      zoe_dtype_name(idx->dtype), zoe_shape_str(idx, s, sizeof s));
  }
  zoe_tensor *zero_based = zoe_binary_scalar(ZOE_SUB, idx, 1, false, NULL, &e);
  if (!zero_based) return lz_error(L, &e);
  lz_pushtensor(L, zero_based); /* owned by Lua while the task runs */
  lz_task *t = new_op(L, "index_select", K_INDEX_SELECT);
  t->iv[0] = dim;
  lz_task_in(t, a);
  lz_task_in(t, zero_based);
  t->cost = (double)zoe_numel(a) / (double)(a->shape[dim] ? a->shape[dim] : 1) * (double)idx->shape[0];
  return lz_task_finish(L, t);
}

/* dst:copy_(src): src broadcast to dst, converting dtype */
static int m_copy_(lua_State *L) {
  zoe_tensor *dst = lz_checktensor(L, 1), *src = lz_checktensor(L, 2);
  lz_task *t = new_op(L, "copy_", K_COPY);
  t->out = zoe_tensor_retain(dst);
  lz_task_in(t, src);
  t->cost = numel_cost(dst, 1);
  return lz_task_finish(L, t);
}

static int m_fill_(lua_State *L) {
  zoe_tensor *dst = lz_checktensor(L, 1);
  double v = luaL_checknumber(L, 2);
  lz_task *t = new_op(L, "fill_", K_FILL);
  t->out = zoe_tensor_retain(dst);
  t->dv[0] = v;
  t->cost = numel_cost(dst, 1);
  return lz_task_finish(L, t);
}

static int m_zero_(lua_State *L) {
  lua_settop(L, 1);
  lua_pushinteger(L, 0);
  return m_fill_(L);
}

#define BOTH(NAME) {#NAME, m_##NAME}, {#NAME "_", m_##NAME##_}

static const luaL_Reg op_methods[] = {
  BOTH(add), BOTH(sub), BOTH(mul), BOTH(div), BOTH(pow), BOTH(maximum), BOTH(minimum),
  BOTH(neg), BOTH(abs), BOTH(exp), BOTH(log), BOTH(sqrt), BOTH(rsqrt), BOTH(sin), BOTH(cos),
  BOTH(tanh), BOTH(sigmoid), BOTH(silu), BOTH(gelu), BOTH(gelu_tanh), BOTH(clamp), BOTH(lerp),
  {"sum", m_sum}, {"mean", m_mean}, {"var", m_var}, {"max", m_max}, {"min", m_min},
  {"argmax", m_argmax}, {"argmin", m_argmin}, {"norm", m_norm},
  {"softmax", m_softmax}, {"log_softmax", m_log_softmax},
  {"matmul", m_matmul}, {"index_select", m_index_select},
  {"copy_", m_copy_}, {"fill_", m_fill_}, {"zero_", m_zero_},
  {NULL, NULL},
};

static const luaL_Reg op_functions[] = {
  {"add", f_add}, {"sub", f_sub}, {"mul", f_mul}, {"div", f_div}, {"pow", f_pow},
  {"maximum", f_maximum}, {"minimum", f_minimum},
  {"neg", f_neg}, {"abs", f_abs}, {"exp", f_exp}, {"log", f_log}, {"sqrt", f_sqrt},
  {"rsqrt", f_rsqrt}, {"sin", f_sin}, {"cos", f_cos}, {"tanh", f_tanh}, {"sigmoid", f_sigmoid},
  {"silu", f_silu}, {"gelu_tanh", f_gelu_tanh}, {"clamp", f_clamp}, {"lerp", f_lerp},
  {"where", f_where}, {"matmul", f_matmul}, {"cat", f_cat}, {"stack", f_stack},
  {NULL, NULL},
};

void lz_tensor_ops_methods(lua_State *L) { luaL_setfuncs(L, op_methods, 0); }
void lz_tensor_ops_functions(lua_State *L) { luaL_setfuncs(L, op_functions, 0); }

static int mm_unm(lua_State *L) {
  lua_settop(L, 1);
  return unary(L, ZOE_NEG, 0);
}

void lz_tensor_ops_metamethods(lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div},
    {"__pow", m_pow}, {"__unm", mm_unm}, {NULL, NULL},
  };
  luaL_setfuncs(L, meta, 0);
}
