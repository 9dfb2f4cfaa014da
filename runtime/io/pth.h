/*
** pth.h: PyTorch zip checkpoints (torch.save), read through zoe_weights_open
** (weights.h); this adds reading one from memory (fuzzers, tests).
*/
#ifndef ZOE_PTH_H
#define ZOE_PTH_H

#include <stddef.h>

#include "weights.h"

/* The caller keeps 'data' alive and unchanged while the weights or any tensor from them live. */
zoe_weights *zoe_pth_open_memory(const void *data, size_t size, const char *name, zoe_err *e);

#endif
