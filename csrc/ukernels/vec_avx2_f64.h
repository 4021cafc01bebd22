/* vec_avx2_f64.h: the vector operations of gemm_simd.h and dwconv_simd.h for f64 on AVX2. */
#include <immintrin.h>

#define VEC __m256d
#define VLEN 4
#define VZERO() _mm256_setzero_pd()
#define VLOAD(p) _mm256_load_pd(p)
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define VBCAST(x) _mm256_set1_pd(x)
#define VFMA(a, b, acc) _mm256_fmadd_pd(a, b, acc)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VMAX(a, b) _mm256_max_pd(a, b)
/* The first n lanes (0 <= n <= VLEN) of a vector, for tails: loads give zero in the others and
 * touch no memory there, stores leave it alone. */
#define VMASK __m256i
#define VMASK_FIRST(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define VLOADM(p, mask) _mm256_maskload_pd(p, mask)
#define VSTOREM(p, mask, v) _mm256_maskstore_pd(p, mask, v)
/* even = lanes 0, 2, 4, ... of the pair (a, b) in order, odd = lanes 1, 3, 5, ... */
#define VDEINTERLEAVE(a, b, even, odd)                                                                     \
    do {                                                                                                   \
        const __m256d a_ = (a), b_ = (b);                                                                  \
        (even) = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a_, b_), 0xd8);                                  \
        (odd) = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a_, b_), 0xd8);                                   \
    } while (0)
