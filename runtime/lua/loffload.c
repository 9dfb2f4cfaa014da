/*
** loffload.c: which tasks leave the loop thread, and how. lz_task_finish
** hands every task finished in a job, at any coroutine depth (lcoro.c), to
** offload(): a cheap one runs inline there (timed); a heavy one goes to the
** compute thread while the calling coroutine yields (lua_yieldk) up to the
** job, held by a registry reference until its continuation pushes the
** results. Its finalizer, which only lua_close can reach while it flies,
** first takes it back from the compute thread (lz_loop_take_back). Which tasks
** are heavy is the op-rate model's call (runtime/loop/oprate.h).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop/clock.h"
#include "../loop/oprate.h"
#include "lloop.h"

/* What ran in jobs since the last reset: counts and the longest run on each side (bench). */
static struct {
  int64_t offloaded, inline_;
  int64_t longest_offloaded_ns, longest_inline_ns;
} stats;

/* ---- offloading tasks to the compute thread ---- */

static void work_run(zoe_work *w) {
  lj_job *j = w->data;
  lz_task_run(j->task);
}

static void work_done(zoe_work *w, int status) {
  lj_job *j = w->data;
  lz_task *t = j->task;
  if (status && !t->err.code) zoe_errf(&t->err, status, "%s: canceled", t->name);
  if (!status && !t->err.code) zoe_oprate_learn(t->name, t->cost, w->run_ns);
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
  if (!zoe_oprate_heavy(t->name, t->cost)) { /* inline, timed to learn the speed of its kind */
    int64_t t0 = zoe_now_ns();
    lz_task_run(t);
    int64_t ns = zoe_now_ns() - t0;
    if (!t->err.code) zoe_oprate_learn(t->name, t->cost, ns);
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

/*
** zoe.offload_us([us]): the predicted time from which ops go to the compute
** thread (0: all of them; math.huge: none); returns the previous value.
*/
static int z_offload_us(lua_State *L) {
  double old = zoe_oprate_set_threshold(0);
  zoe_oprate_set_threshold(old);
  if (!lua_isnoneornil(L, 1)) {
    double v = luaL_checknumber(L, 1);
    luaL_argcheck(L, v >= 0, 1, "microseconds must be 0 or more");
    zoe_oprate_set_threshold(v * 1e3);
  }
  lua_pushnumber(L, old / 1e3);
  return 1;
}

/* zoe.offload_rates(): {name = ns per cost unit} as measured so far (for the bench) */
static int z_offload_rates(lua_State *L) {
  lua_newtable(L);
  double rate;
  const char *name;
  for (int i = 0; (name = zoe_oprate_kind(i, &rate)); i++) {
    lua_pushnumber(L, rate);
    lua_setfield(L, -2, name);
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

int lz_open_offload(lua_State *L) {
  const char *env = getenv("ZOE_OFFLOAD_US");
  zoe_oprate_set_threshold(env && *env ? atof(env) * 1e3 : ZOE_OPRATE_THRESHOLD_NS);
  lz_set_offload(offload, 0); /* every task in a job comes to offload(), which decides */
  lz_set_offload_wait(lz_loop_take_back);
  luaL_setfuncs(L, offload_funcs, 0);
  return 0;
}
