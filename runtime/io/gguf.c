/*
** gguf.c: reading GGUF files (layout in gguf.h). Everything before the data is
** checked before any tensor is made: every length and count against the bytes
** left (a lying count cannot make us allocate), value types, dims, the data
** start, each tensor's byte span inside the file, and that no two spans
** overlap. Offsets need not follow ggml's packing (other writers pad
** differently); they must only stay inside the data and apart.
*/
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights_impl.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF data is little-endian; this reader assumes a little-endian host"
#endif

#define ORIG_SHAPE "comfy.gguf.orig_shape."
#define MAX_NAME 4096 /* ggml allows 63 bytes; this only bounds what a broken file can make us copy */

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64, T_COUNT };
static const char *const vtype_names[T_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                 "bool", "string", "array", "u64", "i64", "f64"};
static const size_t vtype_size[T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8}; /* string: its length field */

/* ggml type ids: the ones we hold, and names for the ones we refuse */
static const struct {
  int id;
  const char *name;
  int dt; /* zoe_dtype, or -1: not supported */
} ggml_types[] = {
  {0, "f32", ZOE_F32},   {1, "f16", ZOE_F16},     {2, "q4_0", ZOE_Q4_0},  {3, "q4_1", ZOE_Q4_1},
  {6, "q5_0", ZOE_Q5_0}, {7, "q5_1", ZOE_Q5_1},   {8, "q8_0", ZOE_Q8_0},  {9, "q8_1", -1},
  {10, "q2_K", ZOE_Q2_K}, {11, "q3_K", ZOE_Q3_K}, {12, "q4_K", ZOE_Q4_K}, {13, "q5_K", ZOE_Q5_K},
  {14, "q6_K", ZOE_Q6_K}, {15, "q8_K", -1},       {16, "iq2_xxs", -1},    {17, "iq2_xs", -1},
  {18, "iq3_xxs", -1},   {19, "iq1_s", -1},       {20, "iq4_nl", -1},     {21, "iq3_s", -1},
  {22, "iq2_s", -1},     {23, "iq4_xs", -1},      {24, "i8", -1},         {25, "i16", -1},
  {26, "i32", ZOE_I32},  {27, "i64", ZOE_I64},    {28, "f64", -1},        {29, "iq1_m", -1},
  {30, "bf16", ZOE_BF16}, {34, "tq1_0", -1},      {35, "tq2_0", -1},      {39, "mxfp4", -1},
};
#define NTYPES (sizeof ggml_types / sizeof ggml_types[0])

int zoe_gguf_type_of(zoe_dtype dt) {
  for (size_t i = 0; i < NTYPES; i++)
    if (ggml_types[i].dt == (int)dt) return ggml_types[i].id;
  return -1;
}

/* ---- a cursor over the header ---- */

typedef struct rd {
  const unsigned char *b;
  size_t size, pos;
  zoe_weights *w;
  zoe_err *e;
  const char *what; /* what is being read, for messages */
} rd;

static int truncated(rd *r, size_t need) {
  return zoe_errf(r->e, ZOE_EFORMAT, "%s: truncated at byte %zu (reading %s: %zu more bytes needed, %zu left)",
                  r->w->path, r->pos, r->what, need, r->size - r->pos);
}

static int take(rd *r, void *out, size_t n) {
  if (r->size - r->pos < n) {
    truncated(r, n);
    return ZOE_EFORMAT;
  }
  memcpy(out, r->b + r->pos, n);
  r->pos += n;
  return 0;
}

/* A string: its bytes stay in the file (*s, *len). */
static int string(rd *r, const char **s, uint64_t *len) {
  *s = NULL;
  *len = 0;
  if (take(r, len, 8)) return ZOE_EFORMAT;
  if (*len > r->size - r->pos)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s at byte %zu claims %llu bytes, past the end of the file",
                    r->w->path, r->what, r->pos - 8, (unsigned long long)*len);
  *s = (const char *)r->b + r->pos;
  r->pos += (size_t)*len;
  return 0;
}

/* ---- metadata values as text ---- */

