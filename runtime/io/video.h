/*
** video.h: videos and images through ffmpeg's libraries, without Lua.
**
** A video is an f32 tensor (C, T, H, W) in [-1, 1] (C = 3, or 1 for grey), or a
** u8 tensor (T, H, W, C) in 0..255; an image is (C, H, W) f32 or (H, W, C) u8.
** f32 -> u8 is round((x + 1) * 127.5) clamped to 0..255 (NaN -> 0); u8 -> f32 is
** u / 127.5 - 1, so u8 values survive a round trip exactly.
**
** Outputs (chosen by the extension of the path):
**   .mp4 .mov .mkv  H.264 (libx264, yuv420p, BT.709 limited range); odd sizes are
**                   padded to even by repeating the last column/row
**   .webm           VP9 (libvpx, yuv420p, constant quality)
**   .gif            a palette made from the video itself (palettegen/paletteuse)
**   .png .jpg .jpeg .webp   one image; "dir/%04d.png" (any printf %d) one file a frame
** Every output is written under a temporary name in the same folder and renamed
** when complete, so a failure never leaves a half file under the real name and
** never touches an existing file there.
**
** The same frames and options give byte-identical files: the encoder thread
** count is fixed (4 by default), not taken from the machine; threads = -1 asks for
** the codec's automatic count (faster on big machines, but the bytes then depend
** on the core count).
*/
#ifndef ZOE_VIDEO_H
#define ZOE_VIDEO_H

#include <stdint.h>

#include "../core/tensor.h"

#define ZOE_VIDEO_DEFAULT_FPS 16.0
#define ZOE_VIDEO_DEFAULT_THREADS 4

typedef struct zoe_kv {
  const char *key, *value;
} zoe_kv;

typedef struct zoe_video_opts {
  double fps;           /* frames per second (> 0) */
  int crf;              /* constant quality, lower is better; < 0: 18 for H.264, 31 for VP9 */
  const char *preset;   /* x264 preset ("ultrafast" .. "placebo"); NULL: "medium" */
  const char *tune;     /* x264 tune ("film", "animation", ...); NULL: none */
  int speed;            /* VP9 cpu-used 0..8 (higher is faster); < 0: 4 */
  int quality;          /* JPEG and WebP quality 1..100; <= 0: 90 */
  int threads;          /* encoder threads; 0: ZOE_VIDEO_DEFAULT_THREADS; -1: the codec's auto */
  int start_number;     /* index of the first file of a "%04d" pattern (ffmpeg's default 1) */
  int nmeta;            /* metadata stored in the container (mp4, mov, mkv, webm, png) */
  const zoe_kv *meta;
} zoe_video_opts;

/* The defaults: 16 fps, codec crf, preset "medium", 4 threads, pattern from 1. */
void zoe_video_opts_default(zoe_video_opts *o);

/* ---- writing ---- */
typedef struct zoe_video_writer zoe_video_writer;

/*
** Start writing 'path'. Checks the extension, the options and that the folder is
** writable; the size is fixed by the first frames written. 'o' may be NULL; it is
** copied, so the caller's strings need not outlive the call.
*/
zoe_video_writer *zoe_video_writer_open(const char *path, const zoe_video_opts *o, zoe_err *e);
/*
** Encode frames: (C, t, H, W) f32 or (t, H, W, C) u8, of the size of the first chunk.
** A chunk of the wrong shape or dtype is refused and the writer stays usable; an
** encoder or disk error leaves the writer failed (close then removes the file).
*/
int zoe_video_writer_write(zoe_video_writer *w, const zoe_tensor *frames, zoe_err *e);
/*
** Flush the encoder, finish the file and rename it to its real name. Frees 'w'
** whatever happens; on failure the temporary file is removed.
*/
int zoe_video_writer_close(zoe_video_writer *w, zoe_err *e);
/* Drop everything written so far (the temporary file is removed) and free 'w'. */
void zoe_video_writer_abort(zoe_video_writer *w);
int64_t zoe_video_writer_frames(const zoe_video_writer *w);
const char *zoe_video_writer_path(const zoe_video_writer *w);

/* open + write + close */
int zoe_video_write(const zoe_tensor *frames, const char *path, const zoe_video_opts *o, zoe_err *e);

/* ---- reading ---- */
typedef struct zoe_video_read_opts {
  int64_t max_frames; /* stop after this many frames; 0: all */
  double fps;         /* resample to this rate (nearest frame in time); 0: every frame */
  int width, height;  /* resize (bicubic); 0: the source size, or kept aspect when one is set */
  int u8;             /* give (T, H, W, 3) u8 instead of (3, T, H, W) f32 */
} zoe_video_read_opts;

/* Decode the best video stream of 'path' (anything ffmpeg reads): (3, T, H, W) f32. */
zoe_tensor *zoe_video_read(const char *path, const zoe_video_read_opts *o, zoe_err *e);

typedef struct zoe_video_info {
  int width, height;
  double fps;           /* average frame rate (0 when unknown) */
  int64_t frames;       /* from the container, or counted packet by packet */
  double duration;      /* seconds */
  char codec[32], format[32], pix_fmt[32];
  int nmeta;            /* container tags, then stream tags, then (images) text chunks */
  char **keys, **values;
} zoe_video_info;

int zoe_video_probe(const char *path, zoe_video_info *info, zoe_err *e);
void zoe_video_info_free(zoe_video_info *info);

/* ---- images ---- */
/* PNG, JPEG, WebP, or the first frame of anything ffmpeg reads: (3, H, W) f32. */
zoe_tensor *zoe_image_read(const char *path, zoe_err *e);
/* (C, H, W) f32 or (H, W, C) u8 to .png, .jpg/.jpeg or .webp (o: quality, metadata). */
int zoe_image_write(const zoe_tensor *img, const char *path, const zoe_video_opts *o, zoe_err *e);

/* ---- contact sheets ---- */
typedef struct zoe_sheet_opts {
  int cols;                  /* cells per row; 0: min(8, most frames in a group) */
  int every;                 /* take every n-th frame; 0: enough to fit one row per video */
  int scale;                 /* nearest-neighbour upscale; 0: so a cell is >= 128 pixels */
  int nlabels;               /* labels[i] captions row group i (NULL entries: none) */
  const char *const *labels;
} zoe_sheet_opts;

/*
** One PNG grid of frames. Each video (4 dims) is a group of rows; consecutive
** single frames (3 dims) form one group. A group starts on a new row, under its
** caption strip when it has a label.
*/
int zoe_contact_sheet(const zoe_tensor *const *items, int n, const char *path,
                      const zoe_sheet_opts *o, zoe_err *e);

#endif
