/*
** image.c: single images, as (3, H, W) f32: reading is the first frame of the
** video reader; writing is a one-frame video to a still-image extension.
*/
#include <string.h>

#include "video_internal.h"

zoe_tensor *zoe_image_read(const char *path, zoe_err *e) {
  zoe_video_read_opts o = {.max_frames = 1};
  zoe_tensor *v = zoe__video_read(path, &o, "image.read", e);
  if (!v) return NULL;
  zoe_tensor *img = zoe_select(v, 1, 0, e); /* (3, 1, H, W) -> (3, H, W) */
  zoe_tensor_release(v);
  return img;
}

/* The writer names itself "video.write"; here the caller called image.write. */
static int as_image_error(zoe_err *e, int rc) {
  const char *w = "video.write";
  if (e && !strncmp(e->msg, w, strlen(w))) memcpy(e->msg, "image", 5);
  return rc;
}

int zoe_image_write(const zoe_tensor *img, const char *path, const zoe_video_opts *o, zoe_err *e) {
  char ext[16], s[96];
  if (!zoe__still_ext(zoe__ext(path, ext, sizeof ext)) || strchr(path, '%'))
    return zoe_errf(e, ZOE_EINVAL, "image.write '%s': images are written as .png, .jpg, .jpeg or .webp", path);
  int u8 = img->dtype == ZOE_U8;
  if (img->ndim != 3)
    return zoe_errf(e, ZOE_ESHAPE, "image.write '%s': an image is %s, got %s", path, u8 ? "(H, W, C) u8" : "(C, H, W)",
                    zoe_shape_str(img, s, sizeof s));
  zoe_tensor *v = zoe_unsqueeze(img, u8 ? 0 : 1, e); /* one frame: (C, 1, H, W) or (1, H, W, C) */
  if (!v) return e->code;
  int rc = zoe_video_write(v, path, o, e);
  zoe_tensor_release(v);
  return rc ? as_image_error(e, rc) : 0;
}
