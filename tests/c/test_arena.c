/*
** test_arena.c: activation arenas (runtime/core/arena.c). A "block" allocates a
** fixed pattern of buffers with overlapping lifetimes and returns one; every
** buffer is filled with its own byte and checked before it is freed, so two
** live buffers sharing bytes fail. Then: the replay takes no memory from the
** system, a different pattern falls back safely and is recorded again, a block
** that outlives a replay retires the arena, a block still live where the plan puts
** the next falls back, the pool's ranges stay outside, and
** zoe_mem_trim frees idle arenas.
*/
#include <stdint.h>
#include <stdlib.h>

#include "../../runtime/core/alloc.h"
#include "../../runtime/core/arena.h"
#include "../../runtime/core/pool.h"
#include "test.h"

typedef struct buf {
  unsigned char *p;
  size_t n;
  unsigned char tag;
} buf;

static buf take(size_t n, unsigned char tag) {
  buf b = {zoe_alloc(n, NULL), n, tag};
  CHECK(b.p != NULL, "alloc %zu", n);
  if (b.p) memset(b.p, tag, n);
  return b;
}

/* checks the buffer still holds its byte (nobody else wrote into it), then frees it */
static void give(buf b) {
  size_t bad = 0;
  for (size_t i = 0; i < b.n; i++) bad += b.p[i] != b.tag;
  CHECK(bad == 0, "buffer %d: %zu bytes overwritten while it was live", b.tag, bad);
  zoe_free(b.p, b.n);
}

static int64_t arena_bytes(void) {
  zoe_mem_stats m;
  zoe_mem_get(&m);
  return m.arena;
}

static int64_t system_allocs(void) {
  zoe_mem_stats m;
  zoe_mem_get(&m);
  return m.allocs;
}

/* A block: temporaries with overlapping lifetimes; returns its result (allocated inside). */
static buf run_block(uint64_t key, size_t scale, bool keep_a) {
  zoe_arena_enter(key);
  buf x = take(3 << 20, 1), a = take(scale << 20, 2), b = take(1 << 20, 3);
  give(x);
  buf c = take(2 << 20, 4), out = take(1 << 20, 5);
  give(b);
  buf d = take(4 << 20, 6);
  give(c);
  give(d);
  if (!keep_a) give(a);
  zoe_arena_leave();
  if (keep_a) give(a);
  return out;
}

static void test_replay_uses_the_plan(void) {
  zoe_mem_trim();
  uint64_t key = zoe_arena_key("test", 1, (int64_t[]){1});
  give(run_block(key, 2, false)); /* records */
  int64_t planned = arena_bytes();
  /* the most alive at once is 8 MiB (the result aside), the temporaries sum to 12 MiB */
  CHECK(planned >= (int64_t)8 << 20 && planned <= (int64_t)9 << 20, "planned %lld bytes", (long long)planned);
  int64_t before = system_allocs();
  for (int i = 0; i < 3; i++) {
    buf out = run_block(key, 2, false);
    give(out);
  }
  /* only the results, which outlive each run, come from the allocator (its cache) */
  CHECK(system_allocs() - before <= 1, "replays allocated %lld blocks from the system",
        (long long)(system_allocs() - before));
  CHECK(arena_bytes() == planned, "the arena is sized once: %lld then %lld", (long long)planned,
        (long long)arena_bytes());
  zoe_mem_trim();
  CHECK(arena_bytes() == 0, "zoe_mem_trim frees an idle arena: %lld left", (long long)arena_bytes());
}

static void test_other_sizes_fall_back(void) {
  zoe_mem_trim();
  uint64_t key = zoe_arena_key("test", 1, (int64_t[]){2});
  give(run_block(key, 2, false));
  give(run_block(key, 5, false)); /* a different pattern under the same key: allocated as usual */
  give(run_block(key, 5, false)); /* recorded again */
  give(run_block(key, 5, false)); /* and replayed */
  CHECK(arena_bytes() > 0, "an arena for the new pattern");
  zoe_mem_trim();
}

static void test_outliving_block_retires_the_arena(void) {
  zoe_mem_trim();
  uint64_t key = zoe_arena_key("test", 1, (int64_t[]){3});
  give(run_block(key, 2, false));
  int64_t planned = arena_bytes();
  /* 'a' was freed inside when recorded; now it outlives the run: the arena must not be reused */
  zoe_arena_enter(key);
  buf x = take(3 << 20, 1), a = take(2 << 20, 2);
  give(x);
  zoe_arena_leave();
  buf out = run_block(key, 2, false); /* records into a new arena while 'a' is live */
  give(out);
  give(run_block(key, 2, false));
  give(a);
  CHECK(arena_bytes() == planned, "the retired arena goes with its last block: %lld vs %lld",
        (long long)arena_bytes(), (long long)planned);
  zoe_mem_trim();
  CHECK(arena_bytes() == 0, "trimmed");
}

/* recorded: x freed before y is made (y planned on x's bytes); replayed with x still live */
static void test_changed_lifetimes_fall_back(void) {
  zoe_mem_trim();
  uint64_t key = zoe_arena_key("test", 1, (int64_t[]){5});
  for (int r = 0; r < 2; r++) {
    zoe_arena_enter(key);
    buf x = take(2 << 20, 1);
    give(x);
    buf y = take(2 << 20, 2);
    give(y);
    zoe_arena_leave();
  }
  zoe_arena_enter(key);
  buf x = take(2 << 20, 1), y = take(2 << 20, 2);
  give(y);
  give(x);
  zoe_arena_leave();
  zoe_mem_trim();
}

typedef struct pool_ctx {
  _Atomic int64_t bad;
} pool_ctx;

static void range_allocs(void *arg, int64_t b, int64_t e) {
  pool_ctx *c = arg;
  for (int64_t i = b; i < e; i++) {
    size_t n = (size_t)(1 + i % 7) << 18;
    unsigned char *p = zoe_alloc(n, NULL);
    if (!p) {
      c->bad++;
      continue;
    }
    memset(p, (int)(i & 0xff), n);
    for (size_t k = 0; k < n; k += 4096) c->bad += p[k] != (unsigned char)(i & 0xff);
    zoe_free(p, n);
  }
}

/* the pool's ranges allocate outside the arena, however many the calling thread runs */
static void test_pool_ranges_outside(void) {
  zoe_mem_trim();
  uint64_t key = zoe_arena_key("test", 1, (int64_t[]){4});
  for (int r = 0; r < 4; r++) {
    pool_ctx c = {0};
    zoe_arena_enter(key);
    buf a = take(2 << 20, 7);
    zoe_parallel_for(64, 1, range_allocs, &c);
    buf b = take(1 << 20, 8);
    give(a);
    give(b);
    zoe_arena_leave();
    CHECK(c.bad == 0, "run %d: %lld bad bytes in the ranges' blocks", r, (long long)c.bad);
  }
  CHECK(arena_bytes() > 0 && arena_bytes() <= (int64_t)3 << 20, "the arena holds the region's own blocks only: %lld",
        (long long)arena_bytes());
  zoe_mem_trim();
}

int main(void) {
  zoe_pool_init(2);
  RUN(test_replay_uses_the_plan);
  RUN(test_other_sizes_fall_back);
  RUN(test_outliving_block_retires_the_arena);
  RUN(test_changed_lifetimes_fall_back);
  RUN(test_pool_ranges_outside);
  zoe_pool_shutdown();
  return test_summary();
}
