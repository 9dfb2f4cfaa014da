/*
** gguf.h: GGUF files (ggml's format: llama.cpp, ComfyUI-GGUF, city96's Wan files).
**
**   "GGUF" u32 version (2, 3)  i64 n_tensors  i64 n_kv
**   n_kv x   (key: u64 len + bytes) u32 type value      (metadata, 13 value types)
**   n_tensors x (name) u32 n_dims  n_dims x u64 ne  u32 ggml_type  u64 offset
**   zero padding to general.alignment (32 unless set), then the tensor data
** All little-endian. ne[0] runs fastest, so the shape is ne reversed (a linear
** weight [out, in] is stored ne = [in, out]); offsets count from the data start.
** ComfyUI-GGUF's `comfy.gguf.orig_shape.<name>` (integers, outermost first)
** gives the shape of a tensor stored as rows of 256 so that k-quants fit; it is
** applied here. Dims ggml's writer drops (leading ones of the shape, as in
** Wan's modulation (1, 6, D) stored [D, 6]) cannot be known from the file: the
** model restores them (lua/zoe/family/wan_files.lua).
**
** Reading goes through zoe_weights_open (weights.h): tensors are views over the
** mapped file in their stored type (quantized types are dtypes: core/quant.h).
** Metadata reaches zoe_weights_meta_* as text: numbers in decimal, bools as
** true/false, strings as they are, arrays as JSON.
*/
#ifndef ZOE_GGUF_H
#define ZOE_GGUF_H

#include <stddef.h>

#include "weights.h"

/* A GGUF image held in memory ('name' is used in messages); the caller keeps it alive. */
zoe_weights *zoe_gguf_open_memory(const void *data, size_t size, const char *name, zoe_err *e);

/* The ggml type id of a dtype for a GGUF file, or -1 when GGUF has none. */
int zoe_gguf_type_of(zoe_dtype dt);

/* ---- writing (gguf_write.c) ---- */

/* A metadata value: type 4 u32, 5 i32, 6 f32, 7 bool, 8 string (GGUF's numbers). */
typedef struct zoe_gguf_kv {
  const char *key;
  int type;
  const char *str;
  int64_t num;
  double real;
} zoe_gguf_kv;

typedef struct zoe_gguf_tensor_info {
  const char *name;
  zoe_dtype dtype; /* f32, f16, bf16, i32, i64 or quantized */
  int ndim;
  int64_t shape[ZOE_MAX_DIMS]; /* outermost first, as the tensor */
} zoe_gguf_tensor_info;

typedef struct zoe_gguf_writer zoe_gguf_writer;

/*
** Start a GGUF file (version 3, alignment 32) announcing 'n' tensors; then put each
** tensor in the same order (contiguous, its announced dtype and shape), then close
** (the file appears whole) or abort (nothing is left). ne is the shape reversed with
** every dim kept; a tensor whose rows do not split into its type's blocks is stored
** as rows of 256 (or 32) with a comfy.gguf.orig_shape key.
*/
zoe_gguf_writer *zoe_gguf_writer_open(const char *path, size_t nkv, const zoe_gguf_kv *kv, size_t n,
                                      const zoe_gguf_tensor_info *info, zoe_err *e);
int zoe_gguf_writer_put(zoe_gguf_writer *w, const zoe_tensor *t, zoe_err *e);
int zoe_gguf_writer_close(zoe_gguf_writer *w, zoe_err *e);
void zoe_gguf_writer_abort(zoe_gguf_writer *w);

#endif
