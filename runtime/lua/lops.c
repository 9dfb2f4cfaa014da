/*
** lops.c: zoe.tensor math: elementwise, reductions, softmax, matmul, joins.
** Each op checks its arguments here, then runs as a task (lz_task), so the
** loop can move big ones to the compute thread.
** Forms: a:add(b) allocates; a:add_(b) writes into a; T.add(a, b, out) writes into out.
*/
#include <math.h>
#include <string.h>

#include "../ops/ops.h"
#include "ltask.h"
#include "ltensor.h"

static double numel_cost(const zoe_tensor *t, double per) { return (double)zoe_numel(t) * per; }

/* The destination of an op called as a:op(b) (0: new), a:op_(b) (-1: into a) or T.op(a, b, out). */
static zoe_tensor *destination(lua_State *L, int out_arg, zoe_tensor *self) {
  return out_arg < 0 ? self : out_arg > 0 ? lz_opttensor(L, out_arg) : NULL;
}

/* ---- elementwise ---- */

static const char *bin_names[ZOE_NBINOPS] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};

typedef struct binary_task {
  lz_task base;
  zoe_binop op;
  zoe_tensor *a, *b, *out; /* b NULL: the other operand is 'scalar' */
  double scalar;
  bool scalar_first;       /* scalar op a, not a op scalar */
} binary_task;

static int run_binary(lz_task *t, zoe_err *e) {
  binary_task *k = (binary_task *)t;
  zoe_tensor *r = k->b ? zoe_binary(k->op, k->a, k->b, k->out, e)
                       : zoe_binary_scalar(k->op, k->a, k->scalar, k->scalar_first, k->out, e);
  return lz_task_result(t, r, e);
}

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
  zoe_tensor *out = destination(L, out_arg, a ? a : b);
  binary_task *k = LZ_TASK_NEW(L, binary_task, run_binary, bin_names[op]);
  k->op = op;
  k->a = lz_task_hold(L, &k->base, a ? a : b);
  k->b = a && b ? lz_task_hold(L, &k->base, b) : NULL;
  if (!(a && b)) {
    k->scalar = lua_tonumber(L, a ? 2 : 1);
    k->scalar_first = !a;
  }
  k->out = lz_task_hold(L, &k->base, out);
  k->base.cost = numel_cost(a ? a : b, 1);
  return lz_task_finish(L, &k->base);
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

typedef struct unary_task {
  lz_task base;
  zoe_unop op;
  zoe_tensor *a, *out;
} unary_task;

static int run_unary(lz_task *t, zoe_err *e) {
  unary_task *k = (unary_task *)t;
  return lz_task_result(t, zoe_unary(k->op, k->a, k->out, e), e);
}

static int unary(lua_State *L, zoe_unop op, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1);
  zoe_tensor *out = destination(L, out_arg, a);
  unary_task *k = LZ_TASK_NEW(L, unary_task, run_unary, zoe_unop_name(op));
  k->op = op;
  k->a = lz_task_hold(L, &k->base, a);
  k->out = lz_task_hold(L, &k->base, out);
  k->base.cost = numel_cost(a, 4);
  return lz_task_finish(L, &k->base);
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

typedef struct clamp_task {
  lz_task base;
  zoe_tensor *a, *out;
  double lo, hi;
} clamp_task;

static int run_clamp(lz_task *t, zoe_err *e) {
  clamp_task *k = (clamp_task *)t;
  return lz_task_result(t, zoe_clamp(k->a, k->lo, k->hi, k->out, e), e);
}

