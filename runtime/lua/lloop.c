/*
** lloop.c: the scheduler of jobs, zoe.sleep, zoe.await, zoe.run, zoe.uv
** (luv on our loop), Ctrl-C, and what main.c calls. Which tasks go to the
** compute thread, and how, is loffload.c.
**
** Invariants:
** - Only drain() (the idle callback) resumes jobs, one at a time, so a job's
**   coroutine never runs inside another job's resume.
** - A task in flight is referenced from the registry (j->task_ref) until its
**   continuation runs (loffload.c).
** - An unfinished job is referenced from the registry (j->ref), so it is only
**   collected when it has finished, or by lua_close.
** - The loop is run by one of our runners at a time (lp.depth); uv_run is not
**   reentrant, so code outside jobs that would need it nested gets an error.
*/
#include "lloop.h"

/* luv.h declares 'luv_acquire_vm' without a prototype */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../loop/clock.h"
#include "../loop/oprate.h"
#include "../loop/sigint.h"

/* A job runs at most this long before the loop turns (input, signals, timers, other jobs). */
#define SLICE_NS 10000000LL
/* Lua instructions between two looks at the clock by the count hook. */
#define HOOK_COUNT 10000
/* The loop spins for a task predicted to take less than this, instead of sleeping in epoll. */
#define REAP_SPIN_NS 50000
struct lj_timer {
  uv_timer_t h;
  lj_job *j;   /* the sleeping job, or NULL */
  bool *fired; /* set when it fires (for sleeps outside jobs) */
};

static struct {
  bool uv_ready;
  uv_loop_t *uv;
  uv_idle_t idle;
  lua_State *M;  /* the main thread of the Lua state the loop serves */
  lua_State *LL; /* the thread that runs the loop now: resumes and callbacks start from it */
  int depth;     /* 1 while one of our runners is inside uv_run */
  lj_job *first, *last; /* unfinished jobs, by id */
  lj_job *ready, *ready_tail;
  lj_job *running;
  int64_t turn_start;
  zoe_display display;
  bool display_ready;
  zoe_sigint sigint;
  bool sigint_on;
  void (*on_sigint)(int presses);
  bool interrupted;
  int unobserved;
  void (*printer)(const char *text);
  bool verbose;
} lp;

static void job_hook(lua_State *L, lua_Debug *ar);

/* ---- the ready list ---- */

static void drain(void);
static void idle_cb(uv_idle_t *h) {
  (void)h;
  drain();
}

static void ready_push(lj_job *j) {
  if (j->in_ready) return;
  j->in_ready = true;
  j->ready_next = NULL;
  if (lp.ready_tail) lp.ready_tail->ready_next = j;
  else lp.ready = j;
  lp.ready_tail = j;
  if (!uv_is_active((uv_handle_t *)&lp.idle)) uv_idle_start(&lp.idle, idle_cb);
}

static lj_job *ready_pop(void) {
  lj_job *j = lp.ready;
  if (!j) return NULL;
  lp.ready = j->ready_next;
  if (!lp.ready) lp.ready_tail = NULL;
  j->in_ready = false;
  j->ready_next = NULL;
  return j;
}

static void ready_remove(lj_job *j) {
  if (!j->in_ready) return;
  lj_job *prev = NULL;
  for (lj_job *p = lp.ready; p; prev = p, p = p->ready_next) {
    if (p != j) continue;
    if (prev) prev->ready_next = p->ready_next;
    else lp.ready = p->ready_next;
    if (lp.ready_tail == p) lp.ready_tail = prev;
    break;
  }
  j->in_ready = false;
}

void lz_job_wake(lj_job *j, int nargs) {
  j->nargs += nargs;
  j->waiting_on = NULL;
  ready_push(j);
}

/* ---- jobs in the scheduler ---- */

lj_job *lz_job_running(void) { return lp.running; }

lj_job *lz_job_of(lua_State *L) {
  lj_job *j = lp.running;
  return j && j->nest[j->depth] == L ? j : NULL;
}

