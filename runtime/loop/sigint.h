/*
** sigint.h: Ctrl-C on the loop. SIGINT arrives through a uv_signal handle, so
** the callback runs on the loop thread between two callbacks, never inside a
** kernel. It counts presses: a second one within ZOE_SIGINT_WINDOW_NS of the
** first is reported as press 2 (the command exits on it; the REPL does not).
*/
#ifndef ZOE_SIGINT_H
#define ZOE_SIGINT_H

#include <stdint.h>
#include <uv.h>

#define ZOE_SIGINT_WINDOW_NS 2000000000LL

typedef struct zoe_sigint zoe_sigint;
typedef void (*zoe_sigint_cb)(zoe_sigint *s, int presses);

struct zoe_sigint {
  void *data; /* public */
  /* private */
  uv_signal_t handle;
  zoe_sigint_cb cb;
  int64_t last_ns;
  int presses;
};

/* Watch SIGINT on 'loop' (the handle does not keep the loop alive). */
int zoe_sigint_start(zoe_sigint *s, uv_loop_t *loop, zoe_sigint_cb cb);
/* Stop and close; 's' must live until the loop has run once more. */
void zoe_sigint_stop(zoe_sigint *s);

#endif