typedef struct buf {
  char *p;
  size_t n, cap;
  int oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void putf(buf *b, const char *fmt, double v, long long i, unsigned long long u, int kind) {
  char t[64];
  int n = kind == 0 ? snprintf(t, sizeof t, fmt, v) : kind == 1 ? snprintf(t, sizeof t, "%lld", i)
                                                                 : snprintf(t, sizeof t, "%llu", u);
  put(b, t, (size_t)n);
}

static void put_json_string(buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      put(b, esc, 2);
    } else if (c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(b, esc, 6);
    } else {
      put(b, (const char *)&c, 1);
    }
  }
  put(b, "\"", 1);
}

/* One scalar of type t (not an array) as text; 'json' quotes strings. Integers also into *ival. */
static int scalar(rd *r, int t, buf *out, int json, int64_t *ival, int *is_int) {
  unsigned char v[8];
  *is_int = 0;
  if (t == T_STR) {
    const char *s;
    uint64_t len;
    if (string(r, &s, &len)) return ZOE_EFORMAT;
    if (json) put_json_string(out, s, (size_t)len);
    else put(out, s, (size_t)len);
    return 0;
  }
  if (take(r, v, vtype_size[t])) return ZOE_EFORMAT;
  uint8_t u8;
  int8_t i8;
  uint16_t u16;
  int16_t i16;
  uint32_t u32;
  int32_t i32;
  uint64_t u64;
  int64_t i64;
  float f32;
  double f64;
  switch (t) {
    case T_U8: memcpy(&u8, v, 1); *ival = u8; break;
    case T_I8: memcpy(&i8, v, 1); *ival = i8; break;
    case T_U16: memcpy(&u16, v, 2); *ival = u16; break;
    case T_I16: memcpy(&i16, v, 2); *ival = i16; break;
    case T_U32: memcpy(&u32, v, 4); *ival = u32; break;
    case T_I32: memcpy(&i32, v, 4); *ival = i32; break;
    case T_I64: memcpy(&i64, v, 8); *ival = i64; break;
    case T_U64:
      memcpy(&u64, v, 8);
      putf(out, NULL, 0, 0, (unsigned long long)u64, 2);
      *ival = u64 > INT64_MAX ? -1 : (int64_t)u64;
      *is_int = 1;
      return 0;
    case T_BOOL:
      if (v[0] > 1)
        return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: a bool of value %d at byte %zu", r->w->path, r->what, v[0],
                        r->pos - 1);
      put(out, v[0] ? "true" : "false", v[0] ? 4 : 5);
      return 0;
    case T_F32: memcpy(&f32, v, 4); putf(out, "%.9g", f32, 0, 0, 0); return 0;
    case T_F64: memcpy(&f64, v, 8); putf(out, "%.17g", f64, 0, 0, 0); return 0;
    default: return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: bad value type %d", r->w->path, r->what, t);
  }
  putf(out, NULL, 0, *ival, 0, 1);
  *is_int = 1;
  return 0;
}

/* An orig_shape key's integers, kept until the tensor infos are read. */
typedef struct shape_hint {
  char *name;
  int ndim;
  int64_t shape[ZOE_MAX_DIMS];
} shape_hint;

typedef struct hints {
  shape_hint *h;
  size_t n;
} hints;

static int value_type(rd *r, uint32_t t, int in_array) {
  if (t >= T_COUNT)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: unknown value type %u at byte %zu", r->w->path, r->what, t,
                    r->pos - 4);
  if (in_array && t == T_ARR)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: an array of arrays (GGUF does not allow them)", r->w->path, r->what);
  return 0;
}

