/*
** weights.c: the checkpoint object the readers fill: the entry table, lookup by
** name, and the lazy making of tensors over the mapped file. Which reader opens a
** file is weights_open.c's business.
*/
#include "weights.h"

#include <stdlib.h>
#include <string.h>

#include "../core/suggest.h"
#include "weights_impl.h"

zoe_weights *zoe_weights_new(const char *path, const char *format, zoe_mapping *map, zoe_err *e) {
  zoe_weights *w = calloc(1, sizeof *w);
  if (w) w->path = strdup(path);
  if (!w || !w->path) {
    free(w);
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
    return NULL;
  }
  atomic_init(&w->refcount, 1);
  w->format = format;
  w->map = zoe_map_retain(map);
  return w;
}

zoe_weights *zoe_weights_read(const char *path, const char *format, zoe_mapping *m,
                              int (*read)(zoe_weights *w, zoe_err *e), zoe_err *e) {
  zoe_weights *w = zoe_weights_new(path, format, m, e);
  if (w && read(w, e)) {
    zoe_weights_release(w);
    return NULL;
  }
  return w;
}

zoe_weights *zoe_weights_open_memory(const void *data, size_t size, const char *name, const zoe_wformat *f,
                                     zoe_err *e) {
  zoe_mapping *m = zoe_map_memory(data, size, e);
  if (!m) return NULL;
  zoe_weights *w = f->open(name, m, e);
  zoe_map_release(m);
  return w;
}

zoe_weights *zoe_weights_retain(zoe_weights *w) {
  if (w) atomic_fetch_add_explicit(&w->refcount, 1, memory_order_relaxed);
  return w;
}

void zoe_weights_release(zoe_weights *w) {
  if (!w || atomic_fetch_sub_explicit(&w->refcount, 1, memory_order_acq_rel) != 1) return;
  for (size_t i = 0; i < w->n; i++) free(w->entries[i].name);
  free(w->entries);
  for (size_t i = 0; i < 2 * w->nmeta; i++) free(w->meta[i]);
  free(w->meta);
  for (size_t i = 0; i < w->nshards; i++) {
    free(w->shard_paths[i]);
    zoe_weights_release(w->shards[i]);
  }
  free(w->shard_paths);
  free(w->shards);
  zoe_map_release(w->map);
  free(w->path);
  free(w);
}

zoe_wentry *zoe_weights_add(zoe_weights *w, const char *name, size_t name_len, zoe_err *e) {
  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 64;
    zoe_wentry *ne = realloc(w->entries, cap * sizeof *ne);
    if (!ne) {
      zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
      return NULL;
    }
    w->entries = ne;
    w->cap = cap;
  }
  zoe_wentry *en = &w->entries[w->n];
  memset(en, 0, sizeof *en);
  en->name = malloc(name_len + 1);
  if (!en->name) {
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
    return NULL;
  }
  memcpy(en->name, name, name_len);
  en->name[name_len] = '\0';
  en->shard = -1;
  w->n++;
  return en;
}

int zoe_weights_add_meta(zoe_weights *w, const char *key, const char *value, zoe_err *e) {
  char **nm = realloc(w->meta, (2 * w->nmeta + 2) * sizeof *nm);
  if (!nm) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
  w->meta = nm;
  char *k = strdup(key), *v = strdup(value);
  if (!k || !v) {
    free(k);
    free(v);
    return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
  }
  nm[2 * w->nmeta] = k;
  nm[2 * w->nmeta + 1] = v;
  w->nmeta++;
  return 0;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const zoe_wentry *)a)->name, ((const zoe_wentry *)b)->name);
}

int zoe_weights_finish(zoe_weights *w, zoe_err *e) {
  if (w->n > 1) qsort(w->entries, w->n, sizeof *w->entries, cmp_entry);
  for (size_t i = 1; i < w->n; i++)
    if (strcmp(w->entries[i - 1].name, w->entries[i].name) == 0)
      return zoe_errf(e, ZOE_EFORMAT, "%s: tensor '%s' is listed twice", w->path, w->entries[i].name);
  return 0;
}

void zoe_wentry_contiguous(zoe_wentry *en) {
  int64_t st = 1;
  for (int d = en->ndim - 1; d >= 0; d--) {
    en->stride[d] = st;
    st *= en->shape[d] ? en->shape[d] : 1;
  }
}

