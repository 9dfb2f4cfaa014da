/*
** test_gguf.c: the GGUF reader and ggml's block formats against the fixtures of
** ../shared/fixtures/gguf (written by ggml itself; README there):
**   - every tensor of the 5 GGUF files dequantizes bit for bit to <stem>.dequant.safetensors;
**   - shapes: orig_shape and city96's 5-D / 3-D dims exact, ggml's dropped ones only by size-1 dims;
**   - our quantizers give ggml's reference bytes for the source floats of quant-types.gguf;
**   - metadata of every value type reads back as text;
**   - malformed images (truncated, lying offsets, overlaps, unknown types, huge counts) are refused.
*/
#include <stdlib.h>

#include "../../runtime/core/quant.h"
#include "../../runtime/io/gguf.h"
#include "../../runtime/io/mapfile.h"
#include "test.h"

#define DIR "../shared/fixtures/gguf/"

static int have_fixtures(void) {
  FILE *f = fopen(DIR "README.md", "r");
  if (f) fclose(f);
  return f != NULL;
}

static int same_ignoring_ones(const zoe_tensor *a, const zoe_tensor *b) {
  int i = 0, j = 0;
  for (;;) {
    while (i < a->ndim && a->shape[i] == 1) i++;
    while (j < b->ndim && b->shape[j] == 1) j++;
    if (i == a->ndim || j == b->ndim) return i == a->ndim && j == b->ndim;
    if (a->shape[i++] != b->shape[j++]) return 0;
  }
}

/* every tensor of 'gguf' against the dequant file; 'exact_shapes': shapes must match as they are */
static void check_file(const char *gguf, const char *dequant, int exact_shapes, size_t expect_n) {
  zoe_err e = {0};
  zoe_weights *g = zoe_weights_open(gguf, &e), *d = g ? zoe_weights_open(dequant, &e) : NULL;
  CHECK(g && d, "%s", e.msg);
  if (!g || !d) goto done;
  CHECK(strcmp(zoe_weights_format(g), "gguf") == 0, "format %s", zoe_weights_format(g));
  CHECK(zoe_weights_count(g) == expect_n && zoe_weights_count(d) == expect_n, "%zu / %zu tensors",
        zoe_weights_count(g), zoe_weights_count(d));
  int bad = 0;
  for (size_t i = 0; i < zoe_weights_count(g); i++) {
    const char *name = zoe_weights_name(g, i);
    zoe_tensor *q = zoe_weights_tensor(g, i, &e), *ref = zoe_weights_get(d, name, &e);
    zoe_tensor *f = q ? zoe_to_dtype(q, ZOE_F32, &e) : NULL;
    if (!f || !ref) {
      CHECK(0, "%s: %s", name, e.msg);
      bad++;
    } else {
      char a[96], b[96];
      int shape_ok = exact_shapes ? zoe_same_shape(f, ref) : same_ignoring_ones(f, ref);
      CHECK(shape_ok, "%s: shape %s, dequant file %s", name, zoe_shape_str(f, a, sizeof a), zoe_shape_str(ref, b, sizeof b));
      int n = zoe_numel(f) == zoe_numel(ref) && memcmp(zoe_data(f), zoe_data(ref), (size_t)zoe_numel(f) * 4) == 0;
      CHECK(n, "%s (%s): values differ from ggml's", name, zoe_dtype_name(q->dtype));
      bad += !n || !shape_ok;
    }
    zoe_tensor_release(q);
    zoe_tensor_release(f);
    zoe_tensor_release(ref);
  }
  CHECK(bad == 0, "%s: %d tensors differ", gguf, bad);
done:
  zoe_weights_release(g);
  zoe_weights_release(d);
}

static void test_dequant_bitwise(void) {
  check_file(DIR "quant-types.gguf", DIR "quant-types.dequant.safetensors", 1, 17);
  check_file(DIR "wan-tiny-q8_0.gguf", DIR "wan-tiny-q8_0.dequant.safetensors", 0, 69);
  check_file(DIR "wan-tiny-q4_k.gguf", DIR "wan-tiny-q4_k.dequant.safetensors", 0, 69);
  check_file(DIR "wan-tiny-mixed.gguf", DIR "wan-tiny-mixed.dequant.safetensors", 0, 69);
  check_file(DIR "wan-tiny-q8_0-city96.gguf", DIR "wan-tiny-q8_0.dequant.safetensors", 1, 69);
}

