/*
** st_write.c: writing safetensors files. Tensors are laid out in name order,
** back to back; the header is padded with spaces to a multiple of 8 bytes so
** the data starts aligned (as the reference writer does).
*/
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "safetensors.h"

static const char *st_dtype_name(zoe_dtype dt) {
  static const char *names[ZOE_NDTYPES] = {
    [ZOE_F32] = "F32", [ZOE_F16] = "F16", [ZOE_BF16] = "BF16", [ZOE_I32] = "I32",
    [ZOE_U8] = "U8",   [ZOE_I64] = "I64", [ZOE_BOOL] = "BOOL", [ZOE_F64] = "F64",
    [ZOE_F8_E4M3] = "F8_E4M3", [ZOE_F8_E5M2] = "F8_E5M2",
  };
  return dt < ZOE_NDTYPES ? names[dt] : NULL;
}

typedef struct sorted_name {
  const char *name;
  size_t i;
} sorted_name;

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const sorted_name *)a)->name, ((const sorted_name *)b)->name);
}

/* The JSON header for tensors in 'order', or NULL with 'e' set. */
static char *build_header(const char *path, size_t n, const sorted_name *order,
                          zoe_tensor *const *tensors, size_t nmeta, const char *const *keys,
                          const char *const *values, zoe_err *e) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  if (ok && nmeta > 0) {
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    ok = m != NULL;
    for (size_t i = 0; ok && i < nmeta; i++) ok = cJSON_AddStringToObject(m, keys[i], values[i]) != NULL;
  }
  uint64_t offset = 0;
  for (size_t k = 0; ok && k < n; k++) {
    const zoe_tensor *t = tensors[order[k].i];
    cJSON *en = cJSON_AddObjectToObject(root, order[k].name);
    cJSON *dt = en ? cJSON_AddStringToObject(en, "dtype", st_dtype_name(t->dtype)) : NULL;
    cJSON *shape = dt ? cJSON_AddArrayToObject(en, "shape") : NULL;
    cJSON *offs = shape ? cJSON_AddArrayToObject(en, "data_offsets") : NULL;
    ok = offs != NULL;
    for (int d = 0; ok && d < t->ndim; d++)
      ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    uint64_t bytes = (uint64_t)zoe_numel(t) * zoe_dtype_size(t->dtype);
    ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
    ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + bytes)));
    offset += bytes;
  }
  char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!text) zoe_errf(e, ZOE_ENOMEM, "%s: out of memory building the header", path);
  return text;
}

static int check_args(const char *path, size_t n, const char *const *names, zoe_tensor *const *tensors,
                      const sorted_name *order, size_t nmeta, const char *const *keys,
                      const char *const *values, zoe_err *e) {
  for (size_t i = 0; i < n; i++) {
    if (!names[i] || !names[i][0])
      return zoe_errf(e, ZOE_EINVAL, "%s: tensor %zu has an empty name", path, i + 1);
    if (strcmp(names[i], "__metadata__") == 0)
      return zoe_errf(e, ZOE_EINVAL, "%s: '__metadata__' is reserved and cannot name a tensor", path);
    if (!tensors[i] || !st_dtype_name(tensors[i]->dtype))
      return zoe_errf(e, ZOE_EINVAL, "%s: '%s' is not a tensor of a dtype safetensors holds", path,
                      names[i]);
  }
  for (size_t k = 1; k < n; k++)
    if (strcmp(order[k - 1].name, order[k].name) == 0)
      return zoe_errf(e, ZOE_EINVAL, "%s: tensor name '%s' given twice", path, order[k].name);
  for (size_t i = 0; i < nmeta; i++)
    if (!keys[i] || !values[i])
      return zoe_errf(e, ZOE_EINVAL, "%s: metadata entry %zu is missing its key or value", path, i + 1);
  return 0;
}

static int write_all(zoe_atomic_file *f, const char *header, size_t n, const sorted_name *order,
                     zoe_tensor *const *tensors, zoe_err *e) {
  size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
  static const char spaces[8] = "        ";
  if (zoe_atomic_write(f, len8, 8, e) || zoe_atomic_write(f, header, hlen, e) ||
      zoe_atomic_write(f, spaces, padded - hlen, e))
    return e ? e->code : ZOE_EIO;
  for (size_t k = 0; k < n; k++) {
    zoe_tensor *c = zoe_contiguous(tensors[order[k].i], e);
    if (!c) return e ? e->code : ZOE_ENOMEM;
    size_t bytes = (size_t)zoe_numel(c) * zoe_dtype_size(c->dtype);
    int rc = bytes ? zoe_atomic_write(f, zoe_data(c), bytes, e) : 0;
    zoe_tensor_release(c);
    if (rc) return rc;
  }
  return 0;
}

int zoe_st_save(const char *path, size_t n, const char *const *names, zoe_tensor *const *tensors,
                size_t nmeta, const char *const *meta_keys, const char *const *meta_values,
                zoe_err *e) {
  sorted_name *order = malloc((n ? n : 1) * sizeof *order);
  if (!order) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", path);
  for (size_t i = 0; i < n; i++) order[i] = (sorted_name){names[i] ? names[i] : "", i};
  qsort(order, n, sizeof *order, cmp_name);
  int rc = check_args(path, n, names, tensors, order, nmeta, meta_keys, meta_values, e);
  char *header = rc ? NULL : build_header(path, n, order, tensors, nmeta, meta_keys, meta_values, e);
  if (!rc && !header) rc = e ? e->code : ZOE_ENOMEM;
  zoe_atomic_file f;
  if (!rc) rc = zoe_atomic_open(&f, path, e);
  if (!rc) {
    rc = write_all(&f, header, n, order, tensors, e);
    if (rc) zoe_atomic_abort(&f);
    else rc = zoe_atomic_commit(&f, e);
  }
  free(header);
  free(order);
  return rc;
}
