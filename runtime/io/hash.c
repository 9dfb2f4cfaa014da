/*
** hash.c: XXH64 (Y. Collet's xxHash, 64-bit variant), from the algorithm's
** published description: four lanes over 32-byte stripes, then a merge, the
** tail in 8-, 4- and 1-byte steps, and an avalanche.
*/
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/pool.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static inline uint64_t round1(uint64_t acc, uint64_t in) { return rotl(acc + in * P2, 31) * P1; }
static inline uint64_t merge(uint64_t acc, uint64_t v) { return (acc ^ round1(0, v)) * P1 + P4; }

void zoe_hash_init(zoe_hash_state *s, uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->seed = seed;
  s->acc[0] = seed + P1 + P2;
  s->acc[1] = seed + P2;
  s->acc[2] = seed;
  s->acc[3] = seed - P1;
}

static void stripe(zoe_hash_state *s, const unsigned char *p) {
  for (int i = 0; i < 4; i++) s->acc[i] = round1(s->acc[i], rd64(p + 8 * i));
}

void zoe_hash_update(zoe_hash_state *s, const void *data, size_t n) {
  const unsigned char *p = data;
  s->total += n;
  if (s->buffered) {
    size_t take = 32 - s->buffered < n ? 32 - s->buffered : n;
    memcpy(s->buf + s->buffered, p, take);
    s->buffered += take;
    p += take;
    n -= take;
    if (s->buffered < 32) return;
    stripe(s, s->buf);
    s->buffered = 0;
  }
  for (; n >= 32; p += 32, n -= 32) stripe(s, p);
  memcpy(s->buf, p, n);
  s->buffered = n;
}

uint64_t zoe_hash_final(const zoe_hash_state *s) {
  uint64_t h;
  if (s->total >= 32) {
    h = rotl(s->acc[0], 1) + rotl(s->acc[1], 7) + rotl(s->acc[2], 12) + rotl(s->acc[3], 18);
    for (int i = 0; i < 4; i++) h = merge(h, s->acc[i]);
  } else {
    h = s->seed + P5;
  }
  h += s->total;
  const unsigned char *p = s->buf;
  size_t n = s->buffered;
  for (; n >= 8; p += 8, n -= 8) h = rotl(h ^ round1(0, rd64(p)), 27) * P1 + P4;
  if (n >= 4) {
    h = rotl(h ^ ((uint64_t)rd32(p) * P1), 23) * P2 + P3;
    p += 4;
    n -= 4;
  }
  for (; n > 0; p++, n--) h = rotl(h ^ (*p * P5), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

uint64_t zoe_hash64(const void *data, size_t n, uint64_t seed) {
  zoe_hash_state s;
  zoe_hash_init(&s, seed);
  zoe_hash_update(&s, data, n);
  return zoe_hash_final(&s);
}

int zoe_hash_file(const char *path, uint64_t *out, zoe_err *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return zoe_errf(e, ZOE_EIO, "hash: cannot open '%s': %s", path, strerror(errno));
  static _Thread_local unsigned char buf[1 << 20];
  zoe_hash_state s;
  zoe_hash_init(&s, 0);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return zoe_errf(e, ZOE_EIO, "hash: cannot read '%s': %s", path, strerror(err));
    }
    if (n == 0) break;
    zoe_hash_update(&s, buf, (size_t)n);
    if (zoe_cancel_requested()) {
      close(fd);
      return zoe_errf(e, ZOE_ECANCELED, "hash: canceled while reading '%s'", path);
    }
  }
  close(fd);
  *out = zoe_hash_final(&s);
  return 0;
}

void zoe_hash_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)h); }
