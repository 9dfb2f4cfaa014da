/*
** iter.h: walking several strided tensors of one (broadcast) shape together.
** Operand 0 is usually the output. Dims of size 1 are dropped and dims whose
** strides chain in every operand are merged, so a contiguous case becomes one
** flat run and the inner function sees long stretches.
*/
#ifndef ZOE_ITER_H
#define ZOE_ITER_H

#include "tensor.h"

#define ZOE_ITER_MAX 4

typedef struct zoe_iter {
  int nops;
  int ndim;                               /* after merging; the inner dim is ndim-1 */
  int64_t shape[ZOE_MAX_DIMS];
  int64_t stride[ZOE_ITER_MAX][ZOE_MAX_DIMS]; /* bytes */
  char *base[ZOE_ITER_MAX];
  int64_t numel;
} zoe_iter;

/* Inner loop: n elements; p[k] is operand k's first element, s[k] its stride in bytes. */
typedef void (*zoe_inner_fn)(void *ctx, int64_t n, char **p, const int64_t *s);

/*
** Broadcast the operands to 'shape' (ndim dims) and set up the walk.
** Fails with a message naming 'op' when an operand does not broadcast.
*/
int zoe_iter_init(zoe_iter *it, int nops, const zoe_tensor *const *ops, int ndim,
                  const int64_t *shape, const char *op, zoe_err *e);

/* Run over every element, in parallel ranges of at least 'grain' elements. */
int zoe_iter_run(const zoe_iter *it, zoe_inner_fn fn, void *ctx, int64_t grain);

/* The broadcast shape of two shapes, or an error naming 'op'. */
int zoe_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                        int64_t *out, const char *op, zoe_err *e);

/* Elements per parallel range for a loop costing 'cost' per element (1 = a copy). */
int64_t zoe_grain(double cost);

#endif
