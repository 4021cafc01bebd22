/* test_batchnorm2d.c: C-level tests of csrc/batchnorm2d.c and csrc/gelu.c (plain C99, no Python).
 *
 * Batch norm forward (training with the running-statistics update, eval, an empty batch) and
 * backward (with batch or running statistics, with and without dx), in float and double, with 1
 * and 3 threads, against naive double loops written here; the exact GELU and its derivative
 * against erf and exp directly. Arrays are allocated at their exact size (for AddressSanitizer
 * and Valgrind) and outputs are filled with NaN first, so an output a kernel forgets fails.
 * Prints a FAIL line per failure and "N passed, N failed"; exits 1 on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "batchnorm2d.h"
#include "gelu.h"

static int passed, failed;
static uint64_t rng_state = 7;

static double uniform(void)  /* in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void *alloc(int64_t n, size_t size)
{
    void *p = malloc((size_t)(n > 0 ? n : 1) * size);
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

static void check(const char *what, const char *config, const double *got, const double *want, int64_t n, double tol)
{
    double scale = 1.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    for (int64_t i = 0; i < n; i++) {
        const double err = fabs(got[i] - want[i]) / scale;
        if (!(err <= worst)) worst = err;
    }
    if (worst <= tol) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s %s: max error %g exceeds %g\n", what, config, worst, tol);
    }
}

/* The definitions of batchnorm2d.h, one value at a time, in double. */
static void naive_batchnorm(int64_t n, int64_t c, int64_t hw, const double *x, const double *dy, const double *gamma,
                            const double *beta, double eps, int batch, double momentum, double *rm, double *rv,
                            double *y, double *dx, double *dgamma, double *dbeta)
{
    const int64_t count = n * hw;
    for (int64_t ch = 0; ch < c; ch++) {
        double mean = rm[ch], var = rv[ch], sum_dy = 0, sum_dy_xhat = 0;
        if (batch && count > 0) {
            double s = 0, q = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j];
            mean = s / (double)count;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < hw; j++) q += pow(x[(i * c + ch) * hw + j] - mean, 2);
            var = q / (double)count;
            rm[ch] = (1 - momentum) * rm[ch] + momentum * mean;
            rv[ch] = (1 - momentum) * rv[ch] + momentum * var * (double)count / (double)(count > 1 ? count - 1 : 1);
        }
        const double invstd = 1 / sqrt(var + eps);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                const int64_t at = (i * c + ch) * hw + j;
                y[at] = (x[at] - mean) * invstd * gamma[ch] + beta[ch];
                sum_dy += dy[at];
                sum_dy_xhat += dy[at] * (x[at] - mean) * invstd;
            }
        dgamma[ch] = sum_dy_xhat;
        dbeta[ch] = sum_dy;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                const int64_t at = (i * c + ch) * hw + j;
                const double xhat = (x[at] - mean) * invstd;
                const double centred = batch && count > 0
                                           ? dy[at] - sum_dy / (double)count - xhat * sum_dy_xhat / (double)count
                                           : dy[at];
                dx[at] = gamma[ch] * invstd * centred;
            }
    }
}

/* An exactly sized float copy of a double array. */
static float *to_float(const double *a, int64_t n)
{
    float *f = alloc(n, sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)a[i];
    return f;
}

static void from_float(const float *f, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = f[i];
}

/* An exactly sized array of n random values: offset + spread * uniform(), rounded to float when
 * `to_float_values` (so that the float kernels and the reference see the same numbers). */
static double *random_values(int64_t n, double offset, double spread, int to_float_values)
{
    double *a = alloc(n, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        a[i] = offset + spread * uniform();
        if (to_float_values) a[i] = (float)a[i];
    }
    return a;
}

static double *nan_array(int64_t n)
{
    double *a = alloc(n, sizeof(double));
    for (int64_t i = 0; i < n; i++) a[i] = NAN;
    return a;
}

