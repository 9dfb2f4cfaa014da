/*
** vmath.h: branchless float math the compiler can vectorize (libm calls stop
** vectorization). Polynomials after Cephes (S. Moshier); errors of a few ulp.
*/
#ifndef ZOE_VMATH_H
#define ZOE_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float zv_bits(int32_t i) { float f; memcpy(&f, &i, 4); return f; }

/* e^x; 0 below -87.3, +inf above 88.72 */
static inline float zv_exp(float x) {
  float xc = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
  float n = __builtin_floorf(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float z = r * r;
  float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
              4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1; /* two halves keep 2^n in range */
  y = y * zv_bits((n1 + 127) << 23) * zv_bits((n2 + 127) << 23);
  y = x < -87.33654f ? 0.0f : y;
  return x > 88.72283f ? __builtin_inff() : y;
}

static inline float zv_sigmoid(float x) { return 1.0f / (1.0f + zv_exp(-x)); }

static inline float zv_tanh(float x) {
  float ax = x < 0 ? -x : x;
  float z = x * x;
  float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                  1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  float big = 1.0f - 2.0f / (zv_exp(2.0f * ax) + 1.0f);
  big = x < 0 ? -big : big;
  return ax < 0.625f ? small : big;
}

/* 0.5 x (1 + tanh(u)) is x * sigmoid(2u): one exp instead of tanh's two branches */
static inline float zv_gelu_tanh(float x) {
  float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return x / (1.0f + zv_exp(-2.0f * u));
}

#endif
