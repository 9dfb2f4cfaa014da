/*
** safetensors.c: reading safetensors files and sharded indexes.
** Everything in the header is checked before any tensor is made: the header
** length, the JSON, each entry's dtype, shape and byte span, and that no two
** spans overlap. Holes between spans are allowed (the reference reader refuses
** them, but they are harmless and some writers align tensors that way).
*/
#include "safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights_impl.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

#define MAX_HEADER (100u << 20) /* as the reference reader */

static const struct {
  const char *name;
  zoe_dtype dt;
} st_dtypes[] = {
  {"F32", ZOE_F32}, {"F16", ZOE_F16}, {"BF16", ZOE_BF16}, {"I32", ZOE_I32},
  {"I64", ZOE_I64}, {"U8", ZOE_U8},   {"BOOL", ZOE_BOOL}, {"F64", ZOE_F64},
  {"F8_E4M3", ZOE_F8_E4M3}, {"F8_E5M2", ZOE_F8_E5M2},
};

/* A JSON number that is a whole number in [0, 2^53] (exact in a double). */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return -1;
  double d = j->valuedouble;
  if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return -1;
  *out = (uint64_t)d;
  return 0;
}

static int read_entry(zoe_weights *w, const cJSON *j, uint64_t data_size, zoe_err *e) {
  const char *name = j->string;
  if (!cJSON_IsObject(j))
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': entry is not a JSON object", w->path, name);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
  if (!cJSON_IsString(dt))
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': \"dtype\" missing or not a string", w->path, name);
  size_t k = 0, nd = sizeof st_dtypes / sizeof st_dtypes[0];
  while (k < nd && strcmp(st_dtypes[k].name, dt->valuestring) != 0) k++;
  if (k == nd)
    return zoe_errf(e, ZOE_EDTYPE, "%s: tensor '%s': dtype '%.32s' is not supported "
                    "(F32, F16, BF16, I32, I64, U8, BOOL, F64, F8_E4M3, F8_E5M2)", w->path, name, dt->valuestring);
  if (!cJSON_IsArray(shape))
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': \"shape\" missing or not an array", w->path, name);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > ZOE_MAX_DIMS)
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': %d dims (at most %d)", w->path, name, ndim,
                    ZOE_MAX_DIMS);
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end]",
                    w->path, name);
  uint64_t begin, end;
  if (json_uint(cJSON_GetArrayItem(offs, 0), &begin) || json_uint(cJSON_GetArrayItem(offs, 1), &end))
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': data_offsets are not non-negative integers",
                    w->path, name);
  if (begin > end || end > data_size)
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the "
                    "%llu data bytes", w->path, name, (unsigned long long)begin,
                    (unsigned long long)end, (unsigned long long)data_size);
  zoe_wentry *en = zoe_weights_add(w, name, strlen(name), e);
  if (!en) return e ? e->code : ZOE_ENOMEM;
  en->dtype = st_dtypes[k].dt;
  en->ndim = ndim;
  uint64_t bytes = zoe_dtype_size(en->dtype);
  int overflow = 0;
  for (int d = 0; d < ndim; d++) {
    uint64_t v;
    if (json_uint(cJSON_GetArrayItem(shape, d), &v))
      return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': size %d of the shape is not a non-negative "
                      "integer", w->path, name, d + 1);
    en->shape[d] = (int64_t)v;
    overflow |= __builtin_mul_overflow(bytes, v, &bytes);
  }
  if (overflow || bytes != end - begin) {
    char s[160];
    zoe_shape_str_n(ndim, en->shape, s, sizeof s);
    return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s': shape %s of %s needs %s bytes, but its "
                    "data_offsets span %llu", w->path, name, s, dt->valuestring,
                    overflow ? "more than 2^64" : "a different number of",
                    (unsigned long long)(end - begin));
  }
  en->begin = begin; /* relative to the data for now; made absolute by the caller */
  en->nbytes = end - begin;
  zoe_wentry_contiguous(en);
  return 0;
}

