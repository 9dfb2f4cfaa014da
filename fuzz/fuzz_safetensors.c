/*
** fuzz_safetensors.c: the safetensors reader on mutated files (libFuzzer + ASan,
** `make fuzz`). Each input is read from memory as a safetensors file; every tensor
** it lists is made and copied (so each byte a view claims is read), names are
** looked up and suggested. Input starting with '{' is also read as a sharded index
** (its shards are never opened: that would touch files). Errors are fine; a crash,
** a leak or a sanitizer report is a bug.
** Seeds: fuzz/fuzz_safetensors.seeds.sh copies the test fixtures.
*/
#include <stdint.h>
#include <stdlib.h>

#include "../runtime/core/pool.h"
#include "../runtime/io/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  zoe_pool_init(1);
  return 0;
}

static void walk(zoe_weights *w, int make) {
  for (size_t i = 0; i < zoe_weights_count(w); i++) {
    const char *name = zoe_weights_name(w, i);
    if (zoe_weights_find(w, name) != (ptrdiff_t)i) abort(); /* sorted and unique */
    if (!make) continue;
    zoe_err e = {0};
    zoe_tensor *t = zoe_weights_tensor(w, i, &e);
    zoe_tensor *c = t ? zoe_clone(t, &e) : NULL; /* reads every element of the view */
    zoe_tensor_release(c);
    zoe_tensor_release(t);
  }
  const char *near[3];
  zoe_weights_suggest(w, "blocks.0.attn.q.weight", near, 3);
  for (size_t i = 0; i < zoe_weights_meta_count(w); i++)
    if (!zoe_weights_meta_key(w, i) || !zoe_weights_meta_value(w, i)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  zoe_err e = {0};
  zoe_weights *w = zoe_st_open_memory(data, size, "fuzz.safetensors", &e);
  if (w) {
    walk(w, 1);
    zoe_weights_release(w);
  }
  if (size && data[0] == '{') {
    w = zoe_st_open_index_json("fuzz/model.safetensors.index.json", (const char *)data, size, &e);
    if (w) {
      walk(w, 0);
      zoe_weights_release(w);
    }
  }
  return 0;
}
