/* batchnorm2d_impl.h: the type-generic body of batchnorm2d.c, included once per element type.
 * Before including it, define T (float or double) and FN(name) (appends _f32 / _f64 to name). */

/* sum of a[i] over i < len, in double, over eight accumulators. */
static double FN(sum)(const T *a, int64_t len)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)a[i + j];
    for (; i < len; i++) s[0] += (double)a[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* sum of (a[i] - center)^2 over i < len, in double. */
static double FN(sum_squared_deviations)(const T *a, int64_t len, double center)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int j = 0; j < 8; j++) {
            const double d = (double)a[i + j] - center;
            s[j] += d * d;
        }
    for (; i < len; i++) {
        const double d = (double)a[i] - center;
        s[0] += d * d;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* sum of dy[i] (into *sum_dy) and of dy[i] * (x[i] - center) (returned), in double. */
static double FN(sum_dy_and_dy_deviation)(const T *dy, const T *x, int64_t len, double center, double *sum_dy)
{
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int j = 0; j < 8; j++) {
            const double g = (double)dy[i + j];
            s[j] += g;
            t[j] += g * ((double)x[i + j] - center);
        }
    for (; i < len; i++) {
        const double g = (double)dy[i];
        s[0] += g;
        t[0] += g * ((double)x[i] - center);
    }
    *sum_dy += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

void FN(cconv_batchnorm2d_forward)(int64_t n, int64_t c, int64_t hw, const T *x, const T *gamma, const T *beta,
                                   double eps, int use_batch_stats, double momentum, T *running_mean,
                                   T *running_var, double *mean, double *invstd, T *y, int threads)
{
    const int64_t count = n * hw, plane_stride = c * hw;
    const int batch = use_batch_stats && count > 0;
    const int nt = bn_threads(n, c, hw, threads);
    int64_t ch;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (ch = 0; ch < c; ch++) {
        const T *xc = x + ch * hw;
        T *yc = y + ch * hw;
        double m, var;
        int64_t img, i;
        if (batch) {
            double total = 0, squares = 0;
            for (img = 0; img < n; img++) total += FN(sum)(xc + img * plane_stride, hw);
            m = total / (double)count;
            for (img = 0; img < n; img++) squares += FN(sum_squared_deviations)(xc + img * plane_stride, hw, m);
            var = squares / (double)count;
            running_mean[ch] = (T)((1 - momentum) * (double)running_mean[ch] + momentum * m);
            running_var[ch] = (T)((1 - momentum) * (double)running_var[ch]
                                  + momentum * var * (double)count / (double)(count > 1 ? count - 1 : 1));
        } else {
            m = (double)running_mean[ch];
            var = (double)running_var[ch];
        }
        mean[ch] = m;
        invstd[ch] = 1.0 / sqrt(var + eps);
        {
            const T center = (T)m, scale = (T)(invstd[ch] * (double)gamma[ch]), shift = beta[ch];
            for (img = 0; img < n; img++) {
                const T *xp = xc + img * plane_stride;
                T *yp = yc + img * plane_stride;
                for (i = 0; i < hw; i++) yp[i] = (xp[i] - center) * scale + shift;
            }
        }
    }
}

void FN(cconv_batchnorm2d_backward)(int64_t n, int64_t c, int64_t hw, const T *dy, const T *x, const T *gamma,
                                    const double *mean, const double *invstd, int batch_stats, T *dx, T *dgamma,
                                    T *dbeta, int threads)
{
    const int64_t count = n * hw, plane_stride = c * hw;
    const int nt = bn_threads(n, c, hw, threads);
    int64_t ch;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (ch = 0; ch < c; ch++) {
        const T *xc = x + ch * hw, *dyc = dy + ch * hw;
        const double m = mean[ch], is = invstd[ch];
        double sum_dy = 0, sum_dy_dev = 0;
        int64_t img, i;
        for (img = 0; img < n; img++)
            sum_dy_dev += FN(sum_dy_and_dy_deviation)(dyc + img * plane_stride, xc + img * plane_stride, hw, m,
                                                      &sum_dy);
        dbeta[ch] = (T)sum_dy;
        dgamma[ch] = (T)(sum_dy_dev * is);
        if (dx) {
            /* dx = a * dy + b * (x - mean) + d */
            const double a = (double)gamma[ch] * is;
            const T ta = (T)a, center = (T)m;
            const T tb = batch_stats && count > 0 ? (T)(-a * is * is * sum_dy_dev / (double)count) : (T)0;
            const T td = batch_stats && count > 0 ? (T)(-a * sum_dy / (double)count) : (T)0;
            T *dxc = dx + ch * hw;
            for (img = 0; img < n; img++) {
                const T *dyp = dyc + img * plane_stride, *xp = xc + img * plane_stride;
                T *dxp = dxc + img * plane_stride;
                for (i = 0; i < hw; i++) dxp[i] = ta * dyp[i] + tb * (xp[i] - center) + td;
            }
        }
    }
}
