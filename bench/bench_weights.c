/*
** bench_weights.c: what opening weights costs. A 1 GiB safetensors file (64 bf16
** tensors of 16 MiB, written to $TMPDIR at bench time) is opened and its first
** tensor read (every byte summed), with the file in the page cache (warm) and
** evicted from it (cold, posix_fadvise DONTNEED); the baseline is pread() of the
** same 16 MiB into memory, measured in the same run. Peak RSS is the process's
** high-water mark reset just before (/proc/self/clear_refs). Then a tokenizer.json
** of umT5's size (256k pieces, synthetic) is loaded, against cJSON parsing the
** same text alone, and a 512-token prompt encoded. Each time is the best of 3.
*/
#include <cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/core/pool.h"
#include "../runtime/io/tokenizer.h"
#include "../runtime/io/weights.h"

#define NT 64
#define ROWS 4096
#define COLS 2048
#define TBYTES ((size_t)ROWS * COLS * 2)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0) v = atol(line + n + 1);
  if (f) fclose(f);
  return v;
}

static int make_file(const char *path) {
  char *header = malloc(160 * NT + 64);
  size_t hl = 0;
  hl += (size_t)sprintf(header + hl, "{");
  for (int i = 0; i < NT; i++)
    hl += (size_t)sprintf(header + hl, "%s\"blocks.%02d.weight\":{\"dtype\":\"BF16\",\"shape\":[%d,%d],"
                          "\"data_offsets\":[%zu,%zu]}", i ? "," : "", i, ROWS, COLS, i * TBYTES, (i + 1) * TBYTES);
  hl += (size_t)sprintf(header + hl, "}");
  while (hl % 8) header[hl++] = ' ';
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  uint64_t len = hl;
  fwrite(&len, 8, 1, f);
  fwrite(header, 1, hl, f);
  free(header);
  size_t chunk = (size_t)4 << 20;
  uint16_t *buf = malloc(chunk);
  for (size_t k = 0; k < chunk / 2; k++) buf[k] = (uint16_t)(0x3f80 + (k & 63)); /* bf16 1.0 .. */
  for (size_t done = 0; done < NT * TBYTES; done += chunk) fwrite(buf, 1, chunk, f);
  free(buf);
  fflush(f);
  fsync(fileno(f));
  fclose(f);
  return 0;
}

static void evict(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
}

static uint64_t sum16(const uint16_t *p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += p[i];
  return s;
}

typedef struct result {
  double open_s, first_s;
  long peak_kb;
  uint64_t sum;
} result;

static result ours(const char *path) {
  result r = {0};
  long base = status_kb("VmRSS:");
  reset_peak();
  double t0 = now();
  zoe_err e = {0};
  zoe_weights *w = zoe_weights_open(path, &e);
  if (!w) {
    fprintf(stderr, "bench_weights: %s\n", e.msg);
    exit(1);
  }
  double t1 = now();
  zoe_tensor *x = zoe_weights_get(w, "blocks.00.weight", &e);
  r.sum = sum16(zoe_data(x), (size_t)zoe_numel(x));
  double t2 = now();
  r.peak_kb = status_kb("VmHWM:") - base;
  zoe_tensor_release(x);
  zoe_weights_release(w);
  r.open_s = t1 - t0;
  r.first_s = t2 - t0;
  return r;
}

static result baseline(const char *path) {
  result r = {0};
  double t0 = now();
  int fd = open(path, O_RDONLY);
  uint64_t hl = 0;
  if (fd < 0 || pread(fd, &hl, 8, 0) != 8) exit(1);
  uint16_t *buf = malloc(TBYTES);
  size_t got = 0;
  while (got < TBYTES) {
    ssize_t k = pread(fd, (char *)buf + got, TBYTES - got, (off_t)(8 + hl + got));
    if (k <= 0) exit(1);
    got += (size_t)k;
  }
  r.sum = sum16(buf, TBYTES / 2);
  r.first_s = now() - t0;
  free(buf);
  close(fd);
  return r;
}

/* ---- tokenizer of umT5's size ---- */

static char *synthetic_tokenizer(size_t *len) {
  size_t cap = (size_t)16 << 20, n = 0;
  char *s = malloc(cap);
  n += (size_t)sprintf(s + n, "{\"model\":{\"type\":\"Unigram\",\"unk_id\":2,\"vocab\":[[\"<pad>\",0],[\"</s>\",0],[\"<unk>\",0]");
  uint32_t r = 7;
  for (int i = 3; i < 256000; i++) {
    char piece[32];
    int pl = 0, plen = 1 + (int)(r % 7);
    if (i % 2) pl += sprintf(piece, "\xe2\x96\x81"); /* '▁' */
    for (int k = 0; k < plen; k++) {
      r = r * 1664525u + 1013904223u;
      piece[pl++] = (char)('a' + (r >> 24) % 26);
    }
    piece[pl] = 0;
    n += (size_t)sprintf(s + n, ",[\"%s\",%.6f]", piece, -2.0 - (double)i / 20000.0);
  }
  n += (size_t)sprintf(s + n, "]},\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\","
                       "\"prepend_scheme\":\"always\",\"split\":true},\"post_processor\":{\"type\":\"TemplateProcessing\","
                       "\"single\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\","
                       "\"type_id\":0}}],\"special_tokens\":{\"</s>\":{\"id\":\"</s>\",\"ids\":[1],\"tokens\":[\"</s>\"]}}}}");
  *len = n;
  return s;
}

