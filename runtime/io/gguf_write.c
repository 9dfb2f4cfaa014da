/*
** gguf_write.c: writing GGUF files (version 3, alignment 32) tensor by tensor, so a
** converter holds one converted tensor at a time, never the whole model. The
** header (metadata, every tensor's name, dims, type and offset) is known from
** the infos given at open; each tensor follows, zero-padded to the alignment, as
** ggml's own writer lays them out. The file appears whole at close or not at all
** (atomicfile.c).
**
** Dims: ne is the shape reversed with every dim kept (city96's Wan files keep the
** leading 1 of modulation and the 5-D patch embedding). A tensor whose rows do not
** split into its type's blocks but whose size does is stored as rows of 256 (or
** 32) with a comfy.gguf.orig_shape.<name> key, as ComfyUI-GGUF's converter does.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "gguf.h"

#define ALIGN 32
enum { T_U32 = 4, T_I32 = 5, T_F32 = 6, T_BOOL = 7, T_STR = 8, T_ARR = 9 };

struct zoe_gguf_writer {
  zoe_atomic_file f;
  size_t n, next;
  zoe_gguf_tensor_info *info; /* copies, names owned */
  uint64_t *offset, *bytes;
  unsigned char *pad;
};

typedef struct out {
  unsigned char *p;
  size_t n, cap;
  int oom;
} out;

static void put(out *o, const void *d, size_t n) {
  if (o->oom) return;
  if (o->n + n > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->n + n) cap *= 2;
    unsigned char *np = realloc(o->p, cap);
    if (!np) {
      o->oom = 1;
      return;
    }
    o->p = np;
    o->cap = cap;
  }
  memcpy(o->p + o->n, d, n);
  o->n += n;
}
static void put_u32(out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(out *o, uint64_t v) { put(o, &v, 8); }
static void put_str(out *o, const char *s) {
  put_u64(o, strlen(s));
  put(o, s, strlen(s));
}

static void put_kv(out *o, const zoe_gguf_kv *kv) {
  put_str(o, kv->key);
  put_u32(o, (uint32_t)kv->type);
  switch ((int)kv->type) {
    case T_STR: put_str(o, kv->str ? kv->str : ""); break;
    case T_U32: put_u32(o, (uint32_t)kv->num); break;
    case T_I32: put_u32(o, (uint32_t)(int32_t)kv->num); break;
    case T_BOOL: put(o, &(uint8_t){kv->num != 0}, 1); break;
    case T_F32: {
      float f = (float)kv->real;
      put(o, &f, 4);
      break;
    }
    default: break;
  }
}

/* The stored dims (ne, fastest first) of a tensor, and whether it needs an orig_shape key. */
static int stored_dims(const zoe_gguf_tensor_info *t, uint64_t *ne, int *reshaped) {
  int64_t n = 1, bl = zoe_dtype_block(t->dtype);
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  *reshaped = t->ndim > 0 && t->shape[t->ndim - 1] % bl != 0;
  if (*reshaped) { /* rows of 256 (k-quants) or 32: ComfyUI-GGUF's reshape */
    ne[0] = (uint64_t)bl;
    ne[1] = (uint64_t)(n / bl);
    return 2;
  }
  for (int d = 0; d < t->ndim; d++) ne[d] = (uint64_t)t->shape[t->ndim - 1 - d];
  return t->ndim;
}

void zoe_gguf_writer_abort(zoe_gguf_writer *w) {
  if (!w) return;
  zoe_atomic_abort(&w->f);
  for (size_t i = 0; i < w->n; i++) free((char *)w->info[i].name);
  free(w->info);
  free(w->offset);
  free(w->bytes);
  free(w->pad);
  free(w);
}

zoe_gguf_writer *zoe_gguf_writer_open(const char *path, size_t nkv, const zoe_gguf_kv *kv, size_t n,
                                      const zoe_gguf_tensor_info *info, zoe_err *e) {
  zoe_gguf_writer *w = calloc(1, sizeof *w);
  out o = {0};
  if (!w || !(w->info = calloc(n ? n : 1, sizeof *w->info)) || !(w->offset = calloc(n ? n : 1, 8)) ||
      !(w->bytes = calloc(n ? n : 1, 8)) || !(w->pad = calloc(ALIGN, 1))) {
    if (w) {
      free(w->info), free(w->offset), free(w->bytes), free(w->pad);
      free(w);
    }
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
    return NULL;
  }
  w->f.fd = -1;
  size_t nreshaped = 0;
  uint64_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const zoe_gguf_tensor_info *t = &info[i];
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
    uint64_t ne[ZOE_MAX_DIMS];
    int reshaped;
    if (zoe_gguf_type_of(t->dtype) < 0 || t->ndim < 1 || t->ndim > ZOE_MAX_DIMS ||
        numel % zoe_dtype_block(t->dtype)) {
      zoe_errf(e, ZOE_EINVAL, "%s: tensor '%s' (%s, %d dims) cannot be stored in GGUF", path, t->name,
               zoe_dtype_name(t->dtype), t->ndim);
      goto fail;
    }
    stored_dims(t, ne, &reshaped);
    nreshaped += (size_t)reshaped;
    w->info[i] = *t;
    w->info[i].name = NULL;
    w->n = i + 1;
    if (!(w->info[i].name = strdup(t->name))) {
      zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
      goto fail;
    }
    w->offset[i] = at;
    w->bytes[i] = zoe_dtype_bytes(t->dtype, numel);
    at += (w->bytes[i] + ALIGN - 1) / ALIGN * ALIGN;
  }
  /* header: magic, version, counts, metadata (given, then orig_shape keys), tensor infos */
  put(&o, "GGUF", 4);
  put_u32(&o, 3);
  put_u64(&o, n);
  put_u64(&o, nkv + nreshaped);
  for (size_t i = 0; i < nkv; i++) put_kv(&o, &kv[i]);
  for (size_t i = 0; i < n; i++) {
    uint64_t ne[ZOE_MAX_DIMS];
    int reshaped;
    stored_dims(&w->info[i], ne, &reshaped);
    if (!reshaped) continue;
    size_t kl = strlen("comfy.gguf.orig_shape.") + strlen(w->info[i].name) + 1;
    char *key = malloc(kl);
    if (!key) {
      o.oom = 1;
      break;
    }
    snprintf(key, kl, "comfy.gguf.orig_shape.%s", w->info[i].name);
    put_str(&o, key);
    free(key);
    put_u32(&o, T_ARR);
    put_u32(&o, T_I32);
    put_u64(&o, (uint64_t)w->info[i].ndim);
    for (int d = 0; d < w->info[i].ndim; d++) put_u32(&o, (uint32_t)(int32_t)w->info[i].shape[d]);
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t ne[ZOE_MAX_DIMS];
    int reshaped, nd = stored_dims(&w->info[i], ne, &reshaped);
    put_str(&o, w->info[i].name);
    put_u32(&o, (uint32_t)nd);
    for (int d = 0; d < nd; d++) put_u64(&o, ne[d]);
    put_u32(&o, (uint32_t)zoe_gguf_type_of(w->info[i].dtype));
    put_u64(&o, w->offset[i]);
  }
  size_t padded = (o.n + ALIGN - 1) / ALIGN * ALIGN;
  put(&o, w->pad, padded - o.n);
  if (o.oom) {
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory building the header", path);
    goto fail;
  }
  if (zoe_atomic_open(&w->f, path, e) || zoe_atomic_write(&w->f, o.p, o.n, e)) goto fail;
  free(o.p);
  return w;
fail:
  free(o.p);
  zoe_gguf_writer_abort(w);
  return NULL;
}

