/*
** compute.h: the compute thread. Heavy work runs here, one request at a time,
** while the loop thread goes on; the request's 'done' callback then runs on the
** loop thread, woken by uv_async_send. A request uses the whole machine: our
** pool for our kernels, OpenBLAS's threads for gemm.
**
** Requests are caller-owned, as libuv's are: the memory of a zoe_work must stay
** valid from zoe_compute_submit until its 'done' callback has run, or until
** zoe_compute_drop returns. There is one compute thread per process.
*/
#ifndef ZOE_COMPUTE_H
#define ZOE_COMPUTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct zoe_work zoe_work;
/* Runs on the compute thread: no Lua, no libuv. */
typedef void (*zoe_work_fn)(zoe_work *w);
/* Runs on the loop thread. 'status' is 0, or ZOE_ECANCELED when the request never ran. */
typedef void (*zoe_work_done_fn)(zoe_work *w, int status);

struct zoe_work {
  /* public */
  void *data;
  int64_t run_ns;        /* read-only: how long 'run' took */
  /* private */
  zoe_work_fn run;
  zoe_work_done_fn done;
  zoe_work *next;
  int state;             /* guarded by the compute mutex */
  int status;
  atomic_bool finished;  /* read without the lock by zoe_compute_reap's spin */
  atomic_int reaper;     /* 1: the loop spins for it; 2: the thread saw that and sent no wake-up */
};

/* Start the compute thread for 'loop' (idempotent). Returns 0 or a negative libuv code. */
int zoe_compute_start(uv_loop_t *loop);
/* Cancel what runs, drop what waits, join the thread and close the async handle. */
void zoe_compute_stop(void);
bool zoe_compute_started(void);

/* Queue 'w' (loop thread only). */
int zoe_compute_submit(zoe_work *w, zoe_work_fn run, zoe_work_done_fn done);
/*
** Cancel 'w': a queued request is taken off the queue (its done gets ZOE_ECANCELED,
** on a later loop turn); a running one has the kernels' cancel flag raised.
*/
void zoe_compute_cancel(zoe_work *w);
/*
** Spin up to 'spin_ns' for 'w' to finish; when it does, run its done callback
** now and return true. Saves the trip through the loop for short requests.
*/
bool zoe_compute_reap(zoe_work *w, int64_t spin_ns);
/*
** Forget 'w', blocking until the compute thread no longer touches it (a running
** request is canceled first). Its done callback is never called. For finalizers.
*/
void zoe_compute_drop(zoe_work *w);
/* Requests submitted and not yet delivered. */
int zoe_compute_pending(void);

#endif
