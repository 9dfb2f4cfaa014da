/*
** arena.c: activation arenas, planned from a trace (alloc.h).
**
** C code whose allocations depend only on the shapes it is given (the DiT block)
** runs between zoe_arena_enter(key) and zoe_arena_leave(). The first run
** with a key records the blocks the calling thread allocates and when each is freed.
** From those lifetimes a plan gives every block freed inside the run an offset in
** one buffer, blocks alive at the same time never sharing bytes (first fit, largest
** first), and the buffer is allocated once. Later runs with the key take the planned
** offsets in order: no malloc, no rounding to size classes, no cache of freed blocks
** growing beside it; the activations' peak is the plan's size. Blocks that outlive
** the run (its result) are allocated as usual.
**
** A replay checks itself: an allocation of another size than recorded, or one whose
** planned bytes a live block still holds, ends the replay for that run (the rest is
** allocated as usual) and the key is recorded again next time. An arena whose block
** outlives a replay is retired and freed with that block. Ranges run by the pool use
** the usual allocator (how many ranges the calling thread runs varies from run to run).
*/
#include "arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>


#define MAX_ARENAS 4
#define MAX_RECS 1024 /* a DiT block at 1200 tokens makes 39; the plan is cubic in the worst case */
#define ARENA_MIN_BYTES ((int64_t)1 << 20) /* a plan smaller than this is not worth a buffer */

enum { FREE_SLOT, RECORDING, READY, USELESS, RETIRED };

typedef struct rec {
  int64_t size, off;
  int64_t born, died; /* event times; died < 0: outlived the recorded run */
  void *ptr;          /* while recording: the block as allocated */
} rec;

typedef struct arena {
  int state;
  uint64_t key;
  rec *recs;
  int nrec;
  int64_t clock;
  char *base;
  int64_t bytes;
  int next;       /* replay: the next allocation's record */
  bool diverged;  /* replay: the rest of this run is allocated as usual */
  int *live;      /* replay: records whose planned bytes are held now */
  int nlive;
  bool in_use;
  uint64_t last_used;
} arena;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static arena slots[MAX_ARENAS];
static atomic_int busy_slots; /* slots not FREE_SLOT: zoe_free's quick way out */
static atomic_llong planned_bytes; /* every buffer's bytes (zoe_arena_bytes) */
static atomic_bool recorded;      /* a run was recorded since alloc.c last asked */
static uint64_t uses;
static _Thread_local arena *cur;
static _Thread_local int depth, paused;

static void drop_buffer(arena *a) {
  if (!a->base) return;
  free(a->base);
  atomic_fetch_sub(&planned_bytes, a->bytes);
  a->base = NULL;
  a->bytes = 0;
}

static void clear_slot(arena *a) {
  drop_buffer(a);
  free(a->recs);
  free(a->live);
  memset(a, 0, sizeof *a);
  atomic_fetch_sub(&busy_slots, 1);
}

static void start_recording(arena *a, uint64_t key) {
  drop_buffer(a);
  free(a->live);
  a->live = NULL;
  a->state = RECORDING;
  a->key = key;
  a->nrec = 0;
  a->clock = 0;
  a->nlive = 0;
  if (!a->recs) a->recs = malloc(sizeof(rec) * MAX_RECS);
  if (!a->recs) a->state = USELESS;
}

/* The slot for 'key': its own, a free one, or the least recently used idle one. */
static arena *slot_for(uint64_t key) {
  arena *victim = NULL;
  for (int i = 0; i < MAX_ARENAS; i++) {
    arena *a = &slots[i];
    if (a->state != FREE_SLOT && a->state != RETIRED && a->key == key) return a->in_use ? NULL : a;
  }
  for (int i = 0; i < MAX_ARENAS; i++) {
    arena *a = &slots[i];
    if (a->state == FREE_SLOT) {
      atomic_fetch_add(&busy_slots, 1);
      start_recording(a, key);
      return a;
    }
    if (a->state != RETIRED && !a->in_use && (!victim || a->last_used < victim->last_used)) victim = a;
  }
  if (victim) start_recording(victim, key);
  return victim;
}

void zoe_arena_enter(uint64_t key) {
  if (depth++ > 0) return; /* an inner region is part of the outer one */
  pthread_mutex_lock(&mu);
  arena *a = slot_for(key);
  if (a && a->state != USELESS) {
    a->in_use = true;
    a->last_used = ++uses;
    a->next = 0;
    a->diverged = false;
    cur = a;
  }
  pthread_mutex_unlock(&mu);
}

static bool overlaps(const rec *x, const rec *y) { return x->off < y->off + y->size && y->off < x->off + x->size; }

static int by_size_desc(const void *p, const void *q) {
  const rec *x = *(rec *const *)p, *y = *(rec *const *)q;
  return x->size < y->size ? 1 : x->size > y->size ? -1 : (x->born > y->born) - (x->born < y->born);
}

