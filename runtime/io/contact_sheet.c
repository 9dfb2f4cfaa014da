/*
** contact_sheet.c: one image with a grid of frames, to look at many videos at
** once. Each video is a group of rows (frames taken every 'every'), a run of
** single frames is one group; a group with a label gets a caption strip above
** it, drawn with the built-in 5x7 font. Tiny frames are upscaled by pixel
** repetition (nearest neighbour), so a 32x32 video stays crisp.
*/
#include <stdlib.h>
#include <string.h>

#include "video_internal.h"

#define GAP 2         /* pixels between cells and around the sheet */
#define MIN_CELL 128  /* the default scale makes a cell at least this big */
#define MAX_SIDE 16384
#define MAX_COLS 8   /* the default grid's widest row */

static const uint8_t background[3] = {40, 40, 40}, strip_bg[3] = {16, 16, 16}, ink[3] = {235, 235, 235};

typedef struct item {
  const zoe_tensor *t;
  int video;          /* 4 dims: a video; 3 dims: one frame */
  int u8;
  int64_t frames;     /* T (1 for a frame) */
  int h, w, c;
} item;

typedef struct group {
  int first, count;   /* items[first .. first + count) */
  int64_t cells;      /* frames shown */
  int every;          /* for a video */
  int rows;
  const char *label;
} group;

typedef struct sheet {
  uint8_t *px;        /* (H, W, 3) */
  int w, h;
} sheet;

static int describe(const zoe_tensor *t, int i, item *it, const char *path, zoe_err *e) {
  char s[96];
  memset(it, 0, sizeof *it);
  it->t = t;
  it->u8 = t->dtype == ZOE_U8;
  if (!it->u8 && !zoe_dtype_is_float(t->dtype))
    return zoe_errf(e, ZOE_EDTYPE, "video.contact_sheet '%s': item %d is %s (f32 or u8 expected)", path, i + 1,
                    zoe_dtype_name(t->dtype));
  if (t->ndim != 3 && t->ndim != 4)
    return zoe_errf(e, ZOE_ESHAPE, "video.contact_sheet '%s': item %d is %s; expected a video %s or a frame %s",
                    path, i + 1, zoe_shape_str(t, s, sizeof s), it->u8 ? "(T, H, W, C)" : "(C, T, H, W)",
                    it->u8 ? "(H, W, C)" : "(C, H, W)");
  it->video = t->ndim == 4;
  const int64_t *d = t->shape + (it->video && it->u8); /* u8: (T,) H, W, C; float: C, (T,) H, W */
  it->frames = it->video ? t->shape[it->u8 ? 0 : 1] : 1;
  if (it->u8) it->h = (int)d[0], it->w = (int)d[1], it->c = (int)d[2];
  else it->c = (int)t->shape[0], it->h = (int)t->shape[it->video ? 2 : 1], it->w = (int)t->shape[it->video ? 3 : 2];
  if ((it->c != 1 && it->c != 3) || it->h < 1 || it->w < 1 || it->h > MAX_SIDE || it->w > MAX_SIDE || it->frames < 1)
    return zoe_errf(e, ZOE_ESHAPE, "video.contact_sheet '%s': item %d is %s: needs 1 or 3 channels and at least one frame",
                    path, i + 1, zoe_shape_str(t, s, sizeof s));
  return 0;
}

static void fill(sheet *sh, int x0, int y0, int w, int h, const uint8_t rgb[3]) {
  for (int y = y0; y < y0 + h && y < sh->h; y++)
    for (int x = x0; x < x0 + w && x < sh->w; x++) memcpy(sh->px + ((size_t)y * sh->w + x) * 3, rgb, 3);
}

/* Text at (x0, y0), 'fs' sheet pixels per font pixel; clipped to the sheet; non-ASCII shows as '?'. */
static void draw_text(sheet *sh, int x0, int y0, int fs, const char *text) {
  int x = x0;
  for (const unsigned char *p = (const unsigned char *)text; *p && x + 5 * fs <= sh->w - GAP; p++) {
    if (*p >= 0x80 && *p < 0xc0) continue; /* the rest of a UTF-8 sequence */
    int ch = *p >= 32 && *p < 127 ? *p : '?';
    const uint8_t *g = zoe__font5x7[ch - 32];
    for (int r = 0; r < 7; r++)
      for (int col = 0; col < 5; col++)
        if (g[r] & (0x10 >> col)) fill(sh, x + col * fs, y0 + r * fs, fs, fs, ink);
    x += 6 * fs;
  }
}

