/*
** error.h: status codes and the error context every fallible call takes.
** A call returns 0 (or a non-NULL result) on success; on failure it fills the
** caller's 'zoe_err' with a code and a message that says what and where.
** Nothing in the core aborts on bad input.
*/
#ifndef ZOE_ERROR_H
#define ZOE_ERROR_H

#include <stddef.h>

#define ZOE_ERR_MSG 512

/* X-macro: the codes and their names stay in one place. */
#define ZOE_ERRNO_MAP(XX)                                   \
  XX(EINVAL, -1, "invalid argument")                        \
  XX(ESHAPE, -2, "shape mismatch")                          \
  XX(EDTYPE, -3, "unsupported dtype")                       \
  XX(ENOMEM, -4, "out of memory")                           \
  XX(EIO, -5, "input/output error")                         \
  XX(EFORMAT, -6, "malformed file")                         \
  XX(ERANGE, -7, "index out of range")                      \
  XX(ECANCELED, -8, "canceled")                             \
  XX(ENOTSUP, -9, "not supported")

enum {
#define XX(name, val, text) ZOE_##name = val,
  ZOE_ERRNO_MAP(XX)
#undef XX
};

typedef struct zoe_err {
  int code;
  char msg[ZOE_ERR_MSG];
} zoe_err;

/* Fill 'e' (which may be NULL) and return 'code'. */
int zoe_errf(zoe_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "ctx: <old message>". */
int zoe_err_prefix(zoe_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *zoe_strerror(int code);

#endif
