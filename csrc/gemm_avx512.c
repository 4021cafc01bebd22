/* gemm_avx512.c: AVX-512 micro-kernels (f32 8x32, f64 8x16; the pixel kernels f32 14x32 and
 * f64 14x16) and packing transposes (the 256-bit ones of transpose_simd.h, as in gemm_avx2.c).
 * Compiled with -mavx512f (and friends) and called only after cconv_cpu_has_avx512() said yes. */
#include <immintrin.h>

#include "gemm.h"

#define UKERNEL_NAME ukernel_8x32_avx512_f32
#define REAL float
#define VEC __m512
#define VLEN 16
#define MR 8
#define NR 32
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_load_ps(p)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VBCAST(x) _mm512_set1_ps(x)
#define VFMA(a, b, acc) _mm512_fmadd_ps(a, b, acc)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#include "gemm_ukernel_simd.h"
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_8x32_avx512_f32_off
#define UKERNEL_B_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_B_OFFSETS
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_8x32_avx512_f32_aoff
#define UKERNEL_A_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_A_OFFSETS
#undef UKERNEL_NAME
#undef MR
#define MR 14  /* 14 x 2 accumulators, 2 filter vectors and a broadcast pixel: 31 of 32 registers */
#define UKERNEL_NAME ukernel_14x32_avx512_f32_pix
#define UKERNEL_A_COLUMNS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_A_COLUMNS
#undef UKERNEL_NAME
#undef MR
#define MR 8
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

#define UKERNEL_NAME ukernel_8x16_avx512_f64
#define REAL double
#define VEC __m512d
#define VLEN 8
#define NR 16
#define VZERO() _mm512_setzero_pd()
#define VLOAD(p) _mm512_load_pd(p)
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VBCAST(x) _mm512_set1_pd(x)
#define VFMA(a, b, acc) _mm512_fmadd_pd(a, b, acc)
#define VADD(a, b) _mm512_add_pd(a, b)
#define VMAX(a, b) _mm512_max_pd(a, b)
#include "gemm_ukernel_simd.h"
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_8x16_avx512_f64_off
#define UKERNEL_B_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_B_OFFSETS
#undef UKERNEL_NAME
#define UKERNEL_NAME ukernel_8x16_avx512_f64_aoff
#define UKERNEL_A_OFFSETS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_A_OFFSETS
#undef UKERNEL_NAME
#undef MR
#define MR 14
#define UKERNEL_NAME ukernel_14x16_avx512_f64_pix
#define UKERNEL_A_COLUMNS
#include "gemm_ukernel_simd.h"
#undef UKERNEL_A_COLUMNS

#define TRANSPOSE_F32 transpose_avx512_f32
#define TRANSPOSE_F64 transpose_avx512_f64
#include "transpose_simd.h"

const cconv_gemm_kernels cconv_gemm_avx512 = {
    "avx512", 8, 32, ukernel_8x32_avx512_f32, ukernel_8x32_avx512_f32_off, ukernel_8x32_avx512_f32_aoff,
    8, 16, ukernel_8x16_avx512_f64, ukernel_8x16_avx512_f64_off, ukernel_8x16_avx512_f64_aoff,
    transpose_avx512_f32, transpose_avx512_f64,
    14, 32, ukernel_14x32_avx512_f32_pix, 14, 16, ukernel_14x16_avx512_f64_pix,
};
