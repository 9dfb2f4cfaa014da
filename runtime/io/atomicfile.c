/*
** atomicfile.c: temporary file, fsync, rename.
*/
#include "atomicfile.h"
#include "tmpfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int zoe_atomic_open(zoe_atomic_file *f, const char *path, zoe_err *e) {
  f->fd = -1;
  f->path = strdup(path);
  size_t n = strlen(path);
  f->tmp = malloc(n + 16);
  if (!f->path || !f->tmp) {
    zoe_atomic_abort(f);
    return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
  }
  /* ".name.XXXXXX" beside the target: hidden, and on the same file system */
  const char *slash = strrchr(path, '/');
  size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
  memcpy(f->tmp, path, dir);
  snprintf(f->tmp + dir, n - dir + 16, ".%s.XXXXXX", path + dir);
  f->fd = mkostemp(f->tmp, O_CLOEXEC);
  if (f->fd < 0) {
    int err = errno;
    free(f->tmp);
    f->tmp = NULL; /* nothing to remove */
    zoe_atomic_abort(f);
    return zoe_errf(e, ZOE_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(err));
  }
  zoe_tmpfiles_add(f->tmp);
  fchmod(f->fd, 0644); /* mkstemp makes it 0600; a weights file is meant to be shared */
  return 0;
}

int zoe_atomic_write(zoe_atomic_file *f, const void *data, size_t n, zoe_err *e) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(f->fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return zoe_errf(e, ZOE_EIO, "%s: write failed: %s", f->path, w < 0 ? strerror(errno) : "no progress");
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int zoe_atomic_commit(zoe_atomic_file *f, zoe_err *e) {
  int rc = 0;
  if (fsync(f->fd) != 0)
    rc = zoe_errf(e, ZOE_EIO, "%s: fsync failed: %s", f->path, strerror(errno));
  if (close(f->fd) != 0 && !rc)
    rc = zoe_errf(e, ZOE_EIO, "%s: close failed: %s", f->path, strerror(errno));
  f->fd = -1;
  if (!rc && rename(f->tmp, f->path) != 0)
    rc = zoe_errf(e, ZOE_EIO, "%s: rename from %s failed: %s", f->path, f->tmp, strerror(errno));
  if (rc) {
    zoe_atomic_abort(f);
    return rc;
  }
  zoe_tmpfiles_forget(f->tmp);
  /* make the rename itself durable */
  const char *slash = strrchr(f->path, '/');
  char *dir = slash ? strndup(f->path, (size_t)(slash - f->path) + 1) : strdup(".");
  int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  free(dir);
  free(f->tmp);
  free(f->path);
  f->tmp = f->path = NULL;
  return 0;
}

void zoe_atomic_abort(zoe_atomic_file *f) {
  if (f->fd >= 0) close(f->fd);
  if (f->tmp) {
    unlink(f->tmp);
    zoe_tmpfiles_forget(f->tmp);
  }
  free(f->tmp);
  free(f->path);
  f->fd = -1;
  f->tmp = f->path = NULL;
}