/*
** A yield from the top of the nest passes through every level below it (each
** in coroutine.resume or a wrap function), so each must be able to yield: a
** level called from C without a continuation (a sort comparator, gsub's
** function, a __gc) cannot, and then neither can the top.
*/
bool lz_job_can_yield(const lj_job *j, lua_State *L) {
  if (!lua_isyieldable(L)) return false;
  for (int k = 0; k < j->depth; k++)
    if (!lua_isyieldable(j->nest[k])) return false;
  return true;
}

bool lz_job_nest_push(lj_job *j, lua_State *co) {
  if (j->depth + 1 >= LJ_NEST_MAX) return false;
  j->nest[++j->depth] = co;
  return true;
}

void lz_job_nest_pop(lj_job *j) {
  if (j->depth > 0) j->nest[j->depth--] = NULL;
}

int lz_job_nest_level(const lj_job *j, lua_State *L) {
  for (int k = 0; k <= j->depth; k++)
    if (j->nest[k] == L) return k;
  return -1;
}

bool lz_coroutine_held(lua_State *co) {
  for (lj_job *j = lp.first; j; j = j->next) {
    if (j == lp.running) continue; /* its levels run: Lua's own checks refuse them */
    for (int k = 0; k <= j->depth; k++)
      if (j->nest[k] == co) return true;
  }
  return false;
}

void lz_job_hook_coroutine(lua_State *co) {
  if (!lua_gethook(co)) lua_sethook(co, job_hook, LUA_MASKCOUNT, HOOK_COUNT);
}

/* The count hook on every level of j's nest that runs ours (a level may have its own). */
static void nest_hooks(lj_job *j, int count) {
  for (int k = 0; k <= j->depth; k++)
    if (j->nest[k] && lua_gethook(j->nest[k]) == job_hook) lua_sethook(j->nest[k], job_hook, LUA_MASKCOUNT, count);
}
lj_job *lz_jobs_first(void) { return lp.first; }

void lz_loop_add(lj_job *j) {
  j->prev = lp.last;
  j->next = NULL;
  if (lp.last) lp.last->next = j;
  else lp.first = j;
  lp.last = j;
  lua_sethook(j->co, job_hook, LUA_MASKCOUNT, HOOK_COUNT);
  ready_push(j);
}

void lz_loop_remove(lj_job *j) {
  if (j->prev) j->prev->next = j->next;
  else if (lp.first == j) lp.first = j->next;
  if (j->next) j->next->prev = j->prev;
  else if (lp.last == j) lp.last = j->prev;
  j->prev = j->next = NULL;
  ready_remove(j);
  if (lp.interrupted && !lp.first) uv_stop(lp.uv); /* Ctrl-C: nothing left to wait for */
}

void lz_job_raise_cancel(lua_State *L, lj_job *j, const char *during) {
  j->cancel_delivered = true;
  nest_hooks(j, HOOK_COUNT);
  /* no position: where the cancel landed is the runtime's own code, not the user's */
  if (during && *during) lua_pushfstring(L, "job %d canceled (during %s)", j->id, during);
  else lua_pushfstring(L, "job %d canceled", j->id);
  lua_error(L);
}

void lz_job_check_cancel(lua_State *L, lj_job *j) {
  if (j->cancel && !j->cancel_delivered) lz_job_raise_cancel(L, j, NULL);
}

void lz_job_check_yield(lua_State *L, lj_job *j, const char *who) {
  if (!lz_job_can_yield(j, L))
    luaL_error(L, "%s: cannot wait here: it was called from C code that cannot yield "
               "(a sort comparator, a gsub function, a __gc, require)", who);
}

/*
** The count hook of every job's coroutine and of those it resumes: delivers a
** pending cancel to code that never reaches a yield point, and ends the job's
** time slice so that a job busy in Lua, at any coroutine depth, cannot keep
** the loop from turning.
*/
/* ---- job records the scheduler reads ---- */

void lz_job_push(lua_State *L, lj_job *j) { lua_rawgeti(L, LUA_REGISTRYINDEX, j->ref); }

void lz_job_wait_text(const lj_job *j, char *b, size_t n) {
  b[0] = '\0';
  if (j->state != LJ_RUNNING) return;
  switch (j->wait) {
    case LJ_W_TASK: snprintf(b, n, "in %s (compute thread)", j->what); break;
    case LJ_W_TIMER: snprintf(b, n, "sleeping"); break;
    case LJ_W_JOB: snprintf(b, n, "waiting for job %d", j->waiting_on ? j->waiting_on->id : 0); break;
    case LJ_W_AWAIT: snprintf(b, n, "waiting for a callback"); break;
    case LJ_W_NONE:
    case LJ_W_SLICE: break;
  }
}

