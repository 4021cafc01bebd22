/* f32-dwconv-scalar.c: the portable f32 depthwise row kernels, from dwconv_scalar.h: every build has
 * them, every CPU runs them. */
#include "ukernels.h"

#define REAL float
#define UKERNEL_DW_ROWS cconv_f32_dwconv_rows__scalar
#define UKERNEL_DW_DOTS cconv_f32_dwconv_dots__scalar
#define UKERNEL_DW_SCATTER cconv_f32_dwconv_scatter__scalar
#define UKERNEL_DW_SPLIT cconv_f32_dwconv_split__scalar
#include "dwconv_scalar.h"
