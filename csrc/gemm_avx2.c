/* gemm_avx2.c: AVX2 + FMA micro-kernels (f32 6x16, f64 6x8) and packing transposes. Compiled
 * with -mavx2 -mfma and called only after cconv_cpu_has_avx2_fma() said yes. */
#include <immintrin.h>

#include "gemm.h"

#define UKERNEL_NAME ukernel_6x16_avx2_f32
#define REAL float
#define VEC __m256
#define VLEN 8
#define MR 6
#define NR 16
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_load_ps(p)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VBCAST(x) _mm256_set1_ps(x)
#define VFMA(a, b, acc) _mm256_fmadd_ps(a, b, acc)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#include "gemm_ukernel_simd.h"
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_6x16_avx2_f32_off
#define UKERNEL_B_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_B_OFFSETS
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_6x16_avx2_f32_aoff
#define UKERNEL_A_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_A_OFFSETS
#undef UKERNEL_NAME
#undef REAL
#undef VEC
#undef VLEN
#undef NR
#undef VZERO
#undef VLOAD
#undef VLOADU
#undef VSTOREU
#undef VBCAST
#undef VFMA
#undef VADD
#undef VMAX

#define UKERNEL_NAME ukernel_6x8_avx2_f64
#define REAL double
#define VEC __m256d
#define VLEN 4
#define NR 8
#define VZERO() _mm256_setzero_pd()
#define VLOAD(p) _mm256_load_pd(p)
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define VBCAST(x) _mm256_set1_pd(x)
#define VFMA(a, b, acc) _mm256_fmadd_pd(a, b, acc)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VMAX(a, b) _mm256_max_pd(a, b)
#include "gemm_ukernel_simd.h"
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_6x8_avx2_f64_off
#define UKERNEL_B_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_B_OFFSETS
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_6x8_avx2_f64_aoff
#define UKERNEL_A_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_A_OFFSETS

#define TRANSPOSE_F32 transpose_avx2_f32
#define TRANSPOSE_F64 transpose_avx2_f64
#include "transpose_simd.h"

const cconv_gemm_kernels cconv_gemm_avx2 = {
    "avx2", 6, 16, ukernel_6x16_avx2_f32, ukernel_6x16_avx2_f32_off, ukernel_6x16_avx2_f32_aoff,
    6, 8, ukernel_6x8_avx2_f64, ukernel_6x8_avx2_f64_off, ukernel_6x8_avx2_f64_aoff,
    transpose_avx2_f32, transpose_avx2_f64,
    0, 0, NULL, 0, 0, NULL,
};