/* Frame 't' of item 'it', nearest-upscaled by 'scale', centred in the cell at (x0, y0). */
static int blit(sheet *sh, const item *it, int64_t t, int scale, int x0, int y0, int cw, int ch, zoe_err *e) {
  zoe_tensor *f = it->video ? zoe_select(it->t, it->u8 ? 0 : 1, t, e) : zoe_tensor_retain(it->t);
  if (!f) return e->code;
  zoe_tensor *c = (f->dtype == ZOE_U8 || f->dtype == ZOE_F32) ? zoe_contiguous(f, e) : zoe_to_dtype(f, ZOE_F32, e);
  zoe_tensor_release(f);
  if (!c) return e->code;
  int h = it->h, w = it->w, n = it->c;
  uint8_t *rgb = malloc((size_t)h * w * 3), *row = malloc((size_t)w);
  if (!rgb || !row) {
    free(rgb), free(row), zoe_tensor_release(c);
    return zoe_errf(e, ZOE_ENOMEM, "video.contact_sheet: out of memory");
  }
  if (it->u8) {
    const uint8_t *src = zoe_data(c);
    for (int64_t p = 0; p < (int64_t)h * w; p++)
      for (int k = 0; k < 3; k++) rgb[p * 3 + k] = src[p * n + (n == 1 ? 0 : k)];
  } else {
    const float *src = zoe_data(c);
    for (int k = 0; k < 3; k++)
      for (int y = 0; y < h; y++) {
        zoe__f32_to_u8(row, src + ((size_t)(n == 1 ? 0 : k) * h + y) * w, w);
        for (int x = 0; x < w; x++) rgb[((size_t)y * w + x) * 3 + k] = row[x];
      }
  }
  zoe_tensor_release(c);
  free(row);
  int ox = x0 + (cw - w * scale) / 2, oy = y0 + (ch - h * scale) / 2;
  for (int y = 0; y < h * scale; y++)
    for (int x = 0; x < w * scale; x++)
      memcpy(sh->px + ((size_t)(oy + y) * sh->w + ox + x) * 3, rgb + ((size_t)(y / scale) * w + x / scale) * 3, 3);
  free(rgb);
  return 0;
}

/*
** The columns a group fills by itself: its cells (a video's frames taken every 'every',
** by default so that at most MAX_COLS show; a run's frames) in rows of at most MAX_COLS,
** as even as the count allows: 9 cells are 5 + 4, not 8 + 1 with 7 empty.
*/
static int64_t natural_cols(const item *first, int count, int every) {
  int64_t cells = count;
  if (first->video) {
    int64_t f = first->frames, ev = every ? every : (f + MAX_COLS - 1) / MAX_COLS;
    cells = (f + ev - 1) / ev;
  }
  int64_t rows = (cells + MAX_COLS - 1) / MAX_COLS;
  return (cells + rows - 1) / rows;
}

