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

void cconv_gelu_forward_f32(int64_t count, const float *x, float *y, int threads)
{
    const int nt = cconv_threads_for(threads, (double)count, GELU_GRAIN);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (i = 0; i < count; i++) {
        const float v = x[i];
        y[i] = 0.5f * v * erfcf(-v * (float)GELU_SQRT1_2);
    }
}

void cconv_gelu_forward_f64(int64_t count, const double *x, double *y, int threads)
{
    const int nt = cconv_threads_for(threads, (double)count, GELU_GRAIN);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (i = 0; i < count; i++) {
        const double v = x[i];
        y[i] = 0.5 * v * erfc(-v * GELU_SQRT1_2);
    }
}

void cconv_gelu_backward_f32(int64_t count, const float *dy, const float *x, float *dx, int threads)
{
    const int nt = cconv_threads_for(threads, (double)count, GELU_GRAIN);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (i = 0; i < count; i++) {
        const float v = x[i];
        const float cdf = 0.5f * erfcf(-v * (float)GELU_SQRT1_2);
        const float pdf = (float)GELU_INV_SQRT_2PI * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

void cconv_gelu_backward_f64(int64_t count, const double *dy, const double *x, double *dx, int threads)
{
    const int nt = cconv_threads_for(threads, (double)count, GELU_GRAIN);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (i = 0; i < count; i++) {
        const double v = x[i];
        const double cdf = 0.5 * erfc(-v * GELU_SQRT1_2);
        const double pdf = GELU_INV_SQRT_2PI * exp(-0.5 * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}
