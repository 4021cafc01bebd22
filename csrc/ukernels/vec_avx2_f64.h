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
#define VSUB(a, b) _mm256_sub_pd(a, b)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VMAX(a, b) _mm256_max_pd(a, b)
/* The first n lanes (0 <= n <= VLEN) of a vector, for tails: loads give zero in the others and
 * touch no memory there, stores leave it alone. */
#define VMASK __m256i
#define VMASK_FIRST(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define VLOADM(p, mask) _mm256_maskload_pd(p, mask)
#define VSTOREM(p, mask, v) _mm256_maskstore_pd(p, mask, v)
/* A whole vector loaded from p (all of it must be readable), the lanes outside mask zeroed. */
#define VLOADU_ZERO(p, mask) _mm256_and_pd(_mm256_loadu_pd(p), _mm256_castsi256_pd(mask))
/* Stores the first n lanes (0 < n < VLEN) of v at p with plain stores, which on some CPUs (AMD
 * Zen) are far cheaper than the masked store. */
static inline void vstore_first_f64(double *p, __m256d v, long long n)
{
    __m128d part = _mm256_castpd256_pd128(v);
    if (n >= 2) {
        _mm_storeu_pd(p, part);
        part = _mm256_extractf128_pd(v, 1);
        p += 2;
        n -= 2;
    }
    if (n) _mm_store_sd(p, part);
}
#define VSTORE_FIRST(p, v, n) vstore_first_f64(p, v, n)
/* even = lanes 0, 2, 4, ... of the pair (a, b) in order, odd = lanes 1, 3, 5, ... */
#define VDEINTERLEAVE(a, b, even, odd)                                                                     \
    do {                                                                                                   \
        const __m256d a_ = (a), b_ = (b);                                                                  \
        (even) = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a_, b_), 0xd8);                                  \
        (odd) = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a_, b_), 0xd8);                                   \
    } while (0)
/* Winograd transforms: four vectors of columns, lane l of c_j = p[off[l] + j], and four or two
 * vectors stored interleaved (lane l of v_j at p[l*4 + j], or p[l*2 + j]). */
#define VLOAD_COLUMNS4(p, off, c0, c1, c2, c3)                                                          \
    do {                                                                                                \
        const __m256d r0_ = _mm256_loadu_pd((p) + (off)[0]), r1_ = _mm256_loadu_pd((p) + (off)[1]);      \
        const __m256d r2_ = _mm256_loadu_pd((p) + (off)[2]), r3_ = _mm256_loadu_pd((p) + (off)[3]);      \
        const __m256d t0_ = _mm256_unpacklo_pd(r0_, r1_), t1_ = _mm256_unpackhi_pd(r0_, r1_);           \
        const __m256d t2_ = _mm256_unpacklo_pd(r2_, r3_), t3_ = _mm256_unpackhi_pd(r2_, r3_);           \
        (c0) = _mm256_permute2f128_pd(t0_, t2_, 0x20);                                                  \
        (c1) = _mm256_permute2f128_pd(t1_, t3_, 0x20);                                                  \
        (c2) = _mm256_permute2f128_pd(t0_, t2_, 0x31);                                                  \
        (c3) = _mm256_permute2f128_pd(t1_, t3_, 0x31);                                                  \
    } while (0)
#define VSTORE_ZIP4(p, v0, v1, v2, v3)                                                                  \
    do {                                                                                                \
        const __m256d t0_ = _mm256_unpacklo_pd(v0, v1), t1_ = _mm256_unpackhi_pd(v0, v1);               \
        const __m256d t2_ = _mm256_unpacklo_pd(v2, v3), t3_ = _mm256_unpackhi_pd(v2, v3);               \
        _mm256_storeu_pd((p), _mm256_permute2f128_pd(t0_, t2_, 0x20));                                  \
        _mm256_storeu_pd((p) + 4, _mm256_permute2f128_pd(t1_, t3_, 0x20));                              \
        _mm256_storeu_pd((p) + 8, _mm256_permute2f128_pd(t0_, t2_, 0x31));                              \
        _mm256_storeu_pd((p) + 12, _mm256_permute2f128_pd(t1_, t3_, 0x31));                             \
    } while (0)
#define VSTORE_ZIP2(p, v0, v1)                                                                          \
    do {                                                                                                \
        const __m256d lo_ = _mm256_unpacklo_pd(v0, v1), hi_ = _mm256_unpackhi_pd(v0, v1);               \
        _mm256_storeu_pd((p), _mm256_permute2f128_pd(lo_, hi_, 0x20));                                  \
        _mm256_storeu_pd((p) + 4, _mm256_permute2f128_pd(lo_, hi_, 0x31));                              \
    } while (0)
