/*
** mapfile.c: refcounted file mappings and the storages made from them.
*/
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/alloc.h"

zoe_mapping *zoe_map_file(const char *path, zoe_err *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    zoe_errf(e, ZOE_EIO, "%s: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int err = errno;
    zoe_errf(e, ZOE_EIO, "%s: %s", path,
             fstat(fd, &st) != 0 ? strerror(err) : S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    close(fd);
    return NULL;
  }
  zoe_mapping *m = calloc(1, sizeof *m);
  if (!m) {
    close(fd);
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
    return NULL;
  }
  atomic_init(&m->refcount, 1);
  m->size = (size_t)st.st_size;
  m->is_file = 1;
  if (m->size > 0) {
    void *p = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
      zoe_errf(e, ZOE_EIO, "%s: cannot map %zu bytes: %s", path, m->size, strerror(errno));
      free(m);
      close(fd);
      return NULL;
    }
    m->base = p;
    /* Ask for huge pages (2 MiB): read through this mapping, the page cache keeps
       the file in 2 MiB folios and a fault maps one with a single entry. A text
       encoder streamed layer by layer maps and drops 9 GB per prompt: in 4 KiB
       pages that page-table work alone costs 0.45 s of a 1.6 s umT5 run. Pages the
       cache already holds keep their size; a kernel without it ignores the hint. */
    (void)madvise(p, m->size, MADV_HUGEPAGE);
    zoe_mem_add_mapped((int64_t)m->size);
  }
  close(fd); /* the mapping keeps the file */
  return m;
}

zoe_mapping *zoe_map_memory(const void *data, size_t size, zoe_err *e) {
  zoe_mapping *m = calloc(1, sizeof *m);
  if (!m) {
    zoe_errf(e, ZOE_ENOMEM, "out of memory");
    return NULL;
  }
  atomic_init(&m->refcount, 1);
  m->base = (unsigned char *)data;
  m->size = size;
  return m;
}

zoe_mapping *zoe_map_retain(zoe_mapping *m) {
  if (m) atomic_fetch_add_explicit(&m->refcount, 1, memory_order_relaxed);
  return m;
}

void zoe_map_release(zoe_mapping *m) {
  if (!m || atomic_fetch_sub_explicit(&m->refcount, 1, memory_order_acq_rel) != 1) return;
  if (m->is_file && m->base) {
    munmap(m->base, m->size);
    zoe_mem_add_mapped(-(int64_t)m->size);
  }
  free(m);
}

static void release_mapped(zoe_storage *s) { zoe_map_release(s->owner); }

zoe_storage *zoe_map_storage(zoe_mapping *m, uint64_t begin, uint64_t nbytes, size_t align,
                             zoe_err *e) {
  if (begin > m->size || nbytes > m->size - begin) {
    zoe_errf(e, ZOE_EFORMAT, "bytes %llu..%llu lie outside the file of %zu bytes",
             (unsigned long long)begin, (unsigned long long)(begin + nbytes), m->size);
    return NULL;
  }
  unsigned char *p = m->base + begin;
  if (align > 1 && (uintptr_t)p % align != 0) {
    zoe_storage *s = zoe_storage_new((size_t)nbytes, e);
    if (s && nbytes) memcpy(s->data, p, (size_t)nbytes);
    return s;
  }
  /* an empty tensor still needs a valid non-NULL pointer */
  static unsigned char empty[8] __attribute__((aligned(8)));
  zoe_storage *s = zoe_storage_wrap(nbytes ? p : empty, (size_t)nbytes, release_mapped, m, e);
  if (s) zoe_map_retain(m);
  return s;
}

int zoe_map_drop_pages(const zoe_tensor *t) {
  zoe_storage *s = t->storage;
  if (!s || s->release != release_mapped || !((zoe_mapping *)s->owner)->is_file) return 0;
  int64_t n = zoe_numel(t);
  if (n == 0) return 0;
  /* the bytes the tensor spans, shrunk inward to whole pages (neighbours keep theirs) */
  int64_t lo = t->offset, hi = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    if (t->stride[i] >= 0) hi += t->stride[i] * (t->shape[i] - 1);
    else lo += t->stride[i] * (t->shape[i] - 1);
  }
  size_t es = zoe_dtype_size(t->dtype), page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t begin = (uintptr_t)s->data + (uintptr_t)lo * es, end = (uintptr_t)s->data + (uintptr_t)(hi + 1) * es;
  begin = (begin + page - 1) / page * page;
  end = end / page * page;
  if (end <= begin) return 0;
  return madvise((void *)begin, end - begin, MADV_DONTNEED) == 0 ? 1 : ZOE_EIO;
}

char *zoe_read_small_file(const char *path, size_t limit, size_t *len, zoe_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    zoe_errf(e, ZOE_EIO, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    if (n == cap) {
      if (cap >= limit) {
        zoe_errf(e, ZOE_EFORMAT, "%s: larger than %zu bytes", path, limit);
        break;
      }
      cap = cap * 2 < limit ? cap * 2 : limit;
      char *nb = realloc(buf, cap + 1);
      if (!nb) break;
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) {
        zoe_errf(e, ZOE_EIO, "%s: read error", path);
        break;
      }
      fclose(f);
      buf[n] = '\0';
      if (len) *len = n;
      return buf;
    }
  }
  if (!buf || (e && !e->code)) zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
  free(buf);
  fclose(f);
  return NULL;
}
