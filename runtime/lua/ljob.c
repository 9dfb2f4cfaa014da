/*
** ljob.c: the zoe.Job object: zoe.spawn, zoe.jobs, zoe.current, and a job's
** methods (wait, cancel, status, result, on, name, id, info, last), and zoe.emit.
**
** A job is a userdata holding an lj_job; its user value is a table with the
** coroutine ('co', dropped when the job ends), its listeners ('on'), and its
** outcome: results 1..n with 'n', or 'err' and 'traceback'.
*/
#include <stdio.h>
#include <string.h>

#include "../loop/clock.h"
#include "lloop.h"

static int next_id;

/* registry table: failed jobs nobody has looked at yet */
#define UNOBSERVED "zoe.unobserved"

static lj_job *checkjob(lua_State *L, int arg) { return luaL_checkudata(L, arg, LZ_JOB); }

static const char *state_names[] = {"ready", "running", "done", "failed", "canceled"};

const char *lz_job_status(const lj_job *j) {
  if (j->state == LJ_READY) return "running"; /* queued to start: running, as far as users care */
  return state_names[j->state];
}

/* "f@script.lua:12" for a Lua function, "job" otherwise */
static void default_name(lua_State *L, int fn, char *b, size_t n) {
  lua_Debug ar;
  lua_pushvalue(L, fn);
  if (lua_getinfo(L, ">S", &ar) && ar.what[0] != 'C') snprintf(b, n, "%s:%d", ar.short_src, ar.linedefined);
  else snprintf(b, n, "job");
}

static void job_metatable(lua_State *L);

lj_job *lz_job_new(lua_State *L, int fn, int nargs, const char *name) {
  lz_loop_init(L);
  /* the main job is made before zoe is loaded: what the job needs is set up here */
  lz_loop_on_job_end(lz_job_finished);
  lz_open_coroutines(L);
  luaL_checkstack(L, nargs + 4, "zoe.spawn: too many arguments");
  lj_job *j = lua_newuserdatauv(L, sizeof *j, 1);
  memset(j, 0, sizeof *j);
  j->ref = j->task_ref = LUA_NOREF;
  job_metatable(L);
  lua_setmetatable(L, -2);
  lua_createtable(L, 0, 4);
  j->co = j->nest[0] = lua_newthread(L);
  lua_setfield(L, -2, "co");
  lua_setiuservalue(L, -2, 1);
  for (int i = 0; i <= nargs; i++) lua_pushvalue(L, fn + i);
  lua_xmove(L, j->co, nargs + 1);
  j->nargs = nargs;
  j->id = ++next_id;
  if (name) snprintf(j->name, sizeof j->name, "%s", name);
  else default_name(L, fn, j->name, sizeof j->name);
  lua_pushvalue(L, -1);
  j->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lz_loop_add(j);
  return j;
}

/* Call fn(value) for each listener of 'event'; the value on the top is popped. */
void lz_job_emit(lua_State *L, lj_job *j, const char *event) {
  int value = lua_gettop(L);
  lz_job_push(L, j);
  lua_getiuservalue(L, -1, 1);
  if (lua_getfield(L, -1, "on") == LUA_TTABLE && lua_getfield(L, -1, event) == LUA_TTABLE) {
    int list = lua_gettop(L);
    for (lua_Integer i = 1, n = luaL_len(L, list); i <= n; i++) {
      lua_rawgeti(L, list, i);
      lua_pushvalue(L, value);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_pushfstring(L, "a '%s' listener of job %d failed: %s", event, j->id, luaL_tolstring(L, -1, NULL));
        lz_loop_print(lua_tostring(L, -1));
        lua_pop(L, 3);
      }
    }
  }
  lua_settop(L, value - 1);
}

static bool has_listeners(lua_State *L, int ut, const char *event) {
  bool yes = lua_getfield(L, ut, "on") == LUA_TTABLE && lua_getfield(L, -1, event) == LUA_TTABLE &&
             luaL_len(L, -1) > 0;
  lua_settop(L, ut);
  return yes;
}

