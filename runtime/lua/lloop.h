/*
** lloop.h: jobs on the loop, shared by lloop.c (the scheduler, sleep/await/
** run, luv), loffload.c (tasks to the compute thread), ljob.c (zoe.Job), lprogress.c
** (zoe.progress) and lrepl.c (the REPL). main.c drives it through the
** lz_loop_* functions at the end.
**
** A job is a coroutine that only the scheduler resumes. It runs until it
** waits for something (a task on the compute thread, a timer, another job, a
** libuv callback), or until its time slice is over (a count hook yields it, so
** a job busy in Lua cannot starve the loop). Whatever it waited for puts it back
** on the ready list; the loop's idle callback resumes ready jobs in order.
** Everything here runs on the loop thread.
*/
#ifndef LLOOP_H
#define LLOOP_H

#include <uv.h>

#include "../loop/compute.h"
#include "../loop/progress.h"
#include "../core/pool.h"
#include "ltask.h"
#include "lzlib.h"

#define LZ_JOB "zoe.Job"

typedef enum lj_state { LJ_READY, LJ_RUNNING, LJ_DONE, LJ_FAILED, LJ_CANCELED } lj_state;
typedef enum lj_wait {
  LJ_W_NONE,  /* running, or ready to run */
  LJ_W_SLICE, /* yielded to let the loop turn (time slice, coroutine.yield, zoe.sleep(0)) */
  LJ_W_TASK,  /* a task on the compute thread */
  LJ_W_TIMER, /* zoe.sleep */
  LJ_W_JOB,   /* job:wait() on another job */
  LJ_W_AWAIT, /* zoe.await: a libuv callback */
} lj_wait;

typedef struct lj_timer lj_timer;
typedef struct lj_job lj_job;

/* How deep a job's coroutines may nest and still hand their ops to the compute thread. */
#define LJ_NEST_MAX 48

struct lj_job {
  int id;
  lj_state state;
  lj_wait wait;
  bool cancel;           /* cancel requested */
  bool cancel_delivered; /* the cancel error was raised once in the job */
  bool observed;         /* someone took its outcome (wait, result, main) */
  bool reported;         /* it failed with nobody watching, and that was printed */
  bool in_ready;
  lua_State *co;         /* the coroutine; the job's user value table keeps it alive */
  /*
  ** The coroutines the job resumed through its coroutine library (lcoro.c),
  ** outermost first: nest[0] is 'co', nest[depth] runs (or waits) now. A
  ** yield the runtime makes in nest[depth] goes up through every level.
  */
  lua_State *nest[LJ_NEST_MAX];
  int depth;
  int ref;               /* registry reference to the userdata while unfinished */
  int nargs;             /* values pushed on 'co' for the next resume */
  lj_job *ready_next;
  lj_job *prev, *next;   /* the list of unfinished jobs, by id */
  lj_job *waiting_on;    /* LJ_W_JOB */
  zoe_work work;         /* LJ_W_TASK: the request on the compute thread */
  lz_task *task;
  int task_ref;
  lj_timer *timer;       /* LJ_W_TIMER */
  unsigned await_seq;    /* LJ_W_AWAIT: which callback may wake it */
  zoe_progress progress;
  bool has_progress;
  int64_t t_start, t_end;
  char name[64];
  char what[48];         /* what it waits for, for messages and :jobs */
};

/* ---- job records, read by the scheduler and the job objects (lloop.c) ---- */
/* Push the job's userdata (unfinished jobs only). */
void lz_job_push(lua_State *L, lj_job *j);
/* "job 3 (f@x.lua:12) in matmul" */
void lz_job_describe(const lj_job *j, char *buf, size_t n);
/* What a running job waits for ("in matmul (compute thread)", "sleeping", ...; "" when nothing). */
void lz_job_wait_text(const lj_job *j, char *buf, size_t n);
/* The scheduler calls this when a job's coroutine ends (ljob.c sets lz_job_finished). */
typedef void (*lz_job_end_fn)(lua_State *L, lj_job *j, int status, int nres);
void lz_loop_on_job_end(lz_job_end_fn fn);

