/*
** bench_video.c: H.264 encoding of 512x512 frames, ours (zoe_video_write from an
** f32 (3, T, H, W) tensor) against the ffmpeg command line encoding the same
** frames (as raw rgb24) with the same libx264 settings: preset, crf, threads.
** Both in one run, alternating, best of a few; the ratio is what counts.
** Rows: our default fixed thread count (reproducible files) and the codec's
** automatic count (the CLI's default).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/core/pool.h"
#include "../runtime/io/video.h"
#include "../runtime/io/video_internal.h"

#define T 96
#define SIDE 512
#define REPS 3

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Frames that move (a drifting ramp, a disc, some texture), so the encoder has real work. */
static zoe_tensor *frames(void) {
  zoe_tensor *t = zoe_empty(ZOE_F32, 4, (int64_t[]){3, T, SIDE, SIDE}, NULL);
  float *p = zoe_data(t);
  uint32_t s = 12345;
  for (int c = 0; c < 3; c++)
    for (int k = 0; k < T; k++)
      for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
          s = s * 1664525u + 1013904223u;
          float v = -0.7f + 1.2f * (float)((x + 3 * k + y / 3) % SIDE) / SIDE + 0.08f * (float)c;
          float dx = (float)(x - 100 - 6 * k), dy = (float)(y - 256);
          if (dx * dx + dy * dy < 90 * 90) v = 0.5f - 0.3f * (float)c;
          *p++ = v + 0.04f * ((float)(s >> 24) / 255.0f - 0.5f);
        }
  return t;
}

/* The same pixels as our writer sees them, as raw rgb24 for the command line. */
static int write_raw(const zoe_tensor *v, const char *path) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return -1;
  size_t plane = (size_t)SIDE * SIDE;
  uint8_t *planes = malloc(3 * plane), *rgb = malloc(3 * plane);
  const float *src = zoe_data(v);
  for (int k = 0; k < T; k++) {
    for (int c = 0; c < 3; c++) zoe__f32_to_u8(planes + c * plane, src + ((size_t)c * T + k) * plane, (int64_t)plane);
    for (size_t i = 0; i < plane; i++)
      for (int c = 0; c < 3; c++) rgb[3 * i + c] = planes[c * plane + i];
    fwrite(rgb, 1, 3 * plane, fp);
  }
  free(planes);
  free(rgb);
  return fclose(fp);
}

static void row(const zoe_tensor *v, const char *dir, const char *preset, int crf, int threads) {
  char ours[512], cli[512], raw[512], cmd[2048], thr[16];
  snprintf(ours, sizeof ours, "%s/ours.mp4", dir);
  snprintf(cli, sizeof cli, "%s/cli.mp4", dir);
  snprintf(raw, sizeof raw, "%s/frames.rgb", dir);
  if (threads < 0) snprintf(thr, sizeof thr, "auto");
  else snprintf(thr, sizeof thr, "%d", threads);
  snprintf(cmd, sizeof cmd,
           "ffmpeg -nostdin -v error -y -f rawvideo -pix_fmt rgb24 -s %dx%d -r 16 -i '%s' -c:v libx264 "
           "-preset %s -crf %d -threads %s -pix_fmt yuv420p '%s'",
           SIDE, SIDE, raw, preset, crf, thr, cli);
  zoe_video_opts o;
  zoe_video_opts_default(&o);
  o.preset = preset;
  o.crf = crf;
  o.threads = threads;
  double best_ours = 1e30, best_cli = 1e30;
  zoe_err e = {0};
  for (int r = 0; r < REPS; r++) {
    double t0 = now();
    if (zoe_video_write(v, ours, &o, &e)) {
      printf("encode failed: %s\n", e.msg);
      return;
    }
    double t1 = now();
    if (system(cmd) != 0) {
      printf("the ffmpeg command line failed: %s\n", cmd);
      return;
    }
    double t2 = now();
    if (t1 - t0 < best_ours) best_ours = t1 - t0;
    if (t2 - t1 < best_cli) best_cli = t2 - t1;
  }
  printf("h264 %dx%d %s crf %d threads %-4s  zoe %6.1f frames/s  ffmpeg cli %6.1f frames/s  ratio %.3f  (target >= 0.9)\n",
         SIDE, SIDE, preset, crf, thr, T / best_ours, T / best_cli, best_cli / best_ours);
}

int main(void) {
  zoe_pool_init(0);
  if (system("ffmpeg -version >/dev/null 2>&1") != 0) {
    printf("bench_video: skipped, no ffmpeg command line\n");
    return 0;
  }
  char dir[] = "/tmp/zoe-bench-video-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  zoe_tensor *v = frames();
  char raw[512];
  snprintf(raw, sizeof raw, "%s/frames.rgb", dir);
  if (write_raw(v, raw) != 0) return 1;
  printf("%d frames of %dx%d, the CLI reads them as raw rgb24 from the page cache\n", T, SIDE, SIDE);
  row(v, dir, "medium", 18, ZOE_VIDEO_DEFAULT_THREADS);
  row(v, dir, "medium", 18, -1);
  row(v, dir, "veryfast", 18, ZOE_VIDEO_DEFAULT_THREADS);
  zoe_tensor_release(v);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
