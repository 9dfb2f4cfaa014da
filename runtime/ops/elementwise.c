/*
** elementwise.c: binary and unary ops with broadcasting.
** Contiguous f32 stretches take vectorized loops; other dtypes and layouts go
** through a generic loop that computes in double (exact for i32).
*/
#include <math.h>
#include <string.h>

#include "../core/iter.h"
#include "ops.h"
#include "out.h"
#include "vmath.h"

#define VECTORIZE __attribute__((target_clones("avx512f", "avx2", "default")))

static const char *binop_names[ZOE_NBINOPS] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum"};
static const char *unop_names[ZOE_NUNOPS] = {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin",
                                             "cos", "tanh", "sigmoid", "silu", "gelu", "gelu_tanh"};

const char *zoe_binop_name(zoe_binop op) { return op < ZOE_NBINOPS ? binop_names[op] : "?"; }
const char *zoe_unop_name(zoe_unop op) { return op < ZOE_NUNOPS ? unop_names[op] : "?"; }

/* torch semantics: max/min propagate NaN */
static inline float fmaxn(float a, float b) { return a != a ? a : (a > b ? a : b); }
static inline float fminn(float a, float b) { return a != a ? a : (a < b ? a : b); }

static inline double apply_bin(zoe_binop op, double a, double b) {
  switch (op) {
    case ZOE_ADD: return a + b;
    case ZOE_SUB: return a - b;
    case ZOE_MUL: return a * b;
    case ZOE_DIV: return a / b;
    case ZOE_POW: return pow(a, b);
    case ZOE_MAXIMUM: return a != a ? a : (b != b ? b : (a > b ? a : b));
    case ZOE_MINIMUM: return a != a ? a : (b != b ? b : (a < b ? a : b));
    default: return 0;
  }
}

/* ---- f32 kernels: one per op and stride pattern (vector-vector, vector-scalar, scalar-vector) ---- */

#define BIN_KERNELS(NAME, EXPR)                                                              \
  VECTORIZE static void NAME##_vv(float *o, const float *a, const float *b, int64_t n) {    \
    for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); }           \
  }                                                                                          \
  VECTORIZE static void NAME##_vs(float *o, const float *a, float y, int64_t n) {           \
    for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }                      \
  }                                                                                          \
  VECTORIZE static void NAME##_sv(float *o, float x, const float *b, int64_t n) {           \
    for (int64_t i = 0; i < n; i++) { float y = b[i]; o[i] = (EXPR); }                      \
  }

BIN_KERNELS(add, x + y)
BIN_KERNELS(sub, x - y)
BIN_KERNELS(mul, x * y)
BIN_KERNELS(div, x / y)
BIN_KERNELS(max, (x != x || y != y) ? x + y : (x > y ? x : y))
BIN_KERNELS(min, (x != x || y != y) ? x + y : (x < y ? x : y))

typedef void (*bin_vv)(float *, const float *, const float *, int64_t);
typedef void (*bin_vs)(float *, const float *, float, int64_t);
typedef void (*bin_sv)(float *, float, const float *, int64_t);
static const struct { bin_vv vv; bin_vs vs; bin_sv sv; } bin_f32[ZOE_NBINOPS] = {
  [ZOE_ADD] = {add_vv, add_vs, add_sv}, [ZOE_SUB] = {sub_vv, sub_vs, sub_sv},
  [ZOE_MUL] = {mul_vv, mul_vs, mul_sv}, [ZOE_DIV] = {div_vv, div_vs, div_sv},
  [ZOE_MAXIMUM] = {max_vv, max_vs, max_sv}, [ZOE_MINIMUM] = {min_vv, min_vs, min_sv},
};

typedef struct bin_ctx {
  zoe_binop op;
  zoe_dtype to, ta, tb;
} bin_ctx;

