/* gelu_impl.h: the body of gelu.c for one element type, included once per type with REAL (float
 * or double), FN(name) (name##_f32 / name##_f64) and the C library's ERFC and EXP for it. */

void FN(cconv_gelu_forward)(int64_t count, const REAL *x, REAL *y, int threads)
{
    const int nt = cconv_threads_for(threads, (double)count, GELU_GRAIN);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (i = 0; i < count; i++) {
        const REAL v = x[i];
        y[i] = (REAL)0.5 * v * ERFC(-v * (REAL)GELU_SQRT1_2);
    }
}

void FN(cconv_gelu_backward)(int64_t count, const REAL *dy, const REAL *x, REAL *dx, int threads)
{
    const int nt = cconv_threads_for(threads, (double)count, GELU_GRAIN);
    int64_t i;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (i = 0; i < count; i++) {
        const REAL v = x[i];
        const REAL cdf = (REAL)0.5 * ERFC(-v * (REAL)GELU_SQRT1_2);
        const REAL pdf = (REAL)GELU_INV_SQRT_2PI * EXP((REAL)-0.5 * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}
