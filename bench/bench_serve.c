/*
** bench_serve: `zoe serve` under 200 clients. Starts the server on a loopback port
** (ZOE, default bin/zoe), opens 200 event streams (/api/events) and 200 keep-alive
** clients that each poll /api/jobs every 100 ms; measures the polls' latency for 3 s
** with nothing rendering, then while a zoe-tiny render runs, and prints p50/p99/max of
** both and their ratio (one run). Then checks nothing was lost: every stream saw the
** job's "done", the output is in the folder, no request failed.
*/
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define NCLIENTS 200
#define POLL_MS 100

typedef struct client {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  uv_timer_t timer;
  bool stream, done, waiting, closed;
  char *buf;
  size_t len, cap;
  uint64_t sent_at;
  int sent_phase;
  int events;
} client;

static client clients[2 * NCLIENTS];
static double *lat[2];
static size_t nlat[2], caplat[2];
static int phase; /* 0: idle, 1: rendering, 2: over */
static int failures, port;
static struct sockaddr_in addr;
static const char poll_req[] = "GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char stream_req[] = "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  client *c = h->data;
  if (c->cap - c->len < 65536) {
    c->cap = c->cap * 2 + 65536;
    c->buf = realloc(c->buf, c->cap);
  }
  *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static double worst_ms, worst_at; /* the slowest poll while rendering, and when it was sent */
static uint64_t render_start;
static void record(int p, double ms) {
  if (nlat[p] == caplat[p]) {
    caplat[p] = caplat[p] * 2 + 1024;
    lat[p] = realloc(lat[p], caplat[p] * sizeof **lat);
  }
  lat[p][nlat[p]++] = ms;
}

static void send_poll(client *c) {
  uv_buf_t b = uv_buf_init((char *)poll_req, sizeof poll_req - 1);
  c->sent_at = uv_hrtime();
  c->sent_phase = phase == 0 ? 0 : 1;
  c->waiting = true;
  uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, NULL);
}

static void on_tick(uv_timer_t *t) {
  client *c = t->data;
  if (phase < 2 && !c->waiting && !c->closed) send_poll(c);
}

/* A whole response in the buffer: its length, else 0. */
static size_t response_len(const client *c) {
  const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - c->buf) + 4;
  const char *cl = memmem(c->buf, head, "ontent-Length: ", 15);
  if (!cl) cl = memmem(c->buf, head, "ontent-length: ", 15);
  if (!cl) return 0;
  size_t body = strtoul(cl + 15, NULL, 10);
  return c->len >= head + body ? head + body : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  client *c = s->data;
  if (n < 0) {
    if (phase < 2) failures++;
    c->closed = true;
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  c->len += (size_t)n;
  if (c->stream) {
    /* count events; keep only the unfinished one */
    char *p = c->buf, *end = c->buf + c->len;
    char *last = NULL;
    for (char *q = memmem(p, c->len, "\n\n", 2); q; q = memmem(q + 2, (size_t)(end - q - 2), "\n\n", 2)) last = q + 2;
    if (!last) return;
    for (char *q = memmem(p, (size_t)(last - p), "event: ", 7); q;
         q = memmem(q + 7, (size_t)(last - q - 7), "event: ", 7)) {
      c->events++;
      if (strncmp(q + 7, "done", 4) == 0) c->done = true;
    }
    memmove(c->buf, last, (size_t)(end - last));
    c->len = (size_t)(end - last);
    return;
  }
  size_t r = response_len(c);
  if (!r) return;
  if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0) failures++;
  double ms = (double)(uv_hrtime() - c->sent_at) / 1e6;
  record(c->sent_phase, ms);
  if (c->sent_phase == 1 && ms > worst_ms) {
    worst_ms = ms;
    worst_at = (double)(c->sent_at - render_start) / 1e9;
  }
  memmove(c->buf, c->buf + r, c->len - r);
  c->len -= r;
  c->waiting = false;
}

static void on_connect(uv_connect_t *req, int status) {
  client *c = req->data;
  if (status != 0) {
    failures++;
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (c->stream) {
    uv_buf_t b = uv_buf_init((char *)stream_req, sizeof stream_req - 1);
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, NULL);
  } else {
    uv_timer_start(&c->timer, on_tick, (uint64_t)(rand() % POLL_MS), POLL_MS);
  }
}

/* The submission, with curl, on libuv's thread pool: the clients' loop does not wait for it. */
static int submitted = -1;
static void post_job(uv_work_t *w) {
  (void)w;
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: application/json' -d "
           "'{\"prompt\":\"a red circle moving left on a white background\",\"steps\":60,\"seed\":3}' "
           "http://127.0.0.1:%d/api/jobs", port);
  FILE *p = popen(cmd, "r");
  char status[16] = {0};
  submitted = p && fgets(status, sizeof status, p) && strcmp(status, "202") == 0;
  if (p) pclose(p);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(int p, double q) {
  if (!nlat[p]) return 0;
  size_t i = (size_t)(q * (double)(nlat[p] - 1));
  return lat[p][i];
}

