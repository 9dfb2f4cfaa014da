/*
** video_frames.c: tensors to ffmpeg frames and back, the scaler, temporary
** files, ffmpeg's log. Frames go to ffmpeg as planar GBR (or grey): a float
** video (C, T, H, W) already has each channel plane contiguous; a u8 video
** (T, H, W, C) is split into planes.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmpfiles.h"
#include "video_internal.h"

void zoe_video_opts_default(zoe_video_opts *o) {
  memset(o, 0, sizeof *o);
  o->fps = ZOE_VIDEO_DEFAULT_FPS;
  o->crf = -1;
  o->speed = -1;
  o->threads = ZOE_VIDEO_DEFAULT_THREADS;
  o->start_number = 1;
}

const char *zoe__averr(int err, char *buf, size_t n) {
  if (av_strerror(err, buf, n) < 0) snprintf(buf, n, "ffmpeg error %d", err);
  return buf;
}

/* ---- pixel conversion ---- */

/*
** (x + 1) * 127.5 rounded: x * 127.5 + 128 truncated, clamped; NaN fails both
** tests -> 0. Plain loops (SSE2 vectorizes them): no target_clones here, since
** the fuzz build compiles this file with clang, whose clones need a caller in the file.
*/
void zoe__f32_to_u8(uint8_t *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = src[i] * 127.5f + 128.0f;
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    dst[i] = (uint8_t)v;
  }
}

void zoe__u8_to_f32(float *dst, const uint8_t *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i] / 127.5f - 1.0f;
}

int zoe__frames_check(const zoe_tensor *frames, zoe__frames *f, const char *who, const char *path,
                      zoe_err *e) {
  char s[96];
  memset(f, 0, sizeof *f);
  if (frames->dtype == ZOE_U8) {
    if (frames->ndim != 4)
      return zoe_errf(e, ZOE_ESHAPE, "%s '%s': u8 frames must be (T, H, W, C), got %s", who, path,
                      zoe_shape_str(frames, s, sizeof s));
    f->u8 = 1;
    f->count = frames->shape[0];
    f->height = (int)frames->shape[1];
    f->width = (int)frames->shape[2];
    f->channels = (int)frames->shape[3];
  } else if (zoe_dtype_is_float(frames->dtype)) {
    if (frames->ndim != 4)
      return zoe_errf(e, ZOE_ESHAPE, "%s '%s': frames must be (C, T, H, W), got %s", who, path,
                      zoe_shape_str(frames, s, sizeof s));
    f->channels = (int)frames->shape[0];
    f->count = frames->shape[1];
    f->height = (int)frames->shape[2];
    f->width = (int)frames->shape[3];
  } else {
    return zoe_errf(e, ZOE_EDTYPE, "%s '%s': frames must be f32 (C, T, H, W) or u8 (T, H, W, C), got %s",
                    who, path, zoe_dtype_name(frames->dtype));
  }
  zoe_shape_str(frames, s, sizeof s);
  if (f->channels != 1 && f->channels != 3)
    return zoe_errf(e, ZOE_ESHAPE, "%s '%s': frames %s have %d channels (expected 3, or 1 for grey)",
                    who, path, s, f->channels);
  int64_t h = f->u8 ? frames->shape[1] : frames->shape[2], w = f->u8 ? frames->shape[2] : frames->shape[3];
  if (h < 1 || w < 1 || h > 16384 || w > 16384)
    return zoe_errf(e, ZOE_ESHAPE, "%s '%s': frames %s: height and width must be 1..16384", who, path, s);
  return 0;
}

/* One format for u8 and float input, so the same pixels give the same file either way. */
enum AVPixelFormat zoe__frames_pix_fmt(const zoe__frames *f) {
  return f->channels == 1 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_GBRP;
}

/* Frame 't' as a contiguous tensor: (C, H, W) f32 or (H, W, C) u8; a view when it already is. */
static zoe_tensor *frame_tensor(const zoe_tensor *frames, const zoe__frames *f, int64_t t, zoe_err *e) {
  zoe_tensor *v = zoe_select(frames, f->u8 ? 0 : 1, t, e);
  if (!v) return NULL;
  zoe_tensor *c = (v->dtype == ZOE_F32 || v->dtype == ZOE_U8) ? zoe_contiguous(v, e) : zoe_to_dtype(v, ZOE_F32, e);
  zoe_tensor_release(v);
  return c;
}