/* "job 3 (f@x.lua:12), in matmul (compute thread)" or "job 3 (shot 2), at denoise 3/20" */
void lz_job_describe(const lj_job *j, char *b, size_t n) {
  char w[80];
  lz_job_wait_text(j, w, sizeof w);
  int k = snprintf(b, n, "job %d (%s)", j->id, j->name);
  if (k < 0 || (size_t)k >= n) return;
  if (j->has_progress && j->progress.steps > 0)
    k += snprintf(b + k, n - (size_t)k, ", at %s %lld/%lld", j->progress.stage, (long long)j->progress.step,
                  (long long)j->progress.steps);
  else if (j->has_progress)
    k += snprintf(b + k, n - (size_t)k, ", at %s", j->progress.stage);
  if (w[0] && k >= 0 && (size_t)k < n) snprintf(b + k, n - (size_t)k, ", %s", w);
}

static lz_job_end_fn job_end;

void lz_loop_on_job_end(lz_job_end_fn fn) { job_end = fn; }

static void job_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lj_job *j = lz_job_of(L);
  if (!j) return;
  if (j->cancel && !j->cancel_delivered) lz_job_raise_cancel(L, j, NULL);
  if (zoe_now_ns() - lp.turn_start > SLICE_NS && lz_job_can_yield(j, L)) {
    j->wait = LJ_W_SLICE;
    lua_yield(L, 0); /* in a hook: returns, and the coroutine yields after it */
  }
}

static void cancel_before_start(lj_job *j) {
  lua_pushfstring(j->co, "job %d canceled before it started", j->id);
  j->cancel_delivered = true;
  job_end(lp.LL, j, LUA_ERRRUN, 0);
}

static void maybe_reap(lj_job *j) {
  if (!j->task || zoe_now_ns() - lp.turn_start > SLICE_NS) return;
  double ns = zoe_oprate_predict(j->task->name, j->task->cost);
  if (ns < REAP_SPIN_NS) zoe_compute_reap(&j->work, REAP_SPIN_NS);
}

static void resume(lj_job *j) {
  if (j->state == LJ_READY) {
    if (j->cancel) {
      cancel_before_start(j);
      return;
    }
    j->state = LJ_RUNNING;
    j->t_start = zoe_now_ns();
  }
  lua_State *co = j->co;
  int nargs = j->nargs, nres = 0;
  j->nargs = 0;
  j->wait = LJ_W_NONE;
  lj_job *outer = lp.running;
  lp.running = j;
  int status = lua_resume(co, lp.LL, nargs, &nres);
  lp.running = outer;
  if (status != LUA_YIELD) {
    job_end(lp.LL, j, status, nres);
    return;
  }
  if (j->wait == LJ_W_NONE || j->wait == LJ_W_SLICE) { /* the hook, or a plain coroutine.yield */
    lua_pop(co, nres);
    j->wait = LJ_W_SLICE;
    ready_push(j);
  } else if (j->wait == LJ_W_TASK) {
    maybe_reap(j); /* a short task: its result may be back before epoll could return */
  }
}

static void drain(void) {
  lp.turn_start = zoe_now_ns();
  lj_job *j;
  while ((j = ready_pop())) {
    resume(j);
    if (zoe_now_ns() - lp.turn_start > SLICE_NS) break;
  }
  if (!lp.ready) uv_idle_stop(&lp.idle);
}

static void timer_cancel(lj_timer *t);

void lz_loop_take_back(lz_task *t) {
  lj_job *j = t->flight;
  zoe_compute_drop(&j->work);
  j->task = NULL;
  t->flight = NULL;
}

void lz_loop_forget(lj_job *j) {
  if (j->state >= LJ_DONE) return;
  if (j->task) lz_loop_take_back(j->task);
  if (j->timer) timer_cancel(j->timer); /* closed on the loop's next turn, if there is one */
  j->timer = NULL;
  lz_loop_remove(j);
  j->state = LJ_CANCELED;
}