static int clamp(lua_State *L, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1);
  double lo = luaL_opt(L, luaL_checknumber, 2, -HUGE_VAL), hi = luaL_opt(L, luaL_checknumber, 3, HUGE_VAL);
  zoe_tensor *out = destination(L, out_arg, a);
  clamp_task *k = LZ_TASK_NEW(L, clamp_task, run_clamp, "clamp");
  k->a = lz_task_hold(L, &k->base, a);
  k->out = lz_task_hold(L, &k->base, out);
  k->lo = lo;
  k->hi = hi;
  k->base.cost = numel_cost(a, 1);
  return lz_task_finish(L, &k->base);
}
static int m_clamp(lua_State *L) { return clamp(L, 0); }
static int m_clamp_(lua_State *L) { return clamp(L, -1); }
static int f_clamp(lua_State *L) { return clamp(L, 4); }

typedef struct where_task {
  lz_task base;
  zoe_tensor *cond, *a, *b, *out;
} where_task;

static int run_where(lz_task *t, zoe_err *e) {
  where_task *k = (where_task *)t;
  return lz_task_result(t, zoe_where(k->cond, k->a, k->b, k->out, e), e);
}

static int f_where(lua_State *L) {
  zoe_tensor *c = lz_checktensor(L, 1), *a = lz_checktensor(L, 2), *b = lz_checktensor(L, 3);
  zoe_tensor *out = lz_opttensor(L, 4);
  where_task *k = LZ_TASK_NEW(L, where_task, run_where, "where");
  k->cond = lz_task_hold(L, &k->base, c);
  k->a = lz_task_hold(L, &k->base, a);
  k->b = lz_task_hold(L, &k->base, b);
  k->out = lz_task_hold(L, &k->base, out);
  k->base.cost = numel_cost(a, 1);
  return lz_task_finish(L, &k->base);
}

typedef struct lerp_task {
  lz_task base;
  zoe_tensor *a, *b, *w, *out; /* w NULL: the weight is 'weight' */
  double weight;
} lerp_task;

static int run_lerp(lz_task *t, zoe_err *e) {
  lerp_task *k = (lerp_task *)t;
  return lz_task_result(t, zoe_lerp(k->a, k->b, k->w, k->weight, k->out, e), e);
}

/* a:lerp(b, w) with w a number or a tensor */
static int lerp(lua_State *L, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1), *b = lz_checktensor(L, 2), *w = lz_totensor(L, 3);
  double weight = w ? 0 : luaL_checknumber(L, 3);
  zoe_tensor *out = destination(L, out_arg, a);
  lerp_task *k = LZ_TASK_NEW(L, lerp_task, run_lerp, "lerp");
  k->a = lz_task_hold(L, &k->base, a);
  k->b = lz_task_hold(L, &k->base, b);
  k->w = lz_task_hold(L, &k->base, w);
  k->out = lz_task_hold(L, &k->base, out);
  k->weight = weight;
  k->base.cost = numel_cost(a, 1);
  return lz_task_finish(L, &k->base);
}
static int m_lerp(lua_State *L) { return lerp(L, 0); }
static int m_lerp_(lua_State *L) { return lerp(L, -1); }
static int f_lerp(lua_State *L) { return lerp(L, 4); }

/* ---- reductions ---- */

typedef struct reduce_task {
  lz_task base;
  zoe_redop op, index_op; /* with_index: max/min along a dim also give their indices (index_op) */
  bool with_index;
  zoe_tensor *a;
  int dim;
  bool keepdim;
  double p;
} reduce_task;

/* Indices (argmax, argmin, and max/min along a dim) come 0-based, as the kernel gives
   them; zoe's Lua library (lua/zoe/tensorlib.lua) makes them 1-based. */
static int run_reduce(lz_task *t, zoe_err *e) {
  reduce_task *k = (reduce_task *)t;
  int rc = lz_task_result(t, zoe_reduce(k->op, k->a, k->dim, k->keepdim, k->p, e), e);
  if (rc || !k->with_index) return rc;
  if (!(t->res[1] = zoe_reduce(k->index_op, k->a, k->dim, k->keepdim, 0, e))) return e->code ? e->code : ZOE_EINVAL;
  t->nres = 2;
  return 0;
}

