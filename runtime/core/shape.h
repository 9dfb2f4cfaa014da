/*
** shape.h: shapes as text and dims normalized (shape.c), for every layer's messages.
*/
#ifndef ZOE_SHAPE_H
#define ZOE_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* "2x3x4" ("scalar" for 0 dims) into 'buf'; returns buf. */
char *zoe_shape_str_n(int ndim, const int64_t *shape, char *buf, size_t n);
/* Normalize dim 'd' (may be negative) for a tensor of 'ndim' dims (+1 when inserting). */
int zoe_norm_dim(int d, int ndim, const char *op, zoe_err *e, int *out);

#endif