typedef struct span {
  uint64_t begin, end;
  size_t i;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

int zoe_weights_check_overlaps(zoe_weights *w, zoe_err *e) {
  if (w->n < 2) return 0;
  span *sp = malloc(w->n * sizeof *sp);
  if (!sp) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", w->path);
  for (size_t i = 0; i < w->n; i++)
    sp[i] = (span){w->entries[i].begin, w->entries[i].begin + w->entries[i].nbytes, i};
  qsort(sp, w->n, sizeof *sp, cmp_span);
  int rc = 0;
  size_t last = SIZE_MAX; /* the non-empty span reaching farthest so far */
  for (size_t k = 0; k < w->n && !rc; k++) {
    if (sp[k].begin == sp[k].end) continue; /* empty tensors overlap nothing */
    if (last != SIZE_MAX && sp[k].begin < sp[last].end) {
      const zoe_wentry *a = &w->entries[sp[last].i], *b = &w->entries[sp[k].i];
      rc = zoe_errf(e, ZOE_EFORMAT, "%s: tensors '%s' (bytes %llu..%llu) and '%s' (bytes %llu..%llu) "
                    "overlap", w->path, a->name, (unsigned long long)sp[last].begin,
                    (unsigned long long)sp[last].end, b->name, (unsigned long long)sp[k].begin,
                    (unsigned long long)sp[k].end);
    }
    if (last == SIZE_MAX || sp[k].end > sp[last].end) last = k;
  }
  free(sp);
  return rc;
}

/* ---- queries ---- */

const char *zoe_weights_path(const zoe_weights *w) { return w->path; }
const char *zoe_weights_format(const zoe_weights *w) { return w->format; }
size_t zoe_weights_count(const zoe_weights *w) { return w->n; }
const char *zoe_weights_name(const zoe_weights *w, size_t i) { return i < w->n ? w->entries[i].name : NULL; }
size_t zoe_weights_meta_count(const zoe_weights *w) { return w->nmeta; }
const char *zoe_weights_meta_key(const zoe_weights *w, size_t i) { return i < w->nmeta ? w->meta[2 * i] : NULL; }
const char *zoe_weights_meta_value(const zoe_weights *w, size_t i) {
  return i < w->nmeta ? w->meta[2 * i + 1] : NULL;
}

size_t zoe_weights_lower_bound(const zoe_weights *w, const char *prefix) {
  size_t lo = 0, hi = w->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(w->entries[mid].name, prefix) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

ptrdiff_t zoe_weights_find(const zoe_weights *w, const char *name) {
  size_t i = zoe_weights_lower_bound(w, name);
  return i < w->n && strcmp(w->entries[i].name, name) == 0 ? (ptrdiff_t)i : -1;
}

/* A shard of an index, opened on first use; it must hold the tensor the index says. */
static zoe_tensor *shard_tensor(zoe_weights *w, const zoe_wentry *en, zoe_err *e) {
  int s = en->shard;
  if (!w->shards[s]) {
    if (!w->open_shard) {
      zoe_errf(e, ZOE_EINVAL, "%s: shard of tensor '%s': no way to open shards", w->path, en->name);
      return NULL;
    }
    zoe_weights *sh = w->open_shard(w->shard_paths[s], e);
    if (!sh) {
      zoe_err_prefix(e, "%s: shard of tensor '%s'", w->path, en->name);
      return NULL;
    }
    if (strcmp(sh->format, "safetensors") != 0) {
      zoe_errf(e, ZOE_EFORMAT, "%s: shard '%s' is a %s file, not safetensors", w->path,
               w->shard_paths[s], sh->format);
      zoe_weights_release(sh);
      return NULL;
    }
    w->shards[s] = sh;
  }
  ptrdiff_t k = zoe_weights_find(w->shards[s], en->name);
  if (k < 0) {
    zoe_errf(e, ZOE_EFORMAT, "%s: the index puts tensor '%s' in '%s', which has no such tensor",
             w->path, en->name, w->shard_paths[s]);
    return NULL;
  }
  return zoe_weights_tensor(w->shards[s], (size_t)k, e);
}

zoe_tensor *zoe_weights_tensor(zoe_weights *w, size_t i, zoe_err *e) {
  if (i >= w->n) {
    zoe_errf(e, ZOE_ERANGE, "%s: tensor index %zu out of range (%zu tensors)", w->path, i, w->n);
    return NULL;
  }
  const zoe_wentry *en = &w->entries[i];
  if (en->shard >= 0) return shard_tensor(w, en, e);
  zoe_storage *s = zoe_map_storage(w->map, en->begin, en->nbytes, zoe_dtype_align(en->dtype), e);
  if (!s) {
    zoe_err_prefix(e, "%s: tensor '%s'", w->path, en->name);
    return NULL;
  }
  zoe_tensor *t = zoe_tensor_view_of(s, en->dtype, en->ndim, en->shape, en->stride, en->offset, e);
  zoe_storage_release(s); /* the view holds its own reference */
  if (!t) zoe_err_prefix(e, "%s: tensor '%s'", w->path, en->name);
  return t;
}

zoe_tensor *zoe_weights_get(zoe_weights *w, const char *name, zoe_err *e) {
  ptrdiff_t i = zoe_weights_find(w, name);
  if (i < 0) {
    zoe_errf(e, ZOE_EINVAL, "%s: no tensor named '%s'", w->path, name);
    return NULL;
  }
  return zoe_weights_tensor(w, (size_t)i, e);
}

/* ---- suggestions ---- */

static const char *entry_name(const void *ctx, size_t i) { return ((const zoe_weights *)ctx)->entries[i].name; }

size_t zoe_weights_suggest(const zoe_weights *w, const char *name, const char **out, size_t max) {
  return zoe_suggest(name, entry_name, w, w->n, out, max);
}
