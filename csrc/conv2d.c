/* conv2d.c: 2-D convolution forward and backward (conv2d.h): the entry points and the table of
 * algorithms they dispatch to. conv2d_plan.c decides which algorithm runs each pass; the
 * algorithms are type-generic headers, stamped out here once for float and once for double:
 *   gemm_driver.h           the packed-GEMM loop nest, packing and epilogue helpers
 *   conv2d_im2col.h         im2col packed straight into panels, col2im
 *   conv2d_gemm.h           GEMM and pointwise: forward, gradient of the input
 *   conv2d_implicit_gemm.h  implicit GEMM (a zero-padded slab, split into phases when strided, read in place)
 *   conv2d_grad_weight.h    the weight and bias gradients of every algorithm
 *   conv2d_depthwise.h      depthwise (groups == C): plane by plane, shifted rows of a padded copy
 *   conv2d_winograd.h       Winograd F(m x m, 3 x 3): transformed tiles, products on the GEMM driver
 * A new algorithm is one more header here, its entry in conv2d.h's enum and in ALGORITHMS below,
 * and its rules in conv2d_plan.c. */
#include "conv2d.h"

#include <string.h>

#include "conv2d_plan.h"
#include "checked_math.h"
#include "gemm_config.h"
#include "index_math.h"
#include "parallel.h"
#include "workspace.h"

#define DX_ROWS_MAX 1024          /* im2col rows per work item of the GEMM gradient of the input */
#define IM2COL_T_DEPTH_MAX 384    /* pixels per work item of the GEMM weight gradient */
#define SLAB_COLS 512             /* flat output columns per block of the implicit GEMM */
#define SLAB_ROWS 128             /* output channels per block of the implicit GEMM */
#define GRAIN_FLOPS 2.0e6         /* do not wake a thread for less work than this */
#define SUM_LANES 16              /* independent partial sums in reductions */
#define DW_SLAB_ELEMS 16384       /* elements of one depthwise slab block at most (it stays in L2) */
#define DW_GROUP_PLANES 16        /* whole small planes per depthwise work item at most */
#define DW_GROUP_ELEMS 1024       /* slab elements of such a group at most (it stays in L1) */
#define ALIGN_ELEMS 16            /* workspace slices start on 64-byte boundaries (panels are read aligned) */

#define REAL float
#define UREAL uint32_t
#define REAL_EXPONENT_BITS 0x7f800000u
#define FN(name) name##_f32
#define CONFIG f32
#include "conv2d_algorithms.h"
#undef REAL
#undef UREAL
#undef REAL_EXPONENT_BITS
#undef FN
#undef CONFIG

#define REAL double
#define UREAL uint64_t
#define REAL_EXPONENT_BITS 0x7ff0000000000000u
#define FN(name) name##_f64
#define CONFIG f64
#include "conv2d_algorithms.h"
