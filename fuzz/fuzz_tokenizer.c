/*
** fuzz_tokenizer.c: the tokenizer on mutated input (libFuzzer + ASan, `make fuzz`).
** Input starting with '{' is a tokenizer.json, then a NUL byte, then a text: the
** file is loaded and, when it loads, the text encoded (truncated, padded) and the
** ids decoded. Other input is a text for the fixture tokenizers (a T5-style Unigram
** with a charsmap, one with byte fallback, a WordLevel): encoded and decoded.
** Errors are fine; a crash, a leak, a hang or a sanitizer report is a bug.
** Run from the repository root (the fixtures are read from tests/fixtures/tokenizer).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/io/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static zoe_tokenizer *fixed[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *names[3] = {"tests/fixtures/tokenizer/uni.tokenizer.json", "tests/fixtures/tokenizer/bytes.tokenizer.json",
                          "tests/fixtures/tokenizer/words.tokenizer.json"};
  for (int i = 0; i < 3; i++) {
    zoe_err e = {0};
    fixed[i] = zoe_tokenizer_load(names[i], &e);
    if (!fixed[i]) abort(); /* run from the repository root */
  }
  return 0;
}

static void run(const zoe_tokenizer *t, const char *text, size_t len, long max_len) {
  zoe_err e = {0};
  int32_t *ids = NULL;
  size_t n = 0;
  if (zoe_tokenizer_encode(t, text, len, 1, max_len, &ids, &n, &e) == 0) {
    if (max_len >= 0 && n > (size_t)max_len) abort();
    size_t dl;
    free(zoe_tokenizer_decode(t, ids, n, 1, &dl, &e));
    free(zoe_tokenizer_decode(t, ids, n, 0, &dl, &e));
  }
  free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  if (size && s[0] == '{') {
    const char *nul = memchr(s, '\0', size);
    size_t jl = nul ? (size_t)(nul - s) : size;
    zoe_err e = {0};
    zoe_tokenizer *t = zoe_tokenizer_from_json(s, jl, "fuzz.json", &e);
    if (t) {
      const char *text = nul ? nul + 1 : "";
      size_t tl = nul ? size - jl - 1 : 0;
      run(t, text, tl, -1);
      run(t, text, tl, 8);
      size_t l;
      zoe_tokenizer_id_to_token(t, 0, &l);
      zoe_tokenizer_token_to_id(t, text, tl);
      zoe_tokenizer_free(t);
    }
    return 0;
  }
  for (int i = 0; i < 3; i++) run(fixed[i], s, size, i == 0 ? -1 : 16);
  return 0;
}