/* The scheduler saw the coroutine end: keep the outcome, tell whoever waits, let the job go. */
void lz_job_finished(lua_State *L, lj_job *j, int status, int nres) {
  lua_State *co = j->co;
  j->t_end = zoe_now_ns();
  luaL_checkstack(L, nres + 8, "job results");
  lz_job_push(L, j);
  int ud = lua_gettop(L);
  lua_getiuservalue(L, ud, 1);
  int ut = ud + 1;
  const char *err = NULL;
  if (status == LUA_OK) {
    lua_xmove(co, L, nres);
    for (int i = nres; i >= 1; i--) lua_rawseti(L, ut, i);
    lua_pushinteger(L, nres);
    lua_setfield(L, ut, "n");
    j->state = LJ_DONE;
  } else {
    lua_xmove(co, L, 1); /* the error object */
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = luaL_tolstring(L, -1, NULL);
    luaL_traceback(L, co, msg, 0);
    lua_setfield(L, ut, "traceback");
    lua_settop(L, ut + 1);
    lua_setfield(L, ut, "err");
    j->state = j->cancel ? LJ_CANCELED : LJ_FAILED;
#if LUA_VERSION_RELEASE_NUM >= 50406
    lua_closethread(co, L); /* run its pending __close handlers: what was written gets closed */
#else
    lua_resetthread(co);
#endif
    lua_getfield(L, ut, "err");
    err = luaL_tolstring(L, -1, NULL);
  }
  lua_pushnil(L);
  lua_setfield(L, ut, "co");
  j->co = NULL;
  memset(j->nest, 0, sizeof j->nest);
  j->depth = 0;
  lz_loop_remove(j);
  bool watched = j->observed || has_listeners(L, ut, "done");
  for (lj_job *k = lz_jobs_first(); k; k = k->next)
    if (k->wait == LJ_W_JOB && k->waiting_on == j) {
      lz_job_wake(k, 0);
      watched = true;
    }
  zoe_display_job(lz_loop_display(), j->id, j->name, state_names[j->state], err,
                  (double)(j->t_end - j->t_start) * 1e-9);
  if (j->state == LJ_FAILED && !watched) { /* nobody may ever look: keep it for the end */
    j->reported = true;
    lz_loop_count_unobserved(1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, UNOBSERVED);
    lua_pushvalue(L, ud);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    if (lz_loop_interactive()) { /* the REPL shows it now */
      lua_getfield(L, ut, "traceback");
      lua_pushfstring(L, "job %d (%s) failed: %s", j->id, j->name, lua_tostring(L, -1));
      lz_loop_print(lua_tostring(L, -1));
    }
  }
  lua_pushvalue(L, ud);
  lz_job_emit(L, j, "done");
  lua_settop(L, ud - 1);
  luaL_unref(L, LUA_REGISTRYINDEX, j->ref);
  j->ref = LUA_NOREF;
}

/* Someone looks at the outcome of the job at 'idx': it is no longer a failure nobody saw. */
static void observe(lua_State *L, lj_job *j, int idx) {
  if (j->reported && !j->observed) {
    lz_loop_count_unobserved(-1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, UNOBSERVED);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  j->observed = true;
}

/* At the end of the command: print the failures nobody waited for. */
void lz_jobs_report_unobserved(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, UNOBSERVED);
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lj_job *j = lua_touserdata(L, -2);
    lua_getiuservalue(L, -2, 1);
    lua_getfield(L, -1, "traceback");
    lua_pushfstring(L, "job %d (%s) failed and nobody waited for it: %s", j->id, j->name, lua_tostring(L, -1));
    lz_loop_print(lua_tostring(L, -1));
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
}

/* The outcome of the finished job at 'idx': its results, or its error raised. */
int lz_job_push_outcome(lua_State *L, int idx) {
  lj_job *j = checkjob(L, idx);
  observe(L, j, idx);
  lua_getiuservalue(L, idx, 1);
  int ut = lua_gettop(L);
  if (j->state == LJ_DONE) {
    lua_getfield(L, ut, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n, "job results");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, ut, i);
    return n;
  }
  if (j->state == LJ_CANCELED) return luaL_error(L, "job %d (%s) was canceled", j->id, j->name);
  lua_getfield(L, ut, "err");
  return lua_error(L); /* the job's own error, as it was raised */
}

/* ---- methods ---- */

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lz_job_check_cancel(L, (lj_job *)ctx);
  return lz_job_push_outcome(L, 1);
}

