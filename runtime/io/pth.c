/*
** pth.c: PyTorch zip checkpoints (torch.save since 1.6): a zip holding
** <archive>/data.pkl (the pickled state dict) and <archive>/data/<key>, one raw
** little-endian file per storage. The zip is read here (central directory,
** ZIP64 for files over 4 GiB); storages stay in the mapping, and each tensor is
** a view (offset, sizes, strides from _rebuild_tensor_v2) over its storage.
** Entries must be stored, as torch.save writes them: a compressed entry is
** refused (it could not be mapped), and CRCs are not checked (that would read
** every byte at open).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pth.h"
#include "unpickle.h"
#include "weights_impl.h"

typedef struct zip_entry {
  const char *name;
  size_t name_len;
  uint64_t data, size; /* data offset in the file, stored size */
  int method, flags;
} zip_entry;

typedef struct zip {
  const unsigned char *b;
  uint64_t size;
  zip_entry *entries;
  size_t n;
  const char *path;
  zoe_err *e;
} zip;

static uint64_t rd(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static int bad(zip *z, const char *what) {
  return zoe_errf(z->e, ZOE_EFORMAT, "%s: not a valid zip file (%s)", z->path, what);
}

/* Find the central directory: its offset and entry count, through ZIP64 when needed. */
static int find_directory(zip *z, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count) {
  if (z->size < 22) return bad(z, "too short for an end of central directory record");
  uint64_t lo = z->size > 22 + 65535 ? z->size - 22 - 65535 : 0, eocd = UINT64_MAX;
  for (uint64_t i = z->size - 22 + 1; i-- > lo;)
    if (rd(z->b + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == UINT64_MAX) return bad(z, "no end of central directory record; truncated?");
  const unsigned char *r = z->b + eocd;
  *count = rd(r + 10, 2);
  *cd_size = rd(r + 12, 4);
  *cd_off = rd(r + 16, 4);
  if (*count == 0xffff || *cd_size == 0xffffffff || *cd_off == 0xffffffff) {
    if (eocd < 20 || rd(z->b + eocd - 20, 4) != 0x07064b50) return bad(z, "ZIP64 locator missing");
    uint64_t z64 = rd(z->b + eocd - 20 + 8, 8);
    if (z64 > z->size || z->size - z64 < 56 || rd(z->b + z64, 4) != 0x06064b50)
      return bad(z, "ZIP64 end of central directory record missing");
    *count = rd(z->b + z64 + 32, 8);
    *cd_size = rd(z->b + z64 + 40, 8);
    *cd_off = rd(z->b + z64 + 48, 8);
  }
  if (*cd_off > z->size || *cd_size > z->size - *cd_off) return bad(z, "central directory outside the file");
  if (*count > *cd_size / 46) return bad(z, "more entries than the central directory can hold");
  return 0;
}

/* The ZIP64 extra field overrides the sizes and offset that are 0xffffffff. */
static int zip64_extra(zip *z, const unsigned char *x, size_t xl, uint64_t *usize, uint64_t *csize,
                       uint64_t *off) {
  while (xl >= 4) {
    uint64_t id = rd(x, 2), n = rd(x + 2, 2);
    if (n > xl - 4) return bad(z, "extra field runs past its entry");
    if (id == 1) {
      const unsigned char *p = x + 4, *end = p + n;
      uint64_t *fields[3] = {usize, csize, off};
      for (int i = 0; i < 3; i++) {
        if (*fields[i] != 0xffffffff) continue;
        if (end - p < 8) return bad(z, "short ZIP64 extra field");
        *fields[i] = rd(p, 8);
        p += 8;
      }
    }
    x += 4 + n;
    xl -= 4 + (size_t)n;
  }
  return 0;
}

static int read_directory(zip *z) {
  uint64_t off = 0, size = 0, count = 0;
  if (find_directory(z, &off, &size, &count)) return ZOE_EFORMAT;
  z->entries = calloc(count ? count : 1, sizeof *z->entries);
  if (!z->entries) return zoe_errf(z->e, ZOE_ENOMEM, "%s: out of memory", z->path);
  const unsigned char *p = z->b + off, *end = p + size;
  for (uint64_t k = 0; k < count; k++) {
    if (end - p < 46 || rd(p, 4) != 0x02014b50) return bad(z, "broken central directory entry");
    size_t nl = rd(p + 28, 2), xl = rd(p + 30, 2), cl = rd(p + 32, 2);
    if ((size_t)(end - p) < 46 + nl + xl + cl) return bad(z, "central directory entry runs past its end");
    zip_entry *en = &z->entries[z->n++];
    en->flags = (int)rd(p + 8, 2);
    en->method = (int)rd(p + 10, 2);
    uint64_t csize = rd(p + 20, 4), usize = rd(p + 24, 4), local = rd(p + 42, 4);
    en->name = (const char *)p + 46;
    en->name_len = nl;
    if (zip64_extra(z, p + 46 + nl, xl, &usize, &csize, &local)) return ZOE_EFORMAT;
    if (local > z->size || z->size - local < 30 || rd(z->b + local, 4) != 0x04034b50)
      return bad(z, "local header missing");
    uint64_t data = local + 30 + rd(z->b + local + 26, 2) + rd(z->b + local + 28, 2);
    if (data > z->size || csize > z->size - data) return bad(z, "entry data runs past the end of the file");
    en->data = data;
    en->size = csize;
    if (en->method == 0 && csize != usize) return bad(z, "stored entry with two different sizes");
    p += 46 + nl + xl + cl;
  }
  return 0;
}

static const zip_entry *zip_find(const zip *z, const char *prefix, size_t pl, const char *rest,
                                 size_t rl) {
  for (size_t i = 0; i < z->n; i++) {
    const zip_entry *en = &z->entries[i];
    if (en->name_len == pl + rl && memcmp(en->name, prefix, pl) == 0 && memcmp(en->name + pl, rest, rl) == 0)
      return en;
  }
  return NULL;
}

static int check_stored(zip *z, const zip_entry *en) {
  if (en->flags & 1)
    return zoe_errf(z->e, ZOE_EFORMAT, "%s: entry '%.*s' is encrypted", z->path, (int)en->name_len, en->name);
  if (en->method != 0)
    return zoe_errf(z->e, ZOE_ENOTSUP, "%s: entry '%.*s' is compressed (zip method %d); torch.save "
                    "stores entries uncompressed so they can be mapped: save it again with torch.save",
                    z->path, (int)en->name_len, en->name, en->method);
  return 0;
}

/* ---- from the unpickled state dict to entries ---- */

typedef struct walk {
  zip *z;
  zoe_weights *w;
  const char *prefix; /* "<archive>/" */
  size_t pl;
  char name[1024];
} walk;

static int add_tensor(walk *k, size_t nl, const pk_value *t) {
  zip *z = k->z;
  const pk_value *st = t->storage;
  if (st->dtype < 0)
    return zoe_errf(z->e, ZOE_EDTYPE, "%s: tensor '%s' is stored as torch.%s, a dtype zoe does not read",
                    z->path, k->name, st->type_name);
  char rest[300];
  int rl = snprintf(rest, sizeof rest, "data/%.*s", (int)(st->len > 256 ? 256 : st->len), st->s);
  const zip_entry *en = zip_find(z, k->prefix, k->pl, rest, (size_t)rl);
  if (!en)
    return zoe_errf(z->e, ZOE_EFORMAT, "%s: tensor '%s': storage '%.*s%s' is missing from the zip", z->path,
                    k->name, (int)k->pl, k->prefix, rest);
  if (check_stored(z, en)) return z->e ? z->e->code : ZOE_EFORMAT;
  uint64_t es = zoe_dtype_size((zoe_dtype)st->dtype);
  if ((uint64_t)st->i > en->size / es)
    return zoe_errf(z->e, ZOE_EFORMAT, "%s: tensor '%s': storage of %lld elements needs %llu bytes, the "
                    "zip entry has %llu", z->path, k->name, (long long)st->i,
                    (unsigned long long)(st->i * es), (unsigned long long)en->size);
  zoe_wentry *w = zoe_weights_add(k->w, k->name, nl, z->e);
  if (!w) return ZOE_ENOMEM;
  w->dtype = (zoe_dtype)st->dtype;
  w->ndim = t->ndim;
  memcpy(w->shape, t->shape, sizeof w->shape);
  memcpy(w->stride, t->stride, sizeof w->stride);
  w->offset = t->offset;
  w->begin = en->data;
  w->nbytes = (uint64_t)st->i * es;
  /* the view must lie inside its storage: checked here so a bad file fails at open */
  int64_t last = t->offset, span;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 0) return 0; /* empty: touches nothing */
    if (__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &span) ||
        __builtin_add_overflow(last, span, &last))
      last = INT64_MAX;
  }
  if (last >= st->i)
    return zoe_errf(z->e, ZOE_EFORMAT, "%s: tensor '%s': its sizes and strides reach element %lld of a "
                    "storage of %lld", z->path, k->name, (long long)last, (long long)st->i);
  return 0;
}