/* The dtype of each tensor and city96's dims, as the manifest lists them. */
static void test_layouts(void) {
  zoe_err e = {0};
  zoe_weights *w = zoe_weights_open(DIR "wan-tiny-q8_0-city96.gguf", &e);
  CHECK(w, "%s", e.msg);
  if (!w) return;
  zoe_tensor *p = zoe_weights_get(w, "patch_embedding.weight", &e), *m = zoe_weights_get(w, "blocks.0.modulation", &e);
  zoe_tensor *q = zoe_weights_get(w, "blocks.1.ffn.0.weight", &e);
  CHECK(p && p->ndim == 5 && p->shape[0] == 96 && p->shape[2] == 1 && p->dtype == ZOE_F32, "patch embedding");
  CHECK(m && m->ndim == 3 && m->shape[0] == 1 && m->shape[1] == 6, "modulation");
  CHECK(q && q->dtype == ZOE_Q8_0 && q->shape[0] == 160 && q->shape[1] == 96, "ffn.0 q8_0 160x96");
  zoe_tensor_release(p);
  zoe_tensor_release(m);
  zoe_tensor_release(q);
  zoe_weights_release(w);
  w = zoe_weights_open(DIR "wan-tiny-q4_k.gguf", &e);
  q = w ? zoe_weights_get(w, "blocks.0.ffn.2.weight", &e) : NULL; /* stored [256, 60] with orig_shape [96, 160] */
  CHECK(q && q->dtype == ZOE_Q4_K && q->ndim == 2 && q->shape[0] == 96 && q->shape[1] == 160, "q4_k orig_shape");
  zoe_tensor_release(q);
  zoe_weights_release(w);
}

static const char *meta(const zoe_weights *w, const char *key) {
  for (size_t i = 0; i < zoe_weights_meta_count(w); i++)
    if (strcmp(zoe_weights_meta_key(w, i), key) == 0) return zoe_weights_meta_value(w, i);
  return "(absent)";
}

