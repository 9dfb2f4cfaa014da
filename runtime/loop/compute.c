/*
** compute.c: the compute thread and its two queues: 'queued' (submitted by the
** loop thread) and 'done' (finished, waiting for the loop thread to deliver).
**
** Handoff costs are what make small offloads cheap or not. After a request the
** thread spins briefly before it sleeps on the condition variable, so a job that
** offloads op after op does not pay a futex wake each time; the loop side can
** spin for a result too (zoe_compute_reap). A spin pauses for a few
** microseconds, then calls sched_yield: on a machine with more runnable threads
** than cores a pause-spin burns the slice the other side needs (measured round
** trip on 2 busy cores: 200 us with pause alone, 30 us sleeping at once, 9-14 us
** yielding).
** A request the loop is spinning for is not announced with uv_async_send at
** all: besides the write to the eventfd, the loop side of an async spins
** while a send is half done, which costs much when threads outnumber cores.
** Otherwise uv_async_send coalesces: while the loop has not run the async
** callback, further sends cost no system call.
**
** Lock order: only 'cq.mu' exists. The thread never holds it while running a
** request or while calling uv_async_send.
*/
#include "compute.h"

#include <pthread.h>
#include <sched.h>

#include "../core/error.h"
#include "../core/pool.h"
#include "clock.h"

/* How long the thread spins for the next request before it sleeps. */
#define SPIN_NS 50000

enum { W_IDLE, W_QUEUED, W_RUNNING, W_DONE };

typedef struct wlist {
  zoe_work *head, *tail;
} wlist;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake; /* the thread waits here for requests */
  pthread_cond_t idle; /* zoe_compute_drop waits here for a running request */
  pthread_t tid;
  bool started, stop, sleeping;
  wlist queued, done;
  atomic_int nqueued; /* read by the spin without the lock */
  uv_async_t async;
  int pending; /* loop thread only: submitted and not yet delivered */
} cq = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER};

static void push(wlist *l, zoe_work *w) {
  w->next = NULL;
  if (l->tail) l->tail->next = w;
  else l->head = w;
  l->tail = w;
}

static zoe_work *pop(wlist *l) {
  zoe_work *w = l->head;
  if (w) {
    l->head = w->next;
    if (!l->head) l->tail = NULL;
    w->next = NULL;
  }
  return w;
}

static void unlink_work(wlist *l, zoe_work *w) {
  zoe_work *prev = NULL;
  for (zoe_work *p = l->head; p; prev = p, p = p->next) {
    if (p != w) continue;
    if (prev) prev->next = p->next;
    else l->head = p->next;
    if (l->tail == p) l->tail = prev;
    p->next = NULL;
    return;
  }
}

/* Called with the lock held: 'w' is finished and waits for the loop. */
static void finish_locked(zoe_work *w) {
  w->state = W_DONE;
  push(&cq.done, w);
  atomic_store(&w->finished, true);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Wait up to 'ns' for done(arg): pause the first PAUSE_NS, then yield the CPU. */
#define PAUSE_NS 3000
static bool spin(bool (*done)(void *), void *arg, int64_t ns) {
  int64_t start = zoe_now_ns();
  for (unsigned i = 1; !done(arg); i++) {
    if (i % 16) {
      cpu_relax();
      continue;
    }
    int64_t t = zoe_now_ns() - start;
    if (t > ns) return false;
    if (t > PAUSE_NS) sched_yield();
  }
  return true;
}

static bool has_work(void *arg) {
  (void)arg;
  return atomic_load_explicit(&cq.nqueued, memory_order_acquire) != 0;
}

static bool is_finished(void *arg) {
  return atomic_load_explicit(&((zoe_work *)arg)->finished, memory_order_acquire);
}

static void spin_for_work(void) { spin(has_work, NULL, SPIN_NS); }

static void *compute_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&cq.mu);
  for (;;) {
    if (!cq.queued.head && !cq.stop) {
      pthread_mutex_unlock(&cq.mu);
      spin_for_work();
      pthread_mutex_lock(&cq.mu);
      while (!cq.queued.head && !cq.stop) {
        cq.sleeping = true;
        pthread_cond_wait(&cq.wake, &cq.mu);
        cq.sleeping = false;
      }
    }
    if (cq.stop) break;
    zoe_work *w = pop(&cq.queued);
    atomic_fetch_sub(&cq.nqueued, 1);
    w->state = W_RUNNING;
    zoe_cancel_clear(); /* a cancel left over from the previous request is not ours */
    pthread_mutex_unlock(&cq.mu);
    int64_t t0 = zoe_now_ns();
    w->run(w);
    w->run_ns = zoe_now_ns() - t0;
    pthread_mutex_lock(&cq.mu);
    zoe_cancel_clear();
    bool reaped = atomic_exchange(&w->reaper, 2) == 1; /* before 'finished': see zoe_compute_reap */
    finish_locked(w);
    pthread_cond_broadcast(&cq.idle);
    pthread_mutex_unlock(&cq.mu);
    if (!reaped) uv_async_send(&cq.async); /* 'w' may be gone now: the loop may have reaped it */
    pthread_mutex_lock(&cq.mu);
  }
  pthread_mutex_unlock(&cq.mu);
  return NULL;
}

