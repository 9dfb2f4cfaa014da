/*
** video_still.c: still images: one PNG/JPEG/WebP file, or one file a frame
** for a pattern like "frames/%04d.png". An image encoder's packet is the whole
** file, so no muxer is needed. Each file goes to a temporary name; close
** renames them all, abort removes them all.
** PNG files also carry the metadata, as tEXt chunks (iTXt when not ASCII).
*/
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/crc.h>
#include <libavutil/opt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmpfiles.h"
#include "video_internal.h"

enum { IMG_PNG, IMG_JPEG, IMG_WEBP };

struct zoe__still {
  char *path;      /* the real name, or the pattern */
  int pattern;
  int kind;        /* IMG_* */
  const zoe_video_opts *o; /* the writer's copy, alive as long as 's' */
  AVCodecContext *enc;
  AVFrame *src, *frame;
  AVPacket *pkt;
  zoe__scaler scaler;
  int64_t n, cap;
  char **tmps, **finals;
};

int zoe__still_ext(const char *ext) {
  return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "webp");
}

int64_t zoe__still_frames(const zoe__still *s) { return s->n; }

/* PNG keywords are 1..79 printable Latin-1 characters (we allow ASCII). */
static int png_keyword_ok(const char *k) {
  size_t n = strlen(k);
  if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
  for (const unsigned char *p = (const unsigned char *)k; *p; p++)
    if (*p < 32 || *p > 126) return 0;
  return 1;
}

zoe__still *zoe__still_open(const char *path, int pattern, const zoe_video_opts *o, zoe_err *e) {
  char ext[16];
  zoe__ext(path, ext, sizeof ext);
  if (pattern) {
    char probe[4096];
    if (av_get_frame_filename2(probe, sizeof probe, path, o->start_number, 0) < 0) {
      zoe_errf(e, ZOE_EINVAL, "video.write '%s': a pattern needs exactly one %%d (like 'frames/%%04d.png')", path);
      return NULL;
    }
    if (zoe__check_dir(probe, "video.write", e)) return NULL;
  } else if (zoe__check_dir(path, "video.write", e)) {
    return NULL;
  }
  int kind = !strcmp(ext, "png") ? IMG_PNG : !strcmp(ext, "webp") ? IMG_WEBP : IMG_JPEG;
  if (kind == IMG_PNG)
    for (int i = 0; i < o->nmeta; i++)
      if (!png_keyword_ok(o->meta[i].key)) {
        zoe_errf(e, ZOE_EINVAL, "video.write '%s': metadata key '%s' is not a PNG keyword (1..79 ASCII characters)",
                 path, o->meta[i].key);
        return NULL;
      }
  zoe__still *s = calloc(1, sizeof *s);
  if (!s || !(s->path = strdup(path))) {
    free(s);
    zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
    return NULL;
  }
  s->pattern = pattern;
  s->kind = kind;
  s->o = o;
  return s;
}

static void free_still(zoe__still *s) {
  avcodec_free_context(&s->enc);
  av_frame_free(&s->src);
  av_frame_free(&s->frame);
  av_packet_free(&s->pkt);
  zoe__scaler_free(&s->scaler);
  for (int64_t i = 0; i < s->n; i++) {
    free(s->tmps[i]);
    free(s->finals[i]);
  }
  free(s->tmps);
  free(s->finals);
  free(s->path);
  free(s);
}

static int open_encoder(zoe__still *s, const zoe__frames *f, zoe_err *e) {
  static const char *names[] = {"png", "mjpeg", "libwebp"};
  const AVCodec *codec = avcodec_find_encoder_by_name(names[s->kind]);
  if (!codec) return zoe_errf(e, ZOE_ENOTSUP, "video.write '%s': this ffmpeg has no %s encoder", s->path, names[s->kind]);
  AVCodecContext *c = s->enc = avcodec_alloc_context3(codec);
  s->src = av_frame_alloc();
  s->frame = av_frame_alloc();
  s->pkt = av_packet_alloc();
  if (!c || !s->src || !s->frame || !s->pkt) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
  c->width = f->width;
  c->height = f->height;
  c->time_base = (AVRational){1, 25};
  c->thread_count = 1;
  int quality = s->o->quality > 0 ? s->o->quality : 90;
  if (quality > 100) quality = 100;
  if (s->kind == IMG_PNG) {
    c->pix_fmt = f->channels == 1 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
    av_opt_set(c->priv_data, "pred", "paeth", 0);
  } else if (s->kind == IMG_JPEG) {
    c->pix_fmt = AV_PIX_FMT_YUVJ420P;
    c->color_range = AVCOL_RANGE_JPEG;
    c->flags |= AV_CODEC_FLAG_QSCALE;
    /* quality 100 -> q 2 (the best mjpeg allows), 1 -> q 31 */
    c->global_quality = FF_QP2LAMBDA * (2 + (100 - quality) * 29 / 99);
  } else {
    c->pix_fmt = AV_PIX_FMT_RGB32;
    av_opt_set_double(c->priv_data, "quality", quality, 0);
    if (quality >= 100) av_opt_set_int(c->priv_data, "lossless", 1, 0);
  }
  int rc = avcodec_open2(c, codec, NULL);
  if (rc < 0) return zoe_errf(e, ZOE_ENOTSUP, "video.write '%s': cannot open the %s encoder: %s", s->path, names[s->kind], ZOE__AVERR(rc));
  s->src->format = zoe__frames_pix_fmt(f);
  s->src->width = f->width;
  s->src->height = f->height;
  s->frame->format = c->pix_fmt;
  s->frame->width = f->width;
  s->frame->height = f->height;
  if (zoe__frame_buffer(s->src) || zoe__frame_buffer(s->frame))
    return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory for %dx%d frames", f->width, f->height);
  return 0;
}

