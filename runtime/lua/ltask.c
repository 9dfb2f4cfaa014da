/*
** ltask.c: tasks (ltask.h): made by the bindings, run inline or handed to the
** loop's offload hook, and finalized by Lua's GC whatever happened in between.
*/
#include "ltask.h"

#include <stdlib.h>
#include <string.h>

static lz_offload_fn offload_hook;
static double offload_threshold = 1e300;
static void (*offload_wait)(lz_task *t);

void lz_set_offload(lz_offload_fn fn, double threshold) {
  offload_hook = fn;
  offload_threshold = threshold;
}


void lz_set_offload_wait(void (*wait)(lz_task *t)) { offload_wait = wait; }

static int task_gc(lua_State *L) {
  lz_task *t = luaL_checkudata(L, 1, LZ_TASK);
  if (t->flight && offload_wait) offload_wait(t); /* the compute thread may still use it */
  if (t->cleanup) t->cleanup(t);
  for (int i = 0; i < t->nheld; i++) zoe_tensor_release(t->held[i]);
  free(t->held);
  for (int i = 0; i < LZ_TASK_RES; i++) zoe_tensor_release(t->res[i]);
  memset(t, 0, sizeof *t);
  return 0;
}

lz_task *lz_task_new(lua_State *L, size_t size, lz_run_fn run, const char *name) {
  lz_task *t = lua_newuserdatauv(L, size, 0);
  memset(t, 0, size);
  if (luaL_newmetatable(L, LZ_TASK)) {
    lua_pushcfunction(L, task_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  t->run = run;
  t->name = name;
  return t;
}

zoe_tensor *lz_task_hold(lua_State *L, lz_task *t, const zoe_tensor *x) {
  if (!x) return NULL;
  if (t->nheld == t->cap_held) {
    int cap = t->cap_held ? 2 * t->cap_held : 8;
    zoe_tensor **h = realloc(t->held, (size_t)cap * sizeof *h);
    if (!h) luaL_error(L, "%s: out of memory", t->name);
    t->held = h;
    t->cap_held = cap;
  }
  return t->held[t->nheld++] = zoe_tensor_retain(x);
}

int lz_task_result(lz_task *t, zoe_tensor *r, zoe_err *e) {
  if (!r) return e->code ? e->code : ZOE_EINVAL;
  t->res[0] = r;
  t->nres = 1;
  return 0;
}

int lz_task_push_results(lua_State *L, lz_task *t) {
  if (t->err.code) return lz_error(L, &t->err);
  for (int i = 0; i < t->nres; i++) {
    zoe_tensor *r = t->res[i];
    t->res[i] = NULL;
    if (r) lz_pushtensor(L, r);
    else lua_pushnil(L);
  }
  return t->nres;
}

void lz_task_run(lz_task *t) {
  int rc = t->run(t, &t->err);
  if (rc && !t->err.code) zoe_errf(&t->err, rc, "%s: %s", t->name, zoe_strerror(rc));
}

int lz_task_finish(lua_State *L, lz_task *t) {
  if (offload_hook && t->cost >= offload_threshold && lua_isyieldable(L)) {
    int n = offload_hook(L, t);
    if (n != LZ_INLINE) return n;
  }
  lz_task_run(t);
  return lz_task_push_results(L, t);
}