static void test_metadata(void) {
  zoe_err e = {0};
  zoe_weights *w = zoe_weights_open(DIR "wan-tiny-mixed.gguf", &e);
  CHECK(w, "%s", e.msg);
  if (!w) return;
  static const char *const want[][2] = {
    {"fixture.u8", "200"}, {"fixture.i8", "-100"}, {"fixture.u16", "60000"}, {"fixture.i16", "-30000"},
    {"fixture.u32", "4000000000"}, {"fixture.i32", "-2000000000"}, {"fixture.u64", "1099511627783"},
    {"fixture.i64", "-1099511627783"}, {"fixture.f32", "0.100000001"}, {"fixture.f64", "0.10000000000000001"},
    {"fixture.bool", "false"}, {"fixture.str", "Wan2.1 \xe2\x9c\x93 \xe4\xb8\x87 (UTF-8)"},
    {"fixture.arr_bool", "[true,false,true]"}, {"fixture.arr_empty", "[]"},
    {"fixture.arr_f32", "[1.5,-2.25,9.99999997e-07]"}, {"fixture.arr_str", "[\"first\",\"\",\"third\"]"},
    {"fixture.arr_u8", "[1,2,255]"}, {"general.alignment", "64"}, {"wan.patch_size", "[1,2,2]"},
    {"comfy.gguf.orig_shape.blocks.1.ffn.0.weight", "[160,96]"},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    CHECK(strcmp(meta(w, want[i][0]), want[i][1]) == 0, "%s = '%s', want '%s'", want[i][0], meta(w, want[i][0]),
          want[i][1]);
  zoe_weights_release(w);
}

/* quant-types.source floats through our quantizers: ggml's reference bytes */
static void test_quantizers(void) {
  zoe_err e = {0};
  zoe_weights *g = zoe_weights_open(DIR "quant-types.gguf", &e), *s = g ? zoe_weights_open(DIR "quant-types.source.safetensors", &e) : NULL;
  CHECK(g && s, "%s", e.msg);
  static const char *const names[] = {"types.f16", "types.bf16", "types.q4_0", "types.q4_1", "types.q5_0",
                                      "types.q5_1", "types.q8_0", "types.q4_K", "types.q5_K", "types.q6_K",
                                      "types.q8_0.3d", "types.q4_1.1d", "types.f16.odd"};
  for (size_t i = 0; g && s && i < sizeof names / sizeof names[0]; i++) {
    zoe_tensor *ref = zoe_weights_get(g, names[i], &e), *src = zoe_weights_get(s, names[i], &e);
    zoe_tensor *ours = ref && src ? zoe_to_dtype(src, ref->dtype, &e) : NULL;
    CHECK(ours, "%s: %s", names[i], e.msg);
    if (ours) {
      size_t nb = zoe_dtype_bytes(ref->dtype, zoe_numel(ref));
      const unsigned char *a = zoe_data(ours), *b = zoe_data(ref);
      size_t k = 0;
      while (k < nb && a[k] == b[k]) k++;
      CHECK(k == nb, "%s: byte %zu of %zu differs (%02x, ggml %02x)", names[i], k, nb, k < nb ? a[k] : 0, k < nb ? b[k] : 0);
    }
    zoe_tensor_release(ref);
    zoe_tensor_release(src);
    zoe_tensor_release(ours);
  }
  zoe_weights_release(g);
  zoe_weights_release(s);
}

/* ---- malformed images ---- */

static unsigned char *slurp(const char *path, size_t *n) {
  zoe_err e = {0};
  zoe_mapping *m = zoe_map_file(path, &e);
  if (!m) return NULL;
  unsigned char *b = malloc(m->size);
  memcpy(b, m->base, m->size);
  *n = m->size;
  zoe_map_release(m);
  return b;
}

static int refuses(const unsigned char *b, size_t n, const char *want) {
  zoe_err e = {0};
  zoe_weights *w = zoe_gguf_open_memory(b, n, "t.gguf", &e);
  if (w) {
    zoe_weights_release(w);
    printf("  accepted (wanted: %s)\n", want);
    return 0;
  }
  if (!strstr(e.msg, want)) printf("  message '%s' lacks '%s'\n", e.msg, want);
  return strstr(e.msg, want) != NULL;
}

static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* the last occurrence of s in b[0, n): a tensor info comes after any metadata key naming it */
static unsigned char *find_last(unsigned char *b, size_t n, const char *s) {
  unsigned char *hit = NULL, *p = b;
  while ((p = memmem(p, n - (size_t)(p - b), s, strlen(s)))) hit = p++;
  return hit;
}

static void test_malformed(void) {
  size_t n;
  unsigned char *b = slurp(DIR "wan-tiny-q8_0.gguf", &n);
  CHECK(b, "fixture");
  if (!b) return;
  zoe_err e = {0};
  zoe_weights *w = zoe_gguf_open_memory(b, n, "ok.gguf", &e);
  CHECK(w, "the intact image: %s", e.msg);
  zoe_weights_release(w);
  /* every truncation inside the header, and a few into the data */
  int accepted = 0;
  for (size_t k = 0; k < 5024; k++) accepted += !refuses(b, k, "t.gguf");
  CHECK(accepted == 0, "%d truncated headers accepted", accepted);
  CHECK(refuses(b, n - 1, "past its end"), "truncated data");
  unsigned char *c = malloc(n);
  memcpy(c, b, n);
  c[0] = 'X';
  CHECK(refuses(c, n, "not a GGUF"), "magic");
  memcpy(c, b, n);
  c[4] = 1;
  CHECK(refuses(c, n, "version 1"), "version 1");
  memcpy(c, b, n);
  put_u64(c + 8, (uint64_t)1 << 40); /* tensor count */
  CHECK(refuses(c, n, "tensors cannot fit"), "huge tensor count");
  memcpy(c, b, n);
  put_u64(c + 16, (uint64_t)-1); /* kv count, negative */
  CHECK(refuses(c, n, "metadata entries cannot fit"), "negative kv count");
  memcpy(c, b, n);
  put_u64(c + 24, (uint64_t)1 << 50); /* the first key's length */
  CHECK(refuses(c, n, "past the end of the file"), "huge string");
  /* the tensor infos: find the first one ("patch_embedding.weight", 4 dims, f32) and the second */
  const char *first = "patch_embedding.weight";
  unsigned char *p = find_last(b, 5024, first);
  CHECK(p != NULL, "first tensor info");
  if (p) {
    size_t info = (size_t)(p - b) + strlen(first); /* n_dims */
    size_t type_at = info + 4 + 4 * 8, off_at = type_at + 4;
    memcpy(c, b, n);
    c[type_at] = 99;
    CHECK(refuses(c, n, "unknown ggml type 99"), "unknown type");
    memcpy(c, b, n);
    c[type_at] = 16;
    CHECK(refuses(c, n, "iq2_xxs"), "unsupported type named");
    memcpy(c, b, n);
    put_u64(c + off_at, (uint64_t)n); /* a lying offset */
    CHECK(refuses(c, n, "past its end"), "offset past the end");
    memcpy(c, b, n);
    put_u64(c + off_at, (uint64_t)1 << 63);
    CHECK(refuses(c, n, "past its end"), "huge offset");
    /* the second tensor (patch_embedding.bias) pointed into the first: overlap */
    const char *second = "patch_embedding.bias";
    unsigned char *q = find_last(b, 5024, second);
    if (q) {
      memcpy(c, b, n);
      size_t off2 = (size_t)(q - b) + strlen(second) + 4 + 8 + 4;
      put_u64(c + off2, 64);
      CHECK(refuses(c, n, "overlap"), "overlapping tensors");
    }
    memcpy(c, b, n);
    memcpy(c + info, &(uint32_t){9}, 4);
    CHECK(refuses(c, n, "9 dims"), "too many dims");
    memcpy(c, b, n);
    put_u64(c + info + 4, (uint64_t)1 << 62); /* ne[0] */
    CHECK(!zoe_gguf_open_memory(c, n, "t.gguf", &e), "huge dims refused: %s", e.msg);
  }
  /* alignment that is not a power of two */
  unsigned char *a = slurp(DIR "wan-tiny-mixed.gguf", &n);
  unsigned char *k = a ? memmem(a, 6272, "general.alignment", 17) : NULL;
  if (k) {
    memcpy(k + 17 + 4, &(uint32_t){48}, 4);
    CHECK(refuses(a, n, "power of two"), "alignment 48");
  }
  free(a);
  free(c);
  free(b);
}

/* float8: every code widens and narrows back to itself; rounding to nearest even; overflow */
static void test_f8(void) {
  int bad = 0;
  for (int c = 0; c < 256; c++) {
    float a = zoe_f8_e4m3_to_f32((uint8_t)c), b = zoe_f8_e5m2_to_f32((uint8_t)c);
    if (!isnan(a) && zoe_f32_to_f8_e4m3(a) != c) bad++;
    if (!isnan(b) && zoe_f32_to_f8_e5m2(b) != c) bad++;
  }
  CHECK(bad == 0, "%d codes do not round-trip", bad);
  CHECK(zoe_f8_e4m3_to_f32(0x7e) == 448.0f && isnan(zoe_f8_e4m3_to_f32(0x7f)), "e4m3 max / NaN");
  CHECK(zoe_f8_e4m3_to_f32(0x01) == 0x1p-9f, "e4m3 smallest subnormal");
  CHECK(zoe_f8_e5m2_to_f32(0x7b) == 57344.0f && isinf(zoe_f8_e5m2_to_f32(0x7c)), "e5m2 max / inf");
  CHECK(zoe_f32_to_f8_e4m3(1.0625f) == 0x38 && zoe_f32_to_f8_e4m3(1.1875f) == 0x3a, "ties to even: %02x %02x",
        zoe_f32_to_f8_e4m3(1.0625f), zoe_f32_to_f8_e4m3(1.1875f));
  CHECK(zoe_f32_to_f8_e4m3(464.0f) == 0x7e && zoe_f32_to_f8_e4m3(470.0f) == 0x7f, "e4m3 overflow is NaN");
  CHECK(zoe_f32_to_f8_e5m2(61440.0f) == 0x7c && zoe_f32_to_f8_e5m2(-1e9f) == 0xfc, "e5m2 overflow is inf");
}

int main(void) {
  if (!have_fixtures()) {
    printf("ok - gguf # SKIP ../shared/fixtures/gguf is absent\n");
    RUN(test_f8);
    return test_summary();
  }
  RUN(test_dequant_bitwise);
  RUN(test_layouts);
  RUN(test_metadata);
  RUN(test_quantizers);
  RUN(test_malformed);
  RUN(test_f8);
  return test_summary();
}
