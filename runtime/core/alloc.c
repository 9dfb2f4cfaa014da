/*
** alloc.c: size-class caching allocator with byte accounting.
** Size classes: below 4 KiB, multiples of 64 bytes; above, four classes per
** power of two (x1, x1.25, x1.5, x1.75), so at most 25% is wasted.
*/
#include "alloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

typedef struct block {
  struct block *next;
} block;

#define NCLASSES 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static block *free_lists[NCLASSES];
static zoe_mem_stats stats;
static int64_t cache_limit = -1;

static void update_peak(void) {
  int64_t held = stats.live + stats.cached + zoe_arena_bytes();
  if (held > stats.peak) stats.peak = held;
}

/* A run was recorded into a new arena: count its buffer, then give back the cache it replaces. */
static void settle_arena(void) {
  pthread_mutex_lock(&lock);
  update_peak();
  pthread_mutex_unlock(&lock);
  zoe_mem_trim_cache();
}

/* Class index and the rounded size of a request. Sizes past the table are not cached. */
static int size_class(size_t n, size_t *rounded) {
  if (n <= 4096) {
    size_t r = (n + 63) & ~(size_t)63;
    if (r == 0) r = 64;
    *rounded = r;
    return (int)(r / 64) - 1; /* 0..63 */
  }
  int lg = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* n-1 in [2^lg, 2^(lg+1)) */
  size_t base = (size_t)1 << lg, quarter = base / 4;
  size_t k = (n - base + quarter - 1) / quarter; /* 1..4 */
  *rounded = base + k * quarter;
  int cls = 64 + (lg - 12) * 4 + (int)(k - 1);
  return cls < NCLASSES ? cls : -1;
}

static void *alloc_cached(size_t nbytes, zoe_err *e);

static int64_t limit(void) {
  if (cache_limit < 0) {
    const char *env = getenv("ZOE_CACHE_MB");
    cache_limit = env ? (int64_t)atoll(env) << 20 : (int64_t)2 << 30;
  }
  return cache_limit;
}

void *zoe_alloc(size_t nbytes, zoe_err *e) {
  if (zoe_arena_take_recorded()) settle_arena();
  /* an arena packs blocks at 64 bytes, not at size classes */
  size_t exact = nbytes ? (nbytes + 63) & ~(size_t)63 : 64;
  void *from_arena = zoe_arena_alloc_hook(exact);
  if (from_arena) return from_arena;
  void *p = alloc_cached(nbytes, e);
  zoe_arena_note_alloc(p, exact);
  return p;
}

static void *alloc_cached(size_t nbytes, zoe_err *e) {
  size_t rounded;
  int cls = size_class(nbytes, &rounded);
  pthread_mutex_lock(&lock);
  if (cls >= 0 && free_lists[cls]) {
    block *b = free_lists[cls];
    free_lists[cls] = b->next;
    stats.cached -= (int64_t)rounded;
    stats.live += (int64_t)rounded;
    stats.reuses++;
    pthread_mutex_unlock(&lock);
    return b;
  }
  pthread_mutex_unlock(&lock);
  void *p = aligned_alloc(ZOE_ALIGN, rounded);
  if (!p) {
    /* Give the cache back and try once more before failing. */
    zoe_mem_trim_cache();
    p = aligned_alloc(ZOE_ALIGN, rounded);
  }
  if (!p) {
    zoe_errf(e, ZOE_ENOMEM, "out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  pthread_mutex_lock(&lock);
  stats.live += (int64_t)rounded;
  stats.allocs++;
  update_peak();
  pthread_mutex_unlock(&lock);
  return p;
}

void zoe_free(void *p, size_t nbytes) {
  if (!p || zoe_arena_free_hook(p)) return;
  size_t rounded;
  int cls = size_class(nbytes, &rounded);
  pthread_mutex_lock(&lock);
  stats.live -= (int64_t)rounded;
  if (cls >= 0 && stats.cached + (int64_t)rounded <= limit()) {
    block *b = p;
    b->next = free_lists[cls];
    free_lists[cls] = b;
    stats.cached += (int64_t)rounded;
    pthread_mutex_unlock(&lock);
    return;
  }
  pthread_mutex_unlock(&lock);
  free(p);
}

void zoe_mem_trim(void) {
  zoe_mem_trim_cache();
  zoe_arena_trim();
}

void zoe_mem_trim_cache(void) {
  pthread_mutex_lock(&lock);
  block *lists[NCLASSES];
  memcpy(lists, free_lists, sizeof lists);
  memset(free_lists, 0, sizeof free_lists);
  stats.cached = 0;
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < NCLASSES; i++) {
    while (lists[i]) {
      block *next = lists[i]->next;
      free(lists[i]);
      lists[i] = next;
    }
  }
}

void zoe_mem_get(zoe_mem_stats *out) {
  if (zoe_arena_take_recorded()) settle_arena();
  pthread_mutex_lock(&lock);
  *out = stats;
  out->arena = zoe_arena_bytes();
  pthread_mutex_unlock(&lock);
}

void zoe_mem_reset_peak(void) {
  pthread_mutex_lock(&lock);
  stats.peak = stats.live + stats.cached + zoe_arena_bytes();
  pthread_mutex_unlock(&lock);
}


void zoe_mem_add_mapped(int64_t delta) {
  pthread_mutex_lock(&lock);
  stats.mapped += delta;
  pthread_mutex_unlock(&lock);
}