static void bin_inner(void *arg, int64_t n, char **p, const int64_t *s) {
  bin_ctx *c = arg;
  bool f32 = c->to == ZOE_F32 && c->ta == ZOE_F32 && c->tb == ZOE_F32;
  if (f32 && s[0] == 4 && bin_f32[c->op].vv) {
    float *o = (float *)p[0];
    if (s[1] == 4 && s[2] == 4) { bin_f32[c->op].vv(o, (float *)p[1], (float *)p[2], n); return; }
    if (s[1] == 4 && s[2] == 0) { bin_f32[c->op].vs(o, (float *)p[1], *(float *)p[2], n); return; }
    if (s[1] == 0 && s[2] == 4) { bin_f32[c->op].sv(o, *(float *)p[1], (float *)p[2], n); return; }
  }
  if (f32) {
    for (int64_t i = 0; i < n; i++) {
      float x = *(float *)(p[1] + i * s[1]), y = *(float *)(p[2] + i * s[2]);
      float r;
      switch (c->op) {
        case ZOE_ADD: r = x + y; break;
        case ZOE_SUB: r = x - y; break;
        case ZOE_MUL: r = x * y; break;
        case ZOE_DIV: r = x / y; break;
        case ZOE_POW: r = powf(x, y); break;
        case ZOE_MAXIMUM: r = (x != x || y != y) ? x + y : fmaxn(x, y); break;
        default: r = (x != x || y != y) ? x + y : fminn(x, y); break;
      }
      *(float *)(p[0] + i * s[0]) = r;
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    double x = zoe_load_elem(c->ta, p[1] + i * s[1], 0), y = zoe_load_elem(c->tb, p[2] + i * s[2], 0);
    zoe_store_elem(c->to, p[0] + i * s[0], 0, apply_bin(c->op, x, y));
  }
}

static zoe_dtype result_dtype(zoe_dtype a, zoe_dtype b, bool always_float) {
  if (always_float || zoe_dtype_is_float(a) || zoe_dtype_is_float(b)) return ZOE_F32;
  return ZOE_I32;
}

static double bin_cost(zoe_binop op) { return op == ZOE_POW ? 8 : 1; }

zoe_tensor *zoe_binary(zoe_binop op, const zoe_tensor *a, const zoe_tensor *b, zoe_tensor *out,
                       zoe_err *e) {
  int nd;
  int64_t shape[ZOE_MAX_DIMS];
  const char *name = zoe_binop_name(op);
  if (op >= ZOE_NBINOPS) {
    zoe_errf(e, ZOE_EINVAL, "binary: unknown op %d", (int)op);
    return NULL;
  }
  if (zoe_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, &nd, shape, name, e)) return NULL;
  zoe_dtype dt = result_dtype(a->dtype, b->dtype, op == ZOE_DIV || op == ZOE_POW);
  zoe_tensor *o = zoe_out_prepare(out, dt, nd, shape, name, e);
  if (!o) return NULL;
  zoe_iter it;
  const zoe_tensor *ops[3] = {o, a, b};
  bin_ctx c = {op, o->dtype, a->dtype, b->dtype};
  if (zoe_iter_init(&it, 3, ops, nd, shape, name, e) ||
      zoe_out_run(&it, bin_inner, &c, bin_cost(op), name, e)) {
    zoe_tensor_release(o);
    return NULL;
  }
  return o;
}

zoe_tensor *zoe_binary_scalar(zoe_binop op, const zoe_tensor *a, double s, bool scalar_first,
                              zoe_tensor *out, zoe_err *e) {
  zoe_tensor *st = zoe_full(zoe_dtype_is_float(a->dtype) || s != floor(s) ? ZOE_F32 : ZOE_I32, 0,
                            NULL, s, e);
  if (!st) return NULL;
  zoe_tensor *r = scalar_first ? zoe_binary(op, st, a, out, e) : zoe_binary(op, a, st, out, e);
  zoe_tensor_release(st);
  return r;
}

/* ---- unary ---- */

#define UN_KERNEL(NAME, EXPR)                                                     \
  VECTORIZE static void NAME##_k(float *o, const float *a, int64_t n) {          \
    for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); }         \
  }

