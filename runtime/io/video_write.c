/*
** video_write.c: the video writer: MP4/MOV/MKV (H.264), WebM (VP9) and GIF
** through libavformat, still images through video_still.c.
**
** The container goes to a temporary file beside the real name (created when
** the writer opens, so a bad folder fails at once) and is renamed by close.
** The size is fixed by the first chunk; the encoder and the header start then.
** Every packet carries its duration: without it the muxer cannot tell how
** long the last frame lasts, and an MP4 loses it.
*/
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/pool.h"
#include "tmpfiles.h"
#include "video_internal.h"

enum { OUT_H264, OUT_VP9, OUT_GIF, OUT_STILL };

struct zoe_video_writer {
  char *path;
  int kind;
  zoe_video_opts o;   /* its strings are owned by the writer */
  zoe__frames first;  /* the layout fixed by the first chunk */
  int started, failed, header_written;
  int64_t nframes;
  AVRational rate;
  zoe__still *still;
  /* containers */
  char *tmp;
  AVFormatContext *oc;
  AVStream *st;
  AVCodecContext *enc;
  AVFrame *src, *frame, *pal_out;
  AVPacket *pkt;
  zoe__scaler scaler;
  zoe__palette *pal; /* GIF */
};

static const char *x264_presets[] = {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                     "slow", "slower", "veryslow", "placebo", NULL};

