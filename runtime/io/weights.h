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

/* zoe_weights_open, _get, _tensor, _count, _name, _find, _meta_*, ...: include/zoe.h */

/* First index whose name is >= 'prefix' (names starting with it follow, in order). */
size_t zoe_weights_lower_bound(const zoe_weights *w, const char *prefix);

/* Up to 'max' names closest to 'name' (edit distance), for "did you mean" messages. */
size_t zoe_weights_suggest(const zoe_weights *w, const char *name, const char **out, size_t max);

#endif
