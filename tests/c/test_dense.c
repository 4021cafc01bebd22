/* test_dense.c: C-level tests of the fully connected layers of csrc/dense.h (plain C99, no Python).
 *
 * Forward (bias or none, ReLU or none, a NaN in x) and backward (each of dx, dw, db given or
 * NULL, the ReLU mask taken from a y with negatives, zeros, -0 and a NaN) in f32 and f64, on
 * shapes with empty dimensions, ones, and sizes past the micro-kernel tiles and the 384-deep
 * blocking, against naive double-precision loops written here, with every micro-kernel config this
 * CPU runs (cconv_gemm_configs_force) and 1 and 3 threads. dense.h promises results that do not
 * depend on the thread count: the 3-thread results must equal the 1-thread ones bit for bit.
 * Arrays are exactly sized (AddressSanitizer and Valgrind see any overrun) and outputs are NaN
 * before the call (an output left unwritten fails). Results must lie within the rounding bound
 * (depth + 2) * 2 * eps * (|bias| + sum |a| |b|) of the reference.
 * Prints a FAIL line per failure and "N passed, N failed"; exits 1 on any failure.
 * Build: compile with csrc/dense.c, gemm_config.c, cpu_features.c, workspace.c and the micro-kernels
 * (csrc/ukernels/ *.c, the -avx2.c / -avx512.c files with their ISA flags).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dense.h"
#include "gemm_config.h"
#include "status.h"

static int passed, failed;

/* ------------------------------------------------------------------------------ helpers */

static uint64_t rng_state = 12345;

/* Uniform in [-1, 1), from a 64-bit LCG (deterministic on every platform). */
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* An exactly sized f32 or f64 array. */
typedef struct {
    void *p;
    int64_t n;
    int dbl;
} Arr;

static Arr arr_new(int64_t n, int dbl)
{
    Arr a;
    a.n = n;
    a.dbl = dbl;
    a.p = malloc((size_t)(n > 0 ? n : 1) * (dbl ? sizeof(double) : sizeof(float)));
    if (!a.p) {
        printf("out of memory\n");
        exit(2);
    }
    return a;
}

static double get(const Arr *a, int64_t i)
{
    return a->dbl ? ((const double *)a->p)[i] : (double)((const float *)a->p)[i];
}

static void put(Arr *a, int64_t i, double v)
{
    if (a->dbl) ((double *)a->p)[i] = v;
    else ((float *)a->p)[i] = (float)v;
}

static Arr random_arr(int64_t n, int dbl)
{
    Arr a = arr_new(n, dbl);
    for (int64_t i = 0; i < n; ++i) put(&a, i, uniform());
    return a;
}

static Arr nan_arr(int64_t n, int dbl)
{
    Arr a = arr_new(n, dbl);
    for (int64_t i = 0; i < n; ++i) put(&a, i, NAN);
    return a;
}

static int64_t below(int64_t n) { return (int64_t)((uniform() + 1.0) * 0.5 * (double)n) % n; }

typedef struct {
    const char *isa;
    int dbl, threads;
} Run;

/* got[i] against want[i] within bound * mag[i]; NaN must match NaN; with relu, no negatives and a
 * clearly negative pre-activation value gives exactly 0. Counts one check. */
static void check(const char *what, const char *label, const Run *r, const Arr *got, const double *pre,
                  const double *mag, int64_t depth, int relu)
{
    const double bound = (double)(depth + 2) * 2.0 * (r->dbl ? DBL_EPSILON : FLT_EPSILON);
    for (int64_t i = 0; i < got->n; ++i) {
        const double g = get(got, i), want = relu && pre[i] < 0 ? 0.0 : pre[i], tol = bound * mag[i];
        const int bad = isnan(pre[i]) ? !isnan(g)
                                      : !(fabs(g - want) <= tol) || (relu && (g < 0 || (pre[i] < -tol && g != 0)));
        if (bad) {
            failed++;
            printf("FAIL %s %s isa=%s %s threads=%d: [%lld] = %.9g, want %.9g (tol %.3g)\n", what, label, r->isa,
                   r->dbl ? "f64" : "f32", r->threads, (long long)i, g, want, tol);
            return;
        }
    }
    passed++;
}

static void expect_ok(const char *label, const Run *r, int status)
{
    if (status != CCONV_OK) {
        failed++;
        printf("FAIL %s isa=%s %s threads=%d: status %d\n", label, r->isa, r->dbl ? "f64" : "f32", r->threads, status);
    }
}

