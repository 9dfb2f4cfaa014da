/*
** fuzz_video_read.c: the video/image reader on mutated files (libFuzzer + ASan,
** `make fuzz`). Each input is written to a file and read back as a video (a
** few frames, resized small so a huge claimed size costs little), probed, and
** read as an image. Any crash, leak or sanitizer report is a bug; errors are fine.
** Seeds: fuzz/fuzz_video_read.seeds.sh makes tiny MP4/WebM/GIF/PNG/JPEG/WebP files.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../runtime/core/pool.h"
#include "../runtime/io/video.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  zoe_pool_init(1);
  snprintf(path, sizeof path, "/tmp/zoe-fuzz-video-%ld.bin", (long)getpid());
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return 0;
  if (size) fwrite(data, 1, size, fp);
  fclose(fp);
  zoe_err e = {0};
  /* the last byte picks the options, so mutations reach resampling too */
  uint8_t k = size ? data[size - 1] : 0;
  zoe_video_read_opts o = {.max_frames = 4, .width = 16, .height = 12, .fps = (k & 1) ? 5 : 0, .u8 = (k & 2) != 0};
  zoe_tensor *v = zoe_video_read(path, &o, &e);
  zoe_tensor_release(v);
  zoe_video_info info;
  if (zoe_video_probe(path, &info, &e) == 0) zoe_video_info_free(&info);
  zoe_tensor *img = zoe_image_read(path, &e);
  zoe_tensor_release(img);
  unlink(path);
  return 0;
}
