/* f64-winograd-avx2.c: the f64 Winograd transforms with 256-bit AVX2 and FMA, from winograd_simd.h.
 * Compiled with -mavx2 -mfma; gemm_config.c calls them only where the CPU has them (the AVX-512
 * configs use them too). */
#include "ukernels.h"
#include "vec_avx2_f64.h"

#define REAL double
#define UKERNEL_WINO_INPUT cconv_f64_winograd_input__avx2
#define UKERNEL_WINO_OUTPUT cconv_f64_winograd_output__avx2
#include "winograd_simd.h"
