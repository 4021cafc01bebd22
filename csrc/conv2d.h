/* conv2d.h: 2-D convolution (cross-correlation, as in PyTorch), forward and backward, NCHW.
 *
 * x (N, C, H, W) * w (K, C/groups, R, S) -> y (N, K, P, Q), with
 *   P = (H + pad_top + pad_bottom - dil_h*(R-1) - 1) / stride_h + 1   (Q likewise).
 * Callers compute P and Q (and so the bottom/right padding); the kernels only need the
 * top/left padding. All arrays are dense and C-ordered. Functions return CCONV_OK, or
 * CCONV_ENOMEM when a workspace could not be allocated (outputs are then unspecified).
 * `threads` is the OpenMP thread count to use (clamped to what the work is worth).
 */
#ifndef CCONV_CONV2D_H
#define CCONV_CONV2D_H

#include <stdint.h>

#include "status.h"

typedef struct {
    int64_t n, c, h, w;          /* input */
    int64_t k, r, s;             /* filters: k of shape (c / groups, r, s) */
    int64_t groups;
    int64_t stride_h, stride_w;
    int64_t dil_h, dil_w;
    int64_t pad_top, pad_left;
    int64_t p, q;                /* output height, width */
} cconv_conv2d_shape;

/* y = activation(conv(x, w) + bias); bias may be NULL. */
int cconv_conv2d_forward_f32(const cconv_conv2d_shape *shape, const float *x, const float *w,
                             const float *bias, float *y, int activation, int threads);
int cconv_conv2d_forward_f64(const cconv_conv2d_shape *shape, const double *x, const double *w,
                             const double *bias, double *y, int activation, int threads);

/* Gradients of the forward pass for grad_y = dL/dy. y (the forward's output) is read only with
 * CCONV_ACTIVATION_RELU, whose derivative masks grad_y where y <= 0 (a NaN y passes it). Any of dx, dw, db may be
 * NULL to skip it; each one given is overwritten (not accumulated into). */
int cconv_conv2d_backward_f32(const cconv_conv2d_shape *shape, const float *dy, const float *y,
                              const float *x, const float *w, float *dx, float *dw, float *db,
                              int activation, int threads);
int cconv_conv2d_backward_f64(const cconv_conv2d_shape *shape, const double *dy, const double *y,
                              const double *x, const double *w, double *dx, double *dw, double *db,
                              int activation, int threads);

#endif