/* t:sum([dim], [keepdim]); no dim reduces everything */
static int reduce(lua_State *L, zoe_redop op, int dim_arg, double p) {
  zoe_tensor *a = lz_checktensor(L, 1);
  const char *name = zoe_redop_name(op);
  bool all = lua_isnoneornil(L, dim_arg);
  int dim = all ? ZOE_ALL_DIMS : lz_checkdim(L, dim_arg, a, name, 0);
  bool keepdim = lua_toboolean(L, dim_arg + 1);
  reduce_task *k = LZ_TASK_NEW(L, reduce_task, run_reduce, name);
  k->a = lz_task_hold(L, &k->base, a);
  k->op = op;
  k->dim = dim;
  k->keepdim = keepdim;
  k->with_index = !all && (op == ZOE_MAX || op == ZOE_MIN);
  k->index_op = op == ZOE_MAX ? ZOE_ARGMAX : ZOE_ARGMIN;
  k->p = p;
  k->base.cost = numel_cost(a, 1);
  return lz_task_finish(L, &k->base);
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

typedef struct softmax_task {
  lz_task base;
  zoe_tensor *a, *out;
  int dim;
  bool log;
} softmax_task;

static int run_softmax(lz_task *t, zoe_err *e) {
  softmax_task *k = (softmax_task *)t;
  zoe_tensor *r = k->log ? zoe_log_softmax(k->a, k->dim, k->out, e) : zoe_softmax(k->a, k->dim, k->out, e);
  return lz_task_result(t, r, e);
}

static int softmax(lua_State *L, bool log) {
  zoe_tensor *a = lz_checktensor(L, 1);
  const char *name = log ? "log_softmax" : "softmax";
  int dim = lua_isnoneornil(L, 2) ? a->ndim - 1 : lz_checkdim(L, 2, a, name, 0);
  zoe_tensor *out = lz_opttensor(L, 3);
  softmax_task *k = LZ_TASK_NEW(L, softmax_task, run_softmax, name);
  k->a = lz_task_hold(L, &k->base, a);
  k->out = lz_task_hold(L, &k->base, out);
  k->dim = dim < 0 ? 0 : dim;
  k->log = log;
  k->base.cost = numel_cost(a, 4);
  return lz_task_finish(L, &k->base);
}
static int m_softmax(lua_State *L) { return softmax(L, false); }
static int m_log_softmax(lua_State *L) { return softmax(L, true); }

/* ---- products and joins ---- */

typedef struct matmul_task {
  lz_task base;
  zoe_tensor *a, *b, *out;
} matmul_task;

static int run_matmul(lz_task *t, zoe_err *e) {
  matmul_task *k = (matmul_task *)t;
  return lz_task_result(t, zoe_matmul(k->a, k->b, k->out, e), e);
}

static int matmul(lua_State *L, int out_arg) {
  zoe_tensor *a = lz_checktensor(L, 1), *b = lz_checktensor(L, 2);
  zoe_tensor *out = out_arg > 0 ? lz_opttensor(L, out_arg) : NULL;
  matmul_task *k = LZ_TASK_NEW(L, matmul_task, run_matmul, "matmul");
  k->a = lz_task_hold(L, &k->base, a);
  k->b = lz_task_hold(L, &k->base, b);
  k->out = lz_task_hold(L, &k->base, out);
  /* 2*M*N*K over the broadcast batch, roughly */
  double na = (double)zoe_numel(a), nb = b->ndim ? (double)b->shape[b->ndim - 1] : 1;
  k->base.cost = 2 * na * nb;
  return lz_task_finish(L, &k->base);
}
static int m_matmul(lua_State *L) { return matmul(L, 0); }
static int f_matmul(lua_State *L) { return matmul(L, 3); }

typedef struct join_task {
  lz_task base;
  bool stack;
  int dim;
} join_task; /* the tensors are base.held[0..nheld) */

static int run_join(lz_task *t, zoe_err *e) {
  join_task *k = (join_task *)t;
  const zoe_tensor *const *ts = (const zoe_tensor *const *)t->held;
  zoe_tensor *r = k->stack ? zoe_stack(ts, t->nheld, k->dim, e) : zoe_cat(ts, t->nheld, k->dim, e);
  return lz_task_result(t, r, e);
}

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
  join_task *k = LZ_TASK_NEW(L, join_task, run_join, name);
  k->stack = stack;
  k->dim = dim;
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    k->base.cost += (double)zoe_numel(lz_task_hold(L, &k->base, lz_totensor(L, -1)));
    lua_pop(L, 1);
  }
  return lz_task_finish(L, &k->base);
}
static int f_cat(lua_State *L) { return join(L, false); }
static int f_stack(lua_State *L) { return join(L, true); }

