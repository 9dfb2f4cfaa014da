/*
** clock.h: monotonic time for the loop (progress rates, time slices, spins).
*/
#ifndef ZOE_CLOCK_H
#define ZOE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t zoe_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A hint to the CPU inside a spin-wait. */
static inline void zoe_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif
