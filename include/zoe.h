/*
** zoe.h: Zoetrope's C API, for programs that embed the runtime without Lua:
** errors, dtypes, tensors, checkpoints (weights), model blocks, the compute pool,
** and the version. This is the whole public surface: libzoe exports what is
** declared here and nothing else (zoe.so, the Lua module, also its luaopen_*).
**
**   cc app.c $(pkg-config --cflags --libs zoe)
**
**   zoe_err e = {0};
**   zoe_weights *w = zoe_weights_open("model.safetensors", &e);
**   zoe_tensor *x = w ? zoe_weights_get(w, "embed.weight", &e) : NULL;
**   if (!x) fprintf(stderr, "%s\n", e.msg);
**
** Conventions. A fallible call takes a 'zoe_err *' (may be NULL) and returns 0 or
** a non-NULL result on success; on failure a negative ZOE_E* code or NULL, with a
** message in the zoe_err that says what was wrong and where. Nothing aborts on bad
** input. Every function that returns a tensor returns a new reference, released
** once with zoe_tensor_release (even when it is one of the inputs). Dims are
** 0-based; negative dims count from the end. Functions that take an 'out' write
** into it when it is given (its shape must match) and return a new reference to it.
** Not thread-safe per object unless said: use a tensor from one thread at a time.
*/
#ifndef ZOE_H
#define ZOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZOE_API __attribute__((visibility("default")))

/* ---- version ---- */

#define ZOE_VERSION_MAJOR 0
#define ZOE_VERSION_MINOR 1
#define ZOE_VERSION_PATCH 0
#define ZOE_VERSION "0.1.0"
/* The library's version (ZOE_VERSION of the header it was built with). */
ZOE_API const char *zoe_version(void);

/* ---- errors ---- */

#define ZOE_ERR_MSG 512

/* X-macro: the codes and their names stay in one place. */
#define ZOE_ERRNO_MAP(XX)                                   \
  XX(EINVAL, -1, "invalid argument")                        \
  XX(ESHAPE, -2, "shape mismatch")                          \
  XX(EDTYPE, -3, "unsupported dtype")                       \
  XX(ENOMEM, -4, "out of memory")                           \
  XX(EIO, -5, "input/output error")                         \
  XX(EFORMAT, -6, "malformed file")                         \
  XX(ERANGE, -7, "index out of range")                      \
  XX(ECANCELED, -8, "canceled")                             \
  XX(ENOTSUP, -9, "not supported")

enum {
#define XX(name, val, text) ZOE_##name = val,
  ZOE_ERRNO_MAP(XX)
#undef XX
};

typedef struct zoe_err {
  int code;
  char msg[ZOE_ERR_MSG];
} zoe_err;

ZOE_API const char *zoe_strerror(int code);

/* ---- dtypes ---- */

typedef enum zoe_dtype {
  ZOE_F32,
  ZOE_F16,
  ZOE_BF16,
  ZOE_I32,
  ZOE_U8,
  ZOE_I64,  /* storage only: read from checkpoints, converted before use */
  ZOE_BOOL, /* storage only: one byte, 0 or 1 */
  ZOE_F64,  /* storage only: reference fixtures keep Python floats as F64 */
  ZOE_F8_E4M3, /* float8 e4m3fn (no infinities, max 448), widened like f16/bf16 */
  ZOE_F8_E5M2, /* float8 e5m2 (IEEE-like, max 57344) */
  /*
  ** Quantized blocks (ggml's formats): a run of elements is stored as one block of
  ** bytes, so a tensor of these holds whole blocks, is contiguous, and starts on a
  ** block. Only linear layers, dequantization (zoe_to_dtype) and copies take them.
  */
  ZOE_Q4_0,
  ZOE_Q4_1,
  ZOE_Q5_0,
  ZOE_Q5_1,
  ZOE_Q8_0,
  ZOE_Q2_K,
  ZOE_Q3_K,
  ZOE_Q4_K,
  ZOE_Q5_K,
  ZOE_Q6_K,
  ZOE_NDTYPES
} zoe_dtype;

