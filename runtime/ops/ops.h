/*
** ops.h: tensor operations. Inputs may be any strided layout; results are new
** contiguous tensors, or are written into 'out' when it is given (it must have
** the result's shape; its dtype decides the stored type). Every function
** returns a new reference, or NULL with 'e' filled.
** Compute is f32 (integer tensors keep exact values through doubles where needed).
*/
#ifndef ZOE_OPS_H
#define ZOE_OPS_H

#include "../core/rng.h"
#include "../core/tensor.h"

/* ---- elementwise ---- */
typedef enum zoe_binop {
  ZOE_ADD, ZOE_SUB, ZOE_MUL, ZOE_DIV, ZOE_POW, ZOE_MAXIMUM, ZOE_MINIMUM, ZOE_NBINOPS
} zoe_binop;

typedef enum zoe_unop {
  ZOE_NEG, ZOE_ABS, ZOE_EXP, ZOE_LOG, ZOE_SQRT, ZOE_RSQRT, ZOE_SIN, ZOE_COS, ZOE_TANH,
  ZOE_SIGMOID, ZOE_SILU, ZOE_GELU, ZOE_GELU_TANH, ZOE_NUNOPS
} zoe_unop;

const char *zoe_binop_name(zoe_binop op);
const char *zoe_unop_name(zoe_unop op);

/* a op b with numpy broadcasting */
zoe_tensor *zoe_binary(zoe_binop op, const zoe_tensor *a, const zoe_tensor *b, zoe_tensor *out,
                       zoe_err *e);
/* a op s, or s op a when 'scalar_first' */
zoe_tensor *zoe_binary_scalar(zoe_binop op, const zoe_tensor *a, double s, bool scalar_first,
                              zoe_tensor *out, zoe_err *e);
zoe_tensor *zoe_unary(zoe_unop op, const zoe_tensor *a, zoe_tensor *out, zoe_err *e);
zoe_tensor *zoe_clamp(const zoe_tensor *a, double lo, double hi, zoe_tensor *out, zoe_err *e);
/* cond ? a : b, all three broadcast; cond is nonzero-true of any dtype */
zoe_tensor *zoe_where(const zoe_tensor *cond, const zoe_tensor *a, const zoe_tensor *b,
                      zoe_tensor *out, zoe_err *e);
/* a + w * (b - a); w a tensor (broadcast) or, when NULL, the scalar 'ws' */
zoe_tensor *zoe_lerp(const zoe_tensor *a, const zoe_tensor *b, const zoe_tensor *w, double ws,
                     zoe_tensor *out, zoe_err *e);

/* ---- reductions over one dim ---- */
typedef enum zoe_redop {
  ZOE_SUM, ZOE_MEAN, ZOE_VAR, ZOE_MAX, ZOE_MIN, ZOE_ARGMAX, ZOE_ARGMIN, ZOE_NORM, ZOE_NREDOPS
} zoe_redop;
/*
** Reduce 'dim'; dim == ZOE_ALL_DIMS reduces everything to a scalar.
** 'p' is the order of ZOE_NORM; 'correction' the divisor offset of ZOE_VAR (1 = unbiased).
** ARGMAX/ARGMIN give i32 indices (0-based).
*/
#define ZOE_ALL_DIMS (-1000)
zoe_tensor *zoe_reduce(zoe_redop op, const zoe_tensor *a, int dim, bool keepdim, double p,
                       zoe_err *e);
const char *zoe_redop_name(zoe_redop op);

zoe_tensor *zoe_softmax(const zoe_tensor *a, int dim, zoe_tensor *out, zoe_err *e);
zoe_tensor *zoe_log_softmax(const zoe_tensor *a, int dim, zoe_tensor *out, zoe_err *e);

/* ---- matrix products (all through gemm.h) ---- */
/* zoe_matmul (a @ b as torch.matmul, batch dims broadcast): include/zoe.h */

/* ---- joining and gathering ---- */
zoe_tensor *zoe_cat(const zoe_tensor *const *ts, int n, int dim, zoe_err *e);
zoe_tensor *zoe_stack(const zoe_tensor *const *ts, int n, int dim, zoe_err *e);
/* rows of 'a' along 'dim' picked by integer 'index' (1-D, 0-based; i32 or i64) */
zoe_tensor *zoe_index_select(const zoe_tensor *a, int dim, const zoe_tensor *index, zoe_err *e);

/* ---- random ---- */
zoe_tensor *zoe_rand(zoe_dtype dt, int ndim, const int64_t *shape, zoe_rng *g, zoe_err *e);
zoe_tensor *zoe_randn(zoe_dtype dt, int ndim, const int64_t *shape, zoe_rng *g, zoe_err *e);

#endif
