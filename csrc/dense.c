/* dense.c: fully connected layers (see dense.h) as strided matrix products on the packed
 * micro-kernels of gemm.h. The type-generic body is dense_generic.h, included once for float
 * and once for double after gemm_generic.h. */
#include "dense.h"

#include <string.h>

#include "gemm.h"
#include "index_math.h"
#include "parallel.h"
#include "workspace.h"

#define KC_MAX 256          /* reduction depth of one packed block */
#define MC_MAX 192          /* rows of C per work item */
#define NC_MAX 384          /* columns of C per work item */
#define GRAIN_FLOPS 2.0e6   /* do not wake a thread for less work than this */
#define ALIGN_ELEMS 16      /* workspace slices start on 64-byte boundaries (panels are read aligned) */


#define REAL float
#define UREAL uint32_t
#define FN(name) name##_f32
#define UKERNEL(k) ((k)->ukernel_f32)
#define TRANSPOSE(k) ((k)->transpose_f32)
#define KERNEL_MR(k) ((k)->mr_f32)
#define KERNEL_NR(k) ((k)->nr_f32)
#include "gemm_generic.h"
#include "dense_generic.h"
#undef REAL
#undef UREAL
#undef FN
#undef UKERNEL
#undef TRANSPOSE
#undef KERNEL_MR
#undef KERNEL_NR

#define REAL double
#define UREAL uint64_t
#define FN(name) name##_f64
#define UKERNEL(k) ((k)->ukernel_f64)
#define TRANSPOSE(k) ((k)->transpose_f64)
#define KERNEL_MR(k) ((k)->mr_f64)
#define KERNEL_NR(k) ((k)->nr_f64)
#include "gemm_generic.h"
#include "dense_generic.h"
