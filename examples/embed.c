/*
** embed.c: Zoetrope embedded in a C program, through its public header alone.
** It runs T5's encoder (zoe-tiny's and Wan2.1's text encoder) on token ids given on
** the command line, from a checkpoint under the official umT5 names, and prints the
** encoding's shape, its first values and its norm. The checkpoint's names are this
** program's business: the library's blocks take their weights by role.
**
**   cc embed.c $(pkg-config --cflags --libs zoe) -lm -o embed
**   ./embed /usr/local/share/zoe/models/zoe-tiny/t5.safetensors 4 12 31 7 1
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <zoe.h>

#define MAX_IDS 512

/* weights[name], with the name made from 'fmt' and the layer; NULL and a message when absent */
static zoe_tensor *weight(zoe_weights *w, const char *fmt, int layer, zoe_err *e) {
  char name[128];
  snprintf(name, sizeof name, fmt, layer);
  return zoe_weights_get(w, name, e);
}

/* One encoder layer: its weights by role, then the block. Returns the new x, or NULL. */
static zoe_tensor *layer(zoe_weights *w, int i, int heads, zoe_tensor *x, zoe_err *e) {
  static const char *const names[] = {
    "blocks.%d.norm1.weight", "blocks.%d.attn.q.weight", "blocks.%d.attn.k.weight",
    "blocks.%d.attn.v.weight", "blocks.%d.attn.o.weight", "blocks.%d.norm2.weight",
    "blocks.%d.ffn.gate.0.weight", "blocks.%d.ffn.fc1.weight", "blocks.%d.ffn.fc2.weight",
    "blocks.%d.pos_embedding.embedding.weight",
  };
  zoe_tensor *t[10] = {0};
  zoe_tensor *y = NULL;
  int got = 0;
  while (got < 10 && (t[got] = weight(w, names[got], i, e))) got++;
  if (got == 10) {
    zoe_t5_layer_w roles = {.norm1 = t[0], .q = t[1], .k = t[2], .v = t[3], .o = t[4], .norm2 = t[5],
                            .gate = t[6], .fc1 = t[7], .fc2 = t[8], .pos_table = t[9]};
    y = zoe_t5_layer(&roles, heads, 1e-6, x, NULL, NULL, e);
  }
  for (int k = 0; k < got; k++) zoe_tensor_release(t[k]);
  return y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s T5.safetensors HEADS ID...\n", argv[0]);
    return 2;
  }
  int heads = atoi(argv[2]), n = argc - 3;
  if (heads <= 0 || n > MAX_IDS) {
    fprintf(stderr, "embed: HEADS must be positive and at most %d ids given\n", MAX_IDS);
    return 2;
  }
  int32_t ids[MAX_IDS];
  for (int i = 0; i < n; i++) ids[i] = (int32_t)atoi(argv[3 + i]);

  zoe_err e = {0};
  zoe_tensor *tokens = NULL, *x = NULL, *table = NULL, *norm = NULL, *out = NULL;
  zoe_weights *w = zoe_weights_open(argv[1], &e);
  int status = 1;
  if (!w) goto done;
  if (!(table = zoe_weights_get(w, "token_embedding.weight", &e))) goto done;
  if (!(tokens = zoe_tensor_from_data(ZOE_I32, 2, (int64_t[]){1, n}, ids, &e))) goto done;
  if (!(x = zoe_embedding(table, tokens, &e))) goto done;
  for (int i = 0;; i++) { /* the layers there are */
    char probe[64];
    snprintf(probe, sizeof probe, "blocks.%d.norm1.weight", i);
    if (zoe_weights_find(w, probe) < 0) break;
    zoe_tensor *y = layer(w, i, heads, x, &e);
    zoe_tensor_release(x);
    x = y;
    if (!x) goto done;
  }
  if (!(norm = zoe_weights_get(w, "norm.weight", &e))) goto done;
  if (!(out = zoe_rms_norm(x, norm, 1e-6, NULL, &e))) goto done;

  char shape[64];
  const float *v = zoe_tensor_data(out); /* a new tensor: contiguous f32 */
  double sum = 0;
  for (int64_t i = 0; i < zoe_numel(out); i++) sum += (double)v[i] * v[i];
  printf("zoe %s, %s\n", zoe_version(), zoe_weights_format(w));
  printf("shape %s\n", zoe_shape_str(out, shape, sizeof shape));
  printf("first %.9g %.9g %.9g %.9g\n", v[0], v[1], v[2], v[3]);
  printf("norm %.9g\n", sqrt(sum));
  status = 0;
done:
  if (status) fprintf(stderr, "embed: %s (%s)\n", e.msg, zoe_strerror(e.code));
  zoe_tensor_release(out);
  zoe_tensor_release(norm);
  zoe_tensor_release(x);
  zoe_tensor_release(tokens);
  zoe_tensor_release(table);
  zoe_weights_release(w);
  zoe_pool_shutdown();
  return status;
}
