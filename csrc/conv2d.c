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
#include "workspace.h"

#define KC_MAX 384          /* reduction depth of one packed block */
#define NC_MAX 384          /* output columns (pixels or CRS entries) per packed block */
#define DX_ROWS_MAX 1024    /* im2col rows per grad-input block */
#define GRAIN_FLOPS 2.0e6   /* do not wake a thread for less work than this */
#define SUM_LANES 16        /* independent partial sums in reductions */
#define ALIGN_ELEMS 16      /* workspace slices start on 64-byte boundaries (panels are read aligned) */
#define FLAT_COLS 512       /* flat output columns per block of the stride-1 path */
#define FLAT_ROWS 128       /* output channels per block of the stride-1 path */

/* A stride-1 convolution for conv2d_flat.h, per group: cin x (h, w) in, cout x (p, q) out. */
typedef struct {
    int64_t n, groups;
    int64_t cin, h, w;
    int64_t cout, p, q;
    int64_t r, s, dil_h, dil_w, pad_top, pad_left;
} flat_shape;
#define FLAT_NOT_APPLICABLE (-1)  /* not a status of conv2d.h: the caller takes the packed path */


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

/* The row period of the slab (see conv2d_flat.h), or 0 when this path does not apply (cropping). */
static int64_t flat_row_period(const flat_shape *fs)
{
    const int64_t pad_right = fs->q + (fs->s - 1) * fs->dil_w - fs->w - fs->pad_left;
    if (fs->pad_left < 0 || pad_right < 0) return 0;
    return max64(fs->w + max64(fs->pad_left, pad_right), fs->q);  /* a row must hold Q outputs */
}

/* The stride-1 description of a convolution's forward geometry (also its weight gradient's). */
static flat_shape forward_flat_shape(const cconv_conv2d_shape *sh)
{
    const flat_shape fs = {sh->n, sh->groups, sh->c / sh->groups, sh->h, sh->w, sh->k / sh->groups, sh->p, sh->q,
                           sh->r, sh->s, sh->dil_h, sh->dil_w, sh->pad_top, sh->pad_left};
    return fs;
}

/* Output rows per block (*ph) and blocks per image (*nblk) of the stride-1 path: about FLAT_COLS
 * flat columns per block, then more (smaller) blocks only while the items would not share out
 * evenly among `want` threads: the busiest thread more than 1/8 over the mean (a batch of one
 * image on 2 threads). Every block copies R - 1 rows of halo, so blocks stay as large as that
 * allows: 64 images on 16 threads keep whole images. */
static void flat_blocks(const flat_shape *fs, int64_t wp, int want, int64_t *ph, int64_t *nblk)
{
    const int64_t images = fs->n * fs->groups;
    int64_t blocks = ceil_div(fs->p, clamp64(FLAT_COLS / wp, 1, fs->p));
    while (blocks < fs->p && 8 * ceil_div(images * blocks, want) * want > 9 * images * blocks) ++blocks;
    *ph = ceil_div(fs->p, blocks);
    *nblk = ceil_div(fs->p, *ph);
}

/* off[(c*R + r)*S + s] = where tap (c, r, s) of flat output 0 sits in a slab of row period wp and
 * `plane` elements per channel; then `pad` zeros (for the rows of partial micro-tiles). */
static void flat_offsets(const flat_shape *fs, int64_t wp, int64_t plane, int64_t pad, int64_t *off)
{
    const int64_t RS = fs->r * fs->s, CRS = fs->cin * RS;
    for (int64_t crs = 0; crs < CRS; ++crs)
        off[crs] = crs / RS * plane + (crs % RS) / fs->s * fs->dil_h * wp + crs % fs->s * fs->dil_w;
    for (int64_t i = 0; i < pad; ++i) off[CRS + i] = 0;
}

/* Whether the stride-1 path should run fs: it applies (no cropping), and it beats packing. It
 * saves packing cin*R*S values per output pixel and costs a copy of cout outputs, so it needs
 * cin*R*S >= cout; with cout filling under 3/4 of the micro-kernel's MR rows, the packed
 * path's taller tiles (cin*R*S rows, for the gradient of the input) win; and a 1x1 filter's
 * packing is a plain copy, which the packed path does as fast. */
static int use_flat(const flat_shape *fs, int64_t mr)
{
    return flat_row_period(fs) > 0 && fs->r * fs->s > 1 && fs->cin * fs->r * fs->s >= fs->cout &&
           tile_fill(fs->cout, mr) >= 0.75;
}

#define REAL float
#define UREAL uint32_t
#define REAL_EXPONENT_BITS 0x7f800000u
#define FN(name) name##_f32
#define UKERNEL(k) ((k)->ukernel_f32)
#define TRANSPOSE(k) ((k)->transpose_f32)
#define UKERNEL_OFF(k) ((k)->ukernel_off_f32)
#define UKERNEL_AOFF(k) ((k)->ukernel_aoff_f32)
#define KERNEL_MR(k) ((k)->mr_f32)
#define KERNEL_NR(k) ((k)->nr_f32)
#define UKERNEL_PIX(k) ((k)->ukernel_pix_f32)
#define KERNEL_MR_PIX(k) ((k)->mr_pix_f32)
#define KERNEL_NR_PIX(k) ((k)->nr_pix_f32)
#include "gemm_generic.h"
#include "conv2d_flat.h"
#include "conv2d_generic.h"
#undef REAL
#undef UREAL
#undef REAL_EXPONENT_BITS
#undef FN
#undef UKERNEL
#undef TRANSPOSE
#undef UKERNEL_OFF
#undef UKERNEL_AOFF
#undef KERNEL_MR
#undef KERNEL_NR
#undef UKERNEL_PIX
#undef KERNEL_MR_PIX
#undef KERNEL_NR_PIX

#define REAL double
#define UREAL uint64_t
#define REAL_EXPONENT_BITS 0x7ff0000000000000u
#define FN(name) name##_f64
#define UKERNEL(k) ((k)->ukernel_f64)
#define TRANSPOSE(k) ((k)->transpose_f64)
#define UKERNEL_OFF(k) ((k)->ukernel_off_f64)
#define UKERNEL_AOFF(k) ((k)->ukernel_aoff_f64)
#define KERNEL_MR(k) ((k)->mr_f64)
#define KERNEL_NR(k) ((k)->nr_f64)
#define UKERNEL_PIX(k) ((k)->ukernel_pix_f64)
#define KERNEL_MR_PIX(k) ((k)->mr_pix_f64)
#define KERNEL_NR_PIX(k) ((k)->nr_pix_f64)
#include "gemm_generic.h"
#include "conv2d_flat.h"
#include "conv2d_generic.h"