int main(void) {
  zoe_pool_init(1);
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char path[512];
  snprintf(path, sizeof path, "%s/zoe-bench-weights-%ld.safetensors", dir, (long)getpid());
  double t0 = now();
  if (make_file(path)) {
    fprintf(stderr, "bench_weights: cannot write %s\n", path);
    return 1;
  }
  printf("1 GiB safetensors (64 x bf16 4096x2048) written in %.1f s to %s\n", now() - t0, dir);
  printf("%-34s %10s %12s %14s\n", "", "open ms", "+1st tensor", "peak RSS MiB");
  /* best of 3 of each, alternating (the machine may be shared) */
  result warm = {1e9, 1e9, 0, 0}, wb = warm, cold = warm, cb = warm;
  for (int rep = 0; rep < 3; rep++) {
    result r = ours(path);
    if (r.first_s < warm.first_s) warm = r;
    r = baseline(path);
    if (r.first_s < wb.first_s) wb = r;
    evict(path);
    r = ours(path);
    if (r.first_s < cold.first_s) cold = r;
    evict(path);
    r = baseline(path);
    if (r.first_s < cb.first_s) cb = r;
  }
  if (warm.sum != wb.sum || cold.sum != cb.sum) printf("checksums differ!\n");
  printf("%-34s %10.3f %9.1f ms %14.1f\n", "zoe.load + first tensor, warm", 1e3 * warm.open_s, 1e3 * warm.first_s,
         (double)warm.peak_kb / 1024);
  printf("%-34s %10.3f %9.1f ms %14.1f\n", "zoe.load + first tensor, cold", 1e3 * cold.open_s, 1e3 * cold.first_s,
         (double)cold.peak_kb / 1024);
  printf("%-34s %10s %9.1f ms\n", "pread of the 16 MiB tensor, warm", "", 1e3 * wb.first_s);
  printf("%-34s %10s %9.1f ms\n", "pread of the 16 MiB tensor, cold", "", 1e3 * cb.first_s);
  printf("ratio ours / pread: warm %.2f, cold %.2f; peak RSS / file size: %.4f (target: first tensor < 50 ms)\n",
         warm.first_s / wb.first_s, cold.first_s / cb.first_s, (double)cold.peak_kb * 1024 / (double)(NT * TBYTES));
  unlink(path);

  size_t len;
  char *json = synthetic_tokenizer(&len);
  double parse = 1e9, load = 1e9, a;
  zoe_err e = {0};
  zoe_tokenizer *tok = NULL;
  for (int rep = 0; rep < 3; rep++) {
    a = now();
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (now() - a < parse) parse = now() - a;
    cJSON_Delete(root);
    zoe_tokenizer_free(tok);
    a = now();
    tok = zoe_tokenizer_from_json(json, len, "synthetic", &e);
    if (now() - a < load) load = now() - a;
    if (!tok) {
      fprintf(stderr, "bench_weights: %s\n", e.msg);
      return 1;
    }
  }
  char text[8192];
  size_t tl = 0;
  uint32_t r = 99;
  while (tl < 2000) { /* words of 2-9 letters: about 512 tokens */
    int wl = 2 + (int)(r % 8);
    for (int k = 0; k < wl; k++) {
      r = r * 1664525u + 1013904223u;
      text[tl++] = (char)('a' + (r >> 24) % 26);
    }
    text[tl++] = ' ';
  }
  int32_t *ids;
  size_t n;
  a = now();
  int reps = 20;
  for (int i = 0; i < reps; i++) {
    zoe_tokenizer_encode(tok, text, tl, 1, 512, &ids, &n, &e);
    free(ids);
  }
  double enc = (now() - a) / reps;
  printf("\ntokenizer.json of 256k Unigram pieces (%.1f MB): load %.0f ms = %.2f x cJSON parsing it alone (%.0f ms); "
         "encode %zu chars -> %zu tokens: %.2f ms\n", (double)len / 1e6, 1e3 * load, load / parse, 1e3 * parse, tl, n,
         1e3 * enc);
  zoe_tokenizer_free(tok);
  free(json);
  return 0;
}
