/*
** test_video.c: runtime/io/video.h without Lua: pixel rounding, exact PNG round
** trips, H.264 quality and odd sizes, byte-identical repeats, the streaming
** writer against the one-shot one, failures that leave no file, and damaged
** inputs that give errors, not crashes.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../runtime/io/video.h"
#include "../../runtime/io/video_internal.h"
#include "test.h"

static char dir[256];

static const char *in_dir(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/*
** A test video that moves: a diagonal ramp (tinted per channel) drifting right, a
** green disc crossing it. 'quantized': values that are exactly u8 levels.
*/
static zoe_tensor *moving(int T, int H, int W, int quantized) {
  zoe_tensor *t = zoe_empty(ZOE_F32, 4, (int64_t[]){3, T, H, W}, NULL);
  float *p = zoe_data(t);
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < T; k++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          float v = -0.8f + 1.4f * (float)((x + 2 * k + y / 2) % W) / (float)W + 0.1f * (float)c;
          float dx = (float)x - (float)(W / 4 + 3 * k), dy = (float)y - (float)H / 2;
          if (dx * dx + dy * dy < (float)(H * H) / 25) v = c == 1 ? 0.7f : 0.2f;
          if (quantized) v = (float)(int)((v + 1) * 127.5f + 0.5f) / 127.5f - 1.0f;
          *p++ = v;
        }
  return t;
}

static double psnr(const zoe_tensor *a, const zoe_tensor *b) {
  /* a and b are (3, T, H, W); b may be larger (padding): compare a's area */
  const float *pa = zoe_data(a), *pb = zoe_data(b);
  double se = 0;
  int64_t n = 0, T = a->shape[1], H = a->shape[2], W = a->shape[3], Hb = b->shape[2], Wb = b->shape[3];
  for (int64_t c = 0; c < 3; c++)
    for (int64_t k = 0; k < T; k++)
      for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
          double d = pa[((c * T + k) * H + y) * W + x] - pb[((c * T + k) * Hb + y) * Wb + x];
          se += d * d, n++;
        }
  return se == 0 ? 999 : 10 * log10(4.0 / (se / (double)n));
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int same_bytes(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int x = fgetc(fa), y = fgetc(fb);
    if (x != y) same = 0;
    if (x == EOF || y == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

/* Files in the test folder whose name contains 'part'. */
static int count_files(const char *part) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *de; d && (de = readdir(d));) n += strstr(de->d_name, part) != NULL;
  if (d) closedir(d);
  return n;
}

static void test_pixel_rounding(void) {
  uint8_t u[256], back[256];
  float f[256];
  for (int i = 0; i < 256; i++) u[i] = (uint8_t)i;
  zoe__u8_to_f32(f, u, 256);
  zoe__f32_to_u8(back, f, 256);
  int bad = 0;
  for (int i = 0; i < 256; i++) bad += back[i] != i;
  CHECK(bad == 0, "%d u8 values do not survive u8 -> f32 -> u8", bad);
  CHECK(f[0] == -1.0f && f[255] == 1.0f, "ends %g %g", f[0], f[255]);
  float edge[7] = {-1.0f, 1.0f, 0.0f, 2.0f, -3.0f, NAN, 0.5f};
  uint8_t q[7];
  zoe__f32_to_u8(q, edge, 7);
  CHECK(q[0] == 0 && q[1] == 255 && q[2] == 128 && q[3] == 255 && q[4] == 0 && q[5] == 0 && q[6] == 191,
        "got %d %d %d %d %d %d %d", q[0], q[1], q[2], q[3], q[4], q[5], q[6]);
}