/* The 3-thread result equals the 1-thread one bit for bit (dense.h). */
static void check_same(const char *what, const char *label, const Run *r, const Arr *one, const Arr *three)
{
    const size_t bytes = (size_t)one->n * (one->dbl ? sizeof(double) : sizeof(float));
    if (memcmp(one->p, three->p, bytes) == 0) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s %s isa=%s %s: 3 threads differ from 1 thread\n", what, label, r->isa, r->dbl ? "f64" : "f32");
    }
}

/* ------------------------------------------------------------------------------ cases */

typedef struct {
    const char *name;
    int64_t n, in, out;
} DenseCase;

static const DenseCase CASES[] = {
    /* name            n    in   out */
    {"empty-batch",    0,    5,   3},
    {"no-inputs",      4,    0,   3},
    {"no-outputs",     4,    5,   0},
    {"all-empty",      0,    0,   0},
    {"ones",           1,    1,   1},
    {"small",          2,    3,   4},
    {"deep",           3,  385,  33},  /* past the 384-deep block and the tiles */
    {"tall",         200,   17,  70},
    {"threaded",      96,  385,  97},  /* enough work for 3 threads */
};

static int forward_call(const Run *r, const DenseCase *dc, const Arr *x, const Arr *w, const Arr *b, Arr *y, int relu)
{
    const int act = relu ? CCONV_ACTIVATION_RELU : CCONV_ACTIVATION_NONE;
    if (r->dbl)
        return cconv_dense_forward_f64(dc->n, dc->in, dc->out, x->p, w->p, b ? b->p : NULL, y->p, act, r->threads);
    return cconv_dense_forward_f32(dc->n, dc->in, dc->out, x->p, w->p, b ? b->p : NULL, y->p, act, r->threads);
}

/* y = act(x . w + bias): opt bit 0 bias, bit 1 relu, bit 2 a NaN in x. */
static void run_forward(const char *isa, int dbl, const DenseCase *dc, int opt)
{
    const int64_t n = dc->n, in = dc->in, out = dc->out;
    const int bias = opt & 1, relu = (opt >> 1) & 1, nan = (opt >> 2) & 1;
    char label[160];
    snprintf(label, sizeof label, "forward %s n=%lld in=%lld out=%lld bias=%d relu=%d nan=%d", dc->name, (long long)n,
             (long long)in, (long long)out, bias, relu, nan);
    Arr x = random_arr(n * in, dbl), w = random_arr(in * out, dbl), b = random_arr(out, dbl);
    if (nan && n * in > 0) put(&x, below(n * in), NAN);
    double *pre = (double *)malloc((size_t)(n * out + 1) * sizeof(double));
    double *mag = (double *)malloc((size_t)(n * out + 1) * sizeof(double));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < out; ++j) {
            double v = bias ? get(&b, j) : 0.0, m = fabs(v);
            for (int64_t k = 0; k < in; ++k) {
                const double p = get(&x, i * in + k) * get(&w, k * out + j);
                v += p;
                m += fabs(p);
            }
            pre[i * out + j] = v;
            mag[i * out + j] = m;
        }
    Arr y[2];
    for (int t = 0; t < 2; ++t) {
        const Run r = {isa, dbl, t ? 3 : 1};
        y[t] = nan_arr(n * out, dbl);
        expect_ok(label, &r, forward_call(&r, dc, &x, &w, bias ? &b : NULL, &y[t], relu));
        check("y", label, &r, &y[t], pre, mag, in, relu);
    }
    const Run r = {isa, dbl, 3};
    check_same("y", label, &r, &y[0], &y[1]);
    free(x.p); free(w.p); free(b.p); free(y[0].p); free(y[1].p); free(pre); free(mag);
}

static int backward_call(const Run *r, const DenseCase *dc, const Arr *dy, const Arr *y, const Arr *x, const Arr *w,
                         Arr *dx, Arr *dw, Arr *db, int relu)
{
    const int act = relu ? CCONV_ACTIVATION_RELU : CCONV_ACTIVATION_NONE;
    if (r->dbl)
        return cconv_dense_backward_f64(dc->n, dc->in, dc->out, dy->p, y->p, x->p, w->p, dx ? dx->p : NULL,
                                        dw ? dw->p : NULL, db ? db->p : NULL, act, r->threads);
    return cconv_dense_backward_f32(dc->n, dc->in, dc->out, dy->p, y->p, x->p, w->p, dx ? dx->p : NULL,
                                    dw ? dw->p : NULL, db ? db->p : NULL, act, r->threads);
}