int zoe_contact_sheet(const zoe_tensor *const *items, int n, const char *path, const zoe_sheet_opts *opts,
                      zoe_err *e) {
  zoe_sheet_opts o = {0};
  if (opts) o = *opts;
  char ext[16];
  if (!zoe__still_ext(zoe__ext(path, ext, sizeof ext)) || strchr(path, '%'))
    return zoe_errf(e, ZOE_EINVAL, "video.contact_sheet '%s': a contact sheet is an image (.png, .jpg, .webp)", path);
  if (n < 1) return zoe_errf(e, ZOE_EINVAL, "video.contact_sheet '%s': no videos or frames given", path);
  if (o.cols < 0 || o.every < 0 || o.scale < 0 || o.scale > 64)
    return zoe_errf(e, ZOE_EINVAL, "video.contact_sheet '%s': cols and every must be >= 0, scale 0..64", path);
  item *its = calloc(n, sizeof *its);
  group *gs = calloc(n, sizeof *gs);
  sheet sh = {0};
  int rc = 0, ng = 0, maxh = 0, maxw = 0;
  int64_t most = 0;
  if (!its || !gs) {
    rc = zoe_errf(e, ZOE_ENOMEM, "video.contact_sheet: out of memory");
    goto done;
  }
  /* groups: each video alone, runs of frames together */
  for (int i = 0; i < n && !rc; i++) {
    if ((rc = describe(items[i], i, &its[i], path, e))) break;
    if (its[i].h > maxh) maxh = its[i].h;
    if (its[i].w > maxw) maxw = its[i].w;
    if (its[i].video || ng == 0 || its[i - 1].video) gs[ng++] = (group){.first = i};
    gs[ng - 1].count++;
  }
  if (rc) goto done;
  for (int g = 0; g < ng; g++) {
    int64_t m = natural_cols(&its[gs[g].first], gs[g].count, o.every);
    if (m > most) most = m;
    gs[g].label = g < o.nlabels ? o.labels[g] : NULL;
  }
  int cols = o.cols ? o.cols : (int)most;
  int scale = o.scale ? o.scale : (MIN_CELL + (maxh > maxw ? maxh : maxw) - 1) / (maxh > maxw ? maxh : maxw);
  if (scale < 1) scale = 1;
  int cw = maxw * scale, ch = maxh * scale;
  int64_t width = GAP + (int64_t)cols * (cw + GAP);
  int fs = width >= 512 ? 2 : 1, strip = 11 * fs;
  int64_t height = GAP;
  for (int g = 0; g < ng; g++) {
    const item *it = &its[gs[g].first];
    if (it->video) {
      gs[g].every = o.every ? o.every : (int)((it->frames + cols - 1) / cols);
      gs[g].cells = (it->frames + gs[g].every - 1) / gs[g].every;
    } else {
      gs[g].cells = gs[g].count;
    }
    gs[g].rows = (int)((gs[g].cells + cols - 1) / cols);
    height += (gs[g].label ? strip : 0) + (int64_t)gs[g].rows * (ch + GAP);
  }
  if (width > MAX_SIDE || height > MAX_SIDE) {
    rc = zoe_errf(e, ZOE_EINVAL, "video.contact_sheet '%s': the sheet would be %lldx%lld pixels (at most %d a side): use fewer cols, a larger every or a smaller scale",
                  path, (long long)width, (long long)height, MAX_SIDE);
    goto done;
  }
  sh.w = (int)width, sh.h = (int)height;
  zoe_tensor *img = zoe_empty(ZOE_U8, 3, (int64_t[]){sh.h, sh.w, 3}, e);
  if (!img) {
    rc = e->code;
    goto done;
  }
  sh.px = zoe_data(img);
  fill(&sh, 0, 0, sh.w, sh.h, background);
  int y = GAP;
  for (int g = 0; g < ng && !rc; g++) {
    if (gs[g].label) {
      fill(&sh, 0, y - GAP / 2, sh.w, strip, strip_bg);
      draw_text(&sh, GAP + 2 * fs, y + 2 * fs, fs, gs[g].label);
      y += strip;
    }
    for (int64_t k = 0; k < gs[g].cells && !rc; k++) {
      int x = GAP + (int)(k % cols) * (cw + GAP), yy = y + (int)(k / cols) * (ch + GAP);
      fill(&sh, x, yy, cw, ch, (const uint8_t[3]){0, 0, 0});
      const item *it = &its[gs[g].first + (its[gs[g].first].video ? 0 : (int)k)];
      rc = blit(&sh, it, it->video ? k * gs[g].every : 0, scale, x, yy, cw, ch, e);
    }
    y += gs[g].rows * (ch + GAP);
  }
  if (!rc) {
    zoe_video_opts vo;
    zoe_video_opts_default(&vo);
    rc = zoe_image_write(img, path, &vo, e);
    if (rc && !strncmp(e->msg, "image.write", 11)) zoe_err_prefix(e, "video.contact_sheet");
  }
  zoe_tensor_release(img);
done:
  free(its);
  free(gs);
  return rc;
}
