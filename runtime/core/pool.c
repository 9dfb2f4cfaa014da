/*
** pool.c: a fixed set of worker threads fed one parallel loop at a time.
** Work is handed out in chunks through an atomic counter, so a slow thread
** does not hold up the rest. A worker joins a loop only while it is open: the
** caller closes it when it has run out of chunks itself and waits just for the
** workers that joined, so a worker the OS has not scheduled yet (the machine
** busy with other work) never makes the caller wait.
*/
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "arena.h"
#include "error.h"

/* OpenBLAS's own threads: same count as ours. */
extern void openblas_set_num_threads(int);

#define MAX_THREADS 256

typedef struct job {
  zoe_range_fn fn;
  void *ctx;
  int64_t n, chunk;
  atomic_llong next;    /* next chunk start */
  int active;           /* workers inside this job (under pool.mu) */
  atomic_int canceled;
  bool deaf;            /* the caller does not watch the cancel flag */
} job;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t tids[MAX_THREADS];
  int nworkers; /* threads besides the caller */
  int nthreads; /* nworkers + 1 */
  long generation;
  job *current;
  bool stop;
  bool started;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static atomic_flag busy = ATOMIC_FLAG_INIT; /* one caller owns the workers */
static atomic_bool cancel_flag;
static _Thread_local bool in_worker;
static _Thread_local bool cancel_deaf; /* see zoe_cancel_watch */

/* Ranges allocate outside an activation arena: how many of them a thread runs varies. */
static void run_chunks(job *j) {
  zoe_arena_pause(true);
  for (;;) {
    if (!j->deaf && atomic_load_explicit(&cancel_flag, memory_order_relaxed)) {
      atomic_store(&j->canceled, 1);
      break;
    }
    int64_t b = atomic_fetch_add(&j->next, j->chunk);
    if (b >= j->n) break;
    int64_t e = b + j->chunk < j->n ? b + j->chunk : j->n;
    j->fn(j->ctx, b, e);
  }
  zoe_arena_pause(false);
}

/* 'arg' is the generation current when the thread was made: only later jobs are its own. */
static void *worker(void *arg) {
  in_worker = true;
  long seen = (long)(intptr_t)arg;
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    while (!pool.stop && pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.mu);
    if (pool.stop) break;
    seen = pool.generation;
    job *j = pool.current; /* NULL once the caller has closed the loop */
    if (!j) continue;
    j->active++;
    pthread_mutex_unlock(&pool.mu);
    run_chunks(j);
    pthread_mutex_lock(&pool.mu);
    if (--j->active == 0) pthread_cond_signal(&pool.done);
  }
  pthread_mutex_unlock(&pool.mu);
  return NULL;
}

static int default_threads(void) {
  const char *env = getenv("ZOE_THREADS");
  int n = env ? atoi(env) : 0;
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n <= 0) n = 1;
  return n > MAX_THREADS ? MAX_THREADS : n;
}

static void start_workers(int nthreads) {
  pool.stop = false;
  pool.nthreads = nthreads;
  pool.nworkers = 0;
  for (int i = 0; i < nthreads - 1; i++) {
    if (pthread_create(&pool.tids[i], NULL, worker, (void *)(intptr_t)pool.generation) != 0) break;
    pool.nworkers++;
  }
  pool.nthreads = pool.nworkers + 1;
  pool.started = true;
  openblas_set_num_threads(pool.nthreads);
}

void zoe_pool_init(int nthreads) {
  pthread_mutex_lock(&pool.mu);
  bool started = pool.started;
  pthread_mutex_unlock(&pool.mu);
  if (started) return;
  start_workers(nthreads > 0 ? nthreads : default_threads());
}

void zoe_pool_shutdown(void) {
  if (!pool.started) return;
  pthread_mutex_lock(&pool.mu);
  pool.stop = true;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  for (int i = 0; i < pool.nworkers; i++) pthread_join(pool.tids[i], NULL);
  pool.started = false;
  pool.nworkers = 0;
}

void zoe_pool_set_threads(int nthreads) {
  while (atomic_flag_test_and_set(&busy)) sched_yield();
  zoe_pool_shutdown();
  start_workers(nthreads > 0 ? (nthreads > MAX_THREADS ? MAX_THREADS : nthreads)
                             : default_threads());
  atomic_flag_clear(&busy);
}

int zoe_pool_threads(void) {
  if (!pool.started) zoe_pool_init(0);
  return pool.nthreads;
}

int zoe_parallel_for(int64_t n, int64_t grain, zoe_range_fn fn, void *ctx) {
  if (n <= 0) return 0;
  if (!pool.started) zoe_pool_init(0);
  if (grain < 1) grain = 1;
  job j = {.fn = fn, .ctx = ctx, .n = n, .deaf = cancel_deaf};
  /* about four chunks per thread balances load without much handing out */
  int64_t chunk = n / ((int64_t)pool.nthreads * 4);
  j.chunk = chunk < grain ? grain : chunk;
  atomic_init(&j.next, 0);
  atomic_init(&j.canceled, 0);
  bool parallel = pool.nworkers > 0 && n > j.chunk && !in_worker &&
                  !atomic_flag_test_and_set(&busy);
  if (!parallel) {
    run_chunks(&j);
    return atomic_load(&j.canceled) ? ZOE_ECANCELED : 0;
  }
  pthread_mutex_lock(&pool.mu);
  j.active = 0;
  pool.current = &j;
  pool.generation++;
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  run_chunks(&j);
  pthread_mutex_lock(&pool.mu);
  pool.current = NULL; /* closed: late workers go back to sleep */
  while (j.active > 0) pthread_cond_wait(&pool.done, &pool.mu);
  pthread_mutex_unlock(&pool.mu);
  atomic_flag_clear(&busy);
  return atomic_load(&j.canceled) ? ZOE_ECANCELED : 0;
}

void zoe_cancel_request(void) { atomic_store(&cancel_flag, true); }
void zoe_cancel_clear(void) { atomic_store(&cancel_flag, false); }
bool zoe_cancel_requested(void) {
  return !cancel_deaf && atomic_load_explicit(&cancel_flag, memory_order_relaxed);
}
void zoe_cancel_watch(bool watch) { cancel_deaf = !watch; }
