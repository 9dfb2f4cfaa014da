/*
** ltask.h: heavy work as a task. A binding checks its arguments, makes a task of
** its own type (a struct whose first member is an lz_task, as libuv's requests
** embed uv_req_t), holds the tensors the work needs, and lz_task_finish runs it,
** inline or on the compute thread, and pushes its results. A task is itself a
** userdata, so a Lua error at any point cannot leak what it holds.
**
**   typedef struct { lz_task base; zoe_tensor *x, *w; } linear_task;
**   static int run_linear(lz_task *t, zoe_err *e) {
**     linear_task *l = (linear_task *)t;
**     return lz_task_result(t, zoe_linear(l->x, l->w, NULL, NULL, e), e);
**   }
**   ... linear_task *l = LZ_TASK_NEW(L, linear_task, run_linear, "linear");
**   l->x = lz_task_hold(L, &l->base, x);
**   l->base.cost = flops;
**   return lz_task_finish(L, &l->base);
*/
#ifndef LTASK_H
#define LTASK_H

#include "lzaux.h"

#define LZ_TASK "zoe.Task"
#define LZ_TASK_RES 4

typedef struct lz_task lz_task;
/* Runs without Lua (possibly on the compute thread): fill t->res, return 0 or a code. */
typedef int (*lz_run_fn)(lz_task *t, zoe_err *e);

struct lz_task {
  lz_run_fn run;
  const char *name;              /* the op, in messages; the offload learns its speed by it */
  double cost;                   /* estimated work in the op's own units; decides inline or offloaded */
  zoe_tensor *res[LZ_TASK_RES];  /* results, handed to Lua by lz_task_finish */
  int nres;
  zoe_err err;
  void *flight;                  /* the loop's record while the task runs off the loop thread */
  zoe_tensor **held;             /* retained by lz_task_hold, released by the finalizer */
  int nheld, cap_held;
  void (*cleanup)(lz_task *t);   /* releases what the op's struct holds besides tensors */
};

/*
** Push a new task userdata of 'size' bytes (the op's struct), zeroed; keep it on the
** stack until lz_task_finish. Read every argument before calling this: the task lands
** on the top of the stack, where a missing optional argument would otherwise be looked for.
*/
lz_task *lz_task_new(lua_State *L, size_t size, lz_run_fn run, const char *name);
#define LZ_TASK_NEW(L, type, run, name) ((type *)lz_task_new((L), sizeof(type), (run), (name)))
/* Retain 'x' for the task's life and return it (NULL stays NULL). */
zoe_tensor *lz_task_hold(lua_State *L, lz_task *t, const zoe_tensor *x);
/* For run functions: one result 'r', or the error in 'e' when r is NULL. */
int lz_task_result(lz_task *t, zoe_tensor *r, zoe_err *e);
/*
** Run the task and push its results; returns how many (for a lua_CFunction's return).
** Raises the task's error, if any. Must be the last thing the binding function does
** (it may yield the calling coroutine until the compute thread is done).
*/
int lz_task_finish(lua_State *L, lz_task *t);

/*
** Hook set by the loop (runtime/lua/lloop.c): for a task whose cost is at least
** the threshold, called in place of running it. It queues the task to the
** compute thread and yields the calling job (returning what lua_yieldk returns),
** or returns LZ_INLINE when it cannot (not inside a job's own coroutine), and
** lz_task_finish then runs the task inline.
*/
#define LZ_INLINE (-1)
typedef int (*lz_offload_fn)(lua_State *L, lz_task *t);
void lz_set_offload(lz_offload_fn fn, double threshold);
/*
** Set by the loop too: block until an offloaded task is off the compute thread.
** A task's finalizer calls it when t->flight is set (lua_close during a task).
*/
void lz_set_offload_wait(void (*wait)(lz_task *t));
/* Run the task here (any thread, no Lua): fills t->res or t->err. */
void lz_task_run(lz_task *t);
/* Push a finished task's results (or raise its error); used by the loop's continuation. */
int lz_task_push_results(lua_State *L, lz_task *t);

#endif
