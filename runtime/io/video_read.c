/*
** video_read.c: decoding anything ffmpeg reads into (3, T, H, W) f32, with
** resizing (swscale, bicubic) and frame-rate resampling, and probing a file
** for its size, rate, frame count, codec and metadata.
**
** Frames are kept as u8 while decoding (a quarter of the f32 size, and T is not
** known until the end), then widened once into the result.
** Resampling to 'fps' takes for output frame k (at time k / fps from the first
** frame) the source frame shown at that time: the last one starting at or before it.
** The reader is strict: a damaged packet, a read error or a file shorter than
** its header says is an error, not a quietly shorter video.
*/
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/pool.h"
#include "video_internal.h"

typedef struct reader {
  const char *path, *who;
  zoe_video_read_opts o;
  AVFormatContext *fc;
  AVCodecContext *dec;
  AVStream *st;
  AVPacket *pkt;
  AVFrame *frame, *conv[2]; /* decoded; converted (current, previous) */
  zoe__scaler scaler;
  int ow, oh;               /* output size, fixed by the first frame */
  size_t frame_bytes;       /* 3 * ow * oh */
  uint8_t *buf;             /* the output frames, u8 */
  int64_t n, cap;
  int64_t decoded;          /* frames out of the decoder */
  int64_t first_ts;
  double last_time, last_dur; /* seconds, of the previous decoded frame */
  int done;                 /* got max_frames */
} reader;

/* ---- opening ---- */

static int open_input(const char *path, const char *who, AVFormatContext **fc, AVStream **st, zoe_err *e) {
  zoe__av_init();
  *fc = NULL;
  struct stat sb;
  int pattern = strchr(path, '%') != NULL;
  if (!pattern) {
    if (stat(path, &sb) != 0) return zoe_errf(e, ZOE_EIO, "%s '%s': %s", who, path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return zoe_errf(e, ZOE_EIO, "%s '%s': is a folder, not a file", who, path);
    if (sb.st_size == 0) return zoe_errf(e, ZOE_EFORMAT, "%s '%s': the file is empty", who, path);
  }
  /* "file:" so a name with a colon is never taken for a protocol */
  size_t n = strlen(path) + 6;
  char *url = malloc(n);
  if (!url) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", who);
  snprintf(url, n, "file:%s", path);
  int rc = avformat_open_input(fc, url, NULL, NULL);
  free(url);
  const char *why = zoe__av_last();
  if (rc < 0)
    return zoe_errf(e, rc == AVERROR(ENOENT) ? ZOE_EIO : ZOE_EFORMAT, "%s '%s': not a video or image ffmpeg can read: %s%s%s%s",
                    who, path, ZOE__AVERR(rc), *why ? " (" : "", why, *why ? ")" : "");
  rc = avformat_find_stream_info(*fc, NULL);
  if (rc < 0) return zoe_errf(e, ZOE_EFORMAT, "%s '%s': cannot find its streams: %s", who, path, ZOE__AVERR(rc));
  int idx = av_find_best_stream(*fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
  if (idx < 0) return zoe_errf(e, ZOE_EFORMAT, "%s '%s': no video stream (format %s)", who, path, (*fc)->iformat->name);
  *st = (*fc)->streams[idx];
  if ((*st)->codecpar->width <= 0 || (*st)->codecpar->height <= 0)
    return zoe_errf(e, ZOE_EFORMAT, "%s '%s': the video stream has no size", who, path);
  return 0;
}

static int open_decoder(reader *r, zoe_err *e) {
  const AVCodec *codec = avcodec_find_decoder(r->st->codecpar->codec_id);
  if (!codec)
    return zoe_errf(e, ZOE_ENOTSUP, "%s '%s': no decoder for codec %s", r->who, r->path,
                    avcodec_get_name(r->st->codecpar->codec_id));
  if (!(r->dec = avcodec_alloc_context3(codec))) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", r->who);
  int rc = avcodec_parameters_to_context(r->dec, r->st->codecpar);
  if (rc >= 0) {
    r->dec->thread_count = zoe_pool_threads() < 16 ? zoe_pool_threads() : 16;
    r->dec->pkt_timebase = r->st->time_base;
    rc = avcodec_open2(r->dec, codec, NULL);
  }
  if (rc < 0) return zoe_errf(e, ZOE_EFORMAT, "%s '%s': cannot open the %s decoder: %s", r->who, r->path, codec->name, ZOE__AVERR(rc));
  return 0;
}

/* ---- frames ---- */

static int colorspace_of(const AVFrame *f) {
  switch (f->colorspace) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_ITU601;
  }
}

/* Choose the output size from the first frame and the options. */
static int set_size(reader *r, const AVFrame *f, zoe_err *e) {
  int w = r->o.width, h = r->o.height;
  if (w <= 0 && h <= 0) w = f->width, h = f->height;
  else if (w <= 0) w = (int)((int64_t)f->width * h / f->height);
  else if (h <= 0) h = (int)((int64_t)f->height * w / f->width);
  if (w < 1) w = 1;
  if (h < 1) h = 1;
  if (w > 16384 || h > 16384) return zoe_errf(e, ZOE_EINVAL, "%s '%s': output size %dx%d is too big", r->who, r->path, w, h);
  r->ow = w, r->oh = h;
  r->frame_bytes = (size_t)3 * w * h;
  for (int i = 0; i < 2; i++) {
    if (!(r->conv[i] = av_frame_alloc())) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", r->who);
    r->conv[i]->format = r->o.u8 ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_GBRP;
    r->conv[i]->width = w;
    r->conv[i]->height = h;
    if (zoe__frame_buffer(r->conv[i])) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory for %dx%d frames", r->who, w, h);
  }
  return 0;
}

/* Append converted frame 'c' to the output (planes R, G, B, or packed RGB for u8). */
static int emit(reader *r, const AVFrame *c, zoe_err *e) {
  if (r->o.max_frames > 0 && r->n >= r->o.max_frames) {
    r->done = 1;
    return 0;
  }
  if (r->n == r->cap) {
    int64_t cap = r->cap ? r->cap * 2 : 16;
    if (r->o.max_frames > 0 && cap > r->o.max_frames) cap = r->o.max_frames;
    uint8_t *b = realloc(r->buf, (size_t)cap * r->frame_bytes);
    if (!b)
      return zoe_errf(e, ZOE_ENOMEM, "%s '%s': out of memory after %lld frames of %dx%d", r->who, r->path,
                      (long long)r->n, r->ow, r->oh);
    r->buf = b;
    r->cap = cap;
  }
  uint8_t *dst = r->buf + (size_t)r->n * r->frame_bytes;
  size_t plane = (size_t)r->ow * r->oh;
  if (r->o.u8) {
    for (int y = 0; y < r->oh; y++) memcpy(dst + (size_t)y * 3 * r->ow, c->data[0] + (size_t)y * c->linesize[0], 3 * (size_t)r->ow);
  } else {
    static const int plane_of[3] = {2, 0, 1}; /* R, G, B from GBRP */
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < r->oh; y++)
        memcpy(dst + ch * plane + (size_t)y * r->ow, c->data[plane_of[ch]] + (size_t)y * c->linesize[plane_of[ch]], r->ow);
  }
  r->n++;
  if (r->o.max_frames > 0 && r->n >= r->o.max_frames) r->done = 1;
  return 0;
}