static void test_png_exact(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(3, 20, 31, 1);
  CHECK(zoe_video_write(v, in_dir("seq_%03d.png"), NULL, &e) == 0, "%s", e.msg);
  CHECK(file_size(in_dir("seq_001.png")) > 0 && file_size(in_dir("seq_003.png")) > 0, "three files");
  CHECK(file_size(in_dir("seq_004.png")) < 0, "no fourth file");
  zoe_tensor *r = zoe_video_read(in_dir("seq_%03d.png"), NULL, &e);
  CHECK(r && r->shape[1] == 3 && r->shape[2] == 20 && r->shape[3] == 31, "%s", e.msg);
  if (r) CHECK(psnr(v, r) == 999, "PNG round trip is not exact: %.2f dB", psnr(v, r));
  zoe_tensor_release(r);
  /* one image, read back as an image */
  zoe_tensor *f = zoe_select(v, 1, 1, &e);
  CHECK(zoe_image_write(f, in_dir("one.png"), NULL, &e) == 0, "%s", e.msg);
  zoe_tensor *img = zoe_image_read(in_dir("one.png"), &e);
  CHECK(img && img->ndim == 3 && img->shape[0] == 3 && img->shape[1] == 20 && img->shape[2] == 31, "%s", e.msg);
  if (img) {
    zoe_tensor *c = zoe_contiguous(f, &e);
    CHECK(memcmp(zoe_data(c), zoe_data(img), 3 * 20 * 31 * sizeof(float)) == 0, "image values differ");
    zoe_tensor_release(c);
  }
  zoe_tensor_release(img);
  zoe_tensor_release(f);
  /* a pattern writes numbered files from start_number */
  zoe_video_opts o;
  zoe_video_opts_default(&o);
  o.start_number = 0;
  CHECK(zoe_video_write(v, in_dir("z%d.png"), &o, &e) == 0, "%s", e.msg);
  CHECK(file_size(in_dir("z0.png")) > 0 && file_size(in_dir("z2.png")) > 0 && file_size(in_dir("z3.png")) < 0, "start_number 0");
  zoe_tensor_release(v);
}

static void test_u8_input_matches_f32(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(2, 16, 16, 1);
  zoe_tensor *r = zoe_video_read(in_dir("seq_%03d.png"), &(zoe_video_read_opts){.u8 = 1}, &e);
  CHECK(r && r->dtype == ZOE_U8 && r->ndim == 4 && r->shape[3] == 3 && r->shape[0] == 3, "%s", e.msg);
  zoe_tensor *f32 = zoe_video_read(in_dir("seq_%03d.png"), NULL, &e);
  if (r && f32) {
    CHECK(zoe_video_write(r, in_dir("u8.webm"), NULL, &e) == 0, "%s", e.msg);
    CHECK(zoe_video_write(f32, in_dir("f32.webm"), NULL, &e) == 0, "%s", e.msg);
    CHECK(same_bytes(in_dir("u8.webm"), in_dir("f32.webm")), "u8 and f32 frames of the same pixels give different files");
  }
  zoe_tensor_release(r);
  zoe_tensor_release(f32);
  zoe_tensor_release(v);
}

static void test_h264_quality_and_odd_size(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(12, 47, 63, 0);
  zoe_video_opts o;
  zoe_video_opts_default(&o);
  o.crf = 10;
  o.preset = "veryfast";
  CHECK(zoe_video_write(v, in_dir("odd.mp4"), &o, &e) == 0, "%s", e.msg);
  zoe_video_info info;
  CHECK(zoe_video_probe(in_dir("odd.mp4"), &info, &e) == 0, "%s", e.msg);
  CHECK(info.width == 64 && info.height == 48, "padded to even: %dx%d", info.width, info.height);
  CHECK(info.frames == 12 && !strcmp(info.codec, "h264") && !strcmp(info.pix_fmt, "yuv420p"), "%lld %s %s",
        (long long)info.frames, info.codec, info.pix_fmt);
  CHECK_NEAR(info.fps, 16, 1e-9);
  CHECK_NEAR(info.duration, 12 / 16.0, 1e-3); /* the last frame keeps its duration */
  zoe_video_info_free(&info);
  zoe_tensor *r = zoe_video_read(in_dir("odd.mp4"), NULL, &e);
  CHECK(r && r->shape[1] == 12 && r->shape[2] == 48 && r->shape[3] == 64, "%s", e.msg);
  if (r) {
    double db = psnr(v, r);
    CHECK(db >= 35, "PSNR %.2f dB at crf 10", db);
    /* the padding repeats the last column and row */
    const float *p = zoe_data(r);
    double d = fabs(p[46 * 64 + 63] - p[46 * 64 + 62]) + fabs(p[47 * 64 + 10] - p[46 * 64 + 10]);
    CHECK(d < 0.1, "padding differs from the edge by %g", d);
  }
  zoe_tensor_release(r);
  zoe_tensor_release(v);
}