UN_KERNEL(neg, -x)
UN_KERNEL(abs, __builtin_fabsf(x))
UN_KERNEL(exp, zv_exp(x))
UN_KERNEL(sqrt, __builtin_sqrtf(x))
UN_KERNEL(rsqrt, 1.0f / __builtin_sqrtf(x))
UN_KERNEL(tanh, zv_tanh(x))
UN_KERNEL(sigmoid, zv_sigmoid(x))
UN_KERNEL(silu, x * zv_sigmoid(x))
UN_KERNEL(gelu_tanh, zv_gelu_tanh(x))

typedef void (*un_fn)(float *, const float *, int64_t);
static const un_fn un_f32[ZOE_NUNOPS] = {
  [ZOE_NEG] = neg_k, [ZOE_ABS] = abs_k, [ZOE_EXP] = exp_k, [ZOE_SQRT] = sqrt_k,
  [ZOE_RSQRT] = rsqrt_k, [ZOE_TANH] = tanh_k, [ZOE_SIGMOID] = sigmoid_k, [ZOE_SILU] = silu_k,
  [ZOE_GELU_TANH] = gelu_tanh_k,
};

static inline double apply_un(zoe_unop op, double x) {
  switch (op) {
    case ZOE_NEG: return -x;
    case ZOE_ABS: return fabs(x);
    case ZOE_EXP: return exp(x);
    case ZOE_LOG: return log(x);
    case ZOE_SQRT: return sqrt(x);
    case ZOE_RSQRT: return 1.0 / sqrt(x);
    case ZOE_SIN: return sin(x);
    case ZOE_COS: return cos(x);
    case ZOE_TANH: return tanh(x);
    case ZOE_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case ZOE_SILU: return x / (1.0 + exp(-x));
    case ZOE_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    case ZOE_GELU_TANH: return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    default: return 0;
  }
}

typedef struct un_ctx {
  zoe_unop op;
  zoe_dtype to, ta;
  bool clamp;
  double lo, hi;
} un_ctx;

VECTORIZE static void clamp_k(float *o, const float *a, float lo, float hi, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float x = a[i];
    x = x < lo ? lo : x;
    o[i] = x > hi ? hi : x;
  }
}

static void un_inner(void *arg, int64_t n, char **p, const int64_t *s) {
  un_ctx *c = arg;
  if (c->to == ZOE_F32 && c->ta == ZOE_F32 && s[0] == 4 && s[1] == 4) {
    if (c->clamp) { clamp_k((float *)p[0], (float *)p[1], (float)c->lo, (float)c->hi, n); return; }
    if (un_f32[c->op]) { un_f32[c->op]((float *)p[0], (float *)p[1], n); return; }
  }
  for (int64_t i = 0; i < n; i++) {
    double x = zoe_load_elem(c->ta, p[1] + i * s[1], 0), r;
    if (c->clamp) r = x != x ? x : (x < c->lo ? c->lo : (x > c->hi ? c->hi : x));
    else r = apply_un(c->op, x);
    zoe_store_elem(c->to, p[0] + i * s[0], 0, r);
  }
}

static zoe_tensor *run_unary(un_ctx *c, const zoe_tensor *a, zoe_tensor *out, const char *name,
                             zoe_err *e) {
  bool keeps_int = c->clamp || c->op == ZOE_NEG || c->op == ZOE_ABS;
  zoe_dtype dt = zoe_dtype_is_float(a->dtype) || !keeps_int ? ZOE_F32 : ZOE_I32;
  zoe_tensor *o = zoe_out_prepare(out, dt, a->ndim, a->shape, name, e);
  if (!o) return NULL;
  c->to = o->dtype;
  c->ta = a->dtype;
  zoe_iter it;
  const zoe_tensor *ops[2] = {o, a};
  double cost = c->op == ZOE_SIN || c->op == ZOE_COS || c->op == ZOE_LOG || c->op == ZOE_GELU ? 8 : 2;
  if (zoe_iter_init(&it, 2, ops, a->ndim, a->shape, name, e) ||
      zoe_out_run(&it, un_inner, c, cost, name, e)) {
    zoe_tensor_release(o);
    return NULL;
  }
  return o;
}

