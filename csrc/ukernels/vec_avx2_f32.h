/* vec_avx2_f32.h: the vector operations of gemm_simd.h and dwconv_simd.h for f32 on AVX2. */
#include <immintrin.h>

#define VEC __m256
#define VLEN 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_load_ps(p)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, acc) _mm256_fmadd_ps(a, b, acc)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
/* The first n lanes (0 <= n <= VLEN) of a vector, for tails: loads give zero in the others and
 * touch no memory there, stores leave it alone. */
#define VMASK __m256i
#define VMASK_FIRST(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VLOADM(p, mask) _mm256_maskload_ps(p, mask)
#define VSTOREM(p, mask, v) _mm256_maskstore_ps(p, mask, v)
/* even = lanes 0, 2, 4, ... of the pair (a, b) in order, odd = lanes 1, 3, 5, ... */
#define VDEINTERLEAVE(a, b, even, odd)                                                                     \
    do {                                                                                                   \
        const __m256 a_ = (a), b_ = (b);                                                                   \
        const __m256d e_ = _mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0x88)); /* a0 a2 b0 b2 | a4 a6 b4 b6 */ \
        const __m256d o_ = _mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0xdd));                              \
        (even) = _mm256_castpd_ps(_mm256_permute4x64_pd(e_, 0xd8));                                        \
        (odd) = _mm256_castpd_ps(_mm256_permute4x64_pd(o_, 0xd8));                                         \
    } while (0)
