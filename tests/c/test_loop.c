/*
** test_loop.c: runtime/loop without Lua: the compute thread (order, cancel,
** reap, drop), gemm's cancel between panels, progress rates and the display,
** and Ctrl-C presses.
*/
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <cblas.h>

#include "../../runtime/core/alloc.h"
#include "../../runtime/core/pool.h"
#include "../../runtime/loop/clock.h"
#include "../../runtime/loop/compute.h"
#include "../../runtime/loop/progress.h"
#include "../../runtime/loop/sigint.h"
#include "../../runtime/ops/gemm.h"
#include "test.h"

static uv_loop_t *loop;

typedef struct item {
  zoe_work w;
  int id;
  bool ran, wait_cancel;
  pthread_t thread;
  int status;
  bool delivered;
} item;

static int order[64], norder;

static void run_item(zoe_work *w) {
  item *it = w->data;
  it->ran = true;
  it->thread = pthread_self();
  if (it->wait_cancel) /* a kernel that polls the flag */
    while (!zoe_cancel_requested()) usleep(100);
}

static void done_item(zoe_work *w, int status) {
  item *it = w->data;
  it->status = status;
  it->delivered = true;
  order[norder++] = it->id;
}

static void submit(item *it, int id, bool wait_cancel) {
  memset(it, 0, sizeof *it);
  it->id = id;
  it->wait_cancel = wait_cancel;
  it->w.data = it;
  zoe_compute_submit(&it->w, run_item, done_item);
}

static void run_until_idle(void) {
  while (zoe_compute_pending() > 0) uv_run(loop, UV_RUN_ONCE);
}

static void test_compute_order_and_thread(void) {
  item items[8];
  norder = 0;
  for (int i = 0; i < 8; i++) submit(&items[i], i, false);
  run_until_idle();
  CHECK(norder == 8, "%d delivered", norder);
  for (int i = 0; i < 8; i++) {
    CHECK(order[i] == i, "delivered in submission order: %d at %d", order[i], i);
    CHECK(items[i].status == 0 && items[i].ran, "item %d ran", i);
    CHECK(!pthread_equal(items[i].thread, pthread_self()), "item %d ran off the loop thread", i);
  }
}

static void test_compute_cancel(void) {
  item running, queued;
  norder = 0;
  submit(&running, 1, true); /* polls the flag */
  submit(&queued, 2, false);
  while (!running.ran) usleep(100);
  zoe_compute_cancel(&queued.w); /* taken off the queue: never runs */
  zoe_compute_cancel(&running.w); /* raises the kernels' flag */
  CHECK(!zoe_cancel_requested(), "the loop thread does not watch the flag");
  run_until_idle();
  CHECK(norder == 2, "both delivered (%d)", norder);
  CHECK(queued.delivered && queued.status == ZOE_ECANCELED && !queued.ran, "queued: canceled, never ran");
  CHECK(running.delivered && running.status == 0, "running: ran to its cancel check");
  item next;
  submit(&next, 3, false); /* the flag was the last request's, not this one's */
  run_until_idle();
  CHECK(next.ran && next.status == 0, "a later request is not canceled");
}

static void test_compute_reap_and_drop(void) {
  item quick, slow;
  norder = 0;
  submit(&quick, 1, false);
  CHECK(zoe_compute_reap(&quick.w, 2000000000LL), "reaped within the spin");
  CHECK(quick.delivered, "its done callback ran inside reap");
  CHECK(zoe_compute_pending() == 0, "nothing pending");
  CHECK(!zoe_compute_reap(&quick.w, 1000), "a delivered request cannot be reaped twice");
  submit(&slow, 2, true);
  while (!slow.ran) usleep(100);
  zoe_compute_drop(&slow.w); /* cancels, waits for it, forgets it */
  CHECK(!slow.delivered, "a dropped request is never delivered");
  CHECK(zoe_compute_pending() == 0, "nothing pending after drop");
  uv_run(loop, UV_RUN_NOWAIT);
  CHECK(!slow.delivered, "not even later");
}

/* ---- gemm on the compute thread, canceled ---- */

typedef struct gemm_job {
  zoe_work w;
  int64_t n;
  float *a, *b, *c;
  int rc;
  zoe_err e;
  bool started;
  int64_t end_ns;
} gemm_job;

static void run_gemm(zoe_work *w) {
  gemm_job *g = w->data;
  g->started = true;
  zoe_gemm_arg A = {g->a, ZOE_F32, false, g->n}, B = {g->b, ZOE_F32, false, g->n};
  g->rc = zoe_gemm(g->n, g->n, g->n, 1, A, B, 0, g->c, g->n, &g->e);
  g->end_ns = zoe_now_ns();
}

