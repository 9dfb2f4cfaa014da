/*
** atomicfile.h: write a file so that it appears whole or not at all.
** Writes go to a temporary file in the same directory (same file system, so the
** rename is atomic); commit flushes it to disk and renames it over the target;
** abort removes it. An existing target is untouched until the commit.
*/
#ifndef ZOE_ATOMICFILE_H
#define ZOE_ATOMICFILE_H

#include <stddef.h>

#include "../core/error.h"

typedef struct zoe_atomic_file {
  int fd;
  char *path, *tmp;
} zoe_atomic_file;

int zoe_atomic_open(zoe_atomic_file *f, const char *path, zoe_err *e);
/* Write all 'n' bytes (retrying short writes). */
int zoe_atomic_write(zoe_atomic_file *f, const void *data, size_t n, zoe_err *e);
/* fsync, rename over the target, fsync the directory. Aborts on failure. */
int zoe_atomic_commit(zoe_atomic_file *f, zoe_err *e);
void zoe_atomic_abort(zoe_atomic_file *f);

#endif