int zoe__frame_fill(const zoe_tensor *frames, const zoe__frames *f, int64_t t, AVFrame *dst, zoe_err *e) {
  zoe_tensor *c = frame_tensor(frames, f, t, e);
  if (!c) return e && e->code ? e->code : ZOE_ENOMEM;
  int h = f->height, w = f->width;
  /* planes R, G, B go to GBRP's data[2], data[0], data[1] */
  static const int plane_of[3] = {2, 0, 1};
  if (f->u8) {
    const uint8_t *src = zoe_data(c);
    int n = f->channels;
    for (int ch = 0; ch < n; ch++) {
      int p = n == 1 ? 0 : plane_of[ch];
      for (int y = 0; y < h; y++) {
        uint8_t *d = dst->data[p] + (size_t)y * dst->linesize[p];
        const uint8_t *s = src + (size_t)y * w * n + ch;
        for (int x = 0; x < w; x++) d[x] = s[(size_t)x * n];
      }
    }
  } else {
    const float *src = zoe_data(c);
    for (int ch = 0; ch < f->channels; ch++) {
      int p = f->channels == 1 ? 0 : plane_of[ch];
      for (int y = 0; y < h; y++)
        zoe__f32_to_u8(dst->data[p] + (size_t)y * dst->linesize[p], src + ((size_t)ch * h + y) * w, w);
    }
  }
  zoe_tensor_release(c);
  return 0;
}

int zoe__frame_buffer(AVFrame *f) {
  if (av_frame_is_writable(f)) return 0;
  int format = f->format, width = f->width, height = f->height;
  av_frame_unref(f);
  f->format = format, f->width = width, f->height = height;
  if (av_frame_get_buffer(f, 0) < 0) return ZOE_ENOMEM;
  for (int i = 0; i < AV_NUM_DATA_POINTERS && f->buf[i]; i++) memset(f->buf[i]->data, 0, f->buf[i]->size);
  return 0;
}

/* ---- scaling ---- */

int zoe__scale(zoe__scaler *s, const AVFrame *src, AVFrame *dst, int dw, int dh, int flags,
               int colorspace, int src_range, zoe_err *e) {
  enum AVPixelFormat sf = src->format, df = dst->format;
  if (!s->sws || s->sw != src->width || s->sh != src->height || s->sfmt != sf || s->dw != dw ||
      s->dh != dh || s->dfmt != df || s->flags != flags || s->colorspace != colorspace ||
      s->src_range != src_range) {
    sws_freeContext(s->sws);
    s->sws = sws_getContext(src->width, src->height, sf, dw, dh, df, flags, NULL, NULL, NULL);
    if (!s->sws)
      return zoe_errf(e, ZOE_ENOTSUP, "cannot convert %dx%d %s to %dx%d %s", src->width, src->height,
                      av_get_pix_fmt_name(sf), dw, dh, av_get_pix_fmt_name(df));
    s->sw = src->width, s->sh = src->height, s->sfmt = sf;
    s->dw = dw, s->dh = dh, s->dfmt = df, s->flags = flags;
    s->colorspace = colorspace, s->src_range = src_range;
    /*
    ** YUV <-> RGB matrix: the one the video is tagged with (BT.601 when it says
    ** nothing, swscale's own default); encoding always writes BT.709 limited range.
    ** 'src_range' overrides the range of a YUV source (1: full, as JPEG).
    */
    int *inv, *tab, srange, drange, bri, con, sat;
    if (sws_getColorspaceDetails(s->sws, &inv, &srange, &tab, &drange, &bri, &con, &sat) >= 0) {
      const int *coefs = sws_getCoefficients(colorspace > 0 ? colorspace : SWS_CS_DEFAULT);
      if (src_range >= 0) srange = src_range;
      sws_setColorspaceDetails(s->sws, coefs, srange, coefs, drange, bri, con, sat);
    }
  }
  int h = sws_scale(s->sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst->data,
                    dst->linesize);
  if (h <= 0) return zoe_errf(e, ZOE_EINVAL, "pixel conversion failed");
  return 0;
}

void zoe__scaler_free(zoe__scaler *s) {
  sws_freeContext(s->sws);
  memset(s, 0, sizeof *s);
}

/* ---- files ---- */

