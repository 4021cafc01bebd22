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
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
/* The first n lanes (0 <= n <= VLEN) of a vector, for tails: loads give zero in the others and
 * touch no memory there, stores leave it alone. */
#define VMASK __m256i
#define VMASK_FIRST(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VLOADM(p, mask) _mm256_maskload_ps(p, mask)
#define VSTOREM(p, mask, v) _mm256_maskstore_ps(p, mask, v)
/* A whole vector loaded from p (all of it must be readable), the lanes outside mask zeroed. */
#define VLOADU_ZERO(p, mask) _mm256_and_ps(_mm256_loadu_ps(p), _mm256_castsi256_ps(mask))
/* Stores the first n lanes (0 < n < VLEN) of v at p with plain stores, which on some CPUs (AMD
 * Zen) are far cheaper than the masked store. */
static inline void vstore_first_f32(float *p, __m256 v, long long n)
{
    __m128 part = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(p, part);
        part = _mm256_extractf128_ps(v, 1);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)p, part);
        part = _mm_movehl_ps(part, part);
        p += 2;
        n -= 2;
    }
    if (n) _mm_store_ss(p, part);
}
#define VSTORE_FIRST(p, v, n) vstore_first_f32(p, v, n)
/* even = lanes 0, 2, 4, ... of the pair (a, b) in order, odd = lanes 1, 3, 5, ... */
#define VDEINTERLEAVE(a, b, even, odd)                                                                     \
    do {                                                                                                   \
        const __m256 a_ = (a), b_ = (b);                                                                   \
        const __m256d e_ = _mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0x88)); /* a0 a2 b0 b2 | a4 a6 b4 b6 */ \
        const __m256d o_ = _mm256_castps_pd(_mm256_shuffle_ps(a_, b_, 0xdd));                              \
        (even) = _mm256_castpd_ps(_mm256_permute4x64_pd(e_, 0xd8));                                        \
        (odd) = _mm256_castpd_ps(_mm256_permute4x64_pd(o_, 0xd8));                                         \
    } while (0)
/* Winograd transforms: four vectors of columns, lane l of c_j = p[off[l] + j], and four or two
 * vectors stored interleaved (lane l of v_j at p[l*4 + j], or p[l*2 + j]). */
#define VLOAD_COLUMNS4(p, off, c0, c1, c2, c3)                                                          \
    do {                                                                                                \
        const __m256 r0_ = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps((p) + (off)[0])),   \
                                                _mm_loadu_ps((p) + (off)[4]), 1);                      \
        const __m256 r1_ = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps((p) + (off)[1])),   \
                                                _mm_loadu_ps((p) + (off)[5]), 1);                      \
        const __m256 r2_ = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps((p) + (off)[2])),   \
                                                _mm_loadu_ps((p) + (off)[6]), 1);                      \
        const __m256 r3_ = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps((p) + (off)[3])),   \
                                                _mm_loadu_ps((p) + (off)[7]), 1);                      \
        const __m256 t0_ = _mm256_unpacklo_ps(r0_, r1_), t1_ = _mm256_unpackhi_ps(r0_, r1_);            \
        const __m256 t2_ = _mm256_unpacklo_ps(r2_, r3_), t3_ = _mm256_unpackhi_ps(r2_, r3_);            \
        (c0) = _mm256_shuffle_ps(t0_, t2_, 0x44);                                                       \
        (c1) = _mm256_shuffle_ps(t0_, t2_, 0xee);                                                       \
        (c2) = _mm256_shuffle_ps(t1_, t3_, 0x44);                                                       \
        (c3) = _mm256_shuffle_ps(t1_, t3_, 0xee);                                                       \
    } while (0)
#define VSTORE_ZIP4(p, v0, v1, v2, v3)                                                                  \
    do {                                                                                                \
        const __m256 t0_ = _mm256_unpacklo_ps(v0, v1), t1_ = _mm256_unpackhi_ps(v0, v1);                \
        const __m256 t2_ = _mm256_unpacklo_ps(v2, v3), t3_ = _mm256_unpackhi_ps(v2, v3);                \
        const __m256 s0_ = _mm256_shuffle_ps(t0_, t2_, 0x44), s1_ = _mm256_shuffle_ps(t0_, t2_, 0xee);  \
        const __m256 s2_ = _mm256_shuffle_ps(t1_, t3_, 0x44), s3_ = _mm256_shuffle_ps(t1_, t3_, 0xee);  \
        _mm256_storeu_ps((p), _mm256_permute2f128_ps(s0_, s1_, 0x20));                                 \
        _mm256_storeu_ps((p) + 8, _mm256_permute2f128_ps(s2_, s3_, 0x20));                             \
        _mm256_storeu_ps((p) + 16, _mm256_permute2f128_ps(s0_, s1_, 0x31));                            \
        _mm256_storeu_ps((p) + 24, _mm256_permute2f128_ps(s2_, s3_, 0x31));                            \
    } while (0)
#define VSTORE_ZIP2(p, v0, v1)                                                                          \
    do {                                                                                                \
        const __m256 lo_ = _mm256_unpacklo_ps(v0, v1), hi_ = _mm256_unpackhi_ps(v0, v1);                \
        _mm256_storeu_ps((p), _mm256_permute2f128_ps(lo_, hi_, 0x20));                                  \
        _mm256_storeu_ps((p) + 8, _mm256_permute2f128_ps(lo_, hi_, 0x31));                              \
    } while (0)