static int read_array(rd *r, buf *out, shape_hint *hint) {
  uint32_t et = 0;
  uint64_t count = 0;
  if (take(r, &et, 4) || value_type(r, et, 1) || take(r, &count, 8)) return ZOE_EFORMAT;
  size_t least = vtype_size[et];
  if (count > (r->size - r->pos) / least)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: an array of %llu %s values does not fit in the %zu bytes left",
                    r->w->path, r->what, (unsigned long long)count, vtype_names[et], r->size - r->pos);
  put(out, "[", 1);
  if (hint && count > ZOE_MAX_DIMS)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: %llu dims (at most %d)", r->w->path, r->what,
                    (unsigned long long)count, ZOE_MAX_DIMS);
  for (uint64_t i = 0; i < count; i++) {
    if (i) put(out, ",", 1);
    int64_t iv = 0;
    int is_int;
    if (scalar(r, (int)et, out, 1, &iv, &is_int)) return ZOE_EFORMAT;
    if (hint) {
      if (!is_int || iv < 0)
        return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s: a shape of %s values (must be non-negative integers)",
                        r->w->path, r->what, vtype_names[et]);
      hint->shape[i] = iv;
    }
  }
  if (hint) hint->ndim = (int)count;
  put(out, "]", 1);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_kv(rd *r, int64_t n_kv, uint32_t *alignment, hints *hs) {
  buf val = {0};
  int rc = 0;
  for (int64_t i = 0; i < n_kv && !rc; i++) {
    const char *key;
    uint64_t klen;
    uint32_t t = 0;
    r->what = "a metadata key";
    if ((rc = string(r, &key, &klen))) break;
    if (klen > MAX_NAME || memchr(key, '\0', (size_t)klen)) {
      rc = zoe_errf(r->e, ZOE_EFORMAT, "%s: metadata key %lld (at byte %zu) is not a valid name", r->w->path,
                    (long long)i, r->pos - (size_t)klen - 8);
      break;
    }
    char name[MAX_NAME + 1];
    memcpy(name, key, (size_t)klen);
    name[klen] = '\0';
    r->what = name;
    if ((rc = take(r, &t, 4)) || (rc = value_type(r, t, 0))) break;
    val.n = 0;
    put(&val, "", 0);
    shape_hint *hint = NULL;
    if (strncmp(name, ORIG_SHAPE, strlen(ORIG_SHAPE)) == 0 && t == T_ARR) {
      shape_hint *nh = realloc(hs->h, (hs->n + 1) * sizeof *nh);
      if (!nh || !(nh[hs->n].name = strdup(name + strlen(ORIG_SHAPE)))) {
        if (nh) hs->h = nh;
        rc = zoe_errf(r->e, ZOE_ENOMEM, "%s: out of memory", r->w->path);
        break;
      }
      hs->h = nh;
      hint = &hs->h[hs->n++];
    }
    int64_t iv = 0;
    int is_int = 0;
    rc = t == T_ARR ? read_array(r, &val, hint) : scalar(r, (int)t, &val, 0, &iv, &is_int);
    if (rc) break;
    if (strcmp(name, "general.alignment") == 0) {
      if (t != T_U32 || iv == 0 || (iv & (iv - 1)))
        rc = zoe_errf(r->e, ZOE_EFORMAT, "%s: general.alignment must be a u32 power of two, got %s %s",
                      r->w->path, vtype_names[t], val.p ? val.p : "?");
      else *alignment = (uint32_t)iv;
    }
    if (!rc && val.oom) rc = zoe_errf(r->e, ZOE_ENOMEM, "%s: out of memory", r->w->path);
    if (!rc) rc = zoe_weights_add_meta(r->w, name, val.p, r->e);
  }
  free(val.p);
  if (rc || r->w->nmeta < 2) return rc;
  char **keys = malloc(r->w->nmeta * sizeof *keys); /* a key listed twice is refused, as ggml does */
  if (!keys) return zoe_errf(r->e, ZOE_ENOMEM, "%s: out of memory", r->w->path);
  for (size_t i = 0; i < r->w->nmeta; i++) keys[i] = r->w->meta[2 * i];
  qsort(keys, r->w->nmeta, sizeof *keys, cmp_str);
  for (size_t i = 1; i < r->w->nmeta && !rc; i++)
    if (strcmp(keys[i - 1], keys[i]) == 0)
      rc = zoe_errf(r->e, ZOE_EFORMAT, "%s: metadata key '%s' is listed twice", r->w->path, keys[i]);
  free(keys);
  return rc;
}

