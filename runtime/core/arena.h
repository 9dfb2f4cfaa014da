/*
** arena.h: activation arenas sized once per shape (arena.c).
**
**   zoe_arena_enter(key); ... zoe_arena_leave();
**
** around C code whose allocations on this thread depend only on the shapes that
** 'key' names (a hash of them and of the code's name). The first run records, later
** runs allocate from one buffer planned from that record; see arena.c. Regions nest
** (an inner one is part of the outer). zoe_mem_trim() frees idle arenas.
*/
#ifndef ZOE_ARENA_H
#define ZOE_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void zoe_arena_enter(uint64_t key);
void zoe_arena_leave(void);
/* The pool's ranges run outside the arena: pause(true) before, pause(false) after. */
void zoe_arena_pause(bool pause);
/* A key from a name and some sizes (FNV-1a). */
uint64_t zoe_arena_key(const char *name, int n, const int64_t *sizes);

/* alloc.c's side: a block from the arena (NULL: allocate as usual, then note it) */
void *zoe_arena_alloc_hook(size_t size);
void zoe_arena_note_alloc(void *p, size_t size);
/* true when 'p' is the arena's (nothing more to do); notes frees while recording */
bool zoe_arena_free_hook(void *p);
void zoe_arena_trim(void);
/* The bytes of every planned buffer (zoe_mem_get's 'arena'). */
int64_t zoe_arena_bytes(void);
/*
** Whether a run was recorded since the last call: what that run freed sits in the
** allocator's cache, which the arena now replaces (alloc.c trims it).
*/
bool zoe_arena_take_recorded(void);

#endif
