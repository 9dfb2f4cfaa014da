/*
** oprate.c: the learned speed of each kind of op (oprate.h).
*/
#include "oprate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NRATES 256 /* kinds, and kinds by size class */

typedef struct rate {
  char name[40];
  double log_rate; /* log of ns per cost unit */
  int n;           /* runs measured */
} rate;

static rate rates[NRATES];
static double threshold_ns = ZOE_OPRATE_THRESHOLD_NS;

/* The entry for ops called 'name' (made on first use), or NULL when the table is full. */
static rate *rate_of(const char *name) {
  unsigned h = 5381;
  for (const char *c = name; *c; c++) h = h * 33 + (unsigned char)*c;
  for (unsigned i = 0; i < NRATES; i++) {
    rate *r = &rates[(h + i) % NRATES];
    if (!r->name[0]) snprintf(r->name, sizeof r->name, "%s", name);
    if (strncmp(r->name, name, sizeof r->name - 1) == 0) return r;
  }
  return NULL;
}

static void learn_into(rate *r, double x) {
  if (!r) return;
  if (r->n++ == 0) r->log_rate = x;
  else r->log_rate += fmax(-0.1, fmin(0.1, 0.1 * (x - r->log_rate)));
}

/*
** Each run teaches its kind's rate (what decides offloading) and the rate of its size
** class, "wan_block@17" (costs from 4^17 to 4^18), which zoe.estimate reads: per unit of
** cost, a small model's blocks run several times slower than a large one's, so a run of
** zoe-tiny must not set the time predicted for Wan.
*/
void zoe_oprate_learn(const char *name, double cost, int64_t ns) {
  if (ns < ZOE_OPRATE_MIN_NS || cost <= 0 || !name) return;
  double x = log((double)ns / cost);
  learn_into(rate_of(name), x);
  char sized[sizeof rates[0].name];
  if (snprintf(sized, sizeof sized, "%s@%d", name, (int)floor(log2(cost) / 2)) < (int)sizeof sized)
    learn_into(rate_of(sized), x);
}

double zoe_oprate_predict(const char *name, double cost) {
  rate *r = name ? rate_of(name) : NULL;
  return r && r->n ? cost * exp(r->log_rate) : -1;
}

bool zoe_oprate_heavy(const char *name, double cost) {
  if (threshold_ns <= 0) return true;
  double ns = zoe_oprate_predict(name, cost);
  return ns >= 0 ? ns >= threshold_ns : cost >= ZOE_OPRATE_COST_THRESHOLD;
}

double zoe_oprate_set_threshold(double ns) {
  double old = threshold_ns;
  threshold_ns = ns;
  return old;
}

const char *zoe_oprate_kind(int i, double *ns_per_unit) {
  for (int k = 0; k < NRATES; k++) {
    if (!rates[k].name[0] || !rates[k].n) continue;
    if (i-- == 0) {
      *ns_per_unit = exp(rates[k].log_rate);
      return rates[k].name;
    }
  }
  return NULL;
}

void zoe_oprate_reset(void) { memset(rates, 0, sizeof rates); }
