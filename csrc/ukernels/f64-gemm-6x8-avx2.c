/* f64-gemm-6x8-avx2.c: f64 6x8 AVX2+FMA micro-kernels: packed panels, B offsets, A offsets.
 * Compiled with AVX2 and FMA (-mavx2 -mfma); gemm_config.c calls them only where the CPU has it. */
#include "ukernels.h"
#include "vec_avx2_f64.h"

#define REAL double
#define MR 6
#define NR 8
#define UKERNEL_NAME cconv_f64_gemm_6x8__avx2
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f64_gemm_boff_6x8__avx2
#define UKERNEL_B_OFFSETS
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f64_gemm_aoff_6x8__avx2
#define UKERNEL_A_OFFSETS
#include "gemm_simd.h"
