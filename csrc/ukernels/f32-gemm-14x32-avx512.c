/* f32-gemm-14x32-avx512.c: the f32 AVX-512 pixel micro-kernel, 14 pixels x 32 filters (14 x 2
 * accumulators, 2 filter vectors and a broadcast pixel: 31 of 32 registers). Compiled with AVX-512
 * (-mavx512f and friends); gemm_config.c calls them only where the CPU has it. */
#include "ukernels.h"
#include "vec_avx512_f32.h"

#define REAL float
#define MR 14
#define NR 32
#define UKERNEL_NAME cconv_f32_gemm_pix_14x32__avx512
#define UKERNEL_A_COLUMNS
#include "gemm_simd.h"