static uv_timer_t phase_timer;
static uv_work_t submit_work;
static int waited;

static void on_phase(uv_timer_t *t);
static void submitted_cb(uv_work_t *w, int status) {
  (void)w;
  (void)status;
  if (submitted != 1) {
    fprintf(stderr, "bench_serve: the submission failed\n");
    failures++;
  }
}

static void on_phase(uv_timer_t *t) {
  if (phase == 0) {
    phase = 1;
    render_start = uv_hrtime();
    uv_queue_work(t->loop, &submit_work, post_job, submitted_cb);
    uv_timer_start(t, on_phase, 200, 200);
    return;
  }
  int done = 0;
  for (int i = NCLIENTS; i < 2 * NCLIENTS; i++) done += clients[i].done;
  if (done == NCLIENTS || ++waited > 600) {
    phase = 2;
    uv_timer_stop(t);
    for (int i = 0; i < 2 * NCLIENTS; i++) {
      uv_timer_stop(&clients[i].timer);
      uv_close((uv_handle_t *)&clients[i].timer, NULL);
      if (!clients[i].closed) uv_close((uv_handle_t *)&clients[i].tcp, NULL);
      clients[i].closed = true;
    }
    uv_close((uv_handle_t *)t, NULL);
  }
}

int main(void) {
  const char *zoe = getenv("ZOE") ? getenv("ZOE") : "bin/zoe";
  char out[] = "/tmp/zoe-bench-serve-XXXXXX";
  if (!mkdtemp(out)) return 1;
  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(zoe, zoe, "-q", "serve", "--port", "0", "--out", out, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  FILE *f = fdopen(fds[0], "r");
  char line[512] = {0};
  if (!fgets(line, sizeof line, f) || !strstr(line, "127.0.0.1:")) {
    fprintf(stderr, "bench_serve: %s serve did not start\n", zoe);
    return 1;
  }
  port = atoi(strstr(line, "127.0.0.1:") + 10);
  uv_loop_t *loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", port, &addr);
  for (int i = 0; i < 2 * NCLIENTS; i++) {
    client *c = &clients[i];
    c->stream = i >= NCLIENTS;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c->conn.data = c;
    uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&addr, on_connect);
  }
  uv_timer_init(loop, &phase_timer);
  uv_timer_start(&phase_timer, on_phase, 3000, 0);
  uint64_t t0 = uv_hrtime();
  uv_run(loop, UV_RUN_DEFAULT);
  double render_s = (double)(uv_hrtime() - render_start) / 1e9;
  (void)t0;
  int done = 0, emin = 1 << 30, emax = 0;
  for (int i = NCLIENTS; i < 2 * NCLIENTS; i++) {
    done += clients[i].done;
    if (clients[i].events < emin) emin = clients[i].events;
    if (clients[i].events > emax) emax = clients[i].events;
  }
  for (int p = 0; p < 2; p++) qsort(lat[p], nlat[p], sizeof **lat, cmp);
  char probe[600];
  snprintf(probe, sizeof probe, "ls %s/web-*.mp4 2>/dev/null | wc -l", out);
  FILE *ls = popen(probe, "r");
  int outputs = 0;
  if (ls && fscanf(ls, "%d", &outputs) != 1) outputs = 0;
  if (ls) pclose(ls);
  kill(pid, SIGINT);
  waitpid(pid, NULL, 0);
  snprintf(probe, sizeof probe, "rm -rf %s", out);
  if (system(probe) != 0) fprintf(stderr, "bench_serve: could not remove %s\n", out);
  double load[1] = {0};
  getloadavg(load, 1);
  printf("%d clients polling /api/jobs every %d ms + %d event streams; load %.1f\n", NCLIENTS, POLL_MS, NCLIENTS,
         load[0]);
  printf("%-22s %8s %9s %9s %9s\n", "", "polls", "p50 ms", "p99 ms", "max ms");
  printf("%-22s %8zu %9.2f %9.2f %9.2f\n", "idle", nlat[0], pct(0, 0.5), pct(0, 0.99), pct(0, 1));
  printf("%-22s %8zu %9.2f %9.2f %9.2f\n", "while rendering", nlat[1], pct(1, 0.5), pct(1, 0.99), pct(1, 1));
  printf("rendering / idle: p50 %.2fx, p99 %.2fx; the render (60 steps) took %.1f s under this load\n",
         pct(1, 0.5) / (pct(0, 0.5) > 0 ? pct(0, 0.5) : 1), pct(1, 0.99) / (pct(0, 0.99) > 0 ? pct(0, 0.99) : 1),
         render_s);
  printf("the slowest poll while rendering (%.0f ms) was sent %.2f s after the submission\n", worst_ms, worst_at);
  printf("streams that saw the job's done: %d/%d (events per stream %d..%d); outputs written: %d; failed requests: %d\n",
         done, NCLIENTS, emin, emax, outputs, failures);
  return done == NCLIENTS && outputs == 1 && failures == 0 ? 0 : 1;
}