/* Bytes per element; for the block formats, bytes per block (32 or 256 elements). */
ZOE_API size_t zoe_dtype_size(zoe_dtype dt);
ZOE_API const char *zoe_dtype_name(zoe_dtype dt); /* "f32", "bf16", ... */
ZOE_API int zoe_dtype_from_name(const char *name, zoe_dtype *out); /* 0 or ZOE_EINVAL */
ZOE_API bool zoe_dtype_is_float(zoe_dtype dt);

/* ---- the runtime ---- */

/*
** The compute pool runs the kernels; every op starts it when it first needs it.
** nthreads <= 0: ZOE_THREADS or the core count. OpenBLAS gets the same count.
*/
ZOE_API void zoe_pool_init(int nthreads);
ZOE_API void zoe_pool_set_threads(int nthreads);
ZOE_API int zoe_pool_threads(void);
/* Stop the pool's threads (before exit, or to start again with another count). */
ZOE_API void zoe_pool_shutdown(void);
/* Give every cached block and idle activation arena back to the system. */
ZOE_API void zoe_mem_trim(void);

/* ---- tensors ---- */

#define ZOE_MAX_DIMS 8

/* A strided view over refcounted storage (heap, a mapped file, or borrowed memory). */
typedef struct zoe_tensor zoe_tensor;

ZOE_API zoe_tensor *zoe_tensor_retain(const zoe_tensor *t);
ZOE_API void zoe_tensor_release(zoe_tensor *t); /* NULL is fine */

ZOE_API zoe_tensor *zoe_empty(zoe_dtype dt, int ndim, const int64_t *shape, zoe_err *e);
ZOE_API zoe_tensor *zoe_zeros(zoe_dtype dt, int ndim, const int64_t *shape, zoe_err *e);
ZOE_API zoe_tensor *zoe_full(zoe_dtype dt, int ndim, const int64_t *shape, double v, zoe_err *e);
/* A new contiguous tensor holding a copy of 'data' (numel elements of dt, row-major). */
ZOE_API zoe_tensor *zoe_tensor_from_data(zoe_dtype dt, int ndim, const int64_t *shape, const void *data,
                                         zoe_err *e);

ZOE_API zoe_dtype zoe_tensor_dtype(const zoe_tensor *t);
ZOE_API int zoe_tensor_ndim(const zoe_tensor *t);
ZOE_API int64_t zoe_tensor_size(const zoe_tensor *t, int dim); /* dim may be negative */
ZOE_API int64_t zoe_tensor_stride(const zoe_tensor *t, int dim); /* in elements */
/* The first element (read it with the strides, or make the tensor contiguous first). */
ZOE_API void *zoe_tensor_data(const zoe_tensor *t);
ZOE_API int64_t zoe_numel(const zoe_tensor *t);
ZOE_API bool zoe_is_contiguous(const zoe_tensor *t);
/* t's shape as text ("2x3x4", "scalar") into 'buf'; returns buf. */
ZOE_API char *zoe_shape_str(const zoe_tensor *t, char *buf, size_t n);

/* views: no copy */
ZOE_API zoe_tensor *zoe_view(const zoe_tensor *t, int ndim, const int64_t *shape, zoe_err *e);
ZOE_API zoe_tensor *zoe_reshape(const zoe_tensor *t, int ndim, const int64_t *shape, zoe_err *e);
ZOE_API zoe_tensor *zoe_permute(const zoe_tensor *t, const int *perm, zoe_err *e);
ZOE_API zoe_tensor *zoe_transpose(const zoe_tensor *t, int d0, int d1, zoe_err *e);
ZOE_API zoe_tensor *zoe_narrow(const zoe_tensor *t, int dim, int64_t start, int64_t len, zoe_err *e);
ZOE_API zoe_tensor *zoe_select(const zoe_tensor *t, int dim, int64_t index, zoe_err *e);
ZOE_API zoe_tensor *zoe_unsqueeze(const zoe_tensor *t, int dim, zoe_err *e);

/* copies */
ZOE_API zoe_tensor *zoe_contiguous(const zoe_tensor *t, zoe_err *e); /* 't' itself when already so */
ZOE_API zoe_tensor *zoe_clone(const zoe_tensor *t, zoe_err *e);
ZOE_API zoe_tensor *zoe_to_dtype(const zoe_tensor *t, zoe_dtype dt, zoe_err *e);
/* dst[...] = src[...], broadcasting src to dst's shape and converting dtype. */
ZOE_API int zoe_copy_(zoe_tensor *dst, const zoe_tensor *src, zoe_err *e);

