/*
** shape.c: shapes as text and dims normalized, for every layer's messages.
*/
#include "shape.h"

#include <stdio.h>

char *zoe_shape_str_n(int ndim, const int64_t *shape, char *buf, size_t n) {
  if (ndim == 0) {
    snprintf(buf, n, "scalar");
    return buf;
  }
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)shape[i]);
  return buf;
}

int zoe_norm_dim(int d, int ndim, const char *op, zoe_err *e, int *out) {
  int r = d < 0 ? d + ndim : d;
  if (r < 0 || r >= ndim || ndim == 0)
    return zoe_errf(e, ZOE_ERANGE, "%s: dim %d out of range for %d dims", op, d, ndim);
  *out = r;
  return 0;
}
