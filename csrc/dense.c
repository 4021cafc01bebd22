/* dense.c: fully connected layers (see dense.h) as strided matrix products on gemm_driver.h's
 * loop nest. The type-generic body is dense_impl.h, included once for float and once for double
 * after gemm_driver.h. */
#include "dense.h"

#include <string.h>

#include "checked_math.h"
#include "gemm_config.h"
#include "index_math.h"
#include "parallel.h"
#include "workspace.h"

#define GRAIN_FLOPS 2.0e6   /* do not wake a thread for less work than this */
#define ALIGN_ELEMS 16      /* workspace slices start on 64-byte boundaries (panels are read aligned) */

#define REAL float
#define UREAL uint32_t
#define FN(name) name##_f32
#define CONFIG f32
#include "gemm_driver.h"
#include "dense_impl.h"
#undef REAL
#undef UREAL
#undef FN
#undef CONFIG

#define REAL double
#define UREAL uint64_t
#define FN(name) name##_f64
#define CONFIG f64
#include "gemm_driver.h"
#include "dense_impl.h"
