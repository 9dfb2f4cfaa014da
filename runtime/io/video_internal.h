/*
** video_internal.h: what the files of runtime/io/video*.c share: frame
** conversion between tensors and ffmpeg frames, temporary files, still images
** (PNG/JPEG/WebP), the GIF palette filter. Not a public API.
*/
#ifndef ZOE_VIDEO_INTERNAL_H
#define ZOE_VIDEO_INTERNAL_H

#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
#include <stdio.h>

#include "video.h"

/* ---- frames (video_frames.c) ---- */

/* The layout of a video tensor, checked once. */
typedef struct zoe__frames {
  int64_t count;     /* T */
  int height, width; /* H, W */
  int channels;      /* 1 or 3 */
  int u8;            /* (T, H, W, C) u8; else (C, T, H, W) float */
} zoe__frames;

/* Check 'frames' is a video tensor; 'who' and 'path' name the call in errors. */
int zoe__frames_check(const zoe_tensor *frames, zoe__frames *f, const char *who, const char *path,
                      zoe_err *e);
/* The pixel format frame 't' is handed over in: GBRP (float), RGB24 (u8), GRAY8 (C = 1). */
enum AVPixelFormat zoe__frames_pix_fmt(const zoe__frames *f);
/* Fill 'dst' (allocated in zoe__frames_pix_fmt, f->width x f->height) with frame 't'. */
int zoe__frame_fill(const zoe_tensor *frames, const zoe__frames *f, int64_t t, AVFrame *dst, zoe_err *e);

/*
** Give 'f' (format, width and height set) a buffer of its own to write into,
** unless it already has one nobody else holds. New buffers are zeroed: SIMD
** code reads the row padding, and it must not read garbage.
*/
int zoe__frame_buffer(AVFrame *f);

/* f32 [-1, 1] <-> u8 (see video.h for the rounding) */
void zoe__f32_to_u8(uint8_t *dst, const float *src, int64_t n);
void zoe__u8_to_f32(float *dst, const uint8_t *src, int64_t n);

/*
** A scaler from (sw, sh, sfmt) to (dw, dh, dfmt), rebuilt only when one of them
** changes. Bit-exact flags, so the same input gives the same output on any CPU.
*/
typedef struct zoe__scaler {
  struct SwsContext *sws;
  int sw, sh, dw, dh, flags, colorspace, src_range;
  enum AVPixelFormat sfmt, dfmt;
} zoe__scaler;
/* colorspace: SWS_CS_* (0: BT.601); src_range: -1 as the format says, 0 limited, 1 full */
int zoe__scale(zoe__scaler *s, const AVFrame *src, AVFrame *dst, int dw, int dh, int flags,
               int colorspace, int src_range, zoe_err *e);
void zoe__scaler_free(zoe__scaler *s);

/*
** Call before using ffmpeg: silences its log (ZOE_FFMPEG_LOG brings it back) and
** clears this thread's last ffmpeg error line, which zoe__av_last gives ("" if none).
*/
void zoe__av_init(void);
const char *zoe__av_last(void);

/* av_strerror into 'buf' */
const char *zoe__averr(int err, char *buf, size_t n);
#define ZOE__AVERR(err) zoe__averr((err), (char[128]){0}, 128)

/* ---- temporary files (video_frames.c) ---- */

/*
** Create a new empty file beside 'path' ("dir/.name.PID-N.tmp"), mode 0666 less
** the umask, so the rename at the end keeps the usual permissions. Returns an
** open fd and the malloc'd name in *tmp, or -1 with 'e' filled.
*/
int zoe__tmp_create(const char *path, char **tmp, const char *who, zoe_err *e);
/* Is the folder of 'path' there and writable? */
int zoe__check_dir(const char *path, const char *who, zoe_err *e);
/* The extension of 'path' in lower case ("" when none) into buf. */
const char *zoe__ext(const char *path, char *buf, size_t n);

/* ---- still images (video_still.c) ---- */

typedef struct zoe__still zoe__still;
/* A writer of one image ('pattern' 0) or of one file a frame. */
zoe__still *zoe__still_open(const char *path, int pattern, const zoe_video_opts *o, zoe_err *e);
int zoe__still_write(zoe__still *s, const zoe_tensor *frames, const zoe__frames *f, zoe_err *e);
int zoe__still_close(zoe__still *s, zoe_err *e); /* renames; frees 's' */
void zoe__still_abort(zoe__still *s);           /* removes; frees 's' */
int64_t zoe__still_frames(const zoe__still *s);
/* Is 'ext' an image extension this writer handles (png, jpg, jpeg, webp)? */
int zoe__still_ext(const char *ext);
/* PNG text chunks (tEXt, or iTXt for UTF-8) of a PNG file: appended to info. */
int zoe__png_read_text(const char *path, zoe_video_info *info);

/* ---- GIF palette (video_gif.c) ---- */

typedef struct zoe__palette zoe__palette;
/* split -> palettegen (whole video) -> paletteuse; frames in BGRA, out PAL8. */
zoe__palette *zoe__palette_new(int width, int height, AVRational time_base, zoe_err *e);
/* Push a frame (NULL: the end). */
int zoe__palette_push(zoe__palette *p, AVFrame *frame, zoe_err *e);
/* Pull a PAL8 frame: 0 got one, 1 none yet (or no more), < 0 error. */
int zoe__palette_pull(zoe__palette *p, AVFrame *out, zoe_err *e);
void zoe__palette_free(zoe__palette *p);

/* ---- the contact-sheet font (font5x7.c): printable ASCII, 7 rows of 5 bits ---- */
extern const uint8_t zoe__font5x7[95][7];

/* ---- reading (video_read.c) ---- */
/* zoe_video_read with 'who' ("image.read") naming the call in errors. */
zoe_tensor *zoe__video_read(const char *path, const zoe_video_read_opts *o, const char *who, zoe_err *e);

/* ---- video.info's metadata (video_frames.c) ---- */
/* Append key = value (copied); ZOE_ENOMEM when out of memory. */
int zoe__info_add(zoe_video_info *info, const char *key, const char *value);

#endif
