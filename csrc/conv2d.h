/* conv2d.h: 2-D convolution (cross-correlation, as in PyTorch), forward and backward, NCHW.
 *
 * x (N, C, H, W) * w (K, C/groups, R, S) -> y (N, K, P, Q), with
 *   P = (H + pad_top + pad_bottom - dil_h*(R-1) - 1) / stride_h + 1   (Q likewise).
 * Callers compute P and Q (and so the bottom/right padding); the kernels only need the
 * top/left padding. All arrays are dense and C-ordered. Functions return CCONV_OK,
 * CCONV_ENOMEM when a workspace could not be allocated or its size does not fit memory (outputs
 * are then unspecified), or CCONV_EINVAL when the shape is invalid (cconv_conv2d_shape_invalid)
 * or a forced algorithm cannot run the geometry (nothing is written).
 *
 * Each pass (forward, gradient of the input, gradient of the weights) runs one of several
 * algorithms; CCONV_CONV2D_AUTO picks one per pass from the shape and the micro-kernels in use.
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

typedef enum {
    CCONV_CONV2D_AUTO = 0,
    CCONV_CONV2D_GEMM,           /* im2col packed into micro-kernel panels: any geometry */
    CCONV_CONV2D_IMPLICIT_GEMM,  /* the micro-kernels read a zero-padded copy of the input (split
                                    into phases when strided) in place through an offset table,
                                    nothing packed; the gradient of the input at stride 1 only */
    CCONV_CONV2D_POINTWISE,      /* 1x1, stride 1, no padding: im2col is the input itself */
    CCONV_CONV2D_DEPTHWISE,      /* groups == C: each output plane from one zero-padded input plane,
                                    R*S shifted multiply-adds per row */
    CCONV_CONV2D_WINOGRAD,       /* 3x3, stride 1, one group: Winograd F(4x4 or 2x2, 3x3) (a dilated
                                    convolution as one per phase), the forward and the gradient of the input */
    CCONV_CONV2D_ALGORITHM_COUNT
} cconv_conv2d_algorithm;

typedef enum {
    CCONV_CONV2D_FORWARD = 0,
    CCONV_CONV2D_GRAD_INPUT,
    CCONV_CONV2D_GRAD_WEIGHT,
    CCONV_CONV2D_PASS_COUNT
} cconv_conv2d_pass;

typedef struct {
    int activation;              /* CCONV_ACTIVATION_NONE or _RELU (status.h) */
    int threads;                 /* OpenMP threads to use (clamped to what the work is worth) */
    cconv_conv2d_algorithm algorithm[CCONV_CONV2D_PASS_COUNT];  /* per pass; AUTO: chosen per shape */
} cconv_conv2d_options;

/* The largest value of a field of cconv_conv2d_shape other than p and q (cconv.functional's limit). */
#define CCONV_CONV2D_EXTENT_MAX INT64_C(2147483647)

/* NULL when `shape` is a convolution the kernels take, else a sentence saying why not: every
 * field but p and q in [0, CCONV_CONV2D_EXTENT_MAX] (r, s, groups, strides and dilations at least
 * 1), groups dividing c and k, output rows and columns that read no further than a bottom / right
 * padding of at most CCONV_CONV2D_EXTENT_MAX, and arrays x, w and y whose sizes fit memory.
 * Every function below refuses such a shape (CCONV_EINVAL). */
const char *cconv_conv2d_shape_invalid(const cconv_conv2d_shape *shape);

/* "gemm", "implicit_gemm", "pointwise", "depthwise", "winograd" ("auto" for CCONV_CONV2D_AUTO); NULL past
 * the last. */
const char *cconv_conv2d_algorithm_name(cconv_conv2d_algorithm algorithm);
/* NULL when `algorithm` can run `pass` of this geometry, else a sentence saying why not. */
const char *cconv_conv2d_unsupported(const cconv_conv2d_shape *shape, cconv_conv2d_pass pass,
                                     cconv_conv2d_algorithm algorithm);
/* The algorithm CCONV_CONV2D_AUTO runs for `pass` with elements of elem_size bytes (4 or 8) on
 * the micro-kernels in use now. */
cconv_conv2d_algorithm cconv_conv2d_auto(const cconv_conv2d_shape *shape, cconv_conv2d_pass pass, int elem_size);

/* y = activation(conv(x, w) + bias); bias may be NULL. Runs options->algorithm[CCONV_CONV2D_FORWARD]. */
int cconv_conv2d_forward_f32(const cconv_conv2d_shape *shape, const float *x, const float *w,
                             const float *bias, float *y, const cconv_conv2d_options *options);
int cconv_conv2d_forward_f64(const cconv_conv2d_shape *shape, const double *x, const double *w,
                             const double *bias, double *y, const cconv_conv2d_options *options);

/* Gradients of the forward pass for grad_y = dL/dy. y (the forward's output) is read only with
 * CCONV_ACTIVATION_RELU, whose derivative masks grad_y where y <= 0 (a NaN y passes it). Any of
 * dx, dw, db may be NULL to skip it; each one given is overwritten (not accumulated into). */
int cconv_conv2d_backward_f32(const cconv_conv2d_shape *shape, const float *dy, const float *y,
                              const float *x, const float *w, float *dx, float *dw, float *db,
                              const cconv_conv2d_options *options);
int cconv_conv2d_backward_f64(const cconv_conv2d_shape *shape, const double *dy, const double *y,
                              const double *x, const double *w, double *dx, double *dw, double *db,
                              const cconv_conv2d_options *options);

#endif