const char *zoe__ext(const char *path, char *buf, size_t n) {
  const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
  buf[0] = '\0';
  if (!dot || (slash && dot < slash) || dot[1] == '\0') return buf;
  size_t i = 0;
  for (const char *p = dot + 1; *p && i + 1 < n; p++) buf[i++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  buf[i] = '\0';
  return buf;
}

/* The folder part of 'path' ("." when none) into a malloc'd string. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

int zoe__check_dir(const char *path, const char *who, zoe_err *e) {
  char *dir = dir_of(path);
  if (!dir) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", who);
  struct stat st;
  int rc = 0;
  if (stat(dir, &st) != 0)
    rc = zoe_errf(e, ZOE_EIO, "%s '%s': folder '%s': %s", who, path, dir, strerror(errno));
  else if (!S_ISDIR(st.st_mode))
    rc = zoe_errf(e, ZOE_EIO, "%s '%s': '%s' is not a folder", who, path, dir);
  else if (access(dir, W_OK | X_OK) != 0)
    rc = zoe_errf(e, ZOE_EIO, "%s '%s': folder '%s' is not writable: %s", who, path, dir, strerror(errno));
  free(dir);
  return rc;
}

int zoe__tmp_create(const char *path, char **tmp, const char *who, zoe_err *e) {
  static atomic_uint counter;
  *tmp = NULL;
  int rc = zoe__check_dir(path, who, e);
  if (rc) return -1;
  zoe_tmpfiles_sweep(path); /* what a killed writer of this file left */
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dirlen = (size_t)(base - path), n = strlen(path) + 64;
  if (!*base) {
    zoe_errf(e, ZOE_EINVAL, "%s '%s': the path names a folder, not a file", who, path);
    return -1;
  }
  char *name = malloc(n);
  if (!name) {
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", who);
    return -1;
  }
  for (int tries = 0; tries < 100; tries++) {
    snprintf(name, n, "%.*s.%s.%ld-%u.tmp", (int)dirlen, path, base, (long)getpid(),
             atomic_fetch_add(&counter, 1));
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      zoe_tmpfiles_add(name); /* removed if a signal ends the process */
      *tmp = name;
      return fd;
    }
    if (errno != EEXIST) break;
  }
  zoe_errf(e, ZOE_EIO, "%s '%s': cannot create the temporary file '%s': %s", who, path, name, strerror(errno));
  free(name);
  return -1;
}

/* ---- ffmpeg's log ---- */

/*
** ffmpeg logs to stderr by default. We keep quiet and remember the last error
** line of the calling thread, so our own error can quote it ("moov atom not
** found"). ZOE_FFMPEG_LOG=warning|info|verbose|debug prints ffmpeg's log as usual.
*/
static _Thread_local char last_log[256];
static int print_level = AV_LOG_QUIET;

static void log_cb(void *avcl, int level, const char *fmt, va_list vl) {
  if (level <= print_level) {
    va_list copy;
    va_copy(copy, vl);
    av_log_default_callback(avcl, level, fmt, copy);
    va_end(copy);
  }
  if (level > AV_LOG_ERROR) return;
  int prefix = 0;
  char line[sizeof last_log];
  av_log_format_line2(NULL, level, fmt, vl, line, sizeof line, &prefix);
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
  if (n) memcpy(last_log, line, n + 1);
}

static void log_init(void) {
  const char *v = getenv("ZOE_FFMPEG_LOG");
  if (v && *v) {
    static const struct { const char *name; int level; } levels[] = {
      {"error", AV_LOG_ERROR}, {"warning", AV_LOG_WARNING}, {"info", AV_LOG_INFO},
      {"verbose", AV_LOG_VERBOSE}, {"debug", AV_LOG_DEBUG}, {"trace", AV_LOG_TRACE}};
    print_level = AV_LOG_INFO;
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
      if (!strcmp(v, levels[i].name)) print_level = levels[i].level;
  }
  av_log_set_level(print_level > AV_LOG_ERROR ? print_level : AV_LOG_ERROR);
  av_log_set_callback(log_cb);
}

void zoe__av_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, log_init);
  last_log[0] = '\0';
}

const char *zoe__av_last(void) { return last_log; }

/* ---- video.info's metadata (read from containers and from PNG text chunks) ---- */

int zoe__info_add(zoe_video_info *info, const char *key, const char *value) {
  char **k = realloc(info->keys, (info->nmeta + 1) * sizeof *k);
  if (!k) return ZOE_ENOMEM;
  info->keys = k;
  char **v = realloc(info->values, (info->nmeta + 1) * sizeof *v);
  if (!v) return ZOE_ENOMEM;
  info->values = v;
  k[info->nmeta] = strdup(key);
  v[info->nmeta] = strdup(value);
  if (!k[info->nmeta] || !v[info->nmeta]) {
    free(k[info->nmeta]);
    free(v[info->nmeta]);
    return ZOE_ENOMEM;
  }
  info->nmeta++;
  return 0;
}

void zoe_video_info_free(zoe_video_info *info) {
  for (int i = 0; i < info->nmeta; i++) {
    free(info->keys[i]);
    free(info->values[i]);
  }
  free(info->keys);
  free(info->values);
  memset(info, 0, sizeof *info);
}
