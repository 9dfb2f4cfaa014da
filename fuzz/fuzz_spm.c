/*
** fuzz_spm.c: the sentencepiece model reader on mutated files (libFuzzer + ASan,
** `make fuzz`). The input is a spiece.model's bytes; when it loads, a few texts
** (spaces, accents, unknown characters, emoji, an empty one) are encoded, truncated
** and padded, and decoded. Errors are fine; a crash, a leak, a hang or a sanitizer
** report is a bug. Seeds: fuzz_spm.seeds.sh copies the models of tests/fixtures/spm.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/io/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const TEXTS[] = {
  "", " ", "a red circle moves left", "  two  spaces\tand\ttabs\n", "café crème", "zoe➕ <0x41> </s>",
  "日本語 🙂👍🏽 ①½™", "\xe2\x96\x81\xe2\x96\x81x",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  zoe_err e = {0};
  zoe_tokenizer *t = zoe_tokenizer_from_spm(data, size, "fuzz.model", &e);
  if (!t) return 0;
  for (size_t i = 0; i < sizeof TEXTS / sizeof *TEXTS; i++) {
    for (long max_len = -1; max_len <= 8; max_len += 9) {
      int32_t *ids = NULL;
      size_t n = 0;
      if (zoe_tokenizer_encode(t, TEXTS[i], strlen(TEXTS[i]), 1, max_len, &ids, &n, &e) == 0) {
        if (max_len >= 0 && n > (size_t)max_len) abort();
        size_t dl;
        free(zoe_tokenizer_decode(t, ids, n, 1, &dl, &e));
      }
      free(ids);
    }
  }
  size_t l;
  zoe_tokenizer_id_to_token(t, 0, &l);
  zoe_tokenizer_token_to_id(t, "</s>", 4);
  zoe_tokenizer_free(t);
  return 0;
}
