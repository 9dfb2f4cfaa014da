/*
** fuzz_pth.c: the PyTorch checkpoint reader on mutated files (libFuzzer + ASan,
** `make fuzz`). Each input is read from memory as a .pth zip and every tensor is
** made and copied; input that starts like a pickle (0x80) is also run through the
** restricted unpickler directly, so mutations reach it without a valid zip around
** them. Errors are fine; a crash, a leak, a hang or a sanitizer report is a bug.
** Seeds: fuzz/fuzz_pth.seeds.sh copies the test fixtures and their data.pkl files.
*/
#include <stdint.h>
#include <stdlib.h>

#include "../runtime/core/pool.h"
#include "../runtime/io/pth.h"
#include "../runtime/io/unpickle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  zoe_pool_init(1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  zoe_err e = {0};
  zoe_weights *w = zoe_pth_open_memory(data, size, "fuzz.pth", &e);
  for (size_t i = 0; w && i < zoe_weights_count(w); i++) {
    zoe_tensor *t = zoe_weights_tensor(w, i, &e);
    zoe_tensor *c = t ? zoe_clone(t, &e) : NULL;
    zoe_tensor_release(c);
    zoe_tensor_release(t);
  }
  zoe_weights_release(w);
  if (size && data[0] == 0x80) {
    pk_arena arena = {0};
    pk_load(data, size, &arena, &e);
    pk_arena_free(&arena);
  }
  return 0;
}