/* ---- PNG text chunks ---- */

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int is_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s > 126 || ((unsigned char)*s < 32 && *s != '\n' && *s != '\t')) return 0;
  return 1;
}

/* One chunk (length, type, data, CRC) for metadata entry 'kv' into 'out' (NULL: just the size). */
static size_t text_chunk(const zoe_kv *kv, uint8_t *out) {
  size_t kl = strlen(kv->key), vl = strlen(kv->value);
  int itxt = !is_ascii(kv->value);
  size_t dl = kl + 1 + (itxt ? 4 : 0) + vl; /* iTXt: key\0, flag, method, lang\0, tkey\0 */
  if (!out) return dl + 12;
  put_be32(out, (uint32_t)dl);
  memcpy(out + 4, itxt ? "iTXt" : "tEXt", 4);
  uint8_t *d = out + 8;
  memcpy(d, kv->key, kl + 1);
  d += kl + 1;
  if (itxt) memset(d, 0, 4), d += 4;
  memcpy(d, kv->value, vl);
  uint32_t crc = av_crc(av_crc_get_table(AV_CRC_32_IEEE_LE), UINT32_MAX, out + 4, dl + 4) ^ UINT32_MAX;
  put_be32(out + 8 + dl, crc);
  return dl + 12;
}

/* ---- writing ---- */

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Write one encoded image (plus PNG text) to a new temporary file beside 'final'. */
static int save(zoe__still *s, const char *final, const AVPacket *pkt, zoe_err *e) {
  if (s->n == s->cap) {
    int64_t cap = s->cap ? 2 * s->cap : 16;
    char **t = realloc(s->tmps, cap * sizeof *t), **f;
    if (t) s->tmps = t;
    f = t ? realloc(s->finals, cap * sizeof *f) : NULL;
    if (!f) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
    s->finals = f;
    s->cap = cap;
  }
  char *final_copy = strdup(final), *tmp = NULL;
  if (!final_copy) return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
  int fd = zoe__tmp_create(final, &tmp, "video.write", e);
  if (fd < 0) {
    free(final_copy);
    return e->code;
  }
  s->tmps[s->n] = tmp;
  s->finals[s->n] = final_copy;
  s->n++;
  int bad = 0;
  /* PNG: signature (8) + IHDR (25), then our text chunks, then the rest */
  const size_t head = 33;
  if (s->kind == IMG_PNG && s->o->nmeta && (size_t)pkt->size > head) {
    bad = write_all(fd, pkt->data, head);
    for (int i = 0; i < s->o->nmeta && !bad; i++) {
      size_t n = text_chunk(&s->o->meta[i], NULL);
      uint8_t *buf = malloc(n);
      if (!buf) {
        close(fd);
        return zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
      }
      text_chunk(&s->o->meta[i], buf);
      bad = write_all(fd, buf, n);
      free(buf);
    }
    if (!bad) bad = write_all(fd, pkt->data + head, pkt->size - head);
  } else {
    bad = write_all(fd, pkt->data, pkt->size);
  }
  int err = errno;
  if (close(fd) != 0 && !bad) bad = 1, err = errno;
  if (bad) return zoe_errf(e, ZOE_EIO, "video.write '%s': writing '%s': %s", final, tmp, strerror(err));
  return 0;
}

