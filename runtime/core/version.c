/*
** version.c: the library's version, as its header (include/zoe.h) gave it at build time.
*/
#include "../../include/zoe.h"

const char *zoe_version(void) { return ZOE_VERSION; }