/* job:wait(): its results (or its error). Yields in a job; runs the loop otherwise. */
static int j_wait(lua_State *L) {
  lj_job *t = checkjob(L, 1);
  lua_settop(L, 1);
  if (t->state < LJ_DONE) {
    lj_job *j = lz_job_of(L);
    if (j) {
      if (j == t) return luaL_error(L, "job:wait: job %d cannot wait for itself", j->id);
      lz_job_check_cancel(L, j);
      lz_job_check_yield(L, j, "job:wait");
      j->wait = LJ_W_JOB;
      j->waiting_on = t;
      return lua_yieldk(L, 0, (lua_KContext)j, wait_k);
    }
    lz_loop_run_until(L, t);
  }
  return lz_job_push_outcome(L, 1);
}

static int j_cancel(lua_State *L) {
  lua_pushboolean(L, lz_job_cancel(checkjob(L, 1)));
  return 1;
}

static int j_status(lua_State *L) {
  lua_pushstring(L, lz_job_status(checkjob(L, 1)));
  return 1;
}

/* job:result(): the results when done; nil and a message when failed, canceled or running. */
static int j_result(lua_State *L) {
  lj_job *j = checkjob(L, 1);
  lua_settop(L, 1);
  if (j->state == LJ_DONE) return lz_job_push_outcome(L, 1);
  lua_pushnil(L);
  if (j->state < LJ_DONE) {
    lua_pushliteral(L, "running");
    return 2;
  }
  observe(L, j, 1);
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, "err");
  lua_remove(L, -2);
  return 2;
}

/* events a job's listeners can hear; "done" is the scheduler's, the others come from code
** running in the job (zoe.progress, zoe.emit) */
static const char *const events[] = {"progress", "done", "preview", NULL};

/* job:on("progress" | "done" | "preview", fn): returns the job. A finished job calls a "done" listener at once. */
static int j_on(lua_State *L) {
  lj_job *j = checkjob(L, 1);
  int ev = luaL_checkoption(L, 2, NULL, events);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (ev == 1 && j->state >= LJ_DONE) {
    observe(L, j, 1);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
    lua_settop(L, 1);
    return 1;
  }
  lua_getiuservalue(L, 1, 1);
  luaL_getsubtable(L, -1, "on");
  luaL_getsubtable(L, -1, events[ev]);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, luaL_len(L, -2) + 1);
  lua_settop(L, 1);
  return 1;
}

/* job:name() or job:name("shot 3") */
static int j_name(lua_State *L) {
  lj_job *j = checkjob(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    snprintf(j->name, sizeof j->name, "%s", luaL_checkstring(L, 2));
    lua_settop(L, 1);
    return 1;
  }
  lua_pushstring(L, j->name);
  return 1;
}

static int j_id(lua_State *L) {
  lua_pushinteger(L, checkjob(L, 1)->id);
  return 1;
}

/* job:info(): {id, name, status, waiting, elapsed, [stage, step, steps, rate, eta], [error, traceback]} */
static int j_info(lua_State *L) {
  lj_job *j = checkjob(L, 1);
  char w[80];
  lz_job_wait_text(j, w, sizeof w);
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, j->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, j->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, lz_job_status(j));
  lua_setfield(L, -2, "status");
  lua_pushstring(L, w);
  lua_setfield(L, -2, "waiting");
  int64_t end = j->state >= LJ_DONE ? j->t_end : zoe_now_ns();
  lua_pushnumber(L, j->t_start ? (double)(end - j->t_start) * 1e-9 : 0);
  lua_setfield(L, -2, "elapsed");
  if (j->state == LJ_FAILED || j->state == LJ_CANCELED) {
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "traceback");
    lua_setfield(L, -3, "traceback");
    lua_getfield(L, -1, "err");
    lua_setfield(L, -3, "error");
    lua_pop(L, 1);
  }
  if (j->has_progress) {
    const zoe_progress *p = &j->progress;
    lua_pushstring(L, p->stage);
    lua_setfield(L, -2, "stage");
    lua_pushinteger(L, p->step);
    lua_setfield(L, -2, "step");
    lua_pushinteger(L, p->steps);
    lua_setfield(L, -2, "steps");
    lua_pushnumber(L, p->rate);
    lua_setfield(L, -2, "rate");
    lua_pushnumber(L, p->eta);
    lua_setfield(L, -2, "eta");
  }
  return 1;
}

