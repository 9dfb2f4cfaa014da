/*
** mapfile.h: a file mapped into memory, shared by the tensors read from it.
** A mapping is refcounted: the weights object holds one reference and every
** storage made from it holds one, so the file stays mapped until the last
** tensor goes, whatever order things are released in. Mapped bytes are
** counted in zoe_mem_get()'s 'mapped'.
**
** Files are mapped private and writable (copy-on-write, no swap reserved): an
** in-place op on a weight changes this process's copy of the page, never the
** file, and never faults on a read-only page.
*/
#ifndef ZOE_MAPFILE_H
#define ZOE_MAPFILE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"

typedef struct zoe_mapping {
  atomic_int refcount;
  unsigned char *base;
  size_t size;
  int is_file;  /* 1: munmap on release; 0: borrowed memory (fuzzers, tests) */
} zoe_mapping;

/* Map the whole of 'path' (an empty file gives size 0 and no mapping). */
zoe_mapping *zoe_map_file(const char *path, zoe_err *e);
/* Borrow 'size' bytes the caller keeps alive longer than every tensor made from them. */
zoe_mapping *zoe_map_memory(const void *data, size_t size, zoe_err *e);
zoe_mapping *zoe_map_retain(zoe_mapping *m);
void zoe_map_release(zoe_mapping *m);

/*
** A storage over bytes [begin, begin + nbytes) of the mapping, keeping the
** mapping alive. When the bytes are not aligned for 'align' (a dtype size),
** they are copied into an aligned block instead: a misaligned view would be
** undefined behaviour for the kernels' typed loads.
*/
zoe_storage *zoe_map_storage(zoe_mapping *m, uint64_t begin, uint64_t nbytes, size_t align,
                             zoe_err *e);

/*
** Hand the pages under a tensor mapped from a file back to the kernel: the process's
** resident memory drops, and a later use reads them again (from the page cache). Only
** for tensors never written to. Returns 1 when pages were dropped, 0 for tensors that
** are not file mappings (or span less than a page), ZOE_EIO when the kernel refused.
*/
int zoe_map_drop_pages(const zoe_tensor *t);

/* Read a whole small file into a NUL-terminated heap buffer (JSON files); free() it. */
char *zoe_read_small_file(const char *path, size_t limit, size_t *len, zoe_err *e);

#endif
