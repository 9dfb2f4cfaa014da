/*
** fuzz_gguf.c: the GGUF reader on mutated files (libFuzzer + ASan, `make fuzz`).
** Each input is read from memory as a GGUF file; every tensor it lists is made
** and dequantized (so each block a view claims is read), and the metadata is
** walked. Errors are fine; a crash, a leak or a sanitizer report is a bug.
** Seeds: fuzz/fuzz_gguf.seeds.sh copies the GGUF fixtures of ../shared.
*/
#include <stdint.h>
#include <stdlib.h>

#include "../runtime/core/pool.h"
#include "../runtime/io/gguf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  zoe_pool_init(1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  zoe_err e = {0};
  zoe_weights *w = zoe_gguf_open_memory(data, size, "fuzz.gguf", &e);
  if (!w) return 0;
  for (size_t i = 0; i < zoe_weights_count(w); i++) {
    if (zoe_weights_find(w, zoe_weights_name(w, i)) != (ptrdiff_t)i) abort(); /* sorted and unique */
    zoe_tensor *t = zoe_weights_tensor(w, i, &e);
    zoe_tensor *f = t && zoe_numel(t) <= (1 << 22) ? zoe_to_dtype(t, ZOE_F32, &e) : NULL;
    zoe_tensor_release(f);
    zoe_tensor_release(t);
  }
  for (size_t i = 0; i < zoe_weights_meta_count(w); i++)
    if (!zoe_weights_meta_key(w, i) || !zoe_weights_meta_value(w, i)) abort();
  zoe_weights_release(w);
  return 0;
}