/* Offsets for the records freed inside the run; false when the plan is not worth a buffer. */
static bool plan(arena *a) {
  rec **order = malloc(sizeof(rec *) * (size_t)(a->nrec ? a->nrec : 1));
  rec **placed = malloc(sizeof(rec *) * (size_t)(a->nrec ? a->nrec : 1));
  if (!order || !placed) {
    free(order);
    free(placed);
    return false;
  }
  int n = 0, np = 0;
  for (int i = 0; i < a->nrec; i++)
    if (a->recs[i].died >= 0) order[n++] = &a->recs[i];
  qsort(order, (size_t)n, sizeof *order, by_size_desc);
  int64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    rec *r = order[i];
    r->off = 0;
    /* lowest offset clear of every placed block alive at the same time: retry past each clash */
    for (bool moved = true; moved;) {
      moved = false;
      for (int k = 0; k < np; k++) {
        rec *p = placed[k];
        if (p->born < r->died && r->born < p->died && overlaps(p, r)) {
          r->off = p->off + p->size;
          moved = true;
        }
      }
    }
    placed[np++] = r;
    if (r->off + r->size > bytes) bytes = r->off + r->size;
  }
  free(order);
  free(placed);
  if (bytes < ARENA_MIN_BYTES) return false;
  a->base = aligned_alloc(64, (size_t)bytes);
  a->live = malloc(sizeof(int) * (size_t)a->nrec);
  if (!a->base || !a->live) {
    free(a->base);
    free(a->live);
    a->base = NULL;
    a->live = NULL;
    return false;
  }
  a->bytes = bytes;
  atomic_fetch_add(&planned_bytes, bytes);
  return true;
}

void zoe_arena_leave(void) {
  if (depth == 0 || --depth > 0) return;
  arena *a = cur;
  cur = NULL;
  if (!a) return;
  pthread_mutex_lock(&mu);
  a->in_use = false;
  if (a->state == RECORDING) {
    atomic_store(&recorded, true);
    for (int i = 0; i < a->nrec; i++) a->recs[i].ptr = NULL;
    a->state = plan(a) ? READY : USELESS;
  } else if (a->nlive > 0) {
    a->state = RETIRED; /* a block of the buffer outlived the run: freed with it */
  } else if (a->diverged) {
    start_recording(a, a->key);
  }
  pthread_mutex_unlock(&mu);
}

int64_t zoe_arena_bytes(void) { return atomic_load(&planned_bytes); }

bool zoe_arena_take_recorded(void) {
  return atomic_load_explicit(&recorded, memory_order_relaxed) && atomic_exchange(&recorded, false);
}

void zoe_arena_pause(bool pause) {
  if (pause) paused++;
  else paused--;
}

void *zoe_arena_alloc_hook(size_t size) {
  arena *a = cur;
  if (!a || paused) return NULL;
  void *p = NULL;
  pthread_mutex_lock(&mu);
  if (a->state == READY && !a->diverged) {
    int i = a->next++;
    rec *r = i < a->nrec ? &a->recs[i] : NULL;
    bool ok = r && r->size == (int64_t)size;
    for (int k = 0; ok && r->died >= 0 && k < a->nlive; k++) ok = !overlaps(&a->recs[a->live[k]], r);
    if (!ok) a->diverged = true;
    else if (r->died >= 0) { /* planned (blocks that outlived the recorded run are allocated as usual) */
      a->live[a->nlive++] = i;
      p = a->base + r->off;
    }
  }
  pthread_mutex_unlock(&mu);
  return p;
}

void zoe_arena_note_alloc(void *p, size_t size) {
  arena *a = cur;
  if (!a || paused || !p) return;
  pthread_mutex_lock(&mu);
  if (a->state == RECORDING) {
    if (a->nrec == MAX_RECS) {
      a->state = USELESS; /* too many blocks to plan */
    } else {
      a->recs[a->nrec++] = (rec){.size = (int64_t)size, .born = a->clock++, .died = -1, .ptr = p};
    }
  }
  pthread_mutex_unlock(&mu);
}

bool zoe_arena_free_hook(void *p) {
  if (atomic_load_explicit(&busy_slots, memory_order_relaxed) == 0) return false;
  bool mine = false;
  pthread_mutex_lock(&mu);
  for (int s = 0; s < MAX_ARENAS && !mine; s++) {
    arena *a = &slots[s];
    if (a->state == RECORDING) {
      for (int i = a->nrec - 1; i >= 0; i--)
        if (a->recs[i].ptr == p && a->recs[i].died < 0) {
          a->recs[i].died = a->clock++;
          a->recs[i].ptr = NULL;
          break;
        }
    } else if (a->base && (char *)p >= a->base && (char *)p < a->base + a->bytes) {
      mine = true;
      for (int k = 0; k < a->nlive; k++)
        if (a->base + a->recs[a->live[k]].off == (char *)p) {
          a->live[k] = a->live[--a->nlive];
          break;
        }
      if (a->state == RETIRED && a->nlive == 0) clear_slot(a);
    }
  }
  pthread_mutex_unlock(&mu);
  return mine;
}

void zoe_arena_trim(void) {
  pthread_mutex_lock(&mu);
  for (int s = 0; s < MAX_ARENAS; s++) {
    arena *a = &slots[s];
    if (a->state != FREE_SLOT && a->state != RETIRED && !a->in_use) clear_slot(a);
  }
  pthread_mutex_unlock(&mu);
}

uint64_t zoe_arena_key(const char *name, int n, const int64_t *sizes) {
  uint64_t h = 1469598103934665603ull;
  for (const char *c = name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
  for (int i = 0; i < n; i++)
    for (int b = 0; b < 8; b++) h = (h ^ (uint8_t)((uint64_t)sizes[i] >> (8 * b))) * 1099511628211ull;
  return h;
}
