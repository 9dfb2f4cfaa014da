/*
** loffload.c: which tasks leave the loop thread, and how. lz_task_finish
** hands every task finished in a job, at any coroutine depth (lcoro.c), to
** offload(): a cheap one runs inline there (timed); a heavy one goes to the
** compute thread while the calling coroutine yields (lua_yieldk) up to the
** job, held by a registry reference until its continuation pushes the
** results. Its finalizer, which only lua_close can reach while it flies,
** first takes it back from the compute thread.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop/clock.h"
#include "lloop.h"

/*
** lz_task.cost is in each binding's own units (flops for products, elements
** for elementwise ops, a guess for a decode), so the loop learns, per kind of
** task (its name), how many ns a unit takes, from runs of RATE_MIN_NS or more
** (shorter ones are mostly fixed overhead). A task predicted to take
** OFFLOAD_NS or more goes to the compute thread: at least ten times what an
** offload costs (bench/bench_loop.lua), so the handoff is at most a tenth of
** the op. Until a kind has been timed, a cost of COST_THRESHOLD or more
** decides. See docs/ARCHITECTURE.md.
*/
#define OFFLOAD_NS 100000.0
#define COST_THRESHOLD 1e6
#define RATE_MIN_NS 10000
#define NRATES 256 /* kinds, and kinds by size class */

static double offload_ns = OFFLOAD_NS; /* predicted time from which tasks are offloaded */

typedef struct task_rate {
  char name[40];
  double log_rate; /* log of ns per cost unit */
  int n;           /* runs measured */
} task_rate;

static task_rate rates[NRATES];

/* What ran in jobs since the last reset: counts and the longest run on each side (bench). */
static struct {
  int64_t offloaded, inline_;
  int64_t longest_offloaded_ns, longest_inline_ns;
} stats;

/* The entry for tasks called 'name' (made on first use), or NULL when the table is full. */
static task_rate *rate_of(const char *name) {
  unsigned h = 5381;
  for (const char *c = name; *c; c++) h = h * 33 + (unsigned char)*c;
  for (unsigned i = 0; i < NRATES; i++) {
    task_rate *r = &rates[(h + i) % NRATES];
    if (!r->name[0]) snprintf(r->name, sizeof r->name, "%s", name);
    if (strncmp(r->name, name, sizeof r->name - 1) == 0) return r;
  }
  return NULL;
}

/*
** The first run sets the rate; each later one moves its log by a tenth of the
** difference, and by at most 0.1 (10%): a run that was preempted for
** milliseconds on a busy machine does not send every small op of its kind away.
*/
static void learn_into(task_rate *r, double x) {
  if (!r) return;
  if (r->n++ == 0) r->log_rate = x;
  else r->log_rate += fmax(-0.1, fmin(0.1, 0.1 * (x - r->log_rate)));
}

/*
** Each run teaches its kind's rate (what decides offloading) and the rate of its size
** class, "wan_block@17" (costs from 4^17 to 4^18), which zoe.estimate reads: per unit of
** cost, a small model's blocks run several times slower than a large one's, so a run of
** zoe-tiny must not set the time predicted for Wan.
*/
static void learn(const lz_task *t, int64_t ns) {
  if (ns < RATE_MIN_NS || t->cost <= 0 || !t->name) return;
  double x = log((double)ns / t->cost);
  learn_into(rate_of(t->name), x);
  char sized[sizeof rates[0].name];
  if (snprintf(sized, sizeof sized, "%s@%d", t->name, (int)floor(log2(t->cost) / 2)) < (int)sizeof sized)
    learn_into(rate_of(sized), x);
}

/* How long 't' will take, in ns; < 0 when its kind has not been timed yet. */
double lz_task_predict(const lz_task *t) {
  task_rate *r = t->name ? rate_of(t->name) : NULL;
  return r && r->n ? t->cost * exp(r->log_rate) : -1;
}

static bool heavy(const lz_task *t) {
  if (offload_ns <= 0) return true;
  double ns = lz_task_predict(t);
  return ns >= 0 ? ns >= offload_ns : t->cost >= COST_THRESHOLD;
}

/* ---- offloading tasks to the compute thread ---- */

static void work_run(zoe_work *w) {
  lj_job *j = w->data;
  lz_task_run(j->task);
}

static void work_done(zoe_work *w, int status) {
  lj_job *j = w->data;
  lz_task *t = j->task;
  if (status && !t->err.code) zoe_errf(&t->err, status, "%s: canceled", t->name);
  if (!status && !t->err.code) learn(t, w->run_ns);
  stats.offloaded++;
  if (w->run_ns > stats.longest_offloaded_ns) stats.longest_offloaded_ns = w->run_ns;
  lz_job_wake(j, 0);
}

