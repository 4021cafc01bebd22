/* f32-gemm-8x32-avx512.c: f32 8x32 AVX-512 micro-kernels (2 x 8 accumulators): packed panels, B
 * read in place (B offsets), A read in place (A offsets). Compiled with AVX-512 (-mavx512f and
 * friends); gemm_config.c calls them only where the CPU has it. */
#include "ukernels.h"
#include "vec_avx512_f32.h"

#define REAL float
#define MR 8
#define NR 32
#define UKERNEL_NAME cconv_f32_gemm_8x32__avx512
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f32_gemm_boff_8x32__avx512
#define UKERNEL_B_OFFSETS
#include "gemm_simd.h"
#define UKERNEL_NAME cconv_f32_gemm_aoff_8x32__avx512
#define UKERNEL_A_OFFSETS
#include "gemm_simd.h"
