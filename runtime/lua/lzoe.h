/*
** lzoe.h: helpers shared by the Lua binding files (the only files that see lua.h).
** Tensors are userdata boxes holding one reference to a C tensor.
** Heavy work goes through a task (lz_task): the binding checks its arguments,
** fills a task, and lz_task_finish runs it, inline or on the compute thread,
** and pushes its results. A task is itself a userdata, so a Lua error at any
** point cannot leak the tensors it holds.
*/
#ifndef LZOE_H
#define LZOE_H

#include <lauxlib.h>
#include <lua.h>

#include "../core/pool.h"
#include "../core/rng.h"
#include "../core/tensor.h"

#define LZ_TENSOR "zoe.Tensor"
#define LZ_TASK "zoe.Task"
#define LZ_RNG "zoe.Generator"

typedef struct lz_tensor_box {
  zoe_tensor *t;
} lz_tensor_box;

/* ---- tensors ---- */
zoe_tensor *lz_checktensor(lua_State *L, int arg);
zoe_tensor *lz_totensor(lua_State *L, int arg); /* NULL when not a tensor; raises when closed */
/* Push 't', taking over the caller's reference. Nudges the GC as C memory grows. */
void lz_pushtensor(lua_State *L, zoe_tensor *t);
/* Raise a Lua error with e's message (the 'where' prefix says which line). */
int lz_error(lua_State *L, const zoe_err *e);
/* Push or raise: 't' non-NULL is pushed, NULL raises 'e'. */
int lz_result(lua_State *L, zoe_tensor *t, const zoe_err *e);

/* A Lua dim (1-based, or negative from the end) as a 0-based C dim; raises when out of range. */
int lz_checkdim(lua_State *L, int arg, const zoe_tensor *t, const char *op, int extra);
/* A shape from a table {2,3} or from the integers at arg.. (returns ndim). */
int lz_checkshape(lua_State *L, int arg, int64_t *shape, const char *op);
/* Optional dtype name at 'arg' (string) or in table field 'dtype'. */
zoe_dtype lz_optdtype(lua_State *L, int arg, zoe_dtype def);
zoe_dtype lz_checkdtype(lua_State *L, int arg);

/* ---- tasks ---- */
#define LZ_TASK_IN 8
#define LZ_TASK_RES 4

typedef struct lz_task lz_task;
/* Runs without Lua (possibly on the compute thread): fill t->res, return 0 or a code. */
typedef int (*lz_run_fn)(lz_task *t, zoe_err *e);

struct lz_task {
  lz_run_fn run;
  const char *name;
  int kind;                      /* op selector for 'run' */
  zoe_tensor *in[LZ_TASK_IN];    /* retained */
  int nin;
  zoe_tensor *out;               /* optional destination, retained */
  zoe_tensor *res[LZ_TASK_RES];  /* results, handed to Lua by lz_task_finish */
  int nres;
  int iv[8];
  int64_t lv[2 * ZOE_MAX_DIMS];
  double dv[8];
  double cost;                   /* estimated work (flops); decides inline or offloaded */
  void *extra;                   /* op-specific state */
  void (*free_extra)(void *);
  zoe_err err;
  void *flight;                  /* the loop's record while the task runs off the loop thread */
};

/*
** Push a new task userdata; keep it on the stack until lz_task_finish.
** Read every argument before calling this: the task lands on the top of the
** stack, where a missing optional argument would otherwise be looked for.
*/
lz_task *lz_task_new(lua_State *L, lz_run_fn run, const char *name, int kind);
/* Add an input (retained by the task). */
void lz_task_in(lz_task *t, const zoe_tensor *x);
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
double lz_offload_threshold(void);
/*
** Set by the loop too: block until an offloaded task is off the compute thread.
** A task's finalizer calls it when t->flight is set (lua_close during a task).
*/
void lz_set_offload_wait(void (*wait)(lz_task *t));
/* Run the task here (any thread, no Lua): fills t->res or t->err. */
void lz_task_run(lz_task *t);
/* Push a finished task's results (or raise its error); used by the loop's continuation. */
int lz_task_push_results(lua_State *L, lz_task *t);

/* ---- module parts: each binding file opens one ---- */
int lz_open_tensor(lua_State *L);
/* zoe.spawn, zoe.sleep, zoe.progress, ... into the table on the top (lloop.c) */
void lz_open_loop(lua_State *L);
/* zoe.load, zoe.save (lweights.c): set into the table on the stack top */
void lz_weights_functions(lua_State *L);
/* zoe.tokenizer (ltokenizer.c) */
void lz_tokenizer_functions(lua_State *L);

#endif
