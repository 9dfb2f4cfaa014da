/*
** test_hash.c: XXH64 against its published values, and streaming equals one-shot.
*/
#include <stdlib.h>

#include "../../runtime/io/hash.h"
#include "test.h"

static void test_known_values(void) {
  CHECK(zoe_hash64("", 0, 0) == 0xEF46DB3751D8E999ULL, "empty: %016llx", (unsigned long long)zoe_hash64("", 0, 0));
  CHECK(zoe_hash64("abc", 3, 0) == 0x44BC2CF5AD770999ULL, "abc: %016llx", (unsigned long long)zoe_hash64("abc", 3, 0));
  char hex[17];
  zoe_hash_hex(0xEF46DB3751D8E999ULL, hex);
  CHECK(strcmp(hex, "ef46db3751d8e999") == 0, "hex %s", hex);
}

static void test_streaming_equals_one_shot(void) {
  enum { N = 1000 };
  static unsigned char data[N];
  for (int i = 0; i < N; i++) data[i] = (unsigned char)(i * 131 + 7);
  for (size_t len = 0; len <= N; len += len < 70 ? 1 : 97) {
    uint64_t want = zoe_hash64(data, len, 42);
    for (size_t step = 1; step <= 40; step += 13) {
      zoe_hash_state s;
      zoe_hash_init(&s, 42);
      for (size_t at = 0; at < len; at += step) zoe_hash_update(&s, data + at, len - at < step ? len - at : step);
      CHECK(zoe_hash_final(&s) == want, "len %zu in steps of %zu", len, step);
    }
  }
  CHECK(zoe_hash64(data, N, 0) != zoe_hash64(data, N, 1), "the seed matters");
  uint64_t before = zoe_hash64(data, N, 42);
  data[500] ^= 1;
  CHECK(zoe_hash64(data, N, 42) != before, "a flipped bit changes it");
}

static void test_file_errors(void) {
  zoe_err e = {0};
  uint64_t h;
  CHECK(zoe_hash_file("/nonexistent/file", &h, &e) == ZOE_EIO && strstr(e.msg, "/nonexistent/file"), "%s", e.msg);
}

int main(void) {
  RUN(test_known_values);
  RUN(test_streaming_equals_one_shot);
  RUN(test_file_errors);
  return test_summary();
}