/* a @ b with batch broadcasting, as torch.matmul (1-D operands included) */
ZOE_API zoe_tensor *zoe_matmul(const zoe_tensor *a, const zoe_tensor *b, zoe_tensor *out, zoe_err *e);

/* ---- weights: checkpoints, read lazily ---- */

/*
** safetensors (one file, or shards named by a *.safetensors.index.json), a PyTorch
** zip checkpoint (.pth, torch.save), or GGUF, found by content. Opening maps the file
** and reads its table of contents; a tensor is made only when asked for, as a view
** over the mapped bytes in the file's dtype. Names are listed sorted (strcmp order).
** Open and get from one thread; the tensors may be used anywhere, and keep the
** mapping alive on their own.
*/
typedef struct zoe_weights zoe_weights;

ZOE_API zoe_weights *zoe_weights_open(const char *path, zoe_err *e);
ZOE_API zoe_weights *zoe_weights_retain(zoe_weights *w);
ZOE_API void zoe_weights_release(zoe_weights *w);
ZOE_API const char *zoe_weights_path(const zoe_weights *w);
/* "safetensors", "safetensors index", "pth" or "gguf" */
ZOE_API const char *zoe_weights_format(const zoe_weights *w);
ZOE_API size_t zoe_weights_count(const zoe_weights *w);
ZOE_API const char *zoe_weights_name(const zoe_weights *w, size_t i);
/* Index of 'name', or -1. */
ZOE_API ptrdiff_t zoe_weights_find(const zoe_weights *w, const char *name);
/* A new reference to tensor 'i' / 'name'; an unknown name is an error naming the file. */
ZOE_API zoe_tensor *zoe_weights_tensor(zoe_weights *w, size_t i, zoe_err *e);
ZOE_API zoe_tensor *zoe_weights_get(zoe_weights *w, const char *name, zoe_err *e);
/* The file's metadata (safetensors __metadata__, an index's "metadata", GGUF keys). */
ZOE_API size_t zoe_weights_meta_count(const zoe_weights *w);
ZOE_API const char *zoe_weights_meta_key(const zoe_weights *w, size_t i);
ZOE_API const char *zoe_weights_meta_value(const zoe_weights *w, size_t i);

/* ---- blocks ---- */
/*
** Tokens are [B, L, D]; attention heads [B, L, H, Dh]; videos [N, C, T, H, W].
** Weights may be f32, f16 or bf16 (or quantized, for linear), widened inside the
** kernels; composite blocks take their weights by role (a struct of tensors).
*/

/* y = x W^T + b: x [..., in], w [out, in], b [out] or NULL -> [..., out] */
ZOE_API zoe_tensor *zoe_linear(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, zoe_tensor *out,
                               zoe_err *e);
/* rows of 'weight' [V, D] for integer ids of any shape -> [..., D] f32 */
ZOE_API zoe_tensor *zoe_embedding(const zoe_tensor *weight, const zoe_tensor *ids, zoe_err *e);
/* over the last dim; w, b may be NULL (no affine) */
ZOE_API zoe_tensor *zoe_layer_norm(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, double eps,
                                   zoe_tensor *out, zoe_err *e);
/* x * rsqrt(mean(x^2) + eps) * w over the last dim (T5's norm) */
ZOE_API zoe_tensor *zoe_rms_norm(const zoe_tensor *x, const zoe_tensor *w, double eps, zoe_tensor *out,
                                 zoe_err *e);
/* x [N, C, ...]: statistics per (sample, group of C/groups channels) */
ZOE_API zoe_tensor *zoe_group_norm(const zoe_tensor *x, int groups, const zoe_tensor *w, const zoe_tensor *b,
                                   double eps, zoe_tensor *out, zoe_err *e);