static void test_same_bytes_every_time(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(10, 32, 48, 0);
  const char *exts[] = {"mp4", "webm", "gif"};
  for (int i = 0; i < 3; i++) {
    char a[32], b[32];
    snprintf(a, sizeof a, "rep_a.%s", exts[i]);
    snprintf(b, sizeof b, "rep_b.%s", exts[i]);
    zoe_video_opts o;
    zoe_video_opts_default(&o);
    o.preset = "fast";
    CHECK(zoe_video_write(v, in_dir(a), &o, &e) == 0, "%s", e.msg);
    CHECK(zoe_video_write(v, in_dir(b), &o, &e) == 0, "%s", e.msg);
    CHECK(same_bytes(in_dir(a), in_dir(b)), "two writes of the same frames to .%s differ", exts[i]);
  }
  zoe_tensor_release(v);
}

static void test_streaming_equals_one_shot(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(10, 32, 48, 0);
  const char *names[] = {"whole.mp4", "whole.gif"}, *parts[] = {"parts.mp4", "parts.gif"};
  for (int i = 0; i < 2; i++) {
    CHECK(zoe_video_write(v, in_dir(names[i]), NULL, &e) == 0, "%s", e.msg);
    zoe_video_writer *w = zoe_video_writer_open(in_dir(parts[i]), NULL, &e);
    CHECK(w != NULL, "%s", e.msg);
    if (!w) continue;
    int64_t sizes[] = {1, 4, 0, 5};
    for (int k = 0, at = 0; k < 4; at += (int)sizes[k], k++) {
      zoe_tensor *chunk = zoe_narrow(v, 1, at, sizes[k], &e);
      CHECK(zoe_video_writer_write(w, chunk, &e) == 0, "%s", e.msg);
      zoe_tensor_release(chunk);
    }
    CHECK(zoe_video_writer_frames(w) == 10, "frames %lld", (long long)zoe_video_writer_frames(w));
    CHECK(file_size(in_dir(parts[i])) < 0, "nothing under the real name before close");
    CHECK(zoe_video_writer_close(w, &e) == 0, "%s", e.msg);
    CHECK(same_bytes(in_dir(names[i]), in_dir(parts[i])), "streamed %s differs from one-shot", parts[i]);
  }
  zoe_tensor_release(v);
}

