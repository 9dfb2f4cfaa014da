/*
** test.h: the C unit-test harness. Each test file is its own program:
**   static void test_x(void) { CHECK(a == b, "a=%d", a); }
**   int main(void) { RUN(test_x); return test_summary(); }
** It prints "ok - name" / "not ok - name" per test and "# passed N failed M skipped K".
** A test that cannot run here (a CPU without the instructions it tests) calls SKIP(why)
** and returns: it counts as skipped, never as passed.
*/
#ifndef ZOE_TEST_H
#define ZOE_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed, test_skipped, test_current_failed;
static const char *test_current_skip;

#define SKIP(why) (test_current_skip = (why))

#define CHECK(cond, ...)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      test_current_failed++;                                                    \
      printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);        \
      printf(__VA_ARGS__);                                                      \
      printf("\n");                                                             \
    }                                                                           \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                   \
  CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))

#define RUN(fn)                                                                 \
  do {                                                                          \
    test_current_failed = 0;                                                    \
    test_current_skip = NULL;                                                   \
    fn();                                                                       \
    if (test_current_skip && !test_current_failed) {                            \
      test_skipped++;                                                           \
      printf("ok - %s # SKIP %s\n", #fn, test_current_skip);                   \
    } else if (test_current_failed) {                                          \
      test_failed++;                                                            \
      printf("not ok - %s\n", #fn);                                             \
    } else {                                                                    \
      test_passed++;                                                            \
      printf("ok - %s\n", #fn);                                                 \
    }                                                                           \
  } while (0)

static inline int test_summary(void) {
  printf("# passed %d failed %d skipped %d\n", test_passed, test_failed, test_skipped);
  return test_failed ? 1 : 0;
}

#endif