/* ---- tensor infos ---- */

static int tensor_info(rd *r, int64_t i, uint64_t *offset) {
  const char *name;
  uint64_t nlen;
  uint32_t nd, type;
  r->what = "a tensor name";
  if (string(r, &name, &nlen)) return ZOE_EFORMAT;
  if (nlen == 0 || nlen > MAX_NAME || memchr(name, '\0', (size_t)nlen))
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: tensor %lld has no valid name", r->w->path, (long long)i);
  zoe_wentry *en = zoe_weights_add(r->w, name, (size_t)nlen, r->e);
  if (!en) return ZOE_ENOMEM;
  r->what = en->name;
  if (take(r, &nd, 4)) return ZOE_EFORMAT;
  if (nd < 1 || nd > ZOE_MAX_DIMS)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: tensor '%s': %u dims (1 to %d)", r->w->path, en->name, nd, ZOE_MAX_DIMS);
  uint64_t ne[ZOE_MAX_DIMS], numel = 1;
  if (take(r, ne, 8 * (size_t)nd)) return ZOE_EFORMAT;
  int overflow = 0;
  for (uint32_t d = 0; d < nd; d++) overflow |= ne[d] > INT64_MAX || __builtin_mul_overflow(numel, ne[d], &numel);
  if (overflow || numel > INT64_MAX)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: tensor '%s': its dims multiply past 2^63", r->w->path, en->name);
  if (take(r, &type, 4) || take(r, offset, 8)) return ZOE_EFORMAT;
  size_t k = 0;
  while (k < NTYPES && ggml_types[k].id != (int)type) k++;
  if (k == NTYPES)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: tensor '%s': unknown ggml type %u", r->w->path, en->name, type);
  if (ggml_types[k].dt < 0)
    return zoe_errf(r->e, ZOE_ENOTSUP, "%s: tensor '%s' is %s, a ggml type not supported here (f32, f16, bf16, "
                    "q4_0, q4_1, q5_0, q5_1, q8_0, q2_K ... q6_K)", r->w->path, en->name, ggml_types[k].name);
  en->dtype = (zoe_dtype)ggml_types[k].dt;
  int64_t bl = zoe_dtype_block(en->dtype);
  if ((int64_t)ne[0] % bl)
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: tensor '%s': rows of %llu values do not split into %s blocks of %lld",
                    r->w->path, en->name, (unsigned long long)ne[0], ggml_types[k].name, (long long)bl);
  en->ndim = (int)nd;
  for (uint32_t d = 0; d < nd; d++) en->shape[d] = (int64_t)ne[nd - 1 - d];
  if (__builtin_mul_overflow(numel / (uint64_t)bl, (uint64_t)zoe_dtype_size(en->dtype), &en->nbytes))
    return zoe_errf(r->e, ZOE_EFORMAT, "%s: tensor '%s': its size passes 2^64 bytes", r->w->path, en->name);
  zoe_wentry_contiguous(en);
  return 0;
}

static int apply_hints(rd *r, const hints *hs) {
  for (size_t i = 0; i < hs->n; i++) {
    const shape_hint *h = &hs->h[i];
    ptrdiff_t k = zoe_weights_find(r->w, h->name);
    if (k < 0) continue; /* a hint for a tensor the file lacks changes nothing */
    zoe_wentry *en = &r->w->entries[k];
    int64_t n = 1, have = 1;
    int overflow = 0;
    for (int d = 0; d < h->ndim; d++) overflow |= __builtin_mul_overflow(n, h->shape[d], &n);
    for (int d = 0; d < en->ndim; d++) have *= en->shape[d];
    if (h->ndim == 0 || overflow || n != have) {
      char a[160], b[160];
      return zoe_errf(r->e, ZOE_EFORMAT, "%s: %s%s is %s (%lld values) but the tensor holds %s (%lld)", r->w->path,
                      ORIG_SHAPE, h->name, zoe_shape_str_n(h->ndim, h->shape, a, sizeof a), (long long)n,
                      zoe_shape_str_n(en->ndim, en->shape, b, sizeof b), (long long)have);
    }
    en->ndim = h->ndim;
    memcpy(en->shape, h->shape, sizeof en->shape);
    zoe_wentry_contiguous(en);
  }
  return 0;
}