/* ---- running the loop ---- */

uv_loop_t *lz_loop_uv(void) { return lp.uv; }

static bool job_finished(void *arg) { return ((lj_job *)arg)->state >= LJ_DONE; }
static bool flag_set(void *arg) { return *(bool *)arg; }

/* Run the loop until done(arg), or until nothing is left when done is NULL. */
static void run_loop(lua_State *L, bool (*done)(void *), void *arg, const char *who) {
  if (lp.depth) luaL_error(L, "%s: the loop is already running (call it inside a job: zoe.spawn)", who);
  lua_State *saved = lp.LL;
  lp.LL = L;
  lp.depth++;
  bool stuck = false;
  while (!(done && done(arg))) {
    if (uv_run(lp.uv, UV_RUN_ONCE) == 0 && !lp.ready) {
      stuck = done && !done(arg);
      break;
    }
  }
  lp.depth--;
  lp.LL = saved;
  if (stuck) luaL_error(L, "%s: nothing left that could finish it (a job waits for itself?)", who);
}

void lz_loop_run_until(lua_State *L, lj_job *until) {
  lz_loop_init(L);
  run_loop(L, until ? job_finished : NULL, until, "job:wait");
}

/* zoe.run(): run the loop until no job, timer or handle is left (for stock lua5.4). */
static int z_run(lua_State *L) {
  lz_loop_init(L);
  run_loop(L, NULL, NULL, "zoe.run");
  return 0;
}

/* ---- zoe.sleep ---- */

static void timer_close_cb(uv_handle_t *h) { free(h); }

static void timer_cb(uv_timer_t *h) {
  lj_timer *t = (lj_timer *)h;
  if (t->fired) *t->fired = true;
  if (t->j) {
    t->j->timer = NULL;
    lz_job_wake(t->j, 0);
  }
  uv_close((uv_handle_t *)h, timer_close_cb);
}

static lj_timer *timer_start(lua_State *L, double ms, lj_job *j, bool *fired) {
  lj_timer *t = malloc(sizeof *t);
  if (!t) luaL_error(L, "zoe.sleep: out of memory");
  uv_update_time(lp.uv); /* the loop's clock stood still while jobs ran */
  uv_timer_init(lp.uv, &t->h);
  t->j = j;
  t->fired = fired;
  uv_timer_start(&t->h, timer_cb, (uint64_t)(ms + 0.5), 0);
  return t;
}

static void timer_cancel(lj_timer *t) {
  t->j = NULL;
  uv_timer_stop(&t->h);
  uv_close((uv_handle_t *)&t->h, timer_close_cb);
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lz_job_check_cancel(L, (lj_job *)ctx);
  return 0;
}

/* zoe.sleep(ms): in a job, yields to the loop; outside, runs the loop meanwhile. */
static int z_sleep(lua_State *L) {
  double ms = luaL_checknumber(L, 1);
  luaL_argcheck(L, ms >= 0 && ms < 1e12, 1, "milliseconds must be 0 or more");
  lz_loop_init(L);
  lj_job *j = lz_job_of(L);
  if (j) {
    lz_job_check_cancel(L, j);
    lz_job_check_yield(L, j, "zoe.sleep");
    j->timer = timer_start(L, ms, j, NULL);
    j->wait = LJ_W_TIMER;
    snprintf(j->what, sizeof j->what, "sleep");
    return lua_yieldk(L, 0, (lua_KContext)j, sleep_k);
  }
  if (lp.depth) return luaL_error(L, "zoe.sleep: not in a job while the loop runs (use zoe.spawn)");
  bool fired = false;
  timer_start(L, ms, NULL, &fired);
  run_loop(L, flag_set, &fired, "zoe.sleep");
  return 0;
}

/* ---- zoe.await: wait for a libuv-style callback ---- */

typedef struct await_box {
  bool done;
} await_box;

/* The callback given to the function: keeps its arguments and wakes the job (first call only). */
static int await_cb(lua_State *L) {
  await_box *b = lua_touserdata(L, lua_upvalueindex(1));
  if (b->done) return 0;
  int n = lua_gettop(L);
  lua_getiuservalue(L, lua_upvalueindex(1), 1);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  b->done = true;
  lj_job *j = luaL_testudata(L, lua_upvalueindex(2), LZ_JOB);
  if (j && j->state == LJ_RUNNING && j->wait == LJ_W_AWAIT &&
      j->await_seq == (unsigned)lua_tointeger(L, lua_upvalueindex(3)))
    lz_job_wake(j, 0);
  return 0;
}