int zoe_gguf_writer_put(zoe_gguf_writer *w, const zoe_tensor *t, zoe_err *e) {
  if (w->next >= w->n)
    return zoe_errf(e, ZOE_EINVAL, "%s: more tensors than the %zu announced", w->f.path, w->n);
  const zoe_gguf_tensor_info *in = &w->info[w->next];
  bool same = t->dtype == in->dtype && t->ndim == in->ndim && zoe_is_contiguous(t) &&
              t->offset % zoe_dtype_block(t->dtype) == 0;
  for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == in->shape[d];
  if (!same) {
    char a[96];
    return zoe_errf(e, ZOE_EINVAL, "%s: tensor '%s' must be a contiguous %s tensor as announced, got %s %s",
                    w->f.path, in->name, zoe_dtype_name(in->dtype), zoe_dtype_name(t->dtype), zoe_shape_str(t, a, sizeof a));
  }
  uint64_t bytes = w->bytes[w->next], padded = (bytes + ALIGN - 1) / ALIGN * ALIGN;
  if (zoe_atomic_write(&w->f, zoe_data(t), (size_t)bytes, e) ||
      zoe_atomic_write(&w->f, w->pad, (size_t)(padded - bytes), e))
    return e ? e->code : ZOE_EIO;
  w->next++;
  return 0;
}

int zoe_gguf_writer_close(zoe_gguf_writer *w, zoe_err *e) {
  int rc = 0;
  if (w->next != w->n)
    rc = zoe_errf(e, ZOE_EINVAL, "%s: %zu of %zu tensors written", w->f.path, w->next, w->n);
  else
    rc = zoe_atomic_commit(&w->f, e);
  if (!rc) w->f.fd = -1; /* committed: nothing for abort to remove */
  zoe_gguf_writer_abort(w);
  return rc;
}