static void test_failures_leave_no_file(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(4, 16, 16, 0);
  /* an old file under the name stays as it was */
  FILE *fp = fopen(in_dir("keep.mp4"), "w");
  fputs("old", fp);
  fclose(fp);
  zoe_video_writer *w = zoe_video_writer_open(in_dir("keep.mp4"), NULL, &e);
  CHECK(zoe_video_writer_write(w, v, &e) == 0, "%s", e.msg);
  zoe_tensor *bad = moving(2, 16, 18, 0);
  CHECK(zoe_video_writer_write(w, bad, &e) == ZOE_ESHAPE, "a chunk of another size is refused");
  CHECK(strstr(e.msg, "keep.mp4") && strstr(e.msg, "3x2x16x18") && strstr(e.msg, "16x16"), "message: %s", e.msg);
  zoe_video_writer_abort(w);
  CHECK(file_size(in_dir("keep.mp4")) == 3, "the old file is untouched");
  CHECK(count_files(".tmp") == 0, "temporary files left: %d", count_files(".tmp"));
  /* a one-shot write of bad frames */
  zoe_tensor *two = zoe_empty(ZOE_F32, 4, (int64_t[]){2, 3, 8, 8}, NULL);
  CHECK(zoe_video_write(two, in_dir("two.mp4"), NULL, &e) == ZOE_ESHAPE && strstr(e.msg, "2 channels"), "%s", e.msg);
  CHECK(file_size(in_dir("two.mp4")) < 0 && count_files(".tmp") == 0, "no file after a failed write");
  /* unwritable places and unknown formats fail at open */
  CHECK(!zoe_video_writer_open("/nonexistent/dir/x.mp4", NULL, &e) && strstr(e.msg, "/nonexistent/dir"), "%s", e.msg);
  CHECK(!zoe_video_writer_open(in_dir("x.avi"), NULL, &e) && strstr(e.msg, "unknown extension"), "%s", e.msg);
  CHECK(!zoe_video_writer_open(in_dir("x%d.mp4"), NULL, &e) && strstr(e.msg, "pattern"), "%s", e.msg);
  zoe_video_opts o;
  zoe_video_opts_default(&o);
  o.preset = "warp";
  CHECK(!zoe_video_writer_open(in_dir("x.mp4"), &o, &e) && strstr(e.msg, "unknown preset 'warp'"), "%s", e.msg);
  /* a single image cannot hold several frames */
  CHECK(zoe_video_write(v, in_dir("many.png"), NULL, &e) == ZOE_EINVAL && strstr(e.msg, "one frame"), "%s", e.msg);
  CHECK(file_size(in_dir("many.png")) < 0 && count_files(".tmp") == 0, "no image after the failure");
  /* closing a writer that got no frames */
  w = zoe_video_writer_open(in_dir("empty.mp4"), NULL, &e);
  CHECK(zoe_video_writer_close(w, &e) != 0 && strstr(e.msg, "no frames"), "%s", e.msg);
  CHECK(file_size(in_dir("empty.mp4")) < 0 && count_files(".tmp") == 0, "no file from an empty writer");
  zoe_tensor_release(two);
  zoe_tensor_release(bad);
  zoe_tensor_release(v);
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  if (n) fwrite(p, 1, n, fp);
  fclose(fp);
}

static void test_bad_inputs(void) {
  zoe_err e = {0};
  zoe_video_info info;
  CHECK(!zoe_video_read(in_dir("missing.mp4"), NULL, &e) && strstr(e.msg, "No such file"), "%s", e.msg);
  write_bytes(in_dir("empty.webm"), "", 0);
  CHECK(!zoe_video_read(in_dir("empty.webm"), NULL, &e) && strstr(e.msg, "empty"), "%s", e.msg);
  const char *text = "-- not a video at all\nprint('hello')\n";
  write_bytes(in_dir("text.mp4"), text, strlen(text));
  CHECK(!zoe_video_read(in_dir("text.mp4"), NULL, &e) && strstr(e.msg, "text.mp4"), "%s", e.msg);
  CHECK(zoe_video_probe(in_dir("text.mp4"), &info, &e) != 0, "probe of text fails");
  CHECK(!zoe_image_read(dir, &e) && strstr(e.msg, "folder"), "%s", e.msg);
  /* truncated files: half of each, then a few bytes */
  zoe_tensor *v = moving(8, 32, 32, 0);
  const char *names[] = {"t.mp4", "t.webm", "t.gif", "t.png"};
  for (int i = 0; i < 4; i++) {
    zoe_tensor *src = i == 3 ? zoe_narrow(v, 1, 0, 1, &e) : zoe_tensor_retain(v);
    CHECK(zoe_video_write(src, in_dir(names[i]), NULL, &e) == 0, "%s", e.msg);
    zoe_tensor_release(src);
    long size = file_size(in_dir(names[i]));
    FILE *fp = fopen(in_dir(names[i]), "rb");
    char *buf = malloc(size);
    CHECK(fread(buf, 1, size, fp) == (size_t)size, "read back");
    fclose(fp);
    long cuts[] = {size / 2, 40, 8};
    for (int k = 0; k < 3; k++) {
      write_bytes(in_dir("cut.bin"), buf, cuts[k]);
      char cut[64];
      snprintf(cut, sizeof cut, "cut_%d.%s", k, strchr(names[i], '.') + 1);
      rename(in_dir("cut.bin"), in_dir(cut));
      zoe_tensor *r = zoe_video_read(in_dir(cut), NULL, &e);
      CHECK(!r, "%s cut to %ld of %ld bytes reads as %lld frames", names[i], cuts[k], size, r ? (long long)r->shape[1] : 0LL);
      CHECK(r || strstr(e.msg, cut), "the error names the file: %s", e.msg);
      zoe_tensor_release(r);
    }
    free(buf);
  }
  zoe_tensor_release(v);
}

