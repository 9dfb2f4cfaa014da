/*
** weights_open.c: which reader opens a checkpoint, decided from its first bytes.
** Each format (weights_impl.h) says how to recognize and read its files; the
** first that recognizes the file reads it. Adding a format is one entry here.
*/
#include "weights.h"

#include "weights_impl.h"

static const zoe_wformat *const formats[] = {
  &zoe_st_structure_format, /* safetensors by its structure, before any magic bytes are read */
  &zoe_pth_format,        /* PK\3\4: torch.save's zip */
  &zoe_pth_legacy_format, /* a bare pickle: refused, saying how to convert it */
  &zoe_gguf_format,       /* GGUF: ggml's files */
  &zoe_st_index_format,   /* JSON: a sharded safetensors index */
  &zoe_st_format,         /* anything else is read as safetensors, whose checks say what is wrong */
};

zoe_weights *zoe_weights_open(const char *path, zoe_err *e) {
  zoe_mapping *m = zoe_map_file(path, e);
  if (!m) return NULL;
  zoe_weights *w = NULL;
  for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
    if (formats[i]->detect(m->base, m->size)) {
      w = formats[i]->open(path, m, e);
      break;
    }
  }
  zoe_map_release(m);
  if (w) w->open_shard = zoe_weights_open; /* an index's shards are files like any other */
  return w;
}
