/* transpose_simd.h: the packing transposes of gemm.h with 256-bit AVX (8x8 float and 4x4 double
 * blocks in registers), stamped out by gemm_avx2.c and gemm_avx512.c, which define
 * TRANSPOSE_F32 and TRANSPOSE_F64 (the function names) and include <immintrin.h>. A short last
 * block of rows is padded with zero rows and stored through a lane mask; a short last block of
 * columns takes a scalar loop. */

/* Keep g where the ReLU output y is > 0 or NaN, else exactly 0 (gemm_generic.h's relu_grad). */
static inline float relu_grad_scalar_f32(float g, float y) { return !(y <= 0) ? g : 0.0f; }
static inline double relu_grad_scalar_f64(double g, double y) { return !(y <= 0) ? g : 0.0; }

/* Walks destination columns: column j lands at (j / run) * period + j % run. */
typedef struct {
    int64_t run, period, base, within;
} column_walk;

static inline int64_t next_column(column_walk *w)
{
    const int64_t at = w->base + w->within;
    if (++w->within == w->run) {
        w->within = 0;
        w->base += w->period;
    }
    return at;
}

static void TRANSPOSE_F32(const float *src, const float *mask, int64_t lds, int64_t rows, int64_t cols,
                          int64_t run, int64_t period, float *dst, int64_t ldd, float *sums)
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

static void TRANSPOSE_F64(const double *src, const double *mask, int64_t lds, int64_t rows, int64_t cols,
                          int64_t run, int64_t period, double *dst, int64_t ldd, double *sums)
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
