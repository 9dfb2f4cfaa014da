/*
** lprogress.c: zoe.progress, the one call pipelines make to report stages:
**   zoe.progress{stage = "denoise", step = i, steps = n}   (or zoe.progress("denoise", i, n))
** The event goes to the running job's "progress" listeners, as a table with the
** fields given plus job, id, name, rate (steps/s), eta and elapsed (seconds),
** and to the display (a bar, plain lines, JSON lines, or nothing).
*/
#include "../loop/clock.h"
#include "lloop.h"

/* progress reported outside any job */
static zoe_progress outside;

static lua_Integer intfield(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok && !lua_isnil(L, -1)) luaL_error(L, "zoe.progress: '%s' must be an integer", k);
  lua_pop(L, 1);
  return ok ? v : 0;
}

static int z_progress(lua_State *L) {
  const char *stage;
  lua_Integer step, steps;
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "stage");
    stage = lua_tostring(L, -1);
    if (!stage) return luaL_error(L, "zoe.progress: 'stage' must be a string (like \"denoise\")");
    step = intfield(L, 1, "step");
    steps = intfield(L, 1, "steps");
  } else {
    stage = luaL_checkstring(L, 1);
    step = luaL_optinteger(L, 2, 0);
    steps = luaL_optinteger(L, 3, 0);
  }
  int64_t now = zoe_now_ns();
  lj_job *j = lz_job_running();
  zoe_progress *p = j ? &j->progress : &outside;
  zoe_progress_update(p, stage, step, steps, now);
  if (j) {
    j->has_progress = true;
    lua_createtable(L, 0, 12);
    if (lua_istable(L, 1)) { /* fields the caller added travel along */
      lua_pushnil(L);
      while (lua_next(L, 1)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
      }
    }
    lz_job_push(L, j);
    lua_setfield(L, -2, "job");
    lua_pushinteger(L, j->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, j->name);
    lua_setfield(L, -2, "name");
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
    lua_pushnumber(L, p->elapsed);
    lua_setfield(L, -2, "elapsed");
    lz_job_emit(L, j, "progress");
  }
  zoe_display_progress(lz_loop_display(), j ? j->id : 0, j ? j->name : "main", p, now);
  return 0;
}

/*
** zoe.note(text): a message for whoever watches (above the bar on a terminal, a
** "message" event with --json, above the REPL's prompt); nothing with --quiet.
*/
static int z_note(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  if (lz_loop_display()->mode != ZOE_DISPLAY_QUIET) lz_loop_print(text);
  return 0;
}

static const luaL_Reg progress_funcs[] = {
  {"progress", z_progress},
  {"note", z_note},
  {NULL, NULL},
};

int lz_open_progress(lua_State *L) {
  luaL_setfuncs(L, progress_funcs, 0);
  return 0;
}
