/* conv2d_plan.h: how a convolution pass will run (internal to conv2d.c and conv2d_plan.c): the
 * algorithm and its variant, chosen by conv2d_plan.c, the one place where the choice is made. */
#ifndef CCONV_CONV2D_PLAN_H
#define CCONV_CONV2D_PLAN_H

#include "conv2d.h"
#include "gemm_config.h"

/* A stride-1 convolution as the implicit GEMM runs it, per group: cin x (h, w) in, cout x (p, q)
 * out, filters r x s. */
typedef struct {
    int64_t n, groups;
    int64_t cin, h, w;
    int64_t cout, p, q;
    int64_t r, s, dil_h, dil_w, pad_top, pad_left;
} slab_shape;

/* The forward's (and so the weight gradient's) stride-1 geometry. */
slab_shape conv2d_forward_slab(const cconv_conv2d_shape *sh);
/* The gradient of the input's: dx = conv(dy, w transposed to (C_g, K_g) and flipped), with dy
 * padded so that output pixel h reads dy rows h - (dil_h*(R-1) - pad_top) + r*dil_h. */
slab_shape conv2d_grad_input_slab(const cconv_conv2d_shape *sh);
/* The row period of the slab (see conv2d_implicit_gemm.h), or 0 when the implicit GEMM cannot
 * run fs: its padding would crop the input instead of padding it. */
int64_t slab_row_period(const slab_shape *fs);

typedef struct {
    cconv_conv2d_algorithm algorithm;
    int pixel_kernel;  /* implicit GEMM: tiles of pixels x filters (the pixel micro-kernel) */
    int transposed;    /* GEMM and pointwise weight gradients: dw^T = im2col . dy^T */
} conv2d_plan;

/* Whether the implicit GEMM's B-offset tiles can cover whole output rows (gemm_config.h's runs). */
int slab_offset_row_runs(const slab_shape *fs, const cconv_gemm_tiles *tiles, int elem_size);

/* The plan for `pass`: `requested` (AUTO: the algorithm this file picks for the shape; else one
 * that conv2d_unsupported() accepts) with the variant that suits the tiles of the micro-kernels
 * in use and elements of elem_size bytes. */
conv2d_plan conv2d_make_plan(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass, cconv_conv2d_algorithm requested,
                             const cconv_gemm_tiles *tiles, int elem_size);

#endif
