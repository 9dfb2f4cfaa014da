/*
** oprate.h: how long an op will take, learned from its runs: the model that decides
** which ops leave the loop thread (runtime/lua/loffload.c asks it).
**
** An op's cost is in its own units (flops for products, elements for elementwise
** ops, a guess for a decode), so the rate is learned per kind of op (its name): ns
** per cost unit, from runs of ZOE_OPRATE_MIN_NS or more (shorter ones are mostly
** fixed overhead). The first run sets a kind's rate; each later one moves its log by
** a tenth of the difference and by at most 0.1 (10%), so a run preempted for
** milliseconds on a busy machine does not send every small op of its kind away.
** An op predicted to take the threshold or more is heavy; before its kind has been
** timed, a cost of ZOE_OPRATE_COST_THRESHOLD or more is. Loop thread only.
*/
#ifndef ZOE_OPRATE_H
#define ZOE_OPRATE_H

#include <stdbool.h>
#include <stdint.h>

#define ZOE_OPRATE_MIN_NS 10000
#define ZOE_OPRATE_COST_THRESHOLD 1e6
/*
** 100 us: at least ten times what an offload costs on a busy 2-core machine
** (bench/bench_loop.lua), so the handoff is at most a tenth of the op.
*/
#define ZOE_OPRATE_THRESHOLD_NS 100000.0

/* A run of an op of kind 'name' and 'cost' took 'ns'. */
void zoe_oprate_learn(const char *name, double cost, int64_t ns);
/* How long it will take, in ns; < 0 when its kind has not been timed yet. */
double zoe_oprate_predict(const char *name, double cost);
/* Whether it should leave the loop thread. */
bool zoe_oprate_heavy(const char *name, double cost);
/* The threshold in ns (0: every op is heavy); set returns the previous one. */
double zoe_oprate_set_threshold(double ns);
/* The kinds timed so far: name i (NULL past the last) and its ns per cost unit. */
const char *zoe_oprate_kind(int i, double *ns_per_unit);
/* Forget every rate (tests). */
void zoe_oprate_reset(void);

#endif
