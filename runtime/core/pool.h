/*
** pool.h: the compute pool. Kernels split work into ranges that the pool's
** threads and the calling thread run together. One caller at a time owns the
** pool; a second concurrent caller (a cheap op running inline on the loop
** thread while the compute thread is busy) simply runs its ranges itself.
** Sized to the cores, or ZOE_THREADS; OpenBLAS is given the same count and
** never runs at the same time as our kernels, so the cores are not oversubscribed.
*/
#ifndef ZOE_POOL_H
#define ZOE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "../../include/zoe.h"

typedef void (*zoe_range_fn)(void *ctx, int64_t begin, int64_t end);

/* zoe_pool_init, zoe_pool_set_threads, zoe_pool_threads, zoe_pool_shutdown: include/zoe.h */

/*
** Run fn over [0, n) in ranges of at least 'grain' items, in parallel.
** Returns 0, or ZOE_ECANCELED when a cancel was requested before every range ran.
*/
int zoe_parallel_for(int64_t n, int64_t grain, zoe_range_fn fn, void *ctx);

/* Cancellation of the running compute: set by the loop, polled by kernels. */
void zoe_cancel_request(void);
void zoe_cancel_clear(void);
/* True when a cancel was requested and the calling thread watches the flag. */
bool zoe_cancel_requested(void);
/*
** Whether the calling thread's loops and gemm obey the flag (default: yes).
** The loop thread opts out: the flag cancels the compute thread's task, and a
** cheap op that another job runs inline meanwhile must not fail with it.
*/
void zoe_cancel_watch(bool watch);

#endif