static int read_metadata(zoe_weights *w, const cJSON *j, zoe_err *e) {
  if (cJSON_IsNull(j)) return 0;
  if (!cJSON_IsObject(j))
    return zoe_errf(e, ZOE_EFORMAT, "%s: __metadata__ is not a JSON object", w->path);
  const cJSON *c;
  cJSON_ArrayForEach(c, j) {
    if (!cJSON_IsString(c))
      return zoe_errf(e, ZOE_EFORMAT, "%s: __metadata__ '%s' is not a string", w->path, c->string);
    if (zoe_weights_add_meta(w, c->string, c->valuestring, e)) return e ? e->code : ZOE_ENOMEM;
  }
  return 0;
}

static int st_read(zoe_weights *w, zoe_err *e) {
  const unsigned char *b = w->map->base;
  size_t size = w->map->size;
  if (size < 8)
    return zoe_errf(e, ZOE_EFORMAT, "%s: %zu bytes, too short for a safetensors file (it starts "
                    "with an 8-byte header length)", w->path, size);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
  if (hlen > MAX_HEADER)
    return zoe_errf(e, ZOE_EFORMAT, "%s: header length %llu is over the 100 MiB limit (is this a "
                    "safetensors file?)", w->path, (unsigned long long)hlen);
  if (hlen > size - 8)
    return zoe_errf(e, ZOE_EFORMAT, "%s: header length %llu runs past the end of the file (%zu "
                    "bytes; truncated?)", w->path, (unsigned long long)hlen, size);
  const char *text = (const char *)b + 8, *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
  if (!root) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    return zoe_errf(e, ZOE_EFORMAT, "%s: the header is not valid JSON (error near byte %zu of %llu)",
                    w->path, at, (unsigned long long)hlen);
  }
  int rc = 0;
  for (const char *p = end; p < text + hlen && !rc; p++)
    if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0')
      rc = zoe_errf(e, ZOE_EFORMAT, "%s: stray bytes after the JSON header (at byte %zu)", w->path,
                    (size_t)(p - text));
  if (!rc && !cJSON_IsObject(root))
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: the header is JSON but not an object", w->path);
  uint64_t data_start = 8 + hlen, data_size = size - data_start;
  const cJSON *c;
  if (!rc) {
    cJSON_ArrayForEach(c, root) {
      if (strcmp(c->string, "__metadata__") == 0) rc = read_metadata(w, c, e);
      else rc = read_entry(w, c, data_size, e);
      if (rc) break;
    }
  }
  cJSON_Delete(root);
  if (rc) return rc;
  if ((rc = zoe_weights_finish(w, e)) || (rc = zoe_weights_check_overlaps(w, e))) return rc;
  for (size_t i = 0; i < w->n; i++) w->entries[i].begin += data_start;
  return 0;
}

static zoe_weights *st_open(const char *path, zoe_mapping *m, zoe_err *e) {
  return zoe_weights_read(path, "safetensors", m, st_read, e);
}

zoe_weights *zoe_st_open_memory(const void *data, size_t size, const char *name, zoe_err *e) {
  return zoe_weights_open_memory(data, size, name, &zoe_st_format, e);
}

/*
** A file whose first 8 bytes (little endian) give a header length that fits the file, and
** whose header is a JSON object ('{' first, '}' last but for the writers' space padding),
** is safetensors, whatever those 8 bytes look like to the other formats: a header of 384
** or 640 bytes begins 0x80 0x01 / 0x80 0x02, a pickle's protocol mark (1 file in about
** 10,000 of any size).
*/
static bool st_structure_detect(const unsigned char *b, size_t size) {
  if (size < 10) return false;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
  if (n < 2 || n > size - 8 || b[8] != '{') return false;
  const unsigned char *end = b + 8 + n;
  while (end > b + 9 && end[-1] == ' ') end--;
  return end[-1] == '}';
}

const zoe_wformat zoe_st_structure_format = {"safetensors", st_structure_detect, st_open};

/* Anything no other format claims is read as safetensors: its checks say what is wrong. */
static bool st_detect(const unsigned char *bytes, size_t size) {
  (void)bytes;
  (void)size;
  return true;
}

const zoe_wformat zoe_st_format = {"safetensors", st_detect, st_open};

/* ---- sharded index ---- */

