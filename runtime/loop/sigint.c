/*
** sigint.c: Ctrl-C presses, counted on the loop thread.
*/
#include "sigint.h"

#include <signal.h>
#include <string.h>

#include "clock.h"

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  zoe_sigint *s = h->data;
  int64_t now = zoe_now_ns();
  s->presses = s->presses && now - s->last_ns < ZOE_SIGINT_WINDOW_NS ? s->presses + 1 : 1;
  s->last_ns = now;
  s->cb(s, s->presses);
}

int zoe_sigint_start(zoe_sigint *s, uv_loop_t *loop, zoe_sigint_cb cb) {
  void *data = s->data;
  memset(s, 0, sizeof *s);
  s->data = data;
  s->cb = cb;
  int rc = uv_signal_init(loop, &s->handle);
  if (rc) return rc;
  s->handle.data = s;
  rc = uv_signal_start(&s->handle, on_signal, SIGINT);
  if (rc) {
    uv_close((uv_handle_t *)&s->handle, NULL);
    return rc;
  }
  uv_unref((uv_handle_t *)&s->handle);
  return 0;
}

void zoe_sigint_stop(zoe_sigint *s) {
  if (!uv_is_closing((uv_handle_t *)&s->handle)) uv_close((uv_handle_t *)&s->handle, NULL);
}