/* ---- the loop (lloop.c) ---- */
/* Create the loop state for L's Lua state (idempotent); raises on failure. */
void lz_loop_init(lua_State *L);
uv_loop_t *lz_loop_uv(void);
/* The job being resumed now (a coroutine it created runs on its behalf too), or NULL. */
lj_job *lz_job_running(void);
/*
** The job on whose behalf L runs: L is the running job's coroutine, or one it
** resumed, at any depth, through its coroutine library. NULL outside jobs, and
** in a coroutine resumed some other way (Lua's own lua_resume from C).
*/
lj_job *lz_job_of(lua_State *L);
/* Whether L (lz_job_of) and every level between it and the job can yield now. */
bool lz_job_can_yield(const lj_job *j, lua_State *L);
/* Track 'co', about to be resumed by the top of j's nest; false when too deep. */
bool lz_job_nest_push(lj_job *j, lua_State *co);
void lz_job_nest_pop(lj_job *j);
/* The level of L in the running job's nest, or -1. */
int lz_job_nest_level(const lj_job *j, lua_State *L);
/* Whether 'co' belongs to the loop now: a job's own coroutine, or one waiting in a job's nest. */
bool lz_coroutine_held(lua_State *co);
/* Give a coroutine a job resumes the job's count hook, unless it has a hook of its own. */
void lz_job_hook_coroutine(lua_State *co);
/* Put a waiting job on the ready list, with 'nargs' values already pushed on its coroutine. */
void lz_job_wake(lj_job *j, int nargs);
/* Raise the job's cancel error if a cancel is pending (called at every yield point). */
void lz_job_check_cancel(lua_State *L, lj_job *j);
/* Raise an error saying why 'who' cannot wait when L cannot yield up to the job. */
void lz_job_check_yield(lua_State *L, lj_job *j, const char *who);
/* Raise it now ("job 3 canceled (during matmul)" when 'during' is given). */
void lz_job_raise_cancel(lua_State *L, lj_job *j, const char *during);
/* Ask a job to stop; false when it had already finished. */
bool lz_job_cancel(lj_job *j);
/* Run the loop until 'until' finishes (NULL: until nothing is left). Raises when called inside it. */
void lz_loop_run_until(lua_State *L, lj_job *until);
lj_job *lz_jobs_first(void); /* unfinished jobs: lz_jobs_first(), then j->next */
zoe_display *lz_loop_display(void);
/* A new job joins the list of unfinished jobs and the ready list; a finished one leaves. */
void lz_loop_add(lj_job *j);
void lz_loop_remove(lj_job *j);
/* The finalizer of a job: lua_close may find it unfinished, still waiting for something. */
void lz_loop_forget(lj_job *j);
/* A failure was reported with nobody watching (+1), or was observed after all (-1). */
void lz_loop_count_unobserved(int delta);

/* Take an offloaded task back from the compute thread, blocking (lua_close during a task). */
void lz_loop_take_back(lz_task *t);

/* ---- jobs (ljob.c) ---- */
/* Make a job running the function at stack index 'fn' with the 'nargs' values above it; pushes the job. */
lj_job *lz_job_new(lua_State *L, int fn, int nargs, const char *name);
/* When the coroutine ended (status from lua_resume, 'nres' results on co): the scheduler's
   end-of-job hook, set by lz_open_job. */
void lz_job_finished(lua_State *L, lj_job *j, int status, int nres);
const char *lz_job_status(const lj_job *j);
/* Push the outcome of the finished job at 'idx': its results, or raise its error; marks it observed. */
int lz_job_push_outcome(lua_State *L, int idx);
/* Call the job's listeners for 'event' with the value on the top of the stack (popped). */
void lz_job_emit(lua_State *L, lj_job *j, const char *event);
/* Print the failed jobs nobody waited for (the end of the command). */
void lz_jobs_report_unobserved(lua_State *L);
/* Run the command's job: make it from the function below 'nargs' values, run the loop
   until nothing is left, report; returns the exit status (ljob.c). */
int lz_job_main(lua_State *L, int nargs, const char *name);

/* ---- for main.c and the REPL ---- */
/* -v: a failed main job prints its traceback even for an error without a position. */
void lz_loop_set_verbose(bool on);
/* Whether an error message starts at a position ("x.lua:12: ..."); one without is the user's. */
bool lz_error_positioned(const char *msg);
/* Mode of the display (--quiet, --json; default: a bar on a terminal, lines otherwise). */
void lz_loop_set_display(zoe_display_mode mode);
/* Handle Ctrl-C: the command cancels every job and exits on a second press within 2 s. */
void lz_loop_watch_sigint(lua_State *L);
/* The REPL takes Ctrl-C over (NULL gives it back). */
void lz_loop_on_sigint(void (*fn)(int presses));
/*
** Run the loop until all is done for the command's main job 'j' (the registry holds its
** userdata at 'ref'), printing its failure and the jobs that never finished. Returns 0
** (success), 1 (an error, printed) or 130 (canceled by Ctrl-C). lz_job_main calls it.
*/
int lz_loop_run_main(lua_State *L, lj_job *j, int ref);
/* Whether Ctrl-C interrupted the command. */
bool lz_loop_interrupted(void);
/* Run the loop until nothing keeps it alive (the REPL's input does while it reads). */
void lz_loop_run(void);
/* Cancel what is left, wait for the compute thread, close our handles. Call before lua_close. */
void lz_loop_close(lua_State *L);
/* After lua_close: close the loop when nothing is left on it. */
void lz_loop_shutdown(void);
/* Errors nobody saw (failed jobs never waited for, luv callback errors) since the start. */
int lz_loop_unobserved_failures(void);
/* Where unobserved failures are reported: stderr by default, the REPL prints them above its prompt. */
void lz_loop_set_printer(void (*print)(const char *text));
void lz_loop_print(const char *text);
/* A printer is set: someone (the REPL) is there to read messages as they come. */
bool lz_loop_interactive(void);

/* ---- the REPL (lrepl.c) ---- */
int lz_repl(lua_State *L);

#endif
