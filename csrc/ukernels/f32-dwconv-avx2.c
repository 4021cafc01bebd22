/* f32-dwconv-avx2.c: the f32 depthwise row kernels with 256-bit AVX2 and FMA, from dwconv_simd.h.
 * Compiled with -mavx2 -mfma; gemm_config.c calls them only where the CPU has them (the AVX-512
 * configs use them too). */
#include "ukernels.h"
#include "vec_avx2_f32.h"

#define REAL float
#define UKERNEL_DW_ROWS cconv_f32_dwconv_rows__avx2
#define UKERNEL_DW_DOTS cconv_f32_dwconv_dots__avx2
#define UKERNEL_DW_SCATTER cconv_f32_dwconv_scatter__avx2
#define UKERNEL_DW_SPLIT cconv_f32_dwconv_split__avx2
#include "dwconv_simd.h"