/* Emit the previous frame for every output time before 'until' (seconds). */
static int emit_until(reader *r, double until, zoe_err *e) {
  const double tol = 1e-4;
  while (!r->done && (double)r->n / r->o.fps < until - tol) {
    int rc = emit(r, r->conv[1], e);
    if (rc) return rc;
  }
  return 0;
}

static int got_frame(reader *r, AVFrame *f, zoe_err *e) {
  int rc;
  if (!r->ow && (rc = set_size(r, f, e))) return rc;
  double tb = av_q2d(r->st->time_base);
  int64_t ts = f->best_effort_timestamp;
  double rate = av_q2d(r->st->avg_frame_rate.num ? r->st->avg_frame_rate : r->st->r_frame_rate);
  double dur = f->pkt_duration > 0 ? f->pkt_duration * tb : rate > 0 ? 1 / rate : 0;
  double time;
  if (ts == AV_NOPTS_VALUE) time = r->decoded ? r->last_time + r->last_dur : 0;
  else {
    if (!r->decoded) r->first_ts = ts;
    time = (ts - r->first_ts) * tb;
  }
  r->decoded++;
  if (zoe__frame_buffer(r->conv[0])) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", r->who);
  int range = f->color_range == AVCOL_RANGE_JPEG ? 1 : f->color_range == AVCOL_RANGE_MPEG ? 0 : -1;
  rc = zoe__scale(&r->scaler, f, r->conv[0], r->ow, r->oh,
                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, colorspace_of(f), range, e);
  if (rc) return zoe_err_prefix(e, "%s '%s': frame %lld", r->who, r->path, (long long)r->decoded);
  if (r->o.fps > 0) {
    if (r->decoded > 1 && (rc = emit_until(r, time, e))) return rc;
    AVFrame *t = r->conv[0]; /* the new frame becomes the previous one */
    r->conv[0] = r->conv[1];
    r->conv[1] = t;
  } else if ((rc = emit(r, r->conv[0], e))) {
    return rc;
  }
  r->last_time = time;
  r->last_dur = dur > 0 ? dur : r->o.fps > 0 ? 1 / r->o.fps : 0;
  return 0;
}

