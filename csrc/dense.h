/* dense.h: fully connected layers on the packed micro-kernels, forward and backward:
 *   y (n, out) = activation(x (n, in) . w (in, out) + bias)
 * (the weight in Keras's (in, out) layout). Arrays are dense and C-ordered. Each output element
 * is computed whole by one thread in a fixed order, so results do not depend on the thread
 * count. Functions return CCONV_OK, CCONV_ENOMEM, or CCONV_EINVAL (nothing written) for a negative
 * size or arrays whose sizes do not fit memory (status.h). */
#ifndef CCONV_DENSE_H
#define CCONV_DENSE_H

#include <stdint.h>

#include "status.h"

/* y = activation(x . w + bias); bias may be NULL. */
int cconv_dense_forward_f32(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                            const float *bias, float *y, int activation, int threads);
int cconv_dense_forward_f64(int64_t n, int64_t in, int64_t out, const double *x, const double *w,
                            const double *bias, double *y, int activation, int threads);

/* Gradients for grad_y = dL/dy; y (the forward's output) is read only with CCONV_ACTIVATION_RELU.
 * Any of dx, dw, db may be NULL to skip it; each one given is overwritten. */
int cconv_dense_backward_f32(int64_t n, int64_t in, int64_t out, const float *dy, const float *y,
                             const float *x, const float *w, float *dx, float *dw, float *db,
                             int activation, int threads);
int cconv_dense_backward_f64(int64_t n, int64_t in, int64_t out, const double *dy, const double *y,
                             const double *x, const double *w, double *dx, double *dw, double *db,
                             int activation, int threads);

#endif
