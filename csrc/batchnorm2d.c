/* batchnorm2d.c: 2-D batch normalisation, forward and backward (see batchnorm2d.h).
 *
 * OpenMP splits the channels over the threads; a channel's values (N runs of HW) are read a few
 * times in a row (statistics, then output; sums, then dx), so the later passes find them in
 * cache. Sums run in double over eight independent accumulators, combined in a fixed order, so
 * they pipeline (and vectorise) without depending on the thread count. The float and double
 * kernels come from one type-generic body, batchnorm2d_impl.h, included once per type.
 */
#include "batchnorm2d.h"

#include <math.h>

#include "parallel.h"

/* Elements per thread below which another thread is not worth it. */
#ifndef BN_GRAIN
#define BN_GRAIN 32768.0
#endif

static int bn_threads(int64_t n, int64_t c, int64_t hw, int threads)
{
    int nt = cconv_threads_for(threads, (double)n * (double)c * (double)hw, BN_GRAIN);
    return (int64_t)nt > c ? (int)(c > 0 ? c : 1) : nt;
}

/* float kernels */
#define T float
#define FN(name) name##_f32
#include "batchnorm2d_impl.h"
#undef T
#undef FN

/* double kernels */
#define T double
#define FN(name) name##_f64
#include "batchnorm2d_impl.h"
#undef T
#undef FN