/* A shard name must stay inside the index's directory. */
static int safe_relative(const char *s) {
  if (!*s || s[0] == '/') return 0;
  for (const char *p = s; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
    if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0')) return 0;
  return 1;
}

static int add_shard(zoe_weights *w, const char *dir, size_t dirlen, const char *file, int *out,
                     zoe_err *e) {
  for (size_t i = 0; i < w->nshards; i++)
    if (strcmp(w->shard_paths[i] + dirlen, file) == 0) {
      *out = (int)i;
      return 0;
    }
  char **np = realloc(w->shard_paths, (w->nshards + 1) * sizeof *np);
  if (np) w->shard_paths = np;
  zoe_weights **ns = np ? realloc(w->shards, (w->nshards + 1) * sizeof *ns) : NULL;
  if (ns) w->shards = ns;
  char *path = ns ? malloc(dirlen + strlen(file) + 1) : NULL;
  if (!path) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
  memcpy(path, dir, dirlen);
  strcpy(path + dirlen, file);
  w->shard_paths[w->nshards] = path;
  w->shards[w->nshards] = NULL;
  *out = (int)w->nshards++;
  return 0;
}

static int read_index(zoe_weights *w, const cJSON *root, zoe_err *e) {
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
  if (!cJSON_IsObject(map))
    return zoe_errf(e, ZOE_EFORMAT, "%s: no \"weight_map\" object (not a safetensors index?)", w->path);
  const cJSON *c;
  if (cJSON_IsObject(meta)) {
    cJSON_ArrayForEach(c, meta) {
      char num[64];
      const char *v = cJSON_IsString(c) ? c->valuestring : NULL;
      if (cJSON_IsNumber(c)) {
        snprintf(num, sizeof num, "%.17g", c->valuedouble);
        v = num;
      }
      if (v && zoe_weights_add_meta(w, c->string, v, e)) return e ? e->code : ZOE_ENOMEM;
    }
  }
  const char *slash = strrchr(w->path, '/');
  size_t dirlen = slash ? (size_t)(slash - w->path) + 1 : 0;
  cJSON_ArrayForEach(c, map) {
    if (!cJSON_IsString(c))
      return zoe_errf(e, ZOE_EFORMAT, "%s: weight_map entry '%s' is not a file name", w->path, c->string);
    if (!safe_relative(c->valuestring))
      return zoe_errf(e, ZOE_EFORMAT, "%s: weight_map puts '%s' in '%s', outside the index's "
                      "directory", w->path, c->string, c->valuestring);
    int shard = -1;
    if (add_shard(w, w->path, dirlen, c->valuestring, &shard, e)) return e ? e->code : ZOE_ENOMEM;
    zoe_wentry *en = zoe_weights_add(w, c->string, strlen(c->string), e);
    if (!en) return e ? e->code : ZOE_ENOMEM;
    en->shard = shard;
  }
  return zoe_weights_finish(w, e);
}

zoe_weights *zoe_st_open_index_json(const char *path, const char *text, size_t len, zoe_err *e) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root || !cJSON_IsObject(root)) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    if (root) zoe_errf(e, ZOE_EFORMAT, "%s: not a safetensors index (JSON but not an object)", path);
    else zoe_errf(e, ZOE_EFORMAT, "%s: not valid JSON (error near byte %zu)", path, at);
    cJSON_Delete(root);
    return NULL;
  }
  zoe_weights *w = zoe_weights_new(path, "safetensors index", NULL, e);
  if (w && read_index(w, root, e)) {
    zoe_weights_release(w);
    w = NULL;
  }
  cJSON_Delete(root);
  return w;
}

/* JSON: an object after at most 64 bytes of white space. */
static bool index_detect(const unsigned char *b, size_t size) {
  size_t i = 0;
  while (i < size && i < 64 && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) i++;
  return i < size && b[i] == '{';
}

static zoe_weights *index_open(const char *path, zoe_mapping *m, zoe_err *e) {
  return zoe_st_open_index_json(path, (const char *)m->base, m->size, e);
}

const zoe_wformat zoe_st_index_format = {"safetensors index", index_detect, index_open};