/* job:last(event): the value last emitted with zoe.emit(event, value) in this job, or nil */
static int j_last(lua_State *L) {
  checkjob(L, 1);
  const char *ev = events[luaL_checkoption(L, 2, NULL, events)];
  lua_getiuservalue(L, 1, 1);
  if (lua_getfield(L, -1, "last") == LUA_TTABLE) lua_getfield(L, -1, ev);
  else lua_pushnil(L);
  return 1;
}

static int j_tostring(lua_State *L) {
  lj_job *j = checkjob(L, 1);
  lua_pushfstring(L, "zoe.Job %d %s (%s)", j->id, j->name, lz_job_status(j));
  return 1;
}

/* Only finished jobs are collected, except by lua_close, when one may still wait for something. */
static int j_gc(lua_State *L) {
  lz_loop_forget(checkjob(L, 1));
  return 0;
}

/* ---- module functions ---- */

/* zoe.spawn(fn, ...): a new job running fn(...); it starts on the loop's next turn. */
static int z_spawn(lua_State *L) {
  if (!lua_isfunction(L, 1)) {
    if (luaL_getmetafield(L, 1, "__call") == LUA_TNIL) return luaL_typeerror(L, 1, "function");
    lua_pop(L, 1);
  }
  lz_job_new(L, 1, lua_gettop(L) - 1, NULL);
  return 1;
}

/* zoe.jobs(): the unfinished jobs, oldest first */
static int z_jobs(lua_State *L) {
  lua_newtable(L);
  int i = 0;
  for (lj_job *j = lz_jobs_first(); j; j = j->next) {
    lz_job_push(L, j);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* zoe.emit(event, value): to the running job's listeners of 'event' (not "done"), and kept as
** job:last(event). Outside a job it does nothing. Returns whether a job heard it. */
static int z_emit(lua_State *L) {
  int ev = luaL_checkoption(L, 1, NULL, events);
  luaL_argcheck(L, strcmp(events[ev], "done") != 0, 1, "'done' is the scheduler's to emit");
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  lj_job *j = lz_job_running();
  if (!j) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lz_job_push(L, j);
  lua_getiuservalue(L, -1, 1);
  luaL_getsubtable(L, -1, "last");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, events[ev]);
  lua_settop(L, 2);
  lz_job_emit(L, j, events[ev]); /* pops the value */
  lua_pushboolean(L, 1);
  return 1;
}

/* zoe.current(): the job running now, or nil */
static int z_current(lua_State *L) {
  lj_job *j = lz_job_running();
  if (j) lz_job_push(L, j);
  else lua_pushnil(L);
  return 1;
}

static const luaL_Reg job_methods[] = {
  {"wait", j_wait}, {"cancel", j_cancel}, {"status", j_status}, {"result", j_result},
  {"on", j_on},     {"name", j_name},     {"id", j_id},         {"info", j_info},
  {"last", j_last}, {NULL, NULL},
};

static const luaL_Reg job_funcs[] = {
  {"spawn", z_spawn},
  {"jobs", z_jobs},
  {"current", z_current},
  {"emit", z_emit},
  {NULL, NULL},
};

/* Push the metatable of jobs, made on first use. */
static void job_metatable(lua_State *L) {
  if (!luaL_newmetatable(L, LZ_JOB)) return;
  luaL_newlib(L, job_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, j_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, j_gc);
  lua_setfield(L, -2, "__gc");
}

int lz_open_job(lua_State *L) {
  job_metatable(L);
  lua_pop(L, 1);
  luaL_setfuncs(L, job_funcs, 0);
  return 0;
}

/* ---- the command's main job ---- */

int lz_job_main(lua_State *L, int nargs, const char *name) {
  lz_loop_init(L);
  int fn = lua_gettop(L) - nargs;
  lj_job *j = lz_job_new(L, fn, nargs, name);
  j->observed = true;
  int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the job outlives its end: its outcome is read after */
  lua_settop(L, fn - 1);
  int rc = lz_loop_run_main(L, j, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  lz_jobs_report_unobserved(L);
  if (!rc && lz_loop_unobserved_failures()) rc = 1;
  if (lz_loop_interrupted() && rc != 1) rc = 130;
  return rc;
}
