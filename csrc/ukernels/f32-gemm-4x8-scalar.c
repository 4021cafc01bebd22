/* f32-gemm-4x8-scalar.c: the portable f32 micro-kernels (4x8 tiles; the pixel kernel 4 pixels x 8
 * filters) and packing transpose, from gemm_scalar.h: every build has them, every CPU runs them. */
#include "ukernels.h"

#define REAL float
#define MR 4
#define NR 8
#define UKERNEL_GEMM cconv_f32_gemm_4x8__scalar
#define UKERNEL_BOFF cconv_f32_gemm_boff_4x8__scalar
#define UKERNEL_AOFF cconv_f32_gemm_aoff_4x8__scalar
#define UKERNEL_PIX cconv_f32_gemm_pix_4x8__scalar
#define UKERNEL_TRANSPOSE cconv_f32_transpose__scalar
#include "gemm_scalar.h"
