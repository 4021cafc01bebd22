/* gelu.c: the exact GELU activation, forward and backward (see gelu.h). The values are split
 * into equal blocks over the OpenMP threads. Phi(x) is computed as erfc(-x / sqrt(2)) / 2, which
 * keeps its relative precision in the negative tail where 1 + erf(x / sqrt(2)) cancels. */
#include "gelu.h"

#include <math.h>

#include "parallel.h"

/* Values per thread below which another thread is not worth it. */
#ifndef GELU_GRAIN
#define GELU_GRAIN 16384.0
#endif

#define GELU_SQRT1_2 0.70710678118654752440     /* 1 / sqrt(2) */
#define GELU_INV_SQRT_2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */

#define REAL float
#define FN(name) name##_f32
#define ERFC erfcf
#define EXP expf
#include "gelu_impl.h"
#undef REAL
#undef FN
#undef ERFC
#undef EXP

#define REAL double
#define FN(name) name##_f64
#define ERFC erfc
#define EXP exp
#include "gelu_impl.h"
