/* vec_avx512_f64.h: the vector operations of gemm_simd.h for f64 on AVX512. */
#include <immintrin.h>

#define VEC __m512d
#define VLEN 8
#define VZERO() _mm512_setzero_pd()
#define VLOAD(p) _mm512_load_pd(p)
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VBCAST(x) _mm512_set1_pd(x)
#define VFMA(a, b, acc) _mm512_fmadd_pd(a, b, acc)
#define VADD(a, b) _mm512_add_pd(a, b)
#define VSUB(a, b) _mm512_sub_pd(a, b)
#define VMUL(a, b) _mm512_mul_pd(a, b)
#define VMAX(a, b) _mm512_max_pd(a, b)
