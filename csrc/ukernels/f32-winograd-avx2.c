/* f32-winograd-avx2.c: the f32 Winograd transforms with 256-bit AVX2 and FMA, from winograd_simd.h.
 * Compiled with -mavx2 -mfma; gemm_config.c calls them only where the CPU has them (the AVX-512
 * configs use them too). */
#include "ukernels.h"
#include "vec_avx2_f32.h"

#define REAL float
#define UKERNEL_WINO_INPUT cconv_f32_winograd_input__avx2
#define UKERNEL_WINO_OUTPUT cconv_f32_winograd_output__avx2
#include "winograd_simd.h"
