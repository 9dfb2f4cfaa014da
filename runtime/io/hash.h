/*
** hash.h: a fast 64-bit content hash (the XXH64 algorithm, written from its
** specification) for weights files, records and cached outputs: it names
** content, it does not protect it. Hex strings are 16 lowercase digits.
*/
#ifndef ZOE_HASH_H
#define ZOE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct zoe_hash_state {
  uint64_t acc[4], total;
  unsigned char buf[32];
  size_t buffered;
  uint64_t seed;
} zoe_hash_state;

void zoe_hash_init(zoe_hash_state *s, uint64_t seed);
void zoe_hash_update(zoe_hash_state *s, const void *data, size_t n);
uint64_t zoe_hash_final(const zoe_hash_state *s);
uint64_t zoe_hash64(const void *data, size_t n, uint64_t seed);
/* Hash of a whole file's bytes; polls zoe_cancel_requested between reads. */
int zoe_hash_file(const char *path, uint64_t *out, zoe_err *e);
void zoe_hash_hex(uint64_t h, char out[17]);

#endif