/* Tensors of a dict, nested dicts joined with '.'; other values (epochs, configs) are skipped. */
static int walk_dict(walk *k, const pk_value *d, size_t nl, int depth) {
  if (depth > 8) return zoe_errf(k->z->e, ZOE_EFORMAT, "%s: dicts nested too deep", k->z->path);
  for (size_t i = 0; i + 1 < d->n; i += 2) {
    const pk_value *key = d->items[i], *v = d->items[i + 1];
    if (v->kind != PK_TENSOR && v->kind != PK_DICT) continue;
    if (key->kind != PK_STR) return zoe_errf(k->z->e, ZOE_EFORMAT, "%s: a state dict key is not a string", k->z->path);
    size_t need = nl + (nl ? 1 : 0) + key->len;
    if (need >= sizeof k->name) return zoe_errf(k->z->e, ZOE_EFORMAT, "%s: a tensor name is too long", k->z->path);
    size_t at = nl;
    if (nl) k->name[at++] = '.';
    memcpy(k->name + at, key->s, key->len);
    k->name[need] = '\0';
    if (memchr(key->s, '\0', key->len))
      return zoe_errf(k->z->e, ZOE_EFORMAT, "%s: a tensor name holds a NUL byte", k->z->path);
    int rc = v->kind == PK_TENSOR ? add_tensor(k, need, v) : walk_dict(k, v, need, depth + 1);
    if (rc) return rc;
    k->name[nl] = '\0';
  }
  return 0;
}

