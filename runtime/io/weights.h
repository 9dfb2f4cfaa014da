/*
** weights.h: a checkpoint, read lazily: safetensors (one file, or shards named by
** a *.safetensors.index.json), a PyTorch zip checkpoint (.pth, torch.save), or a
** GGUF file (gguf.h; its quantized tensors are dtypes of their own, core/quant.h).
** Opening maps the file and reads its table of contents; a tensor is made only
** when asked for, as a view over the mapped bytes in the file's dtype (no copy,
** except a tensor whose bytes are misaligned for its dtype).
**
**   zoe_weights *w = zoe_weights_open("model.safetensors", &e);
**   zoe_tensor *q = zoe_weights_get(w, "blocks.0.self_attn.q.weight", &e);
**   ...
**   zoe_tensor_release(q);
**   zoe_weights_release(w);   (tensors keep the mapping alive on their own)
**
** Names are listed sorted (strcmp order). Not thread-safe: open and get from
** one thread; the tensors themselves may be used anywhere.
*/
#ifndef ZOE_WEIGHTS_H
#define ZOE_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"

typedef struct zoe_weights zoe_weights;

/* The format is read from the content: safetensors, a safetensors index (JSON), a zip (.pth), GGUF. */
zoe_weights *zoe_weights_open(const char *path, zoe_err *e);
zoe_weights *zoe_weights_retain(zoe_weights *w);
void zoe_weights_release(zoe_weights *w);

const char *zoe_weights_path(const zoe_weights *w);
/* "safetensors", "safetensors index", "pth" or "gguf" */
const char *zoe_weights_format(const zoe_weights *w);

size_t zoe_weights_count(const zoe_weights *w);
const char *zoe_weights_name(const zoe_weights *w, size_t i);
/* Index of 'name', or -1. */
ptrdiff_t zoe_weights_find(const zoe_weights *w, const char *name);
/* First index whose name is >= 'prefix' (names starting with it follow, in order). */
size_t zoe_weights_lower_bound(const zoe_weights *w, const char *prefix);

/* A new reference to tensor 'i' / 'name'; an unknown name is an error naming the file. */
zoe_tensor *zoe_weights_tensor(zoe_weights *w, size_t i, zoe_err *e);
zoe_tensor *zoe_weights_get(zoe_weights *w, const char *name, zoe_err *e);

/* Up to 'max' names closest to 'name' (edit distance), for "did you mean" messages. */
size_t zoe_weights_suggest(const zoe_weights *w, const char *name, const char **out, size_t max);

/* The file's metadata (safetensors __metadata__, an index's "metadata"): string pairs. */
size_t zoe_weights_meta_count(const zoe_weights *w);
const char *zoe_weights_meta_key(const zoe_weights *w, size_t i);
const char *zoe_weights_meta_value(const zoe_weights *w, size_t i);

#endif
