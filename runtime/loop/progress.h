/*
** progress.h: progress of jobs, and how it is shown.
**
** A zoe_progress follows one job through its stages ("encode text", "denoise",
** "decode", "write"): steps done out of how many, the rate since the stage
** began, and the time left. A zoe_display renders events in one of four ways:
** a bar redrawn in place on a terminal, plain lines when the output is not a
** terminal (throttled to about one a second per job), one JSON object per line
** for other programs, or nothing.
*/
#ifndef ZOE_PROGRESS_H
#define ZOE_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zoe_progress {
  char stage[64];
  int64_t step, steps; /* steps == 0: the total is unknown */
  double rate;         /* steps per second since the stage began; 0 when not known yet */
  double eta;          /* seconds left; < 0 when not known */
  double elapsed;      /* seconds since the stage began */
  /* private */
  int64_t t0, step0;   /* the stage's first event */
  int64_t shown_ns;    /* when the display last printed this job */
} zoe_progress;

/* Record that 'stage' is at 'step' of 'steps' (a new stage name, or a step going back, starts over). */
void zoe_progress_update(zoe_progress *p, const char *stage, int64_t step, int64_t steps, int64_t now_ns);

typedef enum zoe_display_mode {
  ZOE_DISPLAY_BAR,   /* a terminal: one line redrawn in place */
  ZOE_DISPLAY_LINES, /* not a terminal: plain lines */
  ZOE_DISPLAY_JSON,  /* one JSON event per line */
  ZOE_DISPLAY_QUIET,
} zoe_display_mode;

typedef void (*zoe_display_write_fn)(void *ud, const char *s, size_t n);

typedef struct zoe_display {
  zoe_display_mode mode;
  zoe_display_write_fn write; /* where text goes; NULL: stderr (JSON: stdout) */
  void *ud;
  int width;                  /* columns for the bar; 0: ask the terminal */
  int focus;                  /* 0: every job's progress; N > 0: only job N's; < 0: none */
  /* private */
  bool bar_shown;             /* a bar is on screen, with no newline after it */
  int64_t bar_ns;             /* when it was drawn */
  char bar[512];
} zoe_display;

/* Pick the mode for stderr: a bar on a terminal, lines otherwise. */
void zoe_display_init(zoe_display *d, zoe_display_mode mode);
zoe_display_mode zoe_display_auto(void);

/* A progress event of job 'id' called 'name'. */
void zoe_display_progress(zoe_display *d, int id, const char *name, zoe_progress *p, int64_t now_ns);
/* A job changed status ("running", "done", "failed", "canceled"); 'detail' may be NULL. */
void zoe_display_job(zoe_display *d, int id, const char *name, const char *status, const char *detail,
                     double elapsed);
/* A message for the user ("canceling job 1 ..."). */
void zoe_display_note(zoe_display *d, const char *text);
/* Erase the bar before other output goes to the terminal; zoe_display_redraw puts it back. */
void zoe_display_clear(zoe_display *d);
void zoe_display_redraw(zoe_display *d);

/* Append 's' to 'out' (size 'n') as a JSON string with quotes; returns the length written. */
size_t zoe_json_string(char *out, size_t n, const char *s);

#endif
