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
