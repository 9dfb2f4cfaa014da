/*
** rng.h: a counter-based generator (Philox4x32-10, Salmon et al. 2011).
** Element i of a draw depends only on (seed, offset, i), never on how the work
** is split over threads, so a seed gives the same noise on any machine size.
*/
#ifndef ZOE_RNG_H
#define ZOE_RNG_H

#include <stdint.h>

#include "tensor.h"

typedef struct zoe_rng {
  uint64_t seed;
  uint64_t offset; /* in 128-bit blocks already used */
} zoe_rng;

void zoe_rng_init(zoe_rng *g, uint64_t seed);
/* One Philox4x32-10 block. The fills use counter (block lo, block hi, 0, 0), key = seed. */
void zoe_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Fill a tensor (any float dtype, any layout) and advance the generator. */
int zoe_rand_uniform_(zoe_tensor *t, zoe_rng *g, double lo, double hi, zoe_err *e);
int zoe_rand_normal_(zoe_tensor *t, zoe_rng *g, double mean, double std, zoe_err *e);

#endif