int zoe__still_write(zoe__still *s, const zoe_tensor *frames, const zoe__frames *f, zoe_err *e) {
  if (!s->pattern && s->n + f->count > 1)
    return zoe_errf(e, ZOE_EINVAL,
                    "video.write '%s': an image holds one frame, got %lld (write a pattern like 'frames/%%04d.png' for several)",
                    s->path, (long long)(s->n + f->count));
  if (!s->enc) {
    int rc = open_encoder(s, f, e);
    if (rc) return rc;
  }
  for (int64_t t = 0; t < f->count; t++) {
    int rc = zoe__frame_fill(frames, f, t, s->src, e);
    if (!rc && zoe__frame_buffer(s->frame)) rc = zoe_errf(e, ZOE_ENOMEM, "video.write: out of memory");
    if (!rc) rc = zoe__scale(&s->scaler, s->src, s->frame, f->width, f->height,
                             SWS_BICUBIC | SWS_BITEXACT | SWS_ACCURATE_RND, SWS_CS_ITU601, -1, e);
    if (rc) return rc;
    s->frame->pts = s->n;
    rc = avcodec_send_frame(s->enc, s->frame);
    if (rc >= 0) rc = avcodec_receive_packet(s->enc, s->pkt);
    if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write '%s': encoding frame %lld: %s", s->path, (long long)s->n + 1, ZOE__AVERR(rc));
    char name[4096];
    if (s->pattern) av_get_frame_filename2(name, sizeof name, s->path, s->o->start_number + (int)s->n, 0);
    else snprintf(name, sizeof name, "%s", s->path);
    rc = save(s, name, s->pkt, e);
    av_packet_unref(s->pkt);
    if (rc) return rc;
  }
  return 0;
}

/* temporary file i is renamed or removed: nothing for a signal to remove */
static void forget(zoe__still *s, int64_t i) {
  zoe_tmpfiles_forget(s->tmps[i]);
  s->tmps[i][0] = '\0';
}

int zoe__still_close(zoe__still *s, zoe_err *e) {
  int rc = 0;
  if (s->n == 0) rc = zoe_errf(e, ZOE_EINVAL, "video.write '%s': no frames were written", s->path);
  for (int64_t i = 0; i < s->n && !rc; i++) {
    if (rename(s->tmps[i], s->finals[i]) != 0)
      rc = zoe_errf(e, ZOE_EIO, "video.write: renaming '%s' to '%s': %s", s->tmps[i], s->finals[i], strerror(errno));
    else
      forget(s, i); /* renamed: nothing to remove */
  }
  for (int64_t i = 0; i < s->n; i++)
    if (s->tmps[i][0]) {
      unlink(s->tmps[i]);
      forget(s, i);
    }
  free_still(s);
  return rc;
}

void zoe__still_abort(zoe__still *s) {
  for (int64_t i = 0; i < s->n; i++) {
    unlink(s->tmps[i]);
    forget(s, i);
  }
  free_still(s);
}

/* ---- reading PNG text ---- */

/* Latin-1 (tEXt) to UTF-8. */
static char *latin1_to_utf8(const uint8_t *p, size_t n) {
  char *out = malloc(2 * n + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < 0x80) *o++ = (char)p[i];
    else *o++ = (char)(0xc0 | p[i] >> 6), *o++ = (char)(0x80 | (p[i] & 0x3f));
  }
  *o = '\0';
  return out;
}

int zoe__png_read_text(const char *path, zoe_video_info *info) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return 0;
  uint8_t sig[8], hdr[8];
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (fread(sig, 1, 8, fp) != 8 || memcmp(sig, png_sig, 8)) goto done;
  while (fread(hdr, 1, 8, fp) == 8) {
    uint32_t len = get_be32(hdr);
    if (len > (1u << 24)) break;
    int text = !memcmp(hdr + 4, "tEXt", 4), itxt = !memcmp(hdr + 4, "iTXt", 4);
    if (!memcmp(hdr + 4, "IEND", 4)) break;
    if (!text && !itxt) {
      if (fseek(fp, (long)len + 4, SEEK_CUR) != 0) break;
      continue;
    }
    uint8_t *d = malloc((size_t)len + 1);
    if (!d) break;
    if (fread(d, 1, len, fp) != len || fseek(fp, 4, SEEK_CUR) != 0) {
      free(d);
      break;
    }
    d[len] = '\0';
    uint8_t *nul = memchr(d, 0, len);
    if (nul) {
      size_t kl = (size_t)(nul - d);
      if (text) {
        char *v = latin1_to_utf8(nul + 1, len - kl - 1);
        if (v) zoe__info_add(info, (const char *)d, v);
        free(v);
      } else if (len - kl >= 3 && nul[1] == 0) { /* iTXt, uncompressed: skip language and translated key */
        uint8_t *p = nul + 3, *end = d + len;
        uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (z) z = memchr(z + 1, 0, (size_t)(end - z - 1));
        if (z) zoe__info_add(info, (const char *)d, (const char *)z + 1);
      }
    }
    free(d);
  }
done:
  fclose(fp);
  return 0;
}
