/* conv2d.c: 2-D convolution forward and backward (see conv2d.h) as packed GEMMs.
 *
 * Per image n and group g, with CRS = (C/groups)*R*S and PQ = P*Q output pixels:
 *   forward      y[K_g, PQ]    = w[K_g, CRS] . im2col(x)[CRS, PQ]          (+ bias)
 *   grad input   dcol[CRS, PQ] = w^T[CRS, K_g] . dy[K_g, PQ], then col2im(dcol) -> dx
 *   grad weight  dw[K_g, CRS] += dy[K_g, PQ] . im2col(x)^T[PQ, CRS]          (summed over n)
 * im2col is never materialised: the packing routines read x directly into the micro-kernel
 * panel layout (gemm.h), one cache-sized block at a time, so the workspace is bounded per
 * thread and independent of the batch size. The type-generic body is conv2d_generic.h,
 * included once for float and once for double.
 */
#include "conv2d.h"

#include <string.h>

#include "gemm.h"
#include "index_math.h"
#include "parallel.h"

#define KC_MAX 256          /* reduction depth of one packed block */
#define NC_MAX 384          /* output columns (pixels or CRS entries) per packed block */
#define DX_ROWS_MAX 1024    /* im2col rows per grad-input block */
#define GRAIN_FLOPS 2.0e6   /* do not wake a thread for less work than this */
#define SUM_LANES 16        /* independent partial sums in reductions */
#define ALIGN_ELEMS 16      /* workspace slices start on 64-byte boundaries (panels are read aligned) */


/* The fraction of a tile dimension of `tile` that `n` rows or columns fill. */
static double tile_fill(int64_t n, int64_t tile) { return (double)n / (double)round_up(n, tile); }

/* The output columns [lo, hi) whose input column ow*stride + off lies inside [0, width). */
static void valid_outputs(int64_t off, int64_t stride, int64_t width, int64_t outputs, int64_t *lo, int64_t *hi)
{
    const int64_t first = off >= 0 ? 0 : ceil_div(-off, stride);
    const int64_t end = width - 1 - off < 0 ? 0 : (width - 1 - off) / stride + 1;
    *lo = clamp64(first, 0, outputs);
    *hi = clamp64(end, *lo, outputs);
}

#define REAL float
#define UREAL uint32_t
#define FN(name) name##_f32
#define UKERNEL(k) ((k)->ukernel_f32)
#define KERNEL_MR(k) ((k)->mr_f32)
#define KERNEL_NR(k) ((k)->nr_f32)
#include "gemm_generic.h"
#include "conv2d_generic.h"
#undef REAL
#undef UREAL
#undef FN
#undef UKERNEL
#undef KERNEL_MR
#undef KERNEL_NR

#define REAL double
#define UREAL uint64_t
#define FN(name) name##_f64
#define UKERNEL(k) ((k)->ukernel_f64)
#define KERNEL_MR(k) ((k)->mr_f64)
#define KERNEL_NR(k) ((k)->nr_f64)
#include "gemm_generic.h"
#include "conv2d_generic.h"