/* One forward + backward of the kernels against naive_batchnorm. */
static void run_batchnorm(int64_t n, int64_t c, int64_t hw, int batch, int threads, int with_dx, int is_double)
{
    const int64_t size = n * c * hw;
    const double eps = 1e-5, momentum = 0.25, tol = is_double ? 1e-10 : 1e-4;
    double *x = random_values(size, 3, 2, !is_double), *dy = random_values(size, 0, 1, !is_double);
    double *gamma = random_values(c, 0, 1, !is_double), *beta = random_values(c, 0, 1, !is_double);
    double *rm = random_values(c, 0, 1, !is_double), *rv = random_values(c, 1.5, 1, !is_double);
    double *y = nan_array(size), *dx = nan_array(size), *dgamma = nan_array(c), *dbeta = nan_array(c);
    double *want_y = alloc(size, sizeof(double)), *want_dx = alloc(size, sizeof(double));
    double *want_dgamma = alloc(c, sizeof(double)), *want_dbeta = alloc(c, sizeof(double));
    double *want_rm = alloc(c, sizeof(double)), *want_rv = alloc(c, sizeof(double));
    double *mean = nan_array(c), *invstd = nan_array(c);
    const int batch_stats = batch && n * hw > 0;
    char config[96];
    snprintf(config, sizeof config, "n=%d c=%d hw=%d %s threads=%d %s%s", (int)n, (int)c, (int)hw,
             batch ? "train" : "eval", threads, is_double ? "double" : "float", with_dx ? "" : " no dx");
    for (int64_t i = 0; i < c; i++) want_rm[i] = rm[i], want_rv[i] = rv[i];
    naive_batchnorm(n, c, hw, x, dy, gamma, beta, eps, batch, momentum, want_rm, want_rv, want_y, want_dx,
                    want_dgamma, want_dbeta);
    if (is_double) {
        cconv_batchnorm2d_forward_f64(n, c, hw, x, gamma, beta, eps, batch, momentum, rm, rv, mean, invstd, y,
                                      threads);
        cconv_batchnorm2d_backward_f64(n, c, hw, dy, x, gamma, mean, invstd, batch_stats, with_dx ? dx : NULL,
                                       dgamma, dbeta, threads);
    } else {
        float *fx = to_float(x, size), *fdy = to_float(dy, size), *fgamma = to_float(gamma, c);
        float *fbeta = to_float(beta, c), *frm = to_float(rm, c), *frv = to_float(rv, c);
        float *fy = to_float(y, size), *fdx = to_float(dx, size), *fdgamma = to_float(dgamma, c);
        float *fdbeta = to_float(dbeta, c);
        cconv_batchnorm2d_forward_f32(n, c, hw, fx, fgamma, fbeta, eps, batch, momentum, frm, frv, mean, invstd, fy,
                                      threads);
        cconv_batchnorm2d_backward_f32(n, c, hw, fdy, fx, fgamma, mean, invstd, batch_stats, with_dx ? fdx : NULL,
                                       fdgamma, fdbeta, threads);
        from_float(fy, size, y), from_float(fdx, size, dx), from_float(fdgamma, c, dgamma);
        from_float(fdbeta, c, dbeta), from_float(frm, c, rm), from_float(frv, c, rv);
        free(fx), free(fdy), free(fgamma), free(fbeta), free(frm), free(frv), free(fy), free(fdx), free(fdgamma);
        free(fdbeta);
    }
    check("batchnorm2d y", config, y, want_y, size, tol);
    if (with_dx) check("batchnorm2d dx", config, dx, want_dx, size, tol);
    check("batchnorm2d dgamma", config, dgamma, want_dgamma, c, tol);
    check("batchnorm2d dbeta", config, dbeta, want_dbeta, c, tol);
    check("batchnorm2d running_mean", config, rm, want_rm, c, tol);
    check("batchnorm2d running_var", config, rv, want_rv, c, tol);
    free(x), free(dy), free(gamma), free(beta), free(rm), free(rv), free(y), free(dx), free(dgamma), free(dbeta);
    free(want_y), free(want_dx), free(want_dgamma), free(want_dbeta), free(want_rm), free(want_rv), free(mean);
    free(invstd);
}

static void run_gelu(int threads)
{
    enum { COUNT = 4001 };
    static float xf[COUNT], yf[COUNT], gf[COUNT];
    static double xd[COUNT], yd[COUNT], gd[COUNT], want_y[COUNT], want_g[COUNT], got[COUNT];
    char config[32];
    snprintf(config, sizeof config, "threads=%d", threads);
    for (int i = 0; i < COUNT; i++) {
        xd[i] = -10.0 + 20.0 * i / (COUNT - 1);
        xf[i] = (float)xd[i];
        const double cdf = 0.5 * (1 + erf(xd[i] / sqrt(2.0)));
        want_y[i] = xd[i] * cdf;
        want_g[i] = 2 * (cdf + xd[i] * exp(-xd[i] * xd[i] / 2) / sqrt(2 * 3.14159265358979323846));
        gd[i] = 2; /* dy, overwritten by dx (they may alias) */
        gf[i] = 2;
    }
    cconv_gelu_forward_f64(COUNT, xd, yd, threads);
    cconv_gelu_backward_f64(COUNT, gd, xd, gd, threads);
    check("gelu y", config, yd, want_y, COUNT, 1e-14);
    check("gelu dx", config, gd, want_g, COUNT, 1e-14);
    cconv_gelu_forward_f32(COUNT, xf, yf, threads);
    cconv_gelu_backward_f32(COUNT, gf, xf, gf, threads);
    for (int i = 0; i < COUNT; i++) got[i] = yf[i];
    check("gelu y", config, got, want_y, COUNT, 1e-5);
    for (int i = 0; i < COUNT; i++) got[i] = gf[i];
    check("gelu dx", config, got, want_g, COUNT, 1e-5);
}

int main(void)
{
    static const int64_t SHAPES[][3] = {{2, 3, 5}, {4, 5, 17}, {1, 2, 1}, {0, 3, 4}, {3, 64, 200}};
    for (int t = 1; t <= 3; t += 2) {
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
            for (int batch = 0; batch < 2; batch++) {
                run_batchnorm(SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], batch, t, 1, 0);
                run_batchnorm(SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], batch, t, s % 2, 1);
            }
        run_gelu(t);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
