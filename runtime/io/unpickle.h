/*
** unpickle.h: a restricted reader for the pickle that torch.save writes (data.pkl).
** A pickle is a program: its GLOBAL and REDUCE opcodes call any Python function.
** This reader runs no code. It knows the opcodes a state dict needs (protocols
** 2 to 5: containers, numbers, strings, memo, persistent ids) and a short list
** of callables, each interpreted here:
**   collections.OrderedDict              -> an empty dict
**   torch._utils._rebuild_tensor_v2      -> a tensor description (storage, offset, size, stride)
**   torch._utils._rebuild_parameter      -> its tensor
**   torch.FloatStorage, HalfStorage, ... -> storage types, only inside persistent ids
** Anything else (another global, an opcode that builds arbitrary objects) is
** refused with an error naming it and its position.
*/
#ifndef ZOE_UNPICKLE_H
#define ZOE_UNPICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"

typedef enum pk_kind {
  PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
  PK_GLOBAL,  /* an allowed callable or storage type */
  PK_STORAGE, /* a persistent id ('storage', type, key, location, numel) */
  PK_TENSOR
} pk_kind;

typedef enum pk_global {
  PK_ORDERED_DICT, PK_REBUILD_TENSOR_V2, PK_REBUILD_PARAMETER, PK_STORAGE_TYPE
} pk_global;

typedef struct pk_value pk_value;
struct pk_value {
  pk_kind kind;
  pk_value *next_alloc; /* every value is on one list, freed together */
  int64_t i;            /* int, bool; storage numel */
  double f;
  const char *s;        /* str: points into the pickle bytes (not NUL-terminated) */
  size_t len;
  pk_value **items;     /* tuple, list; dict: key, value, key, value, ... */
  size_t n, cap;        /* items used (a dict has 2 per pair) and allocated */
  /* PK_GLOBAL */
  pk_global global;
  const char *type_name; /* storage type: "FloatStorage", ... */
  int dtype;             /* its zoe_dtype, or -1 when zoe has none (DoubleStorage, ...) */
  /* PK_STORAGE: dtype, type_name, key in s/len, numel in i; PK_TENSOR: */
  pk_value *storage;
  int64_t offset;
  int ndim;
  int64_t shape[ZOE_MAX_DIMS], stride[ZOE_MAX_DIMS];
};

typedef struct pk_arena {
  pk_value *all;
} pk_arena;

/* Run the pickle; returns what STOP left (owned by 'arena'), or NULL and 'e' says why. */
pk_value *pk_load(const unsigned char *data, size_t len, pk_arena *arena, zoe_err *e);
void pk_arena_free(pk_arena *arena);

#endif