typedef struct index_task {
  lz_task base;
  zoe_tensor *a, *index;
  int dim;
} index_task;

static int run_index_select(lz_task *t, zoe_err *e) {
  index_task *k = (index_task *)t;
  return lz_task_result(t, zoe_index_select(k->a, k->dim, k->index, e), e);
}

/* t:index_select(dim, index): index holds 0-based positions (1-based through zoe's Lua library) */
static int m_index_select(lua_State *L) {
  zoe_tensor *a = lz_checktensor(L, 1);
  int dim = lz_checkdim(L, 2, a, "index_select", 0);
  zoe_tensor *idx = lz_checktensor(L, 3);
  if (idx->ndim != 1 || zoe_dtype_is_float(idx->dtype)) {
    char s[96];
    return luaL_error(L, "index_select: index must be a 1-D integer tensor, got %s %s",
                      zoe_dtype_name(idx->dtype), zoe_shape_str(idx, s, sizeof s));
  }
  index_task *k = LZ_TASK_NEW(L, index_task, run_index_select, "index_select");
  k->a = lz_task_hold(L, &k->base, a);
  k->index = lz_task_hold(L, &k->base, idx);
  k->dim = dim;
  k->base.cost = (double)zoe_numel(a) / (double)(a->shape[dim] ? a->shape[dim] : 1) * (double)idx->shape[0];
  return lz_task_finish(L, &k->base);
}

typedef struct fill_task {
  lz_task base;
  zoe_tensor *dst, *src; /* src NULL: fill with 'value' */
  double value;
} fill_task;

static int run_fill(lz_task *t, zoe_err *e) {
  fill_task *k = (fill_task *)t;
  zoe_tensor *v = k->src ? zoe_tensor_retain(k->src) : zoe_full(k->dst->dtype, 0, NULL, k->value, e);
  int rc = v ? zoe_copy_(k->dst, v, e) : -1;
  zoe_tensor_release(v);
  return lz_task_result(t, rc == 0 ? zoe_tensor_retain(k->dst) : NULL, e);
}

static fill_task *new_fill(lua_State *L, const char *name, zoe_tensor *dst, zoe_tensor *src) {
  fill_task *k = LZ_TASK_NEW(L, fill_task, run_fill, name);
  k->dst = lz_task_hold(L, &k->base, dst);
  k->src = lz_task_hold(L, &k->base, src);
  k->base.cost = numel_cost(dst, 1);
  return k;
}

/* dst:copy_(src): src broadcast to dst, converting dtype */
static int m_copy_(lua_State *L) {
  zoe_tensor *dst = lz_checktensor(L, 1), *src = lz_checktensor(L, 2);
  return lz_task_finish(L, &new_fill(L, "copy_", dst, src)->base);
}

static int m_fill_(lua_State *L) {
  zoe_tensor *dst = lz_checktensor(L, 1);
  double v = luaL_checknumber(L, 2);
  fill_task *k = new_fill(L, "fill_", dst, NULL);
  k->value = v;
  return lz_task_finish(L, &k->base);
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
