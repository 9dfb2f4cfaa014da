/*
** progress.c: rates and ETAs of job stages, and the four ways to show them.
*/
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LINE_EVERY_NS 1000000000LL /* plain lines: at most one a second per job */
#define BAR_EVERY_NS 50000000LL    /* the bar: at most 20 redraws a second */

void zoe_progress_update(zoe_progress *p, const char *stage, int64_t step, int64_t steps, int64_t now_ns) {
  if (!stage) stage = "";
  bool restart = strncmp(p->stage, stage, sizeof p->stage - 1) != 0 || step < p->step || p->t0 == 0;
  if (restart) {
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    p->t0 = now_ns;
    p->step0 = step;
    p->shown_ns = 0;
  }
  p->step = step;
  p->steps = steps > 0 ? steps : 0;
  p->elapsed = (double)(now_ns - p->t0) * 1e-9;
  p->rate = step > p->step0 && p->elapsed > 0 ? (double)(step - p->step0) / p->elapsed : 0;
  p->eta = p->rate > 0 && p->steps > 0 ? (double)(p->steps - step) / p->rate : -1;
  if (p->eta < -1) p->eta = 0; /* past the announced total */
}

/* ---- output ---- */

static void out(zoe_display *d, const char *s, size_t n) {
  if (d->write) {
    d->write(d->ud, s, n);
    return;
  }
  FILE *f = d->mode == ZOE_DISPLAY_JSON ? stdout : stderr;
  fwrite(s, 1, n, f);
  fflush(f);
}

