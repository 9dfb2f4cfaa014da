/*
** weights_impl.h: the table a reader fills (one entry per tensor) and the
** helpers the readers share. Only runtime/io includes this.
*/
#ifndef ZOE_WEIGHTS_IMPL_H
#define ZOE_WEIGHTS_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>

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
  /* how a sharded index opens a shard: the dispatch (weights_open.c) sets its own opener */
  zoe_weights *(*open_shard)(const char *path, zoe_err *e);
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
/* A new object over 'm' filled by 'read' (a reader's table of contents); NULL on failure. */
zoe_weights *zoe_weights_read(const char *path, const char *format, zoe_mapping *m,
                              int (*read)(zoe_weights *w, zoe_err *e), zoe_err *e);
/* Sort the entries by name; a name listed twice is an error. */
int zoe_weights_finish(zoe_weights *w, zoe_err *e);
/* No two non-empty byte spans may overlap (begin/nbytes as set by the reader). */
int zoe_weights_check_overlaps(zoe_weights *w, zoe_err *e);
/* Contiguous strides for an entry's shape. */
void zoe_wentry_contiguous(zoe_wentry *en);

/*
** A checkpoint format, as the dispatch (weights_open.c) sees it: its name, whether a
** mapped file is one of its own (from its first bytes), and how to read one. A reader
** file defines one (or more) of these; adding a format is its file and one entry in
** weights_open.c's table.
*/
typedef struct zoe_wformat {
  const char *name;
  bool (*detect)(const unsigned char *bytes, size_t size);
  /* the weights of the mapped file (the mapping is not taken: the weights retain it) */
  zoe_weights *(*open)(const char *path, zoe_mapping *m, zoe_err *e);
} zoe_wformat;

extern const zoe_wformat zoe_st_structure_format; /* safetensors.c: a header length that fits, then '{' */
extern const zoe_wformat zoe_pth_format;        /* pth.c: torch.save's zip */
extern const zoe_wformat zoe_pth_legacy_format; /* pth.c: before 1.6, refused */
extern const zoe_wformat zoe_st_index_format;   /* safetensors.c: *.safetensors.index.json */
extern const zoe_wformat zoe_gguf_format;       /* gguf.c: ggml's GGUF */
extern const zoe_wformat zoe_st_format;         /* safetensors.c: the fallback, last */

/* A format's reader over bytes in memory (tests, fuzzers): the caller keeps them alive. */
zoe_weights *zoe_weights_open_memory(const void *data, size_t size, const char *name, const zoe_wformat *f,
                                     zoe_err *e);

#endif