static int pth_read(zoe_weights *w, zoe_err *e) {
  zip z = {.b = w->map->base, .size = w->map->size, .path = w->path, .e = e};
  pk_arena arena = {0};
  int rc = read_directory(&z);
  const zip_entry *pkl = NULL;
  for (size_t i = 0; !rc && i < z.n && !pkl; i++) {
    const zip_entry *en = &z.entries[i];
    if (en->name_len >= 8 && memcmp(en->name + en->name_len - 8, "data.pkl", 8) == 0 &&
        (en->name_len == 8 || en->name[en->name_len - 9] == '/'))
      pkl = en;
  }
  if (!rc && !pkl)
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: a zip without data.pkl: not a PyTorch checkpoint", w->path);
  size_t pl = pkl ? pkl->name_len - 8 : 0;
  const zip_entry *bo = pkl ? zip_find(&z, pkl->name, pl, "byteorder", 9) : NULL;
  if (!rc && bo && bo->method == 0 && bo->size == 3 && memcmp(z.b + bo->data, "big", 3) == 0)
    rc = zoe_errf(e, ZOE_ENOTSUP, "%s: saved on a big-endian machine; not supported", w->path);
  if (!rc) rc = check_stored(&z, pkl);
  pk_value *root = rc ? NULL : pk_load(z.b + pkl->data, (size_t)pkl->size, &arena, e);
  if (!rc && !root) rc = e ? zoe_err_prefix(e, "%s", w->path) : ZOE_EFORMAT;
  if (!rc && root->kind != PK_DICT)
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: data.pkl holds no dict: not a state dict", w->path);
  if (!rc) {
    walk k = {.z = &z, .w = w, .prefix = pkl->name, .pl = pl};
    rc = walk_dict(&k, root, 0, 0);
  }
  pk_arena_free(&arena);
  free(z.entries);
  return rc ? rc : zoe_weights_finish(w, e);
}

static zoe_weights *pth_open(const char *path, zoe_mapping *m, zoe_err *e) {
  return zoe_weights_read(path, "pth", m, pth_read, e);
}

zoe_weights *zoe_pth_open_memory(const void *data, size_t size, const char *name, zoe_err *e) {
  return zoe_weights_open_memory(data, size, name, &zoe_pth_format, e);
}

/* A zip: torch.save since PyTorch 1.6. */
static bool pth_detect(const unsigned char *b, size_t size) { return size >= 4 && memcmp(b, "PK\x03\x04", 4) == 0; }

const zoe_wformat zoe_pth_format = {"pth", pth_detect, pth_open};

/* A bare pickle (protocol 2-5 opcode first): torch.save before 1.6. */
static bool legacy_detect(const unsigned char *b, size_t size) { return size >= 2 && b[0] == 0x80 && b[1] <= 5; }

static zoe_weights *legacy_open(const char *path, zoe_mapping *m, zoe_err *e) {
  (void)m;
  zoe_errf(e, ZOE_ENOTSUP, "%s: a PyTorch checkpoint in the legacy (before 1.6) format; "
           "load it in PyTorch and save it again with torch.save to get the zip format", path);
  return NULL;
}

const zoe_wformat zoe_pth_legacy_format = {"pth (before 1.6)", legacy_detect, legacy_open};