static void outf(zoe_display *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(zoe_display *d, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  out(d, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

size_t zoe_json_string(char *o, size_t n, const char *s) {
  size_t k = 0;
#define PUT(c) do { if (k + 1 < n) o[k] = (c); k++; } while (0)
  PUT('"');
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    unsigned c = *p;
    if (c == '"' || c == '\\') {
      PUT('\\');
      PUT((char)c);
    } else if (c == '\n') {
      PUT('\\');
      PUT('n');
    } else if (c == '\t') {
      PUT('\\');
      PUT('t');
    } else if (c < 0x20) {
      char u[8];
      snprintf(u, sizeof u, "\\u%04x", c);
      for (char *q = u; *q; q++) PUT(*q);
    } else {
      PUT((char)c);
    }
  }
  PUT('"');
#undef PUT
  if (n) o[k < n ? k : n - 1] = '\0';
  return k;
}

/* "7s", "1:05", "1:02:03" */
static void fmt_time(char *b, size_t n, double s) {
  long t = (long)(s + 0.5);
  if (s < 9.95) snprintf(b, n, "%.1fs", s);
  else if (t < 60) snprintf(b, n, "%lds", t);
  else if (t < 3600) snprintf(b, n, "%ld:%02ld", t / 60, t % 60);
  else snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* "3/20 2.50 it/s ETA 7s" (or "12 steps" when the total is unknown) */
static void fmt_counts(char *b, size_t n, const zoe_progress *p) {
  char eta[32] = "";
  b[0] = '\0';
  if (!p->steps && !p->step) return; /* a stage without counts: its name says it all */
  int k = p->steps ? snprintf(b, n, "%lld/%lld", (long long)p->step, (long long)p->steps)
                   : snprintf(b, n, "%lld", (long long)p->step);
  if (k < 0 || (size_t)k >= n) return;
  if (p->rate > 0) {
    if (p->rate >= 1) k += snprintf(b + k, n - (size_t)k, " %.2f it/s", p->rate);
    else k += snprintf(b + k, n - (size_t)k, " %.2f s/it", 1 / p->rate);
  }
  if ((size_t)k >= n) return;
  if (p->eta >= 0 && p->step < p->steps) {
    fmt_time(eta, sizeof eta, p->eta);
    snprintf(b + k, n - (size_t)k, " ETA %s", eta);
  } else if (p->steps && p->step >= p->steps) {
    fmt_time(eta, sizeof eta, p->elapsed);
    snprintf(b + k, n - (size_t)k, " in %s", eta);
  }
}

zoe_display_mode zoe_display_auto(void) {
  return isatty(STDERR_FILENO) ? ZOE_DISPLAY_BAR : ZOE_DISPLAY_LINES;
}

void zoe_display_init(zoe_display *d, zoe_display_mode mode) {
  memset(d, 0, sizeof *d);
  d->mode = mode;
}

static int columns(const zoe_display *d) {
  if (d->width > 0) return d->width;
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

static void draw_bar(zoe_display *d, const char *who, const zoe_progress *p) {
  char counts[128], bar[64];
  fmt_counts(counts, sizeof counts, p);
  int cols = columns(d);
  /* what is left after "who stage [] counts" goes to the bar, at most 40 cells */
  int room = cols - 1 - (int)strlen(who) - (int)strlen(p->stage) - (int)strlen(counts) - 6;
  int cells = room > 40 ? 40 : room;
  bar[0] = '\0';
  if (p->steps > 0 && cells >= 10) {
    int full = (int)((double)cells * (double)(p->step < p->steps ? p->step : p->steps) / (double)p->steps);
    bar[0] = '[';
    for (int i = 0; i < cells; i++) bar[1 + i] = i < full ? '=' : (i == full ? '>' : ' ');
    bar[1 + cells] = ']';
    bar[2 + cells] = ' ';
    bar[3 + cells] = '\0';
  }
  snprintf(d->bar, sizeof d->bar, "%s%s %s%s", who, p->stage, bar, counts);
  if ((int)strlen(d->bar) >= cols) d->bar[cols - 1] = '\0';
  outf(d, "\r%s\033[K", d->bar);
  d->bar_shown = true;
}

void zoe_display_progress(zoe_display *d, int id, const char *name, zoe_progress *p, int64_t now_ns) {
  char who[96], counts[128];
  bool last = p->steps > 0 && p->step >= p->steps;
  bool first = p->shown_ns == 0;
  if (d->focus && d->focus != id) return;
  switch (d->mode) {
    case ZOE_DISPLAY_QUIET: return;
    case ZOE_DISPLAY_JSON: {
      char js[160], jn[160];
      zoe_json_string(js, sizeof js, p->stage);
      zoe_json_string(jn, sizeof jn, name);
      outf(d, "{\"event\":\"progress\",\"job\":%d,\"name\":%s,\"stage\":%s,\"step\":%lld,\"steps\":%lld,"
              "\"rate\":%.4g,\"eta\":%.4g,\"elapsed\":%.4g}\n",
           id, jn, js, (long long)p->step, (long long)p->steps, p->rate, p->eta, p->elapsed);
      return;
    }
    case ZOE_DISPLAY_LINES:
      if (!first && !last && now_ns - p->shown_ns < LINE_EVERY_NS) return;
      p->shown_ns = now_ns;
      fmt_counts(counts, sizeof counts, p);
      outf(d, "[%s] %s %s\n", name, p->stage, counts);
      return;
    case ZOE_DISPLAY_BAR:
      if (!first && !last && now_ns - d->bar_ns < BAR_EVERY_NS) return;
      p->shown_ns = d->bar_ns = now_ns;
      snprintf(who, sizeof who, "[%s] ", name);
      draw_bar(d, who, p);
      if (last) { /* a finished stage stays on screen */
        out(d, "\n", 1);
        d->bar_shown = false;
        d->bar[0] = '\0';
      }
      return;
  }
}

void zoe_display_job(zoe_display *d, int id, const char *name, const char *status, const char *detail,
                     double elapsed) {
  if (d->mode == ZOE_DISPLAY_JSON) {
    char jn[160], jd[1024];
    zoe_json_string(jn, sizeof jn, name);
    if (detail) {
      zoe_json_string(jd, sizeof jd, detail);
      outf(d, "{\"event\":\"job\",\"job\":%d,\"name\":%s,\"status\":\"%s\",\"elapsed\":%.4g,\"error\":%s}\n",
           id, jn, status, elapsed, jd);
    } else {
      outf(d, "{\"event\":\"job\",\"job\":%d,\"name\":%s,\"status\":\"%s\",\"elapsed\":%.4g}\n", id, jn,
           status, elapsed);
    }
    return;
  }
  /* a bar left unfinished by a job that ended stays on screen as it was */
  if (d->mode == ZOE_DISPLAY_BAR && d->bar_shown && strcmp(status, "running") != 0) {
    out(d, "\n", 1);
    d->bar_shown = false;
    d->bar[0] = '\0';
  }
}

void zoe_display_note(zoe_display *d, const char *text) {
  if (d->mode == ZOE_DISPLAY_JSON) {
    char jt[1024];
    zoe_json_string(jt, sizeof jt, text);
    outf(d, "{\"event\":\"message\",\"text\":%s}\n", jt);
    return;
  }
  zoe_display_clear(d);
  outf(d, "zoe: %s\n", text);
  zoe_display_redraw(d);
}

void zoe_display_clear(zoe_display *d) {
  if (d->mode == ZOE_DISPLAY_BAR && d->bar_shown) out(d, "\r\033[K", 4);
}

void zoe_display_redraw(zoe_display *d) {
  if (d->mode == ZOE_DISPLAY_BAR && d->bar_shown) outf(d, "\r%s\033[K", d->bar);
}
