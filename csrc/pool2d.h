/* pool2d.h: 2-D max / average / Lp-norm pooling, forward and backward, NCHW (PyTorch semantics).
 *
 * x (N, C, H, W) -> y (N, C, P, Q). Output row oh pools input rows
 *   [oh*stride_h - pad_h, oh*stride_h - pad_h + kh) clipped to [0, H)  (columns likewise).
 * Callers compute P and Q (PyTorch's rule, including ceil_mode) and check that every window
 * overlaps the input; the kernels trust the shape. All arrays are dense and C-ordered.
 *
 * max:  padding counts as -inf; a NaN in the window makes the output NaN. The gradient goes to
 *       the first maximum of the window in row-major order (to the last NaN when there is one),
 *       exactly as PyTorch's CPU kernel picks its index.
 * avg:  sum / divisor, where divisor = window size clipped at H + pad_h and W + pad_w when
 *       count_include_pad is nonzero, or the number of real input elements when it is zero.
 * lp:   torch.nn.functional.lp_pool2d: (avg_pool2d(x**p, k, stride, 0, ceil_mode) * kh*kw)**(1/p).
 *       There is no padding (pad_h and pad_w must be 0). The gradient of a window whose pooled
 *       sum is zero is defined as zero, and an input no window uses gets gradient zero.
 *
 * Backward functions overwrite dx (they do not accumulate into it) and are deterministic: the
 * result does not depend on `threads`, and each dx element sums its contributions in PyTorch's
 * order. Functions return CCONV_OK, CCONV_ENOMEM when the Lp kernels could not allocate
 * their scratch rows (outputs are then unspecified; max and avg allocate nothing), or
 * CCONV_EINVAL (nothing written) for a shape outside the kernels' limits: sizes, kernel,
 * strides or padding past 2**31 - 1, outputs starting past the input, or arrays too large for
 * memory.
 * `threads` is the OpenMP thread count to use (clamped to what the work is worth).
 */
#ifndef CCONV_POOL2D_H
#define CCONV_POOL2D_H

#include <stdint.h>

#include "status.h"

typedef struct {
    int64_t n, c, h, w;          /* input */
    int64_t kh, kw;              /* window */
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;        /* the same padding on both sides */
    int64_t p, q;                /* output height, width */
} cconv_pool2d_shape;

int cconv_max_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                 int threads);
int cconv_max_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                 int threads);
int cconv_max_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, const float *x,
                                  float *dx, int threads);
int cconv_max_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy,
                                  const double *x, double *dx, int threads);

int cconv_avg_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                 int count_include_pad, int threads);
int cconv_avg_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                 int count_include_pad, int threads);
int cconv_avg_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, float *dx,
                                  int count_include_pad, int threads);
int cconv_avg_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy, double *dx,
                                  int count_include_pad, int threads);

/* norm_type > 0 and finite. */
int cconv_lp_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                double norm_type, int threads);
int cconv_lp_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                double norm_type, int threads);
int cconv_lp_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, const float *x,
                                 float *dx, double norm_type, int threads);
int cconv_lp_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy,
                                 const double *x, double *dx, double norm_type, int threads);

#endif