static void test_read_options(void) {
  zoe_err e = {0};
  zoe_tensor *v = moving(16, 32, 48, 0);
  zoe_video_opts o;
  zoe_video_opts_default(&o);
  o.crf = 0; /* lossless luma; frames stay told apart */
  CHECK(zoe_video_write(v, in_dir("rate.mp4"), &o, &e) == 0, "%s", e.msg);
  zoe_tensor *all = zoe_video_read(in_dir("rate.mp4"), NULL, &e);
  zoe_tensor *half = zoe_video_read(in_dir("rate.mp4"), &(zoe_video_read_opts){.fps = 8}, &e);
  zoe_tensor *dbl = zoe_video_read(in_dir("rate.mp4"), &(zoe_video_read_opts){.fps = 32, .max_frames = 5}, &e);
  zoe_tensor *small = zoe_video_read(in_dir("rate.mp4"), &(zoe_video_read_opts){.width = 24}, &e);
  CHECK(all && half && dbl && small, "%s", e.msg);
  if (all && half && dbl && small) {
    CHECK(half->shape[1] == 8 && dbl->shape[1] == 5, "frames %lld %lld", (long long)half->shape[1], (long long)dbl->shape[1]);
    CHECK(small->shape[2] == 16 && small->shape[3] == 24, "aspect kept: %lldx%lld", (long long)small->shape[3], (long long)small->shape[2]);
    /* 8 fps takes frames 0, 2, 4, ...; 32 fps repeats each frame twice */
    int64_t plane = 32 * 48, ok = 1;
    const float *pa = zoe_data(all), *ph = zoe_data(half), *pd = zoe_data(dbl);
    for (int k = 0; k < 8; k++) ok &= !memcmp(ph + k * plane, pa + 2 * k * plane, plane * sizeof(float));
    CHECK(ok, "fps 8 picks every second frame");
    ok = 1;
    for (int k = 0; k < 5; k++) ok &= !memcmp(pd + k * plane, pa + (k / 2) * plane, plane * sizeof(float));
    CHECK(ok, "fps 32 repeats frames");
  }
  zoe_tensor_release(all);
  zoe_tensor_release(half);
  zoe_tensor_release(dbl);
  zoe_tensor_release(small);
  zoe_tensor_release(v);
}

