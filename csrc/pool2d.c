/* pool2d.c: 2-D max / average / Lp-norm pooling, forward and backward (see pool2d.h).
 *
 * Work is split over (plane, band of output rows) tasks with OpenMP; a plane is one (n, c) image.
 * Each output row is computed in three parts: the left border columns and the right border
 * columns (windows clipped at the input's edge, done one output at a time) and the interior
 * columns (windows entirely inside the input, done by branch-free loops that the compiler
 * vectorizes, with dedicated loops for 2x2 stride-2 windows). Backward tasks zero their dx rows
 * just before scattering into them (while they are in cache); the max-pool backward recomputes
 * each window's argmax from x instead of storing indices. The float and double kernels come from one
 * type-generic body, pool2d_impl.h, included once per type.
 */
#include "pool2d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checked_math.h"
#include "parallel.h"

#if defined(_MSC_VER)
#define POOL_RESTRICT __restrict
#else
#define POOL_RESTRICT restrict
#endif

/* Elements (input plus output) per thread below which another thread is not worth it. */
#ifndef POOL_GRAIN
#define POOL_GRAIN 32768.0
#endif

/* Outputs whose argmax the max-pool backward finds together (stack buffers). */
#define POOL_CHUNK 64

static int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The largest size, kernel, stride or padding that the kernels take (cconv.functional's limit). */
#define POOL_EXTENT_MAX INT64_C(2147483647)

/* Whether `s` is a pooling the kernels take: sizes, kernel, strides and padding in
 * [0, POOL_EXTENT_MAX] (kernel and strides at least 1), every output row and column starting
 * inside the input or its padding before, and arrays x and y whose sizes fit memory. */
static int pool_shape_valid(const cconv_pool2d_shape *s)
{
    const int64_t sizes[] = {s->n, s->c, s->h, s->w, s->pad_h, s->pad_w};
    const int64_t positive[] = {s->kh, s->kw, s->stride_h, s->stride_w};
    int64_t last_h, last_w;
    for (int i = 0; i < 6; ++i)
        if (sizes[i] < 0 || sizes[i] > POOL_EXTENT_MAX) return 0;
    for (int i = 0; i < 4; ++i)
        if (positive[i] < 1 || positive[i] > POOL_EXTENT_MAX) return 0;
    if (s->p < 0 || s->q < 0) return 0;
    if (s->p > 0 && (ckd_mul64(&last_h, s->p - 1, s->stride_h) || last_h >= s->h + s->pad_h)) return 0;
    if (s->q > 0 && (ckd_mul64(&last_w, s->q - 1, s->stride_w) || last_w >= s->w + s->pad_w)) return 0;
    return size_fits(size_product(s->n, s->c, s->h, s->w), sizeof(double)) &&
           size_fits(size_product(s->n, s->c, s->p, s->q), sizeof(double));
}

/* Threads for one call: enough work for each, never more than asked. */
static int pool_threads(const cconv_pool2d_shape *s, int threads)
{
    double work = (double)s->n * (double)s->c * ((double)s->h * (double)s->w + (double)s->p * (double)s->q);
    return cconv_threads_for(threads, work, POOL_GRAIN);
}

/* Split each plane into bands of output rows when there are too few planes to keep every
 * thread busy. `splittable` is zero when neighbouring output rows share input rows and so
 * cannot be written by different threads (backward with stride_h < kh). */
static int64_t bands_per_plane(int64_t planes, int64_t rows, int threads, int splittable)
{
    int64_t wanted = 4 * (int64_t)threads, bands;
    if (!splittable || threads <= 1 || planes >= wanted || planes <= 0) return 1;
    bands = (wanted + planes - 1) / planes;
    return min_i64(bands, rows);
}

/* First output row of band b out of `bands` over `rows` rows. */
static int64_t band_start(int64_t b, int64_t bands, int64_t rows) { return b * rows / bands; }

/* Output columns [*lo, *hi) whose windows lie entirely inside the input columns [0, W).
 * The left border is [0, lo) and the right border [hi, Q). */
static void interior_columns(const cconv_pool2d_shape *s, int64_t *lo, int64_t *hi)
{
    int64_t first = (s->pad_w + s->stride_w - 1) / s->stride_w;  /* ow*stride_w >= pad_w */
    int64_t last_start = s->w + s->pad_w - s->kw;                /* ow*stride_w - pad_w + kw <= W */
    int64_t end = last_start < 0 ? 0 : min_i64(last_start / s->stride_w + 1, s->q);
    *lo = min_i64(first, end);
    *hi = end;
}

/* Input rows [*r0, *r1) that the backward task for output rows [oh0, oh1) owns: it zeroes them
 * and is the only task that writes them. The first and last bands extend to the plane's edges. */
static void band_input_rows(const cconv_pool2d_shape *s, int64_t oh0, int64_t oh1, int64_t *r0,
                            int64_t *r1)
{
    *r0 = oh0 == 0 ? 0 : min_i64(max_i64(oh0 * s->stride_h - s->pad_h, 0), s->h);
    *r1 = oh1 == s->p ? s->h : min_i64(max_i64(oh1 * s->stride_h - s->pad_h, 0), s->h);
}

/* The shape of the slice of a plane that output rows [oh0, oh1) read: `rows` input rows starting
 * at row oh0 * stride_h. Only valid without padding (Lp pooling), where that slice clips windows
 * exactly as the whole plane does. */
static cconv_pool2d_shape band_shape(const cconv_pool2d_shape *s, int64_t oh0, int64_t oh1,
                                     int64_t rows)
{
    cconv_pool2d_shape band = *s;
    band.h = rows;
    band.p = oh1 - oh0;
    return band;
}

/* avg_pool2d's divisor for the window starting at input row hs and column ws (before clipping):
 * with count_include_pad the window clipped at H + pad_h and W + pad_w, else its real elements. */
static int64_t avg_divisor(const cconv_pool2d_shape *s, int64_t hs, int64_t ws, int count_include_pad)
{
    if (count_include_pad)
        return (min_i64(hs + s->kh, s->h + s->pad_h) - hs) * (min_i64(ws + s->kw, s->w + s->pad_w) - ws);
    return (min_i64(hs + s->kh, s->h) - max_i64(hs, 0)) * (min_i64(ws + s->kw, s->w) - max_i64(ws, 0));
}

/* The operations run_pool dispatches. */
enum { POOL_MAX_FORWARD, POOL_AVG_FORWARD, POOL_LP_FORWARD, POOL_MAX_BACKWARD, POOL_AVG_BACKWARD,
       POOL_LP_BACKWARD };

/* float kernels */
#define T float
#define UT uint32_t  /* an unsigned integer of T's size */
#define FN(name) name##_f32
#define POW powf
#define SQRT sqrtf
#include "pool2d_impl.h"
#undef T
#undef UT
#undef FN
#undef POW
#undef SQRT

/* double kernels */
#define T double
#define UT uint64_t
#define FN(name) name##_f64
#define POW pow
#define SQRT sqrt
#include "pool2d_impl.h"
#undef T
#undef UT
#undef FN
#undef POW
#undef SQRT