/* Send 'pkt' (NULL: flush) and take every frame the decoder gives. */
static int decode(reader *r, const AVPacket *pkt, zoe_err *e) {
  int rc = avcodec_send_packet(r->dec, pkt);
  if (rc < 0 && rc != AVERROR_EOF) {
    const char *why = zoe__av_last();
    return zoe_errf(e, ZOE_EFORMAT, "%s '%s': damaged data after %lld frames: %s%s%s%s", r->who, r->path,
                    (long long)r->decoded, ZOE__AVERR(rc), *why ? " (" : "", why, *why ? ")" : "");
  }
  while (!r->done) {
    rc = avcodec_receive_frame(r->dec, r->frame);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
    if (rc < 0) return zoe_errf(e, ZOE_EFORMAT, "%s '%s': damaged frame after %lld frames: %s", r->who, r->path, (long long)r->decoded, ZOE__AVERR(rc));
    if (r->frame->decode_error_flags || (r->frame->flags & AV_FRAME_FLAG_CORRUPT)) {
      av_frame_unref(r->frame);
      return zoe_errf(e, ZOE_EFORMAT, "%s '%s': frame %lld is damaged", r->who, r->path, (long long)r->decoded + 1);
    }
    rc = got_frame(r, r->frame, e);
    av_frame_unref(r->frame);
    if (rc) return rc;
  }
  return 0;
}

static int run(reader *r, zoe_err *e) {
  int rc = open_input(r->path, r->who, &r->fc, &r->st, e);
  if (rc || (rc = open_decoder(r, e))) return rc;
  if (!(r->pkt = av_packet_alloc()) || !(r->frame = av_frame_alloc()))
    return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", r->who);
  int av = 0;
  while (!r->done && (av = av_read_frame(r->fc, r->pkt)) >= 0) {
    if (r->pkt->stream_index == r->st->index) {
      if (r->pkt->flags & AV_PKT_FLAG_CORRUPT) rc = zoe_errf(e, ZOE_EFORMAT, "%s '%s': damaged packet after %lld frames", r->who, r->path, (long long)r->decoded);
      else rc = decode(r, r->pkt, e);
    }
    av_packet_unref(r->pkt);
    if (rc) return rc;
    if (zoe_cancel_requested()) return zoe_errf(e, ZOE_ECANCELED, "%s '%s': canceled", r->who, r->path);
  }
  if (!r->done && av != AVERROR_EOF) {
    const char *why = zoe__av_last();
    return zoe_errf(e, ZOE_EFORMAT, "%s '%s': read error after %lld frames: %s%s%s%s", r->who, r->path,
                    (long long)r->decoded, ZOE__AVERR(av), *why ? " (" : "", why, *why ? ")" : "");
  }
  if (!r->done && (rc = decode(r, NULL, e))) return rc;
  if (r->decoded == 0) return zoe_errf(e, ZOE_EFORMAT, "%s '%s': no frame could be decoded", r->who, r->path);
  int64_t listed = r->st->nb_frames;
  if (!r->done && listed > 0 && r->decoded < listed)
    return zoe_errf(e, ZOE_EFORMAT, "%s '%s': truncated: the header lists %lld frames, only %lld could be read",
                    r->who, r->path, (long long)listed, (long long)r->decoded);
  /* a stream that ends well before the duration in its header was cut short */
  double header = r->st->duration > 0 ? r->st->duration * av_q2d(r->st->time_base)
                  : r->fc->nb_streams == 1 && r->fc->duration_estimation_method == AVFMT_DURATION_FROM_STREAM
                    ? r->fc->duration / (double)AV_TIME_BASE : 0;
  double end = r->last_time + r->last_dur, slack = r->last_dur > 0 ? 1.5 * r->last_dur : 0.1;
  if (!r->done && header > 0 && end < header - slack)
    return zoe_errf(e, ZOE_EFORMAT, "%s '%s': truncated: the header says %.3f s, the frames end at %.3f s",
                    r->who, r->path, header, end);
  if (r->o.fps > 0 && !r->done) rc = emit_until(r, end, e);
  return rc;
}