typedef struct zoe_attn_opts {
  double scale;                /* logits = q.k * scale; NAN means 1/sqrt(Dh); 1 for T5 */
  const zoe_tensor *key_mask;  /* [B, Lk], nonzero keeps the key; NULL: all keys */
  const zoe_tensor *bias;      /* additive [Hb, Lq, Lk] with Hb = H or 1 (T5 position bias) */
} zoe_attn_opts;
/*
** softmax(q k^T * scale + bias + mask) v, one head at a time, in tiles with an
** online softmax, so memory is O(L * Dh), never O(Lq * Lk). q [B, Lq, H, Dh],
** k [B, Lk, H, Dh], v [B, Lk, H, Dv] (any strides with a contiguous last dim)
** -> [B, Lq, H, Dv]. opts may be NULL.
*/
ZOE_API zoe_tensor *zoe_attention(const zoe_tensor *q, const zoe_tensor *k, const zoe_tensor *v,
                                  const zoe_attn_opts *opts, zoe_tensor *out, zoe_err *e);
/* the T5 bias [H, Lq, Lk] f32 from a relative position table [num_buckets, H] */
ZOE_API zoe_tensor *zoe_t5_position_bias(const zoe_tensor *table, int64_t lq, int64_t lk, int max_distance,
                                         zoe_err *e);
/*
** Rotary embedding on adjacent pairs (x[2i], x[2i+1]) of the head dim of x
** [B, L, H, Dh] (out may be x). 3-D factorized: the Dh/2 pairs split into axes of
** npairs[0..2] pairs, token l at grid position (f, y, x) row-major over grid[3].
** 1-D: grid = {L, 1, 1}, npairs = {Dh/2, 0, 0}.
*/
ZOE_API zoe_tensor *zoe_rope(const zoe_tensor *x, const int64_t grid[3], const int npairs[3], double theta,
                             zoe_tensor *out, zoe_err *e);
/* sinusoidal embedding of t [N] -> [N, dim]: cat(cos, sin) (cos_first) or cat(sin, cos) */
ZOE_API zoe_tensor *zoe_timestep_embedding(const zoe_tensor *t, int dim, double max_period, bool cos_first,
                                           zoe_err *e);
/* x * (1 + scale) + shift, scale and shift broadcast to x */
ZOE_API zoe_tensor *zoe_modulate(const zoe_tensor *x, const zoe_tensor *shift, const zoe_tensor *scale,
                                 zoe_tensor *out, zoe_err *e);
/* x + y * gate (gate broadcast; NULL means 1) */
ZOE_API zoe_tensor *zoe_gated_add(const zoe_tensor *x, const zoe_tensor *y, const zoe_tensor *gate,
                                  zoe_tensor *out, zoe_err *e);
/* x [N, Cin, H, W], w [Cout, Cin, kh, kw]; pad = top, bottom, left, right */
ZOE_API zoe_tensor *zoe_conv2d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, const int stride[2],
                               const int pad[4], zoe_tensor *out, zoe_err *e);
/*
** x [N, Cin, T, H, W], w [Cout, Cin, kt, kh, kw]; spatial padding pad_hw; causal in
** time: 'tpad' frames go in front (the last frames of 'prev' [N, Cin, P, H, W] when
** given, then zeros), none behind, so a video fed chunk by chunk gives the same result.
*/
ZOE_API zoe_tensor *zoe_conv3d(const zoe_tensor *x, const zoe_tensor *w, const zoe_tensor *b, const int stride[3],
                               const int pad_hw[2], int tpad, const zoe_tensor *prev, zoe_tensor *out, zoe_err *e);

/* One layer of T5's encoder (T5 v1.1, umT5), by role; no weight has a bias. */
typedef struct zoe_t5_layer_w {
  const zoe_tensor *norm1, *q, *k, *v, *o, *norm2, *gate, *fc1, *fc2;
  const zoe_tensor *pos_table; /* [buckets, H], or NULL when the bias is given */
} zoe_t5_layer_w;
/*
** x [B, L, D] -> [B, L, D]: x += o(attention(norm1 x)) with unscaled attention and a
** relative position bias; x += fc2(fc1(norm2 x) * gelu_tanh(gate(norm2 x))).
** mask [B, L] (nonzero = real token) or NULL; pos_bias [H, L, L] or NULL to compute
** it from w->pos_table (max distance 128).
*/
ZOE_API zoe_tensor *zoe_t5_layer(const zoe_t5_layer_w *w, int heads, double eps, const zoe_tensor *x,
                                 const zoe_tensor *mask, const zoe_tensor *pos_bias, zoe_err *e);

#ifdef __cplusplus
}
#endif

#endif
