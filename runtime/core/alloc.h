/*
** alloc.h: the caching allocator for tensor memory, and memory accounting.
** Blocks are rounded up to a size class and kept on a free list when released,
** so a loop that makes and drops same-sized temporaries stops calling malloc.
** Every byte is counted: live (held by tensors), cached (free lists) and mapped
** (weights read through mmap, counted separately since the kernel pages them).
** Thread-safe: the compute thread allocates while the loop thread frees.
*/
#ifndef ZOE_ALLOC_H
#define ZOE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ZOE_ALIGN 64

typedef struct zoe_mem_stats {
  int64_t live;      /* bytes in blocks handed out and not yet freed */
  int64_t cached;    /* bytes kept on free lists for reuse */
  int64_t peak;      /* highest live + cached seen since start or the last reset */
  int64_t mapped;    /* bytes of files mapped for weights */
  int64_t arena;     /* bytes of activation arenas (arena.h), counted in peak */
  int64_t allocs;    /* blocks taken from the system (cache misses) */
  int64_t reuses;    /* blocks served from the cache */
} zoe_mem_stats;

/* 64-byte aligned block of at least 'nbytes'; NULL and a message on failure. */
void *zoe_alloc(size_t nbytes, zoe_err *e);
/* Return a block; 'nbytes' must be what was asked of zoe_alloc. */
void zoe_free(void *p, size_t nbytes);

void zoe_mem_get(zoe_mem_stats *out);
void zoe_mem_reset_peak(void);
/* zoe_mem_trim (every cached block and idle arena back to the system): include/zoe.h */
/* Only the cached blocks. */
void zoe_mem_trim_cache(void);
void zoe_mem_add_mapped(int64_t delta);

#endif
