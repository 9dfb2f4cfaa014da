/*
** test_weights.c: the C API the model code uses: open a checkpoint (safetensors,
** from a file or memory; a .pth), list and find names, get lazy views, save;
** and the tokenizer's C API (encode with truncation, decode, lookups).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../runtime/core/alloc.h"
#include "../../runtime/io/mapfile.h"
#include "../../runtime/io/pth.h"
#include "../../runtime/io/safetensors.h"
#include "../../runtime/io/tokenizer.h"
#include "test.h"

#define FX "tests/fixtures/weights/"

static void test_open_list_find(void) {
  zoe_err e = {0};
  zoe_weights *w = zoe_weights_open(FX "state.safetensors", &e);
  CHECK(w != NULL, "%s", e.msg);
  if (!w) return;
  CHECK(zoe_weights_count(w) == 14, "%zu tensors", zoe_weights_count(w));
  for (size_t i = 1; i < zoe_weights_count(w); i++)
    CHECK(strcmp(zoe_weights_name(w, i - 1), zoe_weights_name(w, i)) < 0, "sorted at %zu", i);
  CHECK(zoe_weights_find(w, "bias") >= 0 && zoe_weights_find(w, "nope") == -1, "find");
  CHECK(strcmp(zoe_weights_name(w, zoe_weights_lower_bound(w, "b")), "base") == 0, "lower bound");
  CHECK(strcmp(zoe_weights_format(w), "safetensors") == 0, "format");
  CHECK(zoe_weights_meta_count(w) == 1 && strcmp(zoe_weights_meta_value(w, 0), "make_weights_fixtures.py") == 0,
        "metadata");
  const char *near[3];
  size_t n = zoe_weights_suggest(w, "wieght", near, 3);
  CHECK(n >= 1 && strcmp(near[0], "weight") == 0, "suggests weight first (%zu)", n);
  zoe_tensor *x = zoe_weights_get(w, "i64", &e);
  CHECK(x && x->dtype == ZOE_I64 && x->ndim == 1 && x->shape[0] == 3, "i64 tensor");
  if (x) CHECK(((int64_t *)zoe_data(x))[2] == (int64_t)1 << 50, "value");
  zoe_tensor *none = zoe_weights_get(w, "nope", &e);
  CHECK(!none && strstr(e.msg, "no tensor named 'nope'") && strstr(e.msg, "state.safetensors"), "%s", e.msg);
  zoe_weights_release(w);
  CHECK(x && ((int64_t *)zoe_data(x))[0] == -((int64_t)1 << 40), "the view outlives the weights");
  zoe_tensor_release(x);
}

static void test_memory_and_save(void) {
  zoe_err e = {0};
  size_t len;
  char *buf = zoe_read_small_file(FX "state.safetensors", 1 << 20, &len, &e);
  CHECK(buf != NULL, "%s", e.msg);
  if (!buf) return;
  zoe_weights *w = zoe_st_open_memory(buf, len, "buffer", &e);
  CHECK(w != NULL, "%s", e.msg);
  zoe_tensor *t = w ? zoe_weights_get(w, "transposed", &e) : NULL;
  CHECK(t && t->shape[0] == 5 && t->shape[1] == 4, "shape");
  char path[] = "/tmp/zoe-test-weights-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  zoe_tensor *tr = t ? zoe_transpose(t, 0, 1, &e) : NULL;
  const char *names[] = {"t"};
  const char *keys[] = {"k"}, *vals[] = {"v"};
  CHECK(tr && zoe_st_save(path, 1, names, &tr, 1, keys, vals, &e) == 0, "%s", e.msg);
  zoe_weights *back = zoe_weights_open(path, &e);
  zoe_tensor *b = back ? zoe_weights_get(back, "t", &e) : NULL;
  CHECK(b && b->shape[0] == 4 && b->shape[1] == 5 && zoe_is_contiguous(b), "written contiguous");
  if (b && t) CHECK(((float *)zoe_data(b))[1] == ((float *)zoe_data(t))[4], "values follow the transpose");
  CHECK(back && strcmp(zoe_weights_meta_key(back, 0), "k") == 0, "metadata written");
  const char *bad[] = {"__metadata__"};
  CHECK(tr && zoe_st_save(path, 1, bad, &tr, 0, NULL, NULL, &e) == ZOE_EINVAL, "reserved name refused");
  zoe_tensor_release(b);
  zoe_tensor_release(tr);
  zoe_tensor_release(t);
  zoe_weights_release(back);
  zoe_weights_release(w);
  unlink(path);
  free(buf);
}

static void test_pth_from_memory(void) {
  zoe_err e = {0};
  size_t len;
  char *buf = zoe_read_small_file(FX "state.pth", 1 << 20, &len, &e);
  zoe_weights *w = buf ? zoe_pth_open_memory(buf, len, "state.pth", &e) : NULL;
  CHECK(w && zoe_weights_count(w) == 14, "%s", e.msg);
  zoe_tensor *t = w ? zoe_weights_get(w, "narrow", &e) : NULL;
  CHECK(t && t->offset == 7 && t->stride[0] == 5, "a view at offset 7 with stride 5");
  zoe_tensor_release(t);
  zoe_weights_release(w);
  free(buf);
  zoe_mem_stats m;
  zoe_mem_get(&m);
  CHECK(m.mapped == 0, "nothing left mapped (%lld)", (long long)m.mapped);
}

static void test_tokenizer_api(void) {
  zoe_err e = {0};
  zoe_tokenizer *t = zoe_tokenizer_load("tests/fixtures/tokenizer/uni.tokenizer.json", &e);
  CHECK(t != NULL, "%s", e.msg);
  if (!t) return;
  int32_t *ids;
  size_t n;
  CHECK(zoe_tokenizer_encode(t, "a red circle", 12, 1, -1, &ids, &n, &e) == 0, "%s", e.msg);
  CHECK(n >= 3 && ids[n - 1] == 1, "ends with </s>");
  size_t full = n;
  free(ids);
  CHECK(zoe_tokenizer_encode(t, "a red circle", 12, 1, 2, &ids, &n, &e) == 0 && n == 2 && ids[1] == 1,
        "truncated to 2 keeping </s> (of %zu)", full);
  size_t dl;
  char *text = zoe_tokenizer_decode(t, ids, n, 1, &dl, &e);
  CHECK(text && dl < 12, "decoded '%s'", text ? text : e.msg);
  free(text);
  free(ids);
  CHECK(zoe_tokenizer_encode(t, "a", 1, 1, 0, &ids, &n, &e) == ZOE_EINVAL, "length 0 cannot hold </s>");
  CHECK(zoe_tokenizer_token_to_id(t, "</s>", 4) == 1 && zoe_tokenizer_pad_id(t) == 0, "lookups");
  const char *s = zoe_tokenizer_id_to_token(t, 2, &dl);
  CHECK(s && dl == 5 && memcmp(s, "<unk>", 5) == 0, "id 2 is <unk>");
  zoe_tokenizer_free(t);
}

int main(void) {
  RUN(test_open_list_find);
  RUN(test_memory_and_save);
  RUN(test_pth_from_memory);
  RUN(test_tokenizer_api);
  return test_summary();
}