/* The box is at stack index 1: push what the callback received. */
static int await_results(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  int t = lua_gettop(L);
  lua_getfield(L, t, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "zoe.await: too many results");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, t, i);
  return n;
}

static int await_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lz_job_check_cancel(L, (lj_job *)ctx);
  return await_results(L);
}

static int await_called(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  await_box *b = lua_touserdata(L, 1);
  if (!b->done) {
    lj_job *j = lz_job_of(L);
    if (j) {
      lz_job_check_cancel(L, j);
      lz_job_check_yield(L, j, "zoe.await");
      j->wait = LJ_W_AWAIT;
      snprintf(j->what, sizeof j->what, "a callback");
      return lua_yieldk(L, 0, (lua_KContext)j, await_k);
    }
    run_loop(L, flag_set, &b->done, "zoe.await");
  }
  return await_results(L);
}

/*
** zoe.await(fn, ...): calls fn(..., cb) and returns what cb receives, so libuv's
** callback style reads straight: local err, data = zoe.await(uv.fs_read, fd, n, 0).
*/
static int z_await(lua_State *L) {
  luaL_checkany(L, 1);
  lz_loop_init(L);
  int n = lua_gettop(L);
  lj_job *j = lz_job_of(L);
  if (!j && lp.depth) return luaL_error(L, "zoe.await: not in a job while the loop runs (use zoe.spawn)");
  if (j) lz_job_check_cancel(L, j);
  await_box *b = lua_newuserdatauv(L, sizeof *b, 1);
  b->done = false;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_insert(L, 1); /* box at 1, fn at 2, its arguments above */
  for (int i = 2; i <= n + 1; i++) lua_pushvalue(L, i);
  lua_pushvalue(L, 1);
  if (j) lz_job_push(L, j);
  else lua_pushnil(L);
  lua_pushinteger(L, j ? (lua_Integer)++j->await_seq : 0);
  lua_pushcclosure(L, await_cb, 3);
  lua_callk(L, n, 0, 0, await_called); /* fn may itself yield: it runs in the job */
  return await_called(L, LUA_OK, 0);
}

/* ---- cancel ---- */

bool lz_job_cancel(lj_job *j) {
  if (j->state >= LJ_DONE) return false;
  if (j->cancel) return true;
  j->cancel = true;
  if (j->state == LJ_READY) { /* never ran: resume() finishes it */
    ready_push(j);
    return true;
  }
  switch (j->wait) {
    case LJ_W_TASK: zoe_compute_cancel(&j->work); break; /* its done callback wakes the job */
    case LJ_W_TIMER:
      if (j->timer) timer_cancel(j->timer);
      j->timer = NULL;
      lz_job_wake(j, 0);
      break;
    case LJ_W_JOB: lz_job_wake(j, 0); break;
    case LJ_W_AWAIT:
      j->await_seq++; /* a late callback no longer wakes it */
      lz_job_wake(j, 0);
      break;
    case LJ_W_NONE:
    case LJ_W_SLICE: break;
  }
  /* Lua code between yield points gets the error at its next instruction */
  nest_hooks(j, 1);
  return true;
}

