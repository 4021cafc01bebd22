/* f64-gemm-14x16-avx512.c: the f64 AVX-512 pixel micro-kernel, 14 pixels x 16 filters. Compiled
 * with AVX-512 (-mavx512f and friends); gemm_config.c calls them only where the CPU has it. */
#include "ukernels.h"
#include "vec_avx512_f64.h"

#define REAL double
#define MR 14
#define NR 16
#define UKERNEL_NAME cconv_f64_gemm_pix_14x16__avx512
#define UKERNEL_A_COLUMNS
#include "gemm_simd.h"