/* The gradients: opt bits 0, 1, 2 ask for dx, dw, db; bit 3 relu (masked by y, NaN passes). */
static void run_backward(const char *isa, int dbl, const DenseCase *dc, int opt)
{
    const int64_t n = dc->n, in = dc->in, out = dc->out;
    const int want_dx = opt & 1, want_dw = (opt >> 1) & 1, want_db = (opt >> 2) & 1, relu = (opt >> 3) & 1;
    char label[160];
    snprintf(label, sizeof label, "backward %s n=%lld in=%lld out=%lld dx=%d dw=%d db=%d relu=%d", dc->name,
             (long long)n, (long long)in, (long long)out, want_dx, want_dw, want_db, relu);
    Arr x = random_arr(n * in, dbl), w = random_arr(in * out, dbl), dy = random_arr(n * out, dbl);
    Arr y = arr_new(n * out, dbl);
    for (int64_t i = 0; i < n * out; ++i) {  /* y: negatives, 0, -0 and positives; one NaN */
        const double u = uniform();
        put(&y, i, u < -0.8 ? 0.0 : u < -0.7 ? -0.0 : u);
    }
    if (n * out > 0) put(&y, below(n * out), NAN);
    double *g = (double *)malloc((size_t)(n * out + 1) * sizeof(double));
    for (int64_t i = 0; i < n * out; ++i) g[i] = relu && get(&y, i) <= 0 ? 0.0 : get(&dy, i);
    const int64_t sizes[3] = {n * in, in * out, out};
    double *pre[3], *mag[3];
    for (int o = 0; o < 3; ++o) {
        pre[o] = (double *)calloc((size_t)(sizes[o] + 1), sizeof(double));
        mag[o] = (double *)calloc((size_t)(sizes[o] + 1), sizeof(double));
    }
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < out; ++j) {
            const double gij = g[i * out + j];
            pre[2][j] += gij;
            mag[2][j] += fabs(gij);
            for (int64_t k = 0; k < in; ++k) {
                const double px = gij * get(&w, k * out + j), pw = get(&x, i * in + k) * gij;
                pre[0][i * in + k] += px;
                mag[0][i * in + k] += fabs(px);
                pre[1][k * out + j] += pw;
                mag[1][k * out + j] += fabs(pw);
            }
        }
    static const char *const NAMES[3] = {"dx", "dw", "db"};
    const int64_t depth[3] = {out, n, n};
    const int asked[3] = {want_dx, want_dw, want_db};
    Arr grads[2][3];
    for (int t = 0; t < 2; ++t) {
        const Run r = {isa, dbl, t ? 3 : 1};
        for (int o = 0; o < 3; ++o) grads[t][o] = nan_arr(sizes[o], dbl);
        expect_ok(label, &r, backward_call(&r, dc, &dy, &y, &x, &w, want_dx ? &grads[t][0] : NULL,
                                           want_dw ? &grads[t][1] : NULL, want_db ? &grads[t][2] : NULL, relu));
        for (int o = 0; o < 3; ++o)
            if (asked[o]) check(NAMES[o], label, &r, &grads[t][o], pre[o], mag[o], depth[o], 0);
    }
    const Run r = {isa, dbl, 3};
    for (int o = 0; o < 3; ++o) {
        if (asked[o]) check_same(NAMES[o], label, &r, &grads[0][o], &grads[1][o]);
        free(grads[0][o].p); free(grads[1][o].p); free(pre[o]); free(mag[o]);
    }
    free(x.p); free(w.p); free(dy.p); free(y.p); free(g);
}

/* ------------------------------------------------------------------------------ main */

int main(void)
{
    const cconv_gemm_configs *built;
    const int n_cases = (int)(sizeof CASES / sizeof CASES[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);  /* FAIL lines out before any crash */
    for (int i = 0; (built = cconv_gemm_configs_built(i)) != NULL; ++i) {
        if (cconv_gemm_configs_force(built->isa) != 0) {
            printf("skipping %s: built, but this CPU (or the emulator running it) lacks it\n", built->isa);
            continue;
        }
        const int before = passed + failed;
        for (int dbl = 0; dbl < 2; ++dbl)
            for (int c = 0; c < n_cases; ++c) {
                for (int opt = 0; opt < 8; ++opt) run_forward(built->isa, dbl, &CASES[c], opt);
                for (int opt = 0; opt < 16; ++opt) run_backward(built->isa, dbl, &CASES[c], opt);
            }
        printf("%s: %d checks\n", built->isa, passed + failed - before);
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
