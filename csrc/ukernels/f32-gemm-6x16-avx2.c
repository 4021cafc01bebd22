/* f32-gemm-6x16-avx2.c: f32 6x16 AVX2+FMA micro-kernels: packed panels, B offsets, A offsets.
 * Compiled with AVX2 and FMA (-mavx2 -mfma); gemm_config.c calls them only where the CPU has it. */
#include "ukernels.h"
#include "vec_avx2_f32.h"

#define REAL float
#define MR 6
#define NR 16
#define UKERNEL_NAME cconv_f32_gemm_6x16__avx2
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f32_gemm_boff_6x16__avx2
#define UKERNEL_B_OFFSETS
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f32_gemm_aoff_6x16__avx2
#define UKERNEL_A_OFFSETS
#include "gemm_simd.h"
