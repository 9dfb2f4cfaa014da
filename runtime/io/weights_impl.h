/*
** weights_impl.h: the table a reader fills (one entry per tensor) and the
** helpers the readers share. Only runtime/io includes this.
*/
#ifndef ZOE_WEIGHTS_IMPL_H
#define ZOE_WEIGHTS_IMPL_H

#include <stdatomic.h>

#include "mapfile.h"
#include "weights.h"

typedef struct zoe_wentry {
  char *name;
  zoe_dtype dtype;
  int ndim;
  int64_t shape[ZOE_MAX_DIMS];
  int64_t stride[ZOE_MAX_DIMS]; /* elements */
  int64_t offset;               /* elements, from the start of the storage bytes */
  uint64_t begin, nbytes;       /* the storage bytes, from the start of the mapping */
  int shard;                    /* sharded index: which shard holds it; else -1 */
} zoe_wentry;

struct zoe_weights {
  atomic_int refcount;
  char *path;
  const char *format;
  zoe_mapping *map; /* NULL for an index */
  zoe_wentry *entries;
  size_t n, cap;
  char **meta; /* key, value, key, value, ... */
  size_t nmeta;
  char **shard_paths; /* sharded index: the shard files, opened on first use */
  zoe_weights **shards;
  size_t nshards;
};

zoe_weights *zoe_weights_new(const char *path, const char *format, zoe_mapping *map, zoe_err *e);
/* Append an entry (name copied); returns it zeroed but for the name and shard -1, or NULL. */
zoe_wentry *zoe_weights_add(zoe_weights *w, const char *name, size_t name_len, zoe_err *e);
int zoe_weights_add_meta(zoe_weights *w, const char *key, const char *value, zoe_err *e);
/* Sort the entries by name; a name listed twice is an error. */
int zoe_weights_finish(zoe_weights *w, zoe_err *e);
/* No two non-empty byte spans may overlap (begin/nbytes as set by the reader). */
int zoe_weights_check_overlaps(zoe_weights *w, zoe_err *e);
/* Contiguous strides for an entry's shape. */
void zoe_wentry_contiguous(zoe_wentry *en);

/* Readers. 'w' comes with its mapping set; they fill entries and metadata. */
int zoe_st_read(zoe_weights *w, zoe_err *e);
int zoe_pth_read(zoe_weights *w, zoe_err *e);
int zoe_gguf_read(zoe_weights *w, zoe_err *e);

#endif
