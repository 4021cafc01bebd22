/* f64-transpose-4x4-avx2.c: the packing transpose (gemm_config.h) with 256-bit AVX2, 4x4 double
 * blocks in registers. A short last block of rows is padded with zero rows and stored through a
 * lane mask; a short last block of columns takes a scalar loop. Compiled with -mavx2 -mfma; the
 * AVX2 and AVX-512 configs both use it. */
#include <immintrin.h>

#include "column_walk.h"
#include "ukernels.h"

/* Keep g where the ReLU output y is > 0 or NaN, else exactly 0 (as relu_grad in gemm_driver.h). */
static inline double relu_grad_scalar_f64(double g, double y) { return !(y <= 0) ? g : 0.0; }

void cconv_f64_transpose_4x4__avx2(const double *src, const double *mask, int64_t lds, int64_t rows, int64_t cols, int64_t run,
                                   int64_t period, double *dst, int64_t ldd, double *sums)
{
    const __m256d zero = _mm256_setzero_pd();
    for (int64_t i0 = 0; i0 < rows; i0 += 4) {
        const int live = (int)(rows - i0 < 4 ? rows - i0 : 4);  /* a short last block: zero rows, masked stores */
        const __m256i store_mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(live), _mm256_setr_epi64x(0, 1, 2, 3));
        column_walk walk = {run, period, 0, 0};
        __m256d total[4] = {zero, zero, zero, zero};
        double tail[4] = {0};
        int64_t j0 = 0;
        for (; j0 + 4 <= cols; j0 += 4) {
            __m256d r[4], t[4];
            for (int i = 0; i < 4; ++i) {
                const int64_t at = (i0 + i) * lds + j0;
                r[i] = i < live ? _mm256_loadu_pd(src + at) : zero;
                if (mask && i < live)
                    r[i] = _mm256_and_pd(r[i], _mm256_cmp_pd(_mm256_loadu_pd(mask + at), zero, _CMP_NLE_UQ));
                if (sums) total[i] = _mm256_add_pd(total[i], r[i]);
            }
            t[0] = _mm256_unpacklo_pd(r[0], r[1]);
            t[1] = _mm256_unpackhi_pd(r[0], r[1]);
            t[2] = _mm256_unpacklo_pd(r[2], r[3]);
            t[3] = _mm256_unpackhi_pd(r[2], r[3]);
            r[0] = _mm256_permute2f128_pd(t[0], t[2], 0x20);
            r[1] = _mm256_permute2f128_pd(t[1], t[3], 0x20);
            r[2] = _mm256_permute2f128_pd(t[0], t[2], 0x31);
            r[3] = _mm256_permute2f128_pd(t[1], t[3], 0x31);
            if (live == 4)
                for (int j = 0; j < 4; ++j) _mm256_storeu_pd(dst + next_column(&walk) * ldd + i0, r[j]);
            else
                for (int j = 0; j < 4; ++j) _mm256_maskstore_pd(dst + next_column(&walk) * ldd + i0, store_mask, r[j]);
        }
        for (; j0 < cols; ++j0) {
            double *d = dst + next_column(&walk) * ldd + i0;
            for (int i = 0; i < live; ++i) {
                const int64_t at = (i0 + i) * lds + j0;
                d[i] = mask ? relu_grad_scalar_f64(src[at], mask[at]) : src[at];
                tail[i] += d[i];
            }
        }
        for (int i = 0; sums && i < live; ++i) {
            double lanes[4];
            _mm256_storeu_pd(lanes, total[i]);
            sums[i0 + i] += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail[i];
        }
    }
}
