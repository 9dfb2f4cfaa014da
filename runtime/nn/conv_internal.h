/*
** conv_internal.h: what conv.c hands its faster paths: one convolution with
** its input already resolved into frames (causal padding and 'prev' included).
** Not a public API.
*/
#ifndef ZOE_CONV_INTERNAL_H
#define ZOE_CONV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"

/* One frame of the padded input: [Cin][H][W] with unit W stride; p NULL is a zero frame. */
typedef struct zoe__conv_frame {
  const float *p;
  int64_t cs, hs; /* channel and row strides */
} zoe__conv_frame;

typedef struct zoe__conv {
  const zoe__conv_frame *frames; /* [N][Tp]: output frame t reads frames t*st .. t*st + kt - 1 */
  int64_t N, Tp, Cin, H, W, To, Ho, Wo, Cout;
  int kt, kh, kw, st, ptop, pleft; /* spatial stride 1 */
  const float *w;                  /* [Cout, Cin*kt*kh*kw] f32, contiguous */
  const float *bias;               /* [Cout] or NULL */
  float *out;                      /* frame (n, t) at out + n*on + t*ot, channel stride oc, pixels contiguous */
  int64_t on, oc, ot;
} zoe__conv;

/*
** Winograd F(4x4, 3x3) over the spatial dims (conv_winograd.c): 3x3 spatial
** kernels, spatial stride 1, enough output channels for its GEMMs to pay.
*/
bool zoe__conv_winograd_fits(const zoe__conv *c);
int zoe__conv_winograd(const zoe__conv *c, zoe_err *e);

/* On by default; tests and benches turn it off to compare with im2col + GEMM. */
extern bool zoe__conv_winograd_enabled;

#endif