static int kind_of(const char *ext) {
  if (!strcmp(ext, "mp4") || !strcmp(ext, "mov") || !strcmp(ext, "m4v") || !strcmp(ext, "mkv")) return OUT_H264;
  if (!strcmp(ext, "webm")) return OUT_VP9;
  if (!strcmp(ext, "gif")) return OUT_GIF;
  if (zoe__still_ext(ext)) return OUT_STILL;
  return -1;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void free_writer(zoe_video_writer *w) {
  avcodec_free_context(&w->enc);
  if (w->oc) {
    avio_closep(&w->oc->pb);
    avformat_free_context(w->oc);
  }
  av_frame_free(&w->src);
  av_frame_free(&w->frame);
  av_frame_free(&w->pal_out);
  av_packet_free(&w->pkt);
  zoe__scaler_free(&w->scaler);
  zoe__palette_free(w->pal);
  for (int i = 0; i < w->o.nmeta; i++) {
    free((char *)w->o.meta[i].key);
    free((char *)w->o.meta[i].value);
  }
  free((zoe_kv *)w->o.meta);
  free((char *)w->o.preset);
  free((char *)w->o.tune);
  free(w->tmp);
  free(w->path);
  free(w);
}

static int check_opts(const char *path, const zoe_video_opts *o, int kind, zoe_err *e) {
  const char *who = "video.write";
  if (!(o->fps > 0 && o->fps <= 1000))
    return zoe_errf(e, ZOE_EINVAL, "%s '%s': fps must be in (0, 1000], got %g", who, path, o->fps);
  int crf_max = kind == OUT_VP9 ? 63 : 51;
  if (o->crf > crf_max)
    return zoe_errf(e, ZOE_EINVAL, "%s '%s': crf must be 0..%d, got %d", who, path, crf_max, o->crf);
  if (o->preset) {
    int ok = 0;
    for (int i = 0; x264_presets[i]; i++) ok |= !strcmp(o->preset, x264_presets[i]);
    if (!ok)
      return zoe_errf(e, ZOE_EINVAL, "%s '%s': unknown preset '%s' (ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow, placebo)",
                      who, path, o->preset);
  }
  if (o->threads < -1 || o->threads > 64)
    return zoe_errf(e, ZOE_EINVAL, "%s '%s': threads must be -1 (auto) or 0..64, got %d", who, path, o->threads);
  if (o->quality < 0 || o->quality > 100)
    return zoe_errf(e, ZOE_EINVAL, "%s '%s': quality must be 1..100, got %d", who, path, o->quality);
  if (o->speed > 8) return zoe_errf(e, ZOE_EINVAL, "%s '%s': speed must be 0..8, got %d", who, path, o->speed);
  if (o->start_number < 0)
    return zoe_errf(e, ZOE_EINVAL, "%s '%s': start_number must be >= 0, got %d", who, path, o->start_number);
  for (int i = 0; i < o->nmeta; i++)
    if (!o->meta[i].key || !o->meta[i].key[0] || !o->meta[i].value)
      return zoe_errf(e, ZOE_EINVAL, "%s '%s': metadata entry %d has an empty key or no value", who, path, i + 1);
  return 0;
}

zoe_video_writer *zoe_video_writer_open(const char *path, const zoe_video_opts *opts, zoe_err *e) {
  zoe_video_opts defaults;
  zoe_video_opts_default(&defaults);
  const zoe_video_opts *o = opts ? opts : &defaults;
  zoe__av_init();
  char ext[16];
  int kind = kind_of(zoe__ext(path, ext, sizeof ext));
  if (kind < 0) {
    zoe_errf(e, ZOE_EINVAL, "video.write '%s': unknown extension '%s' (mp4, mov, mkv, webm, gif, png, jpg, webp)", path, ext);
    return NULL;
  }
  int pattern = strchr(path, '%') != NULL;
  if (pattern && kind != OUT_STILL) {
    zoe_errf(e, ZOE_EINVAL, "video.write '%s': a %%d pattern is for image files (.png, .jpg, .webp)", path);
    return NULL;
  }
  if (check_opts(path, o, kind, e)) return NULL;
  zoe_video_writer *w = calloc(1, sizeof *w);
  if (!w) goto nomem;
  w->kind = kind;
  w->o = *o;
  w->o.preset = w->o.tune = NULL;
  w->o.meta = NULL;
  w->o.nmeta = 0;
  if (!(w->path = strdup(path))) goto nomem;
  if ((o->preset && !(w->o.preset = strdup(o->preset))) || (o->tune && !(w->o.tune = strdup(o->tune)))) goto nomem;
  if (o->nmeta) {
    zoe_kv *meta = calloc((size_t)o->nmeta, sizeof *meta);
    if (!meta) goto nomem;
    w->o.meta = meta;
    for (int i = 0; i < o->nmeta; i++, w->o.nmeta++) {
      meta[i].key = dup_or_null(o->meta[i].key);
      meta[i].value = dup_or_null(o->meta[i].value);
      if (!meta[i].key || !meta[i].value) {
        w->o.nmeta++;
        goto nomem;
      }
    }
  }
  w->rate = av_d2q(o->fps, 100000);
  if (kind == OUT_STILL) {
    if (!(w->still = zoe__still_open(path, pattern, &w->o, e))) goto fail;
    return w;
  }
  int fd = zoe__tmp_create(path, &w->tmp, "video.write", e);
  if (fd < 0) goto fail;
  close(fd);
  return w;
nomem:
  zoe_errf(e, ZOE_ENOMEM, "video.write '%s': out of memory", path);
fail:
  if (w) free_writer(w);
  return NULL;
}

int64_t zoe_video_writer_frames(const zoe_video_writer *w) { return w->nframes; }
const char *zoe_video_writer_path(const zoe_video_writer *w) { return w->path; }

/* ---- starting: the encoder, the muxer and the header ---- */

static int setup_encoder(zoe_video_writer *w, const zoe__frames *f, zoe_err *e) {
  static const char *names[] = {"libx264", "libvpx-vp9", "gif"};
  const AVCodec *codec = avcodec_find_encoder_by_name(names[w->kind]);
  if (!codec) return zoe_errf(e, ZOE_ENOTSUP, "video.write '%s': this ffmpeg has no %s encoder", w->path, names[w->kind]);
  AVCodecContext *c = w->enc = avcodec_alloc_context3(codec);
  if (!c) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
  /* yuv420p H.264 needs even sizes: pad by repeating the last column / row */
  c->width = w->kind == OUT_H264 ? (f->width + 1) & ~1 : f->width;
  c->height = w->kind == OUT_H264 ? (f->height + 1) & ~1 : f->height;
  c->time_base = av_inv_q(w->rate);
  c->framerate = w->rate;
  c->sample_aspect_ratio = (AVRational){1, 1};
  c->thread_count = w->kind == OUT_GIF ? 1 : w->o.threads < 0 ? 0 : w->o.threads ? w->o.threads : ZOE_VIDEO_DEFAULT_THREADS;
  if (w->oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int rc = 0;
  if (w->kind == OUT_GIF) {
    c->pix_fmt = AV_PIX_FMT_PAL8;
  } else {
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->colorspace = AVCOL_SPC_BT709;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    c->color_range = AVCOL_RANGE_MPEG;
  }
  if (w->kind == OUT_H264) {
    rc = av_opt_set(c->priv_data, "preset", w->o.preset ? w->o.preset : "medium", 0);
    if (rc >= 0 && w->o.tune) rc = av_opt_set(c->priv_data, "tune", w->o.tune, 0);
    if (rc >= 0) rc = av_opt_set_double(c->priv_data, "crf", w->o.crf >= 0 ? w->o.crf : 18, 0);
#if defined(__x86_64__) || defined(__i386__)
    /*
    ** x264's AVX-512 code (libx264 0.164.3095, on an AMD EPYC with AVX-512) now and then
    ** makes other bytes from the same frames: 4 to 11 files in 60 in a process that also
    ** decodes, while every frame handed to x264 (padding included) was identical. Up to
    ** AVX2 it was stable (360 of 360) and gives the bytes of x264's C code, as on machines
    ** without AVX-512. (Where AVX2 is missing x264 picks no AVX-512 either.)
    */
    if (rc >= 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("fma"))
      rc = av_opt_set(c->priv_data, "x264-params", "asm=avx2", 0);
#endif
  } else if (w->kind == OUT_VP9) {
    c->bit_rate = 0; /* constant quality: crf alone decides */
    rc = av_opt_set_int(c->priv_data, "crf", w->o.crf >= 0 ? w->o.crf : 31, 0);
    if (rc >= 0) rc = av_opt_set_int(c->priv_data, "cpu-used", w->o.speed >= 0 ? w->o.speed : 4, 0);
    if (rc >= 0) rc = av_opt_set(c->priv_data, "deadline", "good", 0);
    if (rc >= 0) rc = av_opt_set_int(c->priv_data, "row-mt", 1, 0);
  }
  if (rc < 0) return zoe_errf(e, ZOE_EINVAL, "video.write '%s': encoder option: %s", w->path, ZOE__AVERR(rc));
  rc = avcodec_open2(c, codec, NULL);
  if (rc < 0) {
    const char *why = zoe__av_last();
    return zoe_errf(e, ZOE_EINVAL, "video.write '%s': cannot open the %s encoder for %dx%d: %s%s%s%s", w->path,
                    names[w->kind], c->width, c->height, ZOE__AVERR(rc), *why ? " (" : "", why, *why ? ")" : "");
  }
  return 0;
}

static int start(zoe_video_writer *w, const zoe__frames *f, zoe_err *e) {
  w->first = *f;
  w->started = 1;
  if (w->kind == OUT_STILL) return 0;
  int rc = avformat_alloc_output_context2(&w->oc, NULL, NULL, w->path);
  if (rc < 0 || !w->oc)
    return zoe_errf(e, ZOE_ENOTSUP, "video.write '%s': no muxer for this extension: %s", w->path, ZOE__AVERR(rc));
  /* no random segment ids, no dates, no version strings: the same frames give the same bytes */
  w->oc->flags |= AVFMT_FLAG_BITEXACT;
  if ((rc = setup_encoder(w, f, e))) return rc;
  AVCodecContext *c = w->enc;
  if (!(w->st = avformat_new_stream(w->oc, NULL))) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
  if ((rc = avcodec_parameters_from_context(w->st->codecpar, c)) < 0)
    return zoe_errf(e, ZOE_EINVAL, "video.write '%s': %s", w->path, ZOE__AVERR(rc));
  w->st->time_base = c->time_base;
  w->st->avg_frame_rate = w->rate;
  for (int i = 0; i < w->o.nmeta; i++) av_dict_set(&w->oc->metadata, w->o.meta[i].key, w->o.meta[i].value, 0);
  char url[4096 + 8];
  snprintf(url, sizeof url, "file:%s", w->tmp);
  if ((rc = avio_open(&w->oc->pb, url, AVIO_FLAG_WRITE)) < 0)
    return zoe_errf(e, ZOE_EIO, "video.write '%s': opening '%s': %s", w->path, w->tmp, ZOE__AVERR(rc));
  AVDictionary *mux = NULL;
  /* MP4/MOV keep only known tags unless asked to store any key */
  if (w->o.nmeta && (!strcmp(w->oc->oformat->name, "mp4") || !strcmp(w->oc->oformat->name, "mov")))
    av_dict_set(&mux, "movflags", "use_metadata_tags", 0);
  rc = avformat_write_header(w->oc, &mux);
  av_dict_free(&mux);
  if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write '%s': writing the header: %s", w->path, ZOE__AVERR(rc));
  w->header_written = 1;
  w->src = av_frame_alloc();
  w->frame = av_frame_alloc();
  w->pkt = av_packet_alloc();
  if (!w->src || !w->frame || !w->pkt) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
  w->src->format = zoe__frames_pix_fmt(f);
  w->src->width = f->width;
  w->src->height = f->height;
  /* GIF: frames go to the palette filter in BGRA; others to the encoder in its format */
  w->frame->format = w->kind == OUT_GIF ? AV_PIX_FMT_BGRA : c->pix_fmt;
  w->frame->width = w->kind == OUT_GIF ? f->width : c->width;
  w->frame->height = w->kind == OUT_GIF ? f->height : c->height;
  if (zoe__frame_buffer(w->src) || zoe__frame_buffer(w->frame))
    return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory for %dx%d frames", f->width, f->height);
  if (w->kind == OUT_GIF) {
    if (!(w->pal_out = av_frame_alloc())) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
    if (!(w->pal = zoe__palette_new(f->width, f->height, c->time_base, e))) return e->code;
  }
  return 0;
}

/* ---- encoding ---- */

/* Send 'frame' (NULL: flush) and write every packet that comes out. */
static int encode(zoe_video_writer *w, AVFrame *frame, zoe_err *e) {
  int rc = avcodec_send_frame(w->enc, frame);
  if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write '%s': encoding: %s", w->path, ZOE__AVERR(rc));
  for (;;) {
    rc = avcodec_receive_packet(w->enc, w->pkt);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
    if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write '%s': encoding: %s", w->path, ZOE__AVERR(rc));
    if (w->pkt->duration <= 0) w->pkt->duration = 1; /* one frame, in 1/fps */
    av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
    w->pkt->stream_index = w->st->index;
    rc = av_interleaved_write_frame(w->oc, w->pkt); /* takes the packet's data */
    if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write '%s': writing '%s': %s", w->path, w->tmp, ZOE__AVERR(rc));
  }
}

/* Pass what the palette filter has ready to the GIF encoder. */
static int drain_palette(zoe_video_writer *w, zoe_err *e) {
  for (;;) {
    int rc = zoe__palette_pull(w->pal, w->pal_out, e);
    if (rc) return rc > 0 ? 0 : rc;
    rc = encode(w, w->pal_out, e);
    av_frame_unref(w->pal_out);
    if (rc) return rc;
  }
}

/* Repeat the last column and row into the padding of an odd-sized H.264 frame. */
static void pad_edges(AVFrame *fr, int width, int height) {
  uint8_t *y = fr->data[0];
  int ls = fr->linesize[0];
  if (fr->width > width)
    for (int r = 0; r < height; r++) y[(size_t)r * ls + width] = y[(size_t)r * ls + width - 1];
  if (fr->height > height) memcpy(y + (size_t)height * ls, y + (size_t)(height - 1) * ls, fr->width);
}

static int write_frame(zoe_video_writer *w, const zoe_tensor *frames, const zoe__frames *f, int64_t t, zoe_err *e) {
  int rc = zoe__frame_fill(frames, f, t, w->src, e);
  if (rc) return rc;
  /* the encoder or the palette filter may still hold the last frame: take a new buffer then */
  if (zoe__frame_buffer(w->frame)) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
  rc = zoe__scale(&w->scaler, w->src, w->frame, f->width, f->height, SWS_BICUBIC | SWS_BITEXACT | SWS_ACCURATE_RND,
                  SWS_CS_ITU709, -1, e);
  if (rc) return zoe_err_prefix(e, "video.write '%s'", w->path);
  w->frame->pts = w->nframes;
  if (w->kind == OUT_GIF) {
    if ((rc = zoe__palette_push(w->pal, w->frame, e))) return rc;
    return drain_palette(w, e);
  }
  if (w->kind == OUT_H264) pad_edges(w->frame, f->width, f->height);
  return encode(w, w->frame, e);
}

int zoe_video_writer_write(zoe_video_writer *w, const zoe_tensor *frames, zoe_err *e) {
  if (w->failed)
    return zoe_errf(e, ZOE_EINVAL, "video.write '%s': an earlier write failed; the file will not be written", w->path);
  zoe__frames f;
  int rc = zoe__frames_check(frames, &f, "video.write", w->path, e);
  if (rc) return rc;
  if (w->started && (f.width != w->first.width || f.height != w->first.height || f.channels != w->first.channels)) {
    char s[96];
    return zoe_errf(e, ZOE_ESHAPE,
                    "video.write '%s': frames %s do not match the %d frames written before (%d channels, %dx%d)",
                    w->path, zoe_shape_str(frames, s, sizeof s), (int)w->nframes, w->first.channels,
                    w->first.width, w->first.height);
  }
  if (f.count == 0) return 0;
  if (w->kind == OUT_STILL) {
    rc = zoe__still_write(w->still, frames, &f, e);
    if (!rc) w->first = f, w->started = 1;
    else if (rc != ZOE_EINVAL) w->failed = 1; /* a refused chunk leaves the writer usable */
    w->nframes = zoe__still_frames(w->still);
    return rc;
  }
  if (!w->started && (rc = start(w, &f, e))) {
    w->failed = 1;
    return rc;
  }
  for (int64_t t = 0; t < f.count; t++) {
    if (zoe_cancel_requested()) rc = zoe_errf(e, ZOE_ECANCELED, "video.write '%s': canceled", w->path);
    else rc = write_frame(w, frames, &f, t, e);
    if (rc) {
      w->failed = 1;
      return rc;
    }
    w->nframes++;
  }
  return 0;
}

/* ---- finishing ---- */

static int finish(zoe_video_writer *w, zoe_err *e) {
  int rc = 0;
  if (w->kind == OUT_GIF) {
    if (!(rc = zoe__palette_push(w->pal, NULL, e))) rc = drain_palette(w, e);
  }
  if (!rc) rc = encode(w, NULL, e);
  if (rc) return rc;
  int av = av_write_trailer(w->oc);
  w->header_written = 0;
  if (av >= 0 && w->oc->pb->error < 0) av = w->oc->pb->error;
  int closed = avio_closep(&w->oc->pb);
  if (av >= 0) av = closed;
  if (av < 0) return zoe_errf(e, ZOE_EIO, "video.write '%s': finishing '%s': %s", w->path, w->tmp, ZOE__AVERR(av));
  if (rename(w->tmp, w->path) != 0)
    return zoe_errf(e, ZOE_EIO, "video.write: renaming '%s' to '%s': %s", w->tmp, w->path, strerror(errno));
  zoe_tmpfiles_forget(w->tmp);
  w->tmp[0] = '\0';
  return 0;
}

int zoe_video_writer_close(zoe_video_writer *w, zoe_err *e) {
  int rc;
  if (w->failed) {
    rc = zoe_errf(e, ZOE_EINVAL, "video.write '%s': an earlier write failed; nothing was written", w->path);
  } else if (w->nframes == 0) {
    rc = zoe_errf(e, ZOE_EINVAL, "video.write '%s': no frames were written", w->path);
  } else if (w->kind == OUT_STILL) {
    zoe__still *s = w->still;
    w->still = NULL;
    rc = zoe__still_close(s, e);
  } else {
    rc = finish(w, e);
  }
  zoe_video_writer_abort(w);
  return rc;
}

void zoe_video_writer_abort(zoe_video_writer *w) {
  if (!w) return;
  if (w->still) zoe__still_abort(w->still);
  if (w->oc && w->oc->pb) avio_closep(&w->oc->pb);
  if (w->tmp && w->tmp[0]) {
    unlink(w->tmp);
    zoe_tmpfiles_forget(w->tmp);
  }
  free_writer(w);
}

int zoe_video_write(const zoe_tensor *frames, const char *path, const zoe_video_opts *o, zoe_err *e) {
  zoe_video_writer *w = zoe_video_writer_open(path, o, e);
  if (!w) return e && e->code ? e->code : ZOE_EINVAL;
  int rc = zoe_video_writer_write(w, frames, e);
  if (rc) {
    zoe_video_writer_abort(w);
    return rc;
  }
  return zoe_video_writer_close(w, e);
}
