/* f64-gemm-8x16-avx512.c: f64 8x16 AVX-512 micro-kernels: packed panels, B offsets, A offsets.
 * Compiled with AVX-512 (-mavx512f and friends); gemm_config.c calls them only where the CPU has
 * it. */
#include "ukernels.h"
#include "vec_avx512_f64.h"

#define REAL double
#define MR 8
#define NR 16
#define UKERNEL_NAME cconv_f64_gemm_8x16__avx512
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f64_gemm_boff_8x16__avx512
#define UKERNEL_B_OFFSETS
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f64_gemm_aoff_8x16__avx512
#define UKERNEL_A_OFFSETS
#include "gemm_simd.h"
