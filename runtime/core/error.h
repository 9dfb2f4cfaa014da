/*
** error.h: filling the error context every fallible call takes (the codes and
** zoe_err are public: include/zoe.h).
** A call returns 0 (or a non-NULL result) on success; on failure it fills the
** caller's 'zoe_err' with a code and a message that says what and where.
** Nothing in the core aborts on bad input.
*/
#ifndef ZOE_ERROR_H
#define ZOE_ERROR_H

#include "../../include/zoe.h"

/* Fill 'e' (which may be NULL) and return 'code'. */
int zoe_errf(zoe_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "ctx: <old message>". */
int zoe_err_prefix(zoe_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