/* Loop thread: hand a finished request back to its owner. */
static void deliver(zoe_work *w) {
  w->state = W_IDLE;
  atomic_store(&w->finished, false);
  if (--cq.pending == 0) uv_unref((uv_handle_t *)&cq.async);
  w->done(w, w->status);
}

static void async_cb(uv_async_t *h) {
  (void)h;
  for (;;) { /* one at a time: a done callback may drop or reap another request */
    pthread_mutex_lock(&cq.mu);
    zoe_work *w = pop(&cq.done);
    pthread_mutex_unlock(&cq.mu);
    if (!w) break;
    deliver(w);
  }
}

int zoe_compute_start(uv_loop_t *loop) {
  if (cq.started) return 0;
  int rc = uv_async_init(loop, &cq.async, async_cb);
  if (rc) return rc;
  uv_unref((uv_handle_t *)&cq.async); /* only requests in flight keep the loop alive */
  cq.stop = false;
  cq.pending = 0;
  if (pthread_create(&cq.tid, NULL, compute_main, NULL) != 0) {
    uv_close((uv_handle_t *)&cq.async, NULL);
    return UV_EAGAIN;
  }
  cq.started = true;
  return 0;
}

bool zoe_compute_started(void) { return cq.started; }

void zoe_compute_stop(void) {
  if (!cq.started) return;
  pthread_mutex_lock(&cq.mu);
  cq.stop = true;
  zoe_cancel_request(); /* a running request ends at its next cancel check */
  pthread_cond_signal(&cq.wake);
  pthread_mutex_unlock(&cq.mu);
  pthread_join(cq.tid, NULL);
  zoe_cancel_clear();
  zoe_work *w;
  while ((w = pop(&cq.queued)) || (w = pop(&cq.done))) w->state = W_IDLE;
  atomic_store(&cq.nqueued, 0);
  cq.pending = 0;
  cq.started = false;
  uv_close((uv_handle_t *)&cq.async, NULL); /* completes on the loop's next turn */
}

int zoe_compute_submit(zoe_work *w, zoe_work_fn run, zoe_work_done_fn done) {
  if (!cq.started) return UV_EINVAL;
  w->run = run;
  w->done = done;
  w->status = 0;
  atomic_store(&w->finished, false);
  atomic_store(&w->reaper, 0);
  pthread_mutex_lock(&cq.mu);
  w->state = W_QUEUED;
  push(&cq.queued, w);
  atomic_fetch_add_explicit(&cq.nqueued, 1, memory_order_release);
  if (cq.sleeping) pthread_cond_signal(&cq.wake);
  pthread_mutex_unlock(&cq.mu);
  if (cq.pending++ == 0) uv_ref((uv_handle_t *)&cq.async);
  return 0;
}

void zoe_compute_cancel(zoe_work *w) {
  pthread_mutex_lock(&cq.mu);
  if (w->state == W_QUEUED) {
    unlink_work(&cq.queued, w);
    atomic_fetch_sub(&cq.nqueued, 1);
    w->status = ZOE_ECANCELED;
    finish_locked(w);
    pthread_mutex_unlock(&cq.mu);
    uv_async_send(&cq.async); /* delivered on a later turn, never inside the caller */
    return;
  }
  if (w->state == W_RUNNING) zoe_cancel_request(); /* under the lock: ordered with the thread's clears */
  pthread_mutex_unlock(&cq.mu);
}

/*
** The thread sends no wake-up for a request whose reaper is 1. Giving up, the
** loop takes the mark back; if the thread had already seen it (2), the request
** is finished, or about to be under the lock, and is delivered here after all.
*/
bool zoe_compute_reap(zoe_work *w, int64_t spin_ns) {
  if (!atomic_load_explicit(&w->finished, memory_order_acquire)) {
    int expect = 0;
    atomic_compare_exchange_strong(&w->reaper, &expect, 1);
    if (!spin(is_finished, w, spin_ns) && atomic_exchange(&w->reaper, 0) != 2)
      return false; /* the thread will send a wake-up */
  }
  pthread_mutex_lock(&cq.mu);
  bool mine = w->state == W_DONE;
  if (mine) unlink_work(&cq.done, w);
  pthread_mutex_unlock(&cq.mu);
  if (mine) deliver(w);
  return mine;
}

void zoe_compute_drop(zoe_work *w) {
  pthread_mutex_lock(&cq.mu);
  if (w->state == W_QUEUED) {
    unlink_work(&cq.queued, w);
    atomic_fetch_sub(&cq.nqueued, 1);
  } else if (w->state == W_RUNNING) {
    zoe_cancel_request();
    while (w->state == W_RUNNING) pthread_cond_wait(&cq.idle, &cq.mu);
  }
  if (w->state == W_DONE) unlink_work(&cq.done, w);
  bool counted = w->state != W_IDLE;
  w->state = W_IDLE;
  atomic_store(&w->finished, false);
  pthread_mutex_unlock(&cq.mu);
  if (counted && cq.started && --cq.pending == 0) uv_unref((uv_handle_t *)&cq.async);
}

int zoe_compute_pending(void) { return cq.pending; }
