/*
** safetensors.h: the safetensors format (https://github.com/huggingface/safetensors):
** an 8-byte little-endian header length N, N bytes of JSON
**   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
**    "__metadata__": {"key": "value"}}
** then the tensor bytes (offsets count from the end of the header).
** Reading goes through zoe_weights_open (weights.h); this adds what is specific.
*/
#ifndef ZOE_SAFETENSORS_H
#define ZOE_SAFETENSORS_H

#include <stddef.h>

#include "weights.h"

/* Read a safetensors image held in memory ('name' is used in messages). The caller
** keeps 'data' alive and unchanged for as long as the weights or any tensor from them. */
zoe_weights *zoe_st_open_memory(const void *data, size_t size, const char *name, zoe_err *e);

/* A *.safetensors.index.json ({"metadata": {...}, "weight_map": {"name": "shard file"}})
** given as text; shard files are relative to the index's directory and open lazily. */
zoe_weights *zoe_st_open_index_json(const char *path, const char *text, size_t len, zoe_err *e);

/*
** Write 'n' tensors (any layout; written contiguous) and 'nmeta' metadata pairs to
** 'path' atomically: a temporary file in the same directory, fsync, then rename, so
** a failure never leaves a half-written file nor touches an existing one.
*/
int zoe_st_save(const char *path, size_t n, const char *const *names, zoe_tensor *const *tensors,
                size_t nmeta, const char *const *meta_keys, const char *const *meta_values,
                zoe_err *e);

#endif