static int offload_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lj_job *j = (lj_job *)ctx;
  lz_task *t = j->task; /* also still on this function's stack */
  j->task = NULL;
  t->flight = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, j->task_ref);
  j->task_ref = LUA_NOREF;
  if (j->cancel && !j->cancel_delivered) lz_job_raise_cancel(L, j, t->name);
  return lz_task_push_results(L, t);
}

static int offload(lua_State *L, lz_task *t) {
  lj_job *j = lz_job_of(L);
  if (!j || !lz_job_can_yield(j, L)) return LZ_INLINE; /* outside jobs, or where nothing can yield */
  lz_job_check_cancel(L, j); /* every op is a boundary where a cancel lands */
  if (!heavy(t)) { /* inline, timed to learn the speed of its kind */
    int64_t t0 = zoe_now_ns();
    lz_task_run(t);
    int64_t ns = zoe_now_ns() - t0;
    if (!t->err.code) learn(t, ns);
    stats.inline_++;
    if (ns > stats.longest_inline_ns) stats.longest_inline_ns = ns;
    return lz_task_push_results(L, t);
  }
  int idx = 0;
  for (int i = lua_gettop(L); i > 0 && !idx; i--)
    if (lua_touserdata(L, i) == t) idx = i;
  if (!idx) return LZ_INLINE; /* cannot hold the task alive: not ours to move */
  lua_pushvalue(L, idx);
  j->task_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  j->task = t;
  t->flight = j;
  j->work.data = j;
  if (zoe_compute_submit(&j->work, work_run, work_done) != 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, j->task_ref);
    j->task_ref = LUA_NOREF;
    j->task = NULL;
    t->flight = NULL;
    return LZ_INLINE;
  }
  j->wait = LJ_W_TASK;
  snprintf(j->what, sizeof j->what, "%s", t->name);
  return lua_yieldk(L, 0, (lua_KContext)j, offload_k);
}

/* lua_close while a task flies: take it back before its finalizer frees what it uses. */
void lz_offload_take_back(lz_task *t) {
  lj_job *j = t->flight;
  zoe_compute_drop(&j->work);
  j->task = NULL;
  t->flight = NULL;
}

/*
** zoe.offload_us([us]): the predicted time from which ops go to the compute
** thread (0: all of them; math.huge: none); returns the previous value.
*/
static int z_offload_us(lua_State *L) {
  double old = offload_ns / 1e3;
  if (!lua_isnoneornil(L, 1)) {
    double v = luaL_checknumber(L, 1);
    luaL_argcheck(L, v >= 0, 1, "microseconds must be 0 or more");
    offload_ns = v * 1e3;
  }
  lua_pushnumber(L, old);
  return 1;
}

/* zoe.offload_rates(): {name = ns per cost unit} as measured so far (for the bench) */
static int z_offload_rates(lua_State *L) {
  lua_newtable(L);
  for (int i = 0; i < NRATES; i++)
    if (rates[i].name[0] && rates[i].n) {
      lua_pushnumber(L, exp(rates[i].log_rate));
      lua_setfield(L, -2, rates[i].name);
    }
  return 1;
}

/*
** zoe.offload_stats([reset]): {offloaded =, inline = (ops run in jobs), longest_offloaded_ms =,
** longest_inline_ms =} since the start or the last reset (for the bench).
*/
static int z_offload_stats(lua_State *L) {
  bool reset = lua_toboolean(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, stats.offloaded);
  lua_setfield(L, -2, "offloaded");
  lua_pushinteger(L, stats.inline_);
  lua_setfield(L, -2, "inline");
  lua_pushnumber(L, (double)stats.longest_offloaded_ns * 1e-6);
  lua_setfield(L, -2, "longest_offloaded_ms");
  lua_pushnumber(L, (double)stats.longest_inline_ns * 1e-6);
  lua_setfield(L, -2, "longest_inline_ms");
  if (reset) memset(&stats, 0, sizeof stats);
  return 1;
}

static const luaL_Reg offload_funcs[] = {
  {"offload_us", z_offload_us},
  {"offload_rates", z_offload_rates},
  {"offload_stats", z_offload_stats},
  {NULL, NULL},
};

void lz_open_offload(lua_State *L) {
  const char *env = getenv("ZOE_OFFLOAD_US");
  offload_ns = env && *env ? atof(env) * 1e3 : OFFLOAD_NS;
  lz_set_offload(offload, 0); /* every task in a job comes to offload(), which decides */
  lz_set_offload_wait(lz_offload_take_back);
  luaL_setfuncs(L, offload_funcs, 0);
}