zoe_tensor *zoe_unary(zoe_unop op, const zoe_tensor *a, zoe_tensor *out, zoe_err *e) {
  if (op >= ZOE_NUNOPS) {
    zoe_errf(e, ZOE_EINVAL, "unary: unknown op %d", (int)op);
    return NULL;
  }
  un_ctx c = {.op = op};
  return run_unary(&c, a, out, zoe_unop_name(op), e);
}

zoe_tensor *zoe_clamp(const zoe_tensor *a, double lo, double hi, zoe_tensor *out, zoe_err *e) {
  if (lo > hi) {
    zoe_errf(e, ZOE_EINVAL, "clamp: min %g is greater than max %g", lo, hi);
    return NULL;
  }
  un_ctx c = {.clamp = true, .lo = lo, .hi = hi};
  return run_unary(&c, a, out, "clamp", e);
}

/* ---- where, lerp ---- */

typedef struct tern_ctx {
  int kind; /* 0 where, 1 lerp (tensor weight), 2 lerp (scalar weight) */
  zoe_dtype t[4];
  double s;
} tern_ctx;

static void tern_inner(void *arg, int64_t n, char **p, const int64_t *s) {
  tern_ctx *c = arg;
  for (int64_t i = 0; i < n; i++) {
    double x = zoe_load_elem(c->t[1], p[1] + i * s[1], 0);
    double y = zoe_load_elem(c->t[2], p[2] + i * s[2], 0), r;
    switch (c->kind) {
      case 0: r = x != 0 ? y : zoe_load_elem(c->t[3], p[3] + i * s[3], 0); break;
      case 1: r = x + zoe_load_elem(c->t[3], p[3] + i * s[3], 0) * (y - x); break;
      default: r = x + c->s * (y - x); break;
    }
    zoe_store_elem(c->t[0], p[0] + i * s[0], 0, r);
  }
}

static zoe_tensor *ternary(tern_ctx *c, int nin, const zoe_tensor *const *in, zoe_dtype dt,
                           zoe_tensor *out, const char *name, zoe_err *e) {
  int nd = 0;
  int64_t shape[ZOE_MAX_DIMS] = {0}, prev[ZOE_MAX_DIMS];
  for (int k = 0; k < nin; k++) {
    memcpy(prev, shape, sizeof prev);
    if (zoe_broadcast_shape(nd, prev, in[k]->ndim, in[k]->shape, &nd, shape, name, e)) return NULL;
  }
  zoe_tensor *o = zoe_out_prepare(out, dt, nd, shape, name, e);
  if (!o) return NULL;
  const zoe_tensor *ops[4] = {o};
  c->t[0] = o->dtype;
  for (int k = 0; k < nin; k++) {
    ops[k + 1] = in[k];
    c->t[k + 1] = in[k]->dtype;
  }
  zoe_iter it;
  if (zoe_iter_init(&it, nin + 1, ops, nd, shape, name, e) ||
      zoe_out_run(&it, tern_inner, c, 2, name, e)) {
    zoe_tensor_release(o);
    return NULL;
  }
  return o;
}

zoe_tensor *zoe_where(const zoe_tensor *cond, const zoe_tensor *a, const zoe_tensor *b,
                      zoe_tensor *out, zoe_err *e) {
  tern_ctx c = {.kind = 0};
  const zoe_tensor *in[3] = {cond, a, b};
  return ternary(&c, 3, in, result_dtype(a->dtype, b->dtype, false), out, "where", e);
}

zoe_tensor *zoe_lerp(const zoe_tensor *a, const zoe_tensor *b, const zoe_tensor *w, double ws,
                     zoe_tensor *out, zoe_err *e) {
  tern_ctx c = {.kind = w ? 1 : 2, .s = ws};
  const zoe_tensor *in[3] = {a, b, w};
  return ternary(&c, w ? 3 : 2, in, ZOE_F32, out, "lerp", e);
}