static int read_gguf(zoe_weights *w, zoe_err *e) {
  rd r = {w->map->base, w->map->size, 0, w, e, "the header"};
  char magic[4];
  uint32_t version;
  int64_t n_tensors, n_kv;
  if (take(&r, magic, 4) || take(&r, &version, 4) || take(&r, &n_tensors, 8) || take(&r, &n_kv, 8))
    return ZOE_EFORMAT;
  if (memcmp(magic, "GGUF", 4) != 0) return zoe_errf(e, ZOE_EFORMAT, "%s: not a GGUF file", w->path);
  if (version == 1)
    return zoe_errf(e, ZOE_ENOTSUP, "%s: GGUF version 1 (from before August 2023) is not supported; convert it "
                    "again with a current llama.cpp", w->path);
  if (version != 2 && version != 3)
    return zoe_errf(e, ZOE_ENOTSUP, "%s: GGUF version %u (this reader knows 2 and 3)", w->path, version);
  size_t left = r.size - r.pos;
  if (n_kv < 0 || (uint64_t)n_kv > left / 13) /* a key/value takes 13 bytes at least, a tensor info 36 */
    return zoe_errf(e, ZOE_EFORMAT, "%s: %lld metadata entries cannot fit in %zu bytes", w->path, (long long)n_kv, left);
  if (n_tensors < 0 || (uint64_t)n_tensors > left / 36)
    return zoe_errf(e, ZOE_EFORMAT, "%s: %lld tensors cannot fit in %zu bytes", w->path, (long long)n_tensors, left);
  uint32_t alignment = 32;
  hints hs = {0};
  uint64_t *offsets = NULL;
  int rc = read_kv(&r, n_kv, &alignment, &hs);
  if (!rc && n_tensors > 0 && !(offsets = malloc((size_t)n_tensors * sizeof *offsets)))
    rc = zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
  for (int64_t i = 0; i < n_tensors && !rc; i++) rc = tensor_info(&r, i, &offsets[i]);
  uint64_t data_start = (r.pos + alignment - 1) / alignment * alignment;
  if (!rc && data_start > r.size)
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: the tensor data would start at byte %llu, past the end (%zu bytes)", w->path,
                  (unsigned long long)data_start, r.size);
  for (int64_t i = 0; i < n_tensors && !rc; i++) { /* entries are still in file order here */
    zoe_wentry *en = &w->entries[i];
    uint64_t room = r.size - data_start;
    if (offsets[i] > room || en->nbytes > room - offsets[i])
      rc = zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': bytes %llu..%llu of the data lie past its end (%llu bytes; "
                    "truncated?)", w->path, en->name, (unsigned long long)offsets[i],
                    (unsigned long long)(offsets[i] + en->nbytes), (unsigned long long)room);
    en->begin = data_start + offsets[i];
  }
  free(offsets);
  if (!rc) rc = zoe_weights_finish(w, e);
  if (!rc) rc = zoe_weights_check_overlaps(w, e);
  if (!rc) rc = apply_hints(&r, &hs);
  for (size_t i = 0; i < hs.n; i++) free(hs.h[i].name);
  free(hs.h);
  return rc;
}

static zoe_weights *gguf_open(const char *path, zoe_mapping *m, zoe_err *e) {
  return zoe_weights_read(path, "gguf", m, read_gguf, e);
}

zoe_weights *zoe_gguf_open_memory(const void *data, size_t size, const char *name, zoe_err *e) {
  return zoe_weights_open_memory(data, size, name, &zoe_gguf_format, e);
}

static bool gguf_detect(const unsigned char *b, size_t size) { return size >= 4 && memcmp(b, "GGUF", 4) == 0; }

const zoe_wformat zoe_gguf_format = {"gguf", gguf_detect, gguf_open};
