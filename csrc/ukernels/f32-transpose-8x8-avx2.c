/* f32-transpose-8x8-avx2.c: the packing transpose (gemm_config.h) with 256-bit AVX2, 8x8 float
 * blocks in registers. A short last block of rows is padded with zero rows and stored through a
 * lane mask; a short last block of columns takes a scalar loop. Compiled with -mavx2 -mfma; the
 * AVX2 and AVX-512 configs both use it. */
#include <immintrin.h>

#include "column_walk.h"
#include "ukernels.h"

/* Keep g where the ReLU output y is > 0 or NaN, else exactly 0 (as relu_grad in gemm_driver.h). */
static inline float relu_grad_scalar_f32(float g, float y) { return !(y <= 0) ? g : 0.0f; }

void cconv_f32_transpose_8x8__avx2(const float *src, const float *mask, int64_t lds, int64_t rows, int64_t cols, int64_t run,
                                   int64_t period, float *dst, int64_t ldd, float *sums)
{
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t i0 = 0; i0 < rows; i0 += 8) {
        const int live = (int)(rows - i0 < 8 ? rows - i0 : 8);  /* a short last block: zero rows, masked stores */
        const __m256i store_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(live), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        column_walk walk = {run, period, 0, 0};
        __m256 total[8];
        float tail[8] = {0};
        for (int i = 0; i < 8; ++i) total[i] = zero;
        int64_t j0 = 0;
        for (; j0 + 8 <= cols; j0 += 8) {
            __m256 r[8], t[8], s[8];
            for (int i = 0; i < 8; ++i) {
                const int64_t at = (i0 + i) * lds + j0;
                r[i] = i < live ? _mm256_loadu_ps(src + at) : zero;
                if (mask && i < live)
                    r[i] = _mm256_and_ps(r[i], _mm256_cmp_ps(_mm256_loadu_ps(mask + at), zero, _CMP_NLE_UQ));
                if (sums) total[i] = _mm256_add_ps(total[i], r[i]);
            }
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int h = 0; h < 8; h += 4) {
                s[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
                s[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
                s[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
                s[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            for (int j = 0; j < 4; ++j) {  /* column j: the low halves; column j + 4: the high ones */
                r[j] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x20);
                r[j + 4] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x31);
            }
            if (live == 8)
                for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + next_column(&walk) * ldd + i0, r[j]);
            else
                for (int j = 0; j < 8; ++j) _mm256_maskstore_ps(dst + next_column(&walk) * ldd + i0, store_mask, r[j]);
        }
        for (; j0 < cols; ++j0) {
            float *d = dst + next_column(&walk) * ldd + i0;
            for (int i = 0; i < live; ++i) {
                const int64_t at = (i0 + i) * lds + j0;
                d[i] = mask ? relu_grad_scalar_f32(src[at], mask[at]) : src[at];
                tail[i] += d[i];
            }
        }
        for (int i = 0; sums && i < live; ++i) {
            float lanes[8];
            _mm256_storeu_ps(lanes, total[i]);
            sums[i0 + i] += ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])) + tail[i];
        }
    }
}
