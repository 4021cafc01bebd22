/* f32-winograd-scalar.c: the portable f32 Winograd transforms, from winograd_simd.h on one element
 * at a time: every build has them, every CPU runs them. */
#include "ukernels.h"

#define REAL float
#include "vec_scalar.h"
#define UKERNEL_WINO_INPUT cconv_f32_winograd_input__scalar
#define UKERNEL_WINO_OUTPUT cconv_f32_winograd_output__scalar
#include "winograd_simd.h"