static zoe_tensor *result(reader *r, zoe_err *e) {
  int64_t T = r->n, H = r->oh, W = r->ow;
  zoe_tensor *t = r->o.u8 ? zoe_empty(ZOE_U8, 4, (int64_t[]){T, H, W, 3}, e) : zoe_empty(ZOE_F32, 4, (int64_t[]){3, T, H, W}, e);
  if (!t) return NULL;
  if (r->o.u8) {
    memcpy(zoe_data(t), r->buf, (size_t)T * r->frame_bytes);
  } else {
    float *out = zoe_data(t);
    int64_t plane = H * W;
    for (int64_t k = 0; k < T; k++)
      for (int c = 0; c < 3; c++)
        zoe__u8_to_f32(out + (c * T + k) * plane, r->buf + (size_t)k * r->frame_bytes + c * plane, plane);
  }
  return t;
}

static void reader_free(reader *r) {
  avcodec_free_context(&r->dec);
  avformat_close_input(&r->fc);
  av_packet_free(&r->pkt);
  av_frame_free(&r->frame);
  av_frame_free(&r->conv[0]);
  av_frame_free(&r->conv[1]);
  zoe__scaler_free(&r->scaler);
  free(r->buf);
}

zoe_tensor *zoe__video_read(const char *path, const zoe_video_read_opts *o, const char *who, zoe_err *e) {
  reader r = {.path = path, .who = who};
  if (o) r.o = *o;
  if (r.o.max_frames < 0 || r.o.fps < 0 || r.o.fps > 1000 || r.o.width < 0 || r.o.height < 0) {
    zoe_errf(e, ZOE_EINVAL, "%s '%s': frames, fps (<= 1000), width and height must not be negative", who, path);
    return NULL;
  }
  zoe_tensor *t = run(&r, e) ? NULL : result(&r, e);
  reader_free(&r);
  return t;
}

zoe_tensor *zoe_video_read(const char *path, const zoe_video_read_opts *o, zoe_err *e) {
  return zoe__video_read(path, o, "video.read", e);
}

/* ---- probing ---- */

int zoe_video_probe(const char *path, zoe_video_info *info, zoe_err *e) {
  memset(info, 0, sizeof *info);
  AVFormatContext *fc = NULL;
  AVStream *st = NULL;
  int rc = open_input(path, "video.info", &fc, &st, e);
  if (rc) {
    avformat_close_input(&fc);
    return rc;
  }
  AVCodecParameters *p = st->codecpar;
  info->width = p->width;
  info->height = p->height;
  AVRational rate = st->avg_frame_rate.num ? st->avg_frame_rate : st->r_frame_rate;
  info->fps = rate.num && rate.den ? av_q2d(rate) : 0;
  snprintf(info->codec, sizeof info->codec, "%s", avcodec_get_name(p->codec_id));
  snprintf(info->format, sizeof info->format, "%s", fc->iformat->name);
  const char *pf = av_get_pix_fmt_name(p->format);
  snprintf(info->pix_fmt, sizeof info->pix_fmt, "%s", pf ? pf : "");
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) info->duration = st->duration * av_q2d(st->time_base);
  else if (fc->duration != AV_NOPTS_VALUE && fc->duration > 0) info->duration = fc->duration / (double)AV_TIME_BASE;
  info->frames = st->nb_frames;
  if (info->frames <= 0) { /* the container does not say: count the packets */
    AVPacket *pkt = av_packet_alloc();
    int64_t n = 0;
    while (pkt && av_read_frame(fc, pkt) >= 0) {
      if (pkt->stream_index == st->index && !(pkt->flags & AV_PKT_FLAG_DISCARD)) n++;
      av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    info->frames = n;
  }
  const AVDictionaryEntry *t = NULL;
  while (!rc && (t = av_dict_get(fc->metadata, "", t, AV_DICT_IGNORE_SUFFIX)))
    if (zoe__info_add(info, t->key, t->value)) rc = zoe_errf(e, ZOE_ENOMEM, "video.info: out of memory");
  /* Matroska stores tag names in upper case; give them in lower case, as MP4 does */
  if (!strncmp(info->format, "matroska", 8))
    for (int i = 0; i < info->nmeta; i++)
      for (char *k = info->keys[i]; *k; k++) *k = (char)(*k >= 'A' && *k <= 'Z' ? *k + 32 : *k);
  avformat_close_input(&fc);
  if (!rc && !strcmp(info->codec, "png")) zoe__png_read_text(path, info);
  if (rc) zoe_video_info_free(info);
  return rc;
}
