/* gelu.h: the exact GELU activation, y = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))) (PyTorch's
 * gelu with approximate='none'), forward and backward, element-wise over `count` values.
 *
 * Backward: dx = dy * (Phi(x) + x * phi(x)), phi the standard normal density. erf comes from the
 * C library (erfcf for float, erfc for double:
 * Phi(x) = erfc(-x / sqrt(2)) / 2). dx may alias dy, y may alias x. The results do not
 * depend on `threads` (the OpenMP thread count to use, clamped to what the work is worth).
 */
#ifndef CCONV_GELU_H
#define CCONV_GELU_H

#include <stdint.h>

void cconv_gelu_forward_f32(int64_t count, const float *x, float *y, int threads);
void cconv_gelu_forward_f64(int64_t count, const double *x, double *y, int threads);
void cconv_gelu_backward_f32(int64_t count, const float *dy, const float *x, float *dx, int threads);
void cconv_gelu_backward_f64(int64_t count, const double *dy, const double *x, double *dx, int threads);

#endif