/*
** The temporary files a killed writer left (SIGKILL, a crash: '.NAME.PID-N.tmp' of a PID
** that is gone) are removed by the next writer of the same file; a live process's stay.
*/
static void test_stale_temporaries_swept(void) {
  zoe_err e = {0};
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, NULL, 0);
  char dead[600], live[600], other[600];
  snprintf(dead, sizeof dead, "%s/.swept.mp4.%ld-0.tmp", dir, (long)gone);
  snprintf(live, sizeof live, "%s/.swept.mp4.%ld-3.tmp", dir, (long)getppid());
  snprintf(other, sizeof other, "%s/.other.mp4.%ld-0.tmp", dir, (long)gone);
  const char *made[] = {dead, live, other};
  for (int i = 0; i < 3; i++) {
    FILE *f = fopen(made[i], "w");
    if (f) fclose(f);
  }
  zoe_tensor *v = moving(3, 16, 16, 1);
  CHECK(zoe_video_write(v, in_dir("swept.mp4"), NULL, &e) == 0, "%s", e.msg);
  CHECK(access(dead, F_OK) != 0, "the dead writer's temporary is removed");
  CHECK(access(live, F_OK) == 0, "a live process's temporary stays");
  CHECK(access(other, F_OK) == 0, "another file's temporary stays");
  unlink(live);
  unlink(other);
  zoe_tensor_release(v);
}

static void test_contact_sheet(void) {
  zoe_err e = {0};
  zoe_tensor *a = moving(8, 16, 16, 1), *b = moving(4, 16, 16, 1);
  const zoe_tensor *items[] = {a, b};
  const char *labels[] = {"first A", "second"};
  zoe_sheet_opts o = {.cols = 4, .labels = labels, .nlabels = 2};
  CHECK(zoe_contact_sheet(items, 2, in_dir("sheet.png"), &o, &e) == 0, "%s", e.msg);
  zoe_tensor *s = zoe_image_read(in_dir("sheet.png"), &e);
  CHECK(s != NULL, "%s", e.msg);
  if (s) {
    /* scale 8 (16 -> 128), 4 cols: 2 + 4 * 130 wide; two rows under 11-pixel strips */
    CHECK(s->shape[2] == 2 + 4 * 130 && s->shape[1] == 2 + 2 * (11 * 2 + 130), "sheet %lldx%lld",
          (long long)s->shape[2], (long long)s->shape[1]);
    /* cell 2 of video a is its frame 2 (every = 2), pixel (5, 7) upscaled by 8 */
    const float *ps = zoe_data(s), *pa = zoe_data(a);
    int64_t W = s->shape[2], H = s->shape[1], x = 2 + 130 + 7 * 8 + 3, y = 2 + 22 + 5 * 8 + 3;
    float want = pa[(2 * 16 + 5) * 16 + 7], got = ps[y * W + x]; /* red channel, frame 2 (= k 1 * every 2) */
    CHECK(fabsf(want - got) < 1e-6f, "pixel %g vs %g", got, want);
    /* the caption strip has ink */
    int inked = 0;
    for (int64_t yy = 2; yy < 24; yy++)
      for (int64_t xx = 0; xx < 200; xx++) inked += ps[yy * W + xx] > 0.8f;
    CHECK(inked > 50, "caption pixels: %d", inked);
    (void)H;
  }
  zoe_tensor_release(s);
  CHECK(zoe_contact_sheet(items, 2, in_dir("sheet.mp4"), NULL, &e) != 0 && strstr(e.msg, "image"), "%s", e.msg);
  zoe_tensor_release(a);
  zoe_tensor_release(b);
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  for (struct dirent *de; d && (de = readdir(d));)
    if (de->d_name[0] != '.' || strlen(de->d_name) > 2) unlink(in_dir(de->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/zoe-test-video-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  RUN(test_pixel_rounding);
  RUN(test_png_exact);
  RUN(test_u8_input_matches_f32);
  RUN(test_h264_quality_and_odd_size);
  RUN(test_same_bytes_every_time);
  RUN(test_streaming_equals_one_shot);
  RUN(test_failures_leave_no_file);
  RUN(test_bad_inputs);
  RUN(test_read_options);
  RUN(test_stale_temporaries_swept);
  RUN(test_contact_sheet);
  remove_dir();
  return test_summary();
}
