/*
** test_oprate.c: the op-rate model that decides which ops leave the loop thread
** (runtime/loop/oprate.c): a kind's first run sets its rate, later runs move it by
** at most 10%, short runs teach nothing, and the threshold decides.
*/
#include <math.h>
#include <string.h>

#include "../../runtime/loop/oprate.h"
#include "test.h"

static void test_first_run_sets_the_rate(void) {
  zoe_oprate_reset();
  CHECK(zoe_oprate_predict("add", 1000) < 0, "an untimed kind is unknown");
  zoe_oprate_learn("add", 1e6, 200000); /* 0.2 ns per unit */
  double ns = zoe_oprate_predict("add", 1e6);
  CHECK(fabs(ns - 200000) < 1e-6 * 200000, "predicts what it saw: %g", ns);
  CHECK(fabs(zoe_oprate_predict("add", 5e5) - 100000) < 1e-3, "linear in the cost");
  CHECK(zoe_oprate_predict("matmul", 1e6) < 0, "kinds are apart");
}

static void test_later_runs_move_it_by_at_most_ten_percent(void) {
  zoe_oprate_reset();
  zoe_oprate_learn("tanh", 1e6, 100000);
  zoe_oprate_learn("tanh", 1e6, 100000000); /* a run preempted for 100 ms */
  double ns = zoe_oprate_predict("tanh", 1e6);
  CHECK(fabs(ns - 100000 * exp(0.1)) < 1, "moved by exp(0.1): %g", ns);
  zoe_oprate_learn("tanh", 1e6, 105000); /* a small difference moves a tenth of its log */
  double want = 100000 * exp(0.1) * exp(0.1 * (log(105000.0 / 1e6) - log(100000 * exp(0.1) / 1e6)));
  CHECK(fabs(zoe_oprate_predict("tanh", 1e6) - want) < 1e-6 * want, "a tenth of the log difference");
}

static void test_short_runs_and_bad_costs_teach_nothing(void) {
  zoe_oprate_reset();
  zoe_oprate_learn("fill_", 1e3, ZOE_OPRATE_MIN_NS - 1);
  zoe_oprate_learn("fill_", 0, 1000000);
  CHECK(zoe_oprate_predict("fill_", 1e3) < 0, "still untimed");
  double rate;
  CHECK(zoe_oprate_kind(0, &rate) == NULL, "no kind listed");
}

static void test_the_threshold_decides(void) {
  zoe_oprate_reset();
  CHECK(!zoe_oprate_heavy("conv3d", ZOE_OPRATE_COST_THRESHOLD / 2), "untimed and cheap: inline");
  CHECK(zoe_oprate_heavy("conv3d", ZOE_OPRATE_COST_THRESHOLD), "untimed and costly: offloaded");
  zoe_oprate_learn("conv3d", 1e9, 20000); /* timed: 20 us for a cost past the untimed threshold */
  CHECK(!zoe_oprate_heavy("conv3d", 1e9), "predicted 20 us: inline");
  CHECK(zoe_oprate_heavy("conv3d", 1e10), "predicted 200 us: offloaded");
  double old = zoe_oprate_set_threshold(0);
  CHECK(old == ZOE_OPRATE_THRESHOLD_NS, "the default threshold is %g ns", old);
  CHECK(zoe_oprate_heavy("anything", 1), "threshold 0: every op leaves");
  zoe_oprate_set_threshold(old);
  double r = 0;
  const char *name;
  int i = 0;
  while ((name = zoe_oprate_kind(i++, &r)) && strcmp(name, "conv3d") != 0) {}
  CHECK(name && fabs(r - 2e-5) < 1e-12, "the kinds timed are listed");
}

/* zoe.estimate reads a kind's rate per size class: costs 4^k to 4^(k+1) are class k */
static void test_size_classes(void) {
  zoe_oprate_reset();
  zoe_oprate_learn("wan_block", 3e10, 3000000000); /* 4^17.3: class 17, 0.1 ns a unit */
  zoe_oprate_learn("wan_block", 2e8, 200000000);   /* 4^13.8: class 13, 1 ns a unit */
  double sized17 = zoe_oprate_predict("wan_block@17", 1e10), sized13 = zoe_oprate_predict("wan_block@13", 1e10);
  CHECK(fabs(sized17 - 1e9) < 1e-3 && fabs(sized13 - 1e10) < 1e-2, "each class its own rate (%g, %g)", sized17,
        sized13);
  CHECK(zoe_oprate_predict("wan_block", 1e10) > sized17, "the kind's own rate moved by both");
  int n = 0;
  double r;
  while (zoe_oprate_kind(n, &r)) n++;
  CHECK(n == 3, "the kind and its two classes are listed (%d)", n);
}

int main(void) {
  RUN(test_first_run_sets_the_rate);
  RUN(test_later_runs_move_it_by_at_most_ten_percent);
  RUN(test_short_runs_and_bad_costs_teach_nothing);
  RUN(test_the_threshold_decides);
  RUN(test_size_classes);
  return test_summary();
}