static void done_gemm(zoe_work *w, int status) { (void)w, (void)status; }

static float *filled(int64_t n, unsigned seed) {
  float *p = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 7919 + seed * 104729) % 1000) / 500.0f - 1.0f;
  return p;
}

/*
** A cancel lands inside a long product (it returns ZOE_ECANCELED, not a result), within a
** fraction of the time the whole product takes in this run: a ratio, not a time, so a
** loaded machine slows both alike.
*/
static void test_gemm_cancel_latency(void) {
  gemm_job g = {.n = 4096};
  g.a = filled(g.n * g.n, 1);
  g.b = filled(g.n * g.n, 2);
  g.c = malloc((size_t)(g.n * g.n) * sizeof(float));
  g.w.data = &g;
  int64_t t0 = zoe_now_ns();
  zoe_compute_submit(&g.w, run_gemm, done_gemm);
  run_until_idle();
  double whole = (double)(g.end_ns - t0) * 1e-9;
  CHECK(g.rc == 0, "the whole product returned %d", g.rc);
  g.started = false;
  zoe_compute_submit(&g.w, run_gemm, done_gemm);
  while (!g.started) usleep(1000);
  usleep((useconds_t)(whole * 1e5)); /* a tenth of the product in */
  t0 = zoe_now_ns();
  zoe_compute_cancel(&g.w);
  run_until_idle();
  double latency = (double)(g.end_ns - t0) * 1e-9;
  CHECK(g.rc == ZOE_ECANCELED, "gemm returned %d", g.rc);
  CHECK(strstr(g.e.msg, "canceled") != NULL, "message: %s", g.e.msg);
  printf("# the cancel landed %.3f s after the request; the whole product takes %.3f s\n", latency, whole);
  CHECK(latency < 0.5 * whole, "the cancel landed in %.3f s of a %.3f s product", latency, whole);
  free(g.a);
  free(g.b);
  free(g.c);
}

/* Panels depend on the shapes only: the same product gives the same bits, close to one sgemm. */
static void test_gemm_panels_deterministic(void) {
  int64_t M = 2048, K = 1024, N = 2048; /* 8.6 GFlop: split */
  float *a = filled(M * K, 3), *b = filled(K * N, 4);
  float *c1 = malloc((size_t)(M * N) * sizeof(float)), *c2 = malloc((size_t)(M * N) * sizeof(float));
  float *ref = malloc((size_t)(M * N) * sizeof(float));
  zoe_gemm_arg A = {a, ZOE_F32, false, K}, B = {b, ZOE_F32, false, N};
  zoe_err e = {0};
  CHECK(zoe_gemm(M, N, K, 1, A, B, 0, c1, N, &e) == 0, "%s", e.msg);
  CHECK(zoe_gemm(M, N, K, 1, A, B, 0, c2, N, &e) == 0, "%s", e.msg);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1, a, (int)K, b, (int)N, 0,
              ref, (int)N);
  CHECK(memcmp(c1, c2, (size_t)(M * N) * sizeof(float)) == 0, "two runs give the same bits");
  double worst = 0;
  for (int64_t i = 0; i < M * N; i++) {
    double d = fabs((double)c1[i] - ref[i]) / (fabs(ref[i]) + 1);
    if (d > worst) worst = d;
  }
  CHECK(worst < 1e-5, "panels agree with one sgemm (worst %g)", worst);
  free(a), free(b), free(c1), free(c2), free(ref);
}

/* ---- progress ---- */

static void test_progress_rate_eta(void) {
  zoe_progress p = {0};
  int64_t s = 1000000000LL;
  zoe_progress_update(&p, "denoise", 0, 20, 10 * s);
  CHECK(p.rate == 0 && p.eta < 0, "no rate from one event");
  zoe_progress_update(&p, "denoise", 5, 20, 12 * s); /* 5 steps in 2 s */
  CHECK_NEAR(p.rate, 2.5, 1e-12);
  CHECK_NEAR(p.eta, 6.0, 1e-12);
  CHECK_NEAR(p.elapsed, 2.0, 1e-12);
  zoe_progress_update(&p, "decode", 1, 4, 13 * s); /* a new stage starts over */
  CHECK(strcmp(p.stage, "decode") == 0 && p.rate == 0, "stage %s rate %g", p.stage, p.rate);
  zoe_progress_update(&p, "decode", 3, 4, 14 * s);
  CHECK_NEAR(p.rate, 2.0, 1e-12);
  CHECK_NEAR(p.eta, 0.5, 1e-12);
  zoe_progress_update(&p, "decode", 1, 4, 15 * s); /* going back starts over too */
  CHECK(p.rate == 0, "restart");
}

