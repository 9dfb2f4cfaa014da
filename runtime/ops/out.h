/*
** out.h: shared plumbing for ops: the optional output tensor and running a walk.
*/
#ifndef ZOE_OPS_OUT_H
#define ZOE_OPS_OUT_H

#include "../core/iter.h"

/*
** The tensor an op writes: 'out' (retained) when given, after checking it has
** 'shape'; otherwise a new contiguous tensor of dtype 'dt'.
*/
zoe_tensor *zoe_out_prepare(zoe_tensor *out, zoe_dtype dt, int ndim, const int64_t *shape,
                            const char *op, zoe_err *e);
/* zoe_iter_run with a grain for 'cost' per element; a cancel becomes an error naming 'op'. */
int zoe_out_run(const zoe_iter *it, zoe_inner_fn fn, void *ctx, double cost, const char *op,
                zoe_err *e);

#endif