/* ---- luv as zoe.uv ---- */

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* luv's callbacks go through here: an error is reported, and the loop (and the REPL) go on. */
static int uv_pcall(lua_State *L, int nargs, int nresults, int flags) {
  int base = lua_gettop(L) - nargs; /* the function */
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (status == LUA_OK) return nresults == LUA_MULTRET ? lua_gettop(L) - base + 1 : nresults;
  if (!(flags & LUVF_CALLBACK_NOERRMSG)) {
    lua_pushfstring(L, "error in a uv callback: %s", lua_tostring(L, -1));
    lz_loop_print(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lp.unobserved++;
  lua_pop(L, 1);
  return -status;
}

static int open_uv(lua_State *L) {
  lz_loop_init(L);
  luv_set_loop(lp.M, lp.uv); /* luv runs its callbacks on the main thread */
  luv_set_callback(lp.M, uv_pcall);
  luaopen_luv(L);
  lua_pushcfunction(L, z_run); /* uv.run must not nest inside our loop */
  lua_setfield(L, -2, "run");
  return 1;
}

/* ---- the loop's state ---- */

static int loop_gc(lua_State *L) {
  (void)L;
  lp.M = lp.LL = NULL; /* lua_close: jobs unlink themselves in their own finalizers */
  lp.running = NULL;
  return 0;
}

/*
** os.exit() without closing the state: libc's exit handlers (OpenBLAS's among
** them) must not run while the compute thread is inside a kernel.
*/
static void stop_compute_at_exit(void) {
  if (zoe_compute_started()) zoe_compute_stop();
}

void lz_loop_init(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *M = lua_tothread(L, -1);
  lua_pop(L, 1);
  if (lp.M == M) return;
  if (lp.M) luaL_error(L, "the zoe loop already serves another Lua state");
  if (!lp.uv_ready) {
    lp.uv = uv_default_loop();
    uv_idle_init(lp.uv, &lp.idle);
    int rc = zoe_compute_start(lp.uv);
    if (rc) luaL_error(L, "cannot start the compute thread: %s", uv_strerror(rc));
    zoe_cancel_watch(false); /* this is the loop thread: the cancel flag is the compute thread's */
    static bool registered;
    if (!registered) registered = atexit(stop_compute_at_exit) == 0;
    lp.uv_ready = true;
  }
  lp.M = lp.LL = M;
  if (!lp.display_ready) {
    zoe_display_init(&lp.display, zoe_display_auto());
    lp.display_ready = true;
  }
  lua_newuserdatauv(L, 1, 0); /* a sentinel whose finalizer marks lua_close */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "zoe.loop");
}

zoe_display *lz_loop_display(void) {
  if (!lp.display_ready) {
    zoe_display_init(&lp.display, zoe_display_auto());
    lp.display_ready = true;
  }
  return &lp.display;
}

void lz_loop_set_display(zoe_display_mode mode) {
  zoe_display_init(&lp.display, mode);
  lp.display_ready = true;
}

void lz_loop_set_printer(void (*print)(const char *text)) { lp.printer = print; }

void lz_loop_print(const char *text) {
  if (lp.printer) {
    lp.printer(text);
    return;
  }
  zoe_display *d = lz_loop_display();
  if (d->mode == ZOE_DISPLAY_JSON) {
    zoe_display_note(d, text);
    return;
  }
  fflush(stdout);
  zoe_display_clear(d);
  fprintf(stderr, "zoe: %s\n", text);
  zoe_display_redraw(d);
}

void lz_loop_set_verbose(bool on) { lp.verbose = on; }

bool lz_error_positioned(const char *msg) {
  const char *end = strchr(msg, '\n');
  if (!end) end = msg + strlen(msg);
  for (const char *c = msg; c < end; c++) {
    if (*c != ':' || c[1] < '0' || c[1] > '9') continue;
    const char *d = c + 1;
    while (*d >= '0' && *d <= '9') d++;
    if (*d == ':') return true;
  }
  return false;
}

bool lz_loop_interactive(void) { return lp.printer != NULL; }
int lz_loop_unobserved_failures(void) { return lp.unobserved; }
void lz_loop_count_unobserved(int delta) { lp.unobserved += delta; }

/* ---- Ctrl-C ---- */

static void on_sigint(zoe_sigint *s, int presses) {
  (void)s;
  if (lp.on_sigint) {
    lp.on_sigint(presses);
    return;
  }
  if (presses >= 2 || !lp.first) {
    zoe_display_note(&lp.display, presses >= 2 ? "interrupted again: exiting" : "interrupted: exiting");
    fflush(NULL);
    _exit(130);
  }
  lp.interrupted = true;
  char msg[1024] = "Ctrl-C: canceling ";
  size_t n = strlen(msg);
  for (lj_job *j = lp.first; j; j = j->next) {
    if (j->cancel) continue;
    char d[160];
    lz_job_describe(j, d, sizeof d);
    if (n < sizeof msg) n += (size_t)snprintf(msg + n, sizeof msg - n, "%s%s", j == lp.first ? "" : "; ", d);
  }
  if (n < sizeof msg) snprintf(msg + n, sizeof msg - n, " (Ctrl-C again within 2 s exits)");
  for (lj_job *j = lp.first; j; j = j->next) lz_job_cancel(j);
  zoe_display_note(&lp.display, msg);
}

void lz_loop_watch_sigint(lua_State *L) {
  lz_loop_init(L);
  if (lp.sigint_on) return;
  if (zoe_sigint_start(&lp.sigint, lp.uv, on_sigint) == 0) lp.sigint_on = true;
}

void lz_loop_on_sigint(void (*fn)(int presses)) { lp.on_sigint = fn; }

/* ---- the command ---- */

void lz_loop_run(void) {
  lp.LL = lp.M;
  lp.depth++;
  uv_run(lp.uv, UV_RUN_DEFAULT);
  lp.depth--;
}

bool lz_loop_interrupted(void) { return lp.interrupted; }

int lz_loop_run_main(lua_State *L, lj_job *j, int ref) {
  int top = lua_gettop(L);
  lp.LL = lp.M;
  lp.depth++;
  uv_run(lp.uv, UV_RUN_DEFAULT);
  lp.depth--;
  int rc = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_getiuservalue(L, -1, 1);
  if (j->state == LJ_FAILED) {
    /* an error raised without a position (error(msg, 0): a bad setting, a missing file) is
       the user's to fix, told in one line; one at a position is a bug, shown with its stack */
    const char *z = getenv("ZOE_DEBUG");
    lua_getfield(L, -1, "err");
    const char *msg = lua_tostring(L, -1);
    if (msg && !lp.verbose && !(z && *z && strcmp(z, "0")) && !lz_error_positioned(msg)) {
      lz_loop_print(msg);
    } else {
      lua_getfield(L, -2, "traceback");
      lz_loop_print(lua_tostring(L, -1));
    }
    rc = 1;
  } else if (j->state == LJ_CANCELED) {
    lua_getfield(L, -1, "err");
    lz_loop_print(luaL_tolstring(L, -1, NULL));
    rc = 130;
  } else if (j->state != LJ_DONE) {
    lz_loop_print(lp.interrupted ? "interrupted" : "the main job never finished: it waits for something that cannot happen");
    rc = lp.interrupted ? 130 : 1;
  }
  lua_settop(L, top);
  for (lj_job *k = lp.first; k; k = k->next) {
    char d[160];
    lz_job_describe(k, d, sizeof d);
    lua_pushfstring(L, "%s never finished", d);
    lz_loop_print(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!rc) rc = 1;
  }
  return rc;
}

void lz_loop_close(lua_State *L) {
  (void)L;
  if (!lp.uv_ready) return;
  for (lj_job *j = lp.first; j; j = j->next) {
    lz_job_cancel(j);
    if (j->task) lz_loop_take_back(j->task);
  }
  zoe_compute_stop();
  if (lp.sigint_on) zoe_sigint_stop(&lp.sigint);
  lp.sigint_on = false;
  uv_close((uv_handle_t *)&lp.idle, NULL);
  uv_run(lp.uv, UV_RUN_NOWAIT); /* our handles finish closing */
  lp.uv_ready = false;
}

/*
** After lua_close. The loop is not run again: luv's close callbacks for the
** handles its finalizers closed would touch the closed Lua state. The loop is
** closed when nothing is left on it; otherwise the process is about to exit.
*/
void lz_loop_shutdown(void) {
  if (lp.uv) uv_loop_close(lp.uv);
}

/* ---- the module ---- */

static const luaL_Reg loop_funcs[] = {
  {"sleep", z_sleep},
  {"await", z_await},
  {"run", z_run},
  {NULL, NULL},
};

int lz_open_loop(lua_State *L) {
  luaL_setfuncs(L, loop_funcs, 0);
  /* zoe.uv is luv on our loop; require "luv" gives the same */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open_uv);
  lua_setfield(L, -2, "zoe.uv");
  if (lua_getfield(L, -1, "luv") == LUA_TNIL) {
    lua_pushcfunction(L, open_uv);
    lua_setfield(L, -3, "luv");
  }
  lua_pop(L, 2);
  return 0;
}