static char captured[4096];
static void capture(void *ud, const char *s, size_t n) {
  (void)ud;
  strncat(captured, s, n < sizeof captured - strlen(captured) - 1 ? n : sizeof captured - strlen(captured) - 1);
}

static void test_display_lines_and_json(void) {
  zoe_display d;
  zoe_progress p = {0};
  int64_t s = 1000000000LL;
  zoe_display_init(&d, ZOE_DISPLAY_LINES);
  d.write = capture;
  captured[0] = '\0';
  zoe_progress_update(&p, "denoise", 1, 4, 10 * s);
  zoe_display_progress(&d, 1, "main", &p, 10 * s);
  zoe_progress_update(&p, "denoise", 2, 4, 10 * s + s / 10); /* throttled: 0.1 s later */
  zoe_display_progress(&d, 1, "main", &p, 10 * s + s / 10);
  zoe_progress_update(&p, "denoise", 4, 4, 11 * s); /* the last step always shows */
  zoe_display_progress(&d, 1, "main", &p, 11 * s);
  CHECK(strcmp(captured, "[main] denoise 1/4\n[main] denoise 4/4 3.00 it/s in 1.0s\n") == 0, "lines: %s",
        captured);

  zoe_display_init(&d, ZOE_DISPLAY_JSON);
  d.write = capture;
  captured[0] = '\0';
  zoe_progress q = {0};
  zoe_progress_update(&q, "say \"hi\"\n", 1, 2, 10 * s);
  zoe_display_progress(&d, 3, "shot", &q, 10 * s);
  zoe_display_job(&d, 3, "shot", "failed", "x.lua:1: boom", 1.5);
  CHECK(strcmp(captured,
               "{\"event\":\"progress\",\"job\":3,\"name\":\"shot\",\"stage\":\"say \\\"hi\\\"\\n\",\"step\":1,"
               "\"steps\":2,\"rate\":0,\"eta\":-1,\"elapsed\":0}\n"
               "{\"event\":\"job\",\"job\":3,\"name\":\"shot\",\"status\":\"failed\",\"elapsed\":1.5,"
               "\"error\":\"x.lua:1: boom\"}\n") == 0,
        "json: %s", captured);

  zoe_display_init(&d, ZOE_DISPLAY_LINES);
  d.write = capture;
  d.focus = 2; /* only job 2's progress */
  captured[0] = '\0';
  zoe_progress r = {0};
  zoe_progress_update(&r, "x", 1, 2, 10 * s);
  zoe_display_progress(&d, 1, "other", &r, 10 * s);
  CHECK(captured[0] == '\0', "another job's progress is not shown: %s", captured);
}

/* ---- Ctrl-C ---- */

static int presses_seen[4], npresses;
static void on_press(zoe_sigint *s, int presses) {
  (void)s;
  presses_seen[npresses++] = presses;
}

static void test_sigint_presses(void) {
  zoe_sigint s = {0};
  CHECK(zoe_sigint_start(&s, loop, on_press) == 0, "start");
  uv_ref((uv_handle_t *)&s.handle); /* it does not keep a loop alive; here it must, to be polled */
  raise(SIGINT);
  while (npresses < 1) uv_run(loop, UV_RUN_ONCE);
  raise(SIGINT);
  while (npresses < 2) uv_run(loop, UV_RUN_ONCE);
  CHECK(presses_seen[0] == 1 && presses_seen[1] == 2, "presses %d then %d", presses_seen[0], presses_seen[1]);
  zoe_sigint_stop(&s);
  uv_run(loop, UV_RUN_NOWAIT);
}

int main(void) {
  setenv("ZOE_PRECISION", "f32", 1); /* the panels tested here are OpenBLAS's f32 path */
  zoe_pool_init(0);
  loop = uv_default_loop();
  zoe_cancel_watch(false); /* this thread plays the loop thread */
  if (zoe_compute_start(loop) != 0) {
    printf("not ok - cannot start the compute thread\n");
    return 1;
  }
  RUN(test_compute_order_and_thread);
  RUN(test_compute_cancel);
  RUN(test_compute_reap_and_drop);
  RUN(test_gemm_cancel_latency);
  RUN(test_gemm_panels_deterministic);
  RUN(test_progress_rate_eta);
  RUN(test_display_lines_and_json);
  RUN(test_sigint_presses);
  zoe_compute_stop();
  uv_run(loop, UV_RUN_NOWAIT);
  uv_loop_close(loop);
  zoe_pool_shutdown();
  return test_summary();
}
