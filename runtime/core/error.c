/*
** error.c: filling error contexts.
*/
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int zoe_errf(zoe_err *e, int code, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
  }
  return code;
}

int zoe_err_prefix(zoe_err *e, const char *fmt, ...) {
  if (!e) return 0;
  char head[ZOE_ERR_MSG], joined[2 * ZOE_ERR_MSG + 2];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  snprintf(joined, sizeof joined, "%s: %s", head, e->msg);
  memcpy(e->msg, joined, sizeof e->msg - 1);
  e->msg[sizeof e->msg - 1] = '\0';
  return e->code;
}

const char *zoe_strerror(int code) {
  switch (code) {
#define XX(name, val, text) case val: return text;
    ZOE_ERRNO_MAP(XX)
#undef XX
    case 0: return "ok";
    default: return "unknown error";
  }
}

