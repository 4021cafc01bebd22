/* conv2d_plan.h: how a convolution pass will run (internal to conv2d.c and conv2d_plan.c): the
 * algorithm and its variant, chosen by conv2d_plan.c, the one place where the choice is made. */
#ifndef CCONV_CONV2D_PLAN_H
#define CCONV_CONV2D_PLAN_H

#include "conv2d.h"
#include "gemm_config.h"

/* A convolution as the implicit GEMM runs it, per group: cin x (h, w) in, cout x (p, q) out,
 * filters r x s. */
typedef struct {
    int64_t n, groups;
    int64_t cin, h, w;
    int64_t cout, p, q;
    int64_t r, s, dil_h, dil_w, pad_top, pad_left;
    int64_t stride_h, stride_w;
} slab_shape;

/* The implicit GEMM runs strides up to this (its slab keeps one plane per phase in use). */
#define SLAB_MAX_STRIDE 16

/* How one block of output rows lays out its input in the slab (conv2d_implicit_gemm.h). Each
 * channel holds one plane per phase (row phase, column phase) that some filter tap reads; within
 * a plane, element (t, i) sits at t*wp + i, and tap (c, r, s) of output (oh, ow) of the block is
 * plane element (oh + r*dil_h / stride_h, ow + s*dil_w / stride_w) of channel c's phase
 * (r*dil_h % stride_h, s*dil_w % stride_w). */
typedef struct {
    int64_t wp;              /* row period */
    int64_t halo;            /* plane rows past the block's output rows */
    int64_t phase_plane;     /* elements of one phase's plane */
    int64_t plane;           /* elements per channel */
    int phases_w;            /* column phases in use */
    signed char phase_h[SLAB_MAX_STRIDE], phase_w[SLAB_MAX_STRIDE];  /* index of a phase in use, or -1 */
} slab_layout;

/* The forward's (and so the weight gradient's) stride-1 geometry. */
slab_shape conv2d_forward_slab(const cconv_conv2d_shape *sh);
/* The gradient of the input's: dx = conv(dy, w transposed to (C_g, K_g) and flipped), with dy
 * padded so that output pixel h reads dy rows h - (dil_h*(R-1) - pad_top) + r*dil_h. */
slab_shape conv2d_grad_input_slab(const cconv_conv2d_shape *sh);
/* The row period of the slab (see conv2d_implicit_gemm.h), or 0 when the implicit GEMM cannot
 * run fs: its padding would crop the input instead of padding it. */
int64_t slab_row_period(const slab_shape *fs);
/* The layout of a slab for blocks of up to `rows` output rows (fs as slab_row_period accepts). */
slab_layout slab_layout_make(const slab_shape *fs, int64_t rows);

typedef struct {
    cconv_conv2d_algorithm algorithm;
    int pixel_kernel;  /* implicit GEMM: tiles of pixels x filters (the pixel micro-kernel) */
    int transposed;    /* GEMM and pointwise weight gradients: dw^T = im2col . dy^T */
    int64_t images;    /* GEMM and pointwise: whole images per work item (1: blocks of one image) */
    int winograd_tile; /* Winograd: the output tile's side m of F(m x m, 3 x 3), 4 or 2 */
} conv2d_plan;

/* Whether the implicit GEMM's B-offset tiles can cover whole output rows (gemm_config.h's runs). */
int slab_offset_row_runs(const slab_shape *fs, const cconv_gemm_tiles *tiles, int elem_size);

/* The plan for `pass`: `requested` (AUTO: the algorithm this file picks for the shape; else one
 * that conv2d_unsupported() accepts) with the variant that suits the tiles of the micro-kernels
 * in use, elements of elem_size bytes and `threads` threads. */
conv2d_plan conv2d_make_plan(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass, cconv_conv2d_algorithm requested,
                             const cconv_gemm_tiles *tiles, int elem_size, int threads);

#endif
