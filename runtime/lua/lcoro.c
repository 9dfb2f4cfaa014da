/*
** lcoro.c: the coroutine library of jobs. A job hands an op to the compute
** thread by yielding the coroutine that called it (loffload.c); zoe.sleep,
** zoe.await and job:wait yield the same way, and so does the count hook at
** the end of a time slice. In a coroutine the job resumed itself (a sampler,
** a user's coroutine.wrap) that yield would land in the code that resumed it.
** So, as OpenResty's ngx_lua does for request code, coroutine.resume and the
** functions coroutine.wrap makes are replaced: when the coroutine they resume
** yields because the runtime made it yield (the job's 'wait' is set), they
** yield too, with a continuation, and the yield climbs every level to the
** job's coroutine and the scheduler. When the job is woken, each level's
** continuation resumes the level above it with what it was given, down to
** the one that waited, which gets its result. A yield of the user's own
** (coroutine.yield) comes back from resume as in plain Lua, and outside jobs
** these functions behave as Lua's own.
**
** The levels are tracked in the job (lj_job.nest): a coroutine joins only when
** the top of the nest resumes it through these functions, so one resumed
** some other way (lua_resume from C) runs its ops inline. While a level waits
** for the loop, only its job may resume it: resuming or closing it from
** elsewhere is refused. coroutine.create, yield, status, isyieldable and
** running stay Lua's own.
*/
#include "lloop.h"

#define HELD_MSG "cannot resume a coroutine that waits for the loop (its job resumes it)"

static lua_State *checkco(lua_State *L, int arg) {
  lua_State *co = lua_tothread(L, arg);
  luaL_argexpected(L, co != NULL, arg, "coroutine");
  return co;
}

/*
** Resume 'co' with the 'narg' values already moved onto it. 'j' is the job
** when co is the top of its nest. Returns how many results it left on L, or
** -1 with the error object on L's top. A yield the runtime made does not
** come back here: L yields too, to continue in 'k' with its stack kept.
*/
static int step(lua_State *L, lua_State *co, int narg, lj_job *j, lua_KFunction k) {
  int nres = 0;
  int status = lua_resume(co, L, narg, &nres);
  if (j) {
    if (status == LUA_YIELD && j->wait != LJ_W_NONE) {
      lua_pop(co, nres); /* the runtime's yields carry no values */
      return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), k);
    }
    lz_job_nest_pop(j);
  }
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); /* the error object */
  return -1;
}

/* Resume 'co' with the top 'narg' values of L (a first resume, or a user's). */
static int start(lua_State *L, lua_State *co, int narg, lua_KFunction k) {
  if (lz_coroutine_held(co)) {
    lua_pushliteral(L, HELD_MSG);
    return -1;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pushliteral(L, "cannot resume dead coroutine");
    return -1;
  }
  lua_xmove(L, co, narg);
  lj_job *j = lz_job_of(L);
  if (j && !lz_job_nest_push(j, co)) j = NULL; /* nested too deep: its ops run inline */
  if (j) lz_job_hook_coroutine(co);
  return step(L, co, narg, j, k);
}

/*
** A level's continuation: the job was woken and the level below (or the
** scheduler) resumed L with 'narg' values above 'base'; they go on up to co.
*/
static int again(lua_State *L, lua_State *co, int base, lua_KFunction k) {
  int narg = lua_gettop(L) - base;
  lj_job *j = lz_job_running();
  int level = j ? lz_job_nest_level(j, L) : -1;
  if (level < 0 || level + 1 > j->depth || j->nest[level + 1] != co) {
    lua_settop(L, base);
    lua_pushliteral(L, "a coroutine that waits for the loop was resumed by another coroutine than its job's");
    return -1;
  }
  if (!lua_checkstack(co, narg)) {
    lua_settop(L, base);
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  return step(L, co, narg, j, k);
}

/* ---- coroutine.resume ---- */

static int resume_results(lua_State *L, int r) {
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2; /* false, error */
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1; /* true, results */
}

static int resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return resume_results(L, again(L, lua_tothread(L, 1), (int)ctx, resume_k));
}

static int co_resume(lua_State *L) {
  lua_State *co = checkco(L, 1);
  return resume_results(L, start(L, co, lua_gettop(L) - 1, resume_k));
}

/* ---- coroutine.wrap ---- */

static int close_thread(lua_State *co, lua_State *L) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, L);
#else
  (void)L;
  return lua_resetthread(co);
#endif
}

/* As Lua's wrap: an error closes the coroutine's pending variables and is raised here. */
static int wrap_results(lua_State *L, int r) {
  if (r >= 0) return r;
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int status = lua_status(co);
  if (status != LUA_OK && status != LUA_YIELD) { /* the error came from inside the coroutine */
    status = close_thread(co, L);
    lua_xmove(co, L, 1);
  }
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int wrap_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return wrap_results(L, again(L, lua_tothread(L, lua_upvalueindex(1)), (int)ctx, wrap_k));
}

static int wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  return wrap_results(L, start(L, co, lua_gettop(L), wrap_k));
}

static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrapped, 1);
  return 1;
}

/* ---- coroutine.close: Lua's own (upvalue 1), except on a coroutine the loop holds ---- */

static int co_close(lua_State *L) {
  lua_State *co = checkco(L, 1);
  if (lz_coroutine_held(co)) return luaL_error(L, "cannot close a coroutine that waits for the loop");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

int lz_open_coroutines(lua_State *L) {
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_getfield(L, -1, "resume");
  bool done = lua_tocfunction(L, -1) == co_resume;
  lua_pop(L, 1);
  if (!done) {
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_getfield(L, -1, "close");
    if (lua_isfunction(L, -1)) {
      lua_pushcclosure(L, co_close, 1);
      lua_setfield(L, -2, "close");
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return 0;
}
