/* test_kernels.c: C-level tests of the kernels in csrc/ (plain C99, no Python).
 *
 * Convolution forward (bias, fused ReLU) and backward (dx, dw, db; ReLU-masked), and max / average
 * / Lp pooling forward and backward, in float and double, on small shapes (grouped, depthwise,
 * strided, dilated, asymmetric padding, sizes past the kernels' blockings, no input channels)
 * against naive loops written here, with 1 and 3 threads and every GEMM micro-kernel path this
 * CPU runs (only the one CCONV_ISA names, when it is set). Every array is allocated at its exact
 * size, so AddressSanitizer and Valgrind see any out-of-bounds access, and outputs are filled
 * with NaN first, so that an output a kernel forgets to write fails. With OpenMP, the convolution
 * is also called from inside a parallel region (where OpenMP may give it fewer threads than it
 * asks for). On POSIX systems, processes forked while another thread keeps taking workspaces and
 * array buffers must be able to take them too (the workspace pool's and the buffer cache's locks
 * are held across fork()); set CCONV_SKIP_FORK_TEST=1 to skip that under tools that make fork
 * slow (Valgrind).
 * Prints a FAIL line per failure and "N passed, N failed"; exits 1 on any failure.
 *
 * Build: make -C tests/c run (see the Makefile), or compile it with every C file that
 * csrc/sources.txt lists.
 */
#if !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L /* fork, alarm, waitpid (the fork test) */
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer_cache.h"
#include "conv2d.h"
#include "gemm_config.h"
#include "pool2d.h"
#include "workspace.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

static int passed, failed;

/* ------------------------------------------------------------------------------ helpers */

static uint64_t rng_state = 12345;

/* Uniform in [-1, 1), from a 64-bit LCG (deterministic on every platform). */
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* An exactly sized array of n doubles (at least one byte, so that n = 0 is not NULL). */
static double *alloc_d(int64_t n)
{
    double *a = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!a) {
        printf("out of memory\n");
        exit(2);
    }
    return a;
}

static double *random_array(int64_t n, int positive)
{
    double *a = alloc_d(n);
    for (int64_t i = 0; i < n; i++) a[i] = positive ? fabs(uniform()) + 0.1 : uniform();
    return a;
}

/* The kernels see exactly sized copies in their own precision; results come back as doubles. */
typedef struct {
    int is_double;
    void *data;
    int64_t n;
} Buffer;

static Buffer to_buffer(const double *a, int64_t n, int is_double)
{
    Buffer b;
    b.is_double = is_double;
    b.n = n;
    b.data = malloc((size_t)(n > 0 ? n : 1) * (is_double ? sizeof(double) : sizeof(float)));
    if (!b.data) {
        printf("out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) {
        if (is_double)
            ((double *)b.data)[i] = a ? a[i] : NAN;
        else
            ((float *)b.data)[i] = a ? (float)a[i] : NAN;
    }
    return b;
}

static double value(const Buffer *b, int64_t i)
{
    return b->is_double ? ((const double *)b->data)[i] : (double)((const float *)b->data)[i];
}

/* got (n values) matches want within tol relative to max(1, max |want|); NaN fails. */
static void check(const char *what, const char *config, const Buffer *got, const double *want, int64_t n)
{
    const double tol = got->is_double ? 1e-10 : 1e-4;
    double scale = 1.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    for (int64_t i = 0; i < n; i++) {
        const double err = fabs(value(got, i) - want[i]) / scale;
        if (!(err <= worst)) worst = err;
    }
    if (worst <= tol) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s %s (%s): max error %g relative to scale %g exceeds %g\n", what, config,
               got->is_double ? "double" : "float", worst, scale, tol);
    }
}

static void expect_ok(const char *what, int status)
{
    if (status != CCONV_OK) {
        failed++;
        printf("FAIL %s: status %d\n", what, status);
    }
}

/* ------------------------------------------------------------------------------ convolution */

typedef struct {
    const char *name;
    int64_t n, c, h, w, k, r, s, groups, sh, sw, dh, dw, pt, pb, pl, pr;
    int bias, relu;
} ConvCase;

static const ConvCase CONV_CASES[] = {
    /* name                 n   c   h   w    k  r  s  g  sh sw dh dw pt pb pl pr bias relu */
    {"plain-padded",        2,  3,  7,  6,   4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
    {"grouped-asymmetric",  2,  4,  9,  8,   6, 3, 2, 2, 2, 1, 1, 2, 0, 2, 1, 0, 1, 0},
    {"depthwise-strided",   1,  6,  8,  8,  12, 3, 3, 6, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},
    {"depthwise-3x3-relu",  2,  5,  9, 11,   5, 3, 3, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"depthwise-5x5-mult2", 1,  3,  8, 19,   6, 5, 5, 3, 1, 1, 1, 1, 2, 2, 2, 2, 1, 0},
    {"depthwise-7x3-dilated", 2, 2, 13, 9,   2, 7, 3, 2, 1, 1, 2, 2, 5, 2, 1, 3, 0, 1},
    {"depthwise-s2-relu",   2,  4, 11, 17,   8, 3, 3, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
    {"depthwise-7x7-planes", 2, 24,  7,  7,  24, 3, 3, 24, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"depthwise-14-7x7-b1", 1,  9, 14, 14,   9, 7, 7, 9, 1, 1, 1, 1, 3, 3, 3, 3, 1, 0},
    {"depthwise-huge-pad",  1,  2,  3,  1,   2, 2, 2, 2, 1, 3, 3, 3, 4, 4, 4, 4, 1, 0},
    {"relu",                2,  3,  6,  7,   5, 2, 3, 1, 1, 1, 1, 1, 1, 0, 2, 1, 1, 1},
    {"relu-no-bias-dilated", 1, 4, 10,  9,   4, 3, 3, 2, 1, 2, 2, 1, 2, 2, 0, 1, 0, 1},
    {"deep-and-wide",       1, 40, 21, 21,  20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
    {"many-filters",        1,  2,  5,  5, 260, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"1x1-stride-3",        2,  5,  7,  9,   3, 1, 1, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 0},
    {"small-maps",          3, 64,  2,  2, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"small-maps-grouped-1x1", 3, 512, 1, 1, 512, 1, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},
    {"strided-3x3",         2,  5, 13, 11,  14, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
    {"stem-7x7-stride-2",   2,  3, 19, 18,  16, 7, 7, 1, 2, 2, 1, 1, 3, 3, 3, 2, 1, 0},
    {"strided-dilated",     1,  4, 17, 19,   6, 3, 2, 1, 3, 2, 2, 3, 2, 0, 1, 3, 0, 1},
    {"stride-4-11x11",      1,  3, 31, 30,   8,11,11, 1, 4, 4, 1, 1, 2, 2, 2, 1, 1, 0},
    {"thin-first-layer",    4,  1, 12, 12,  32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"kernel-is-input",     2,  3,  4,  5,   2, 4, 5, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},
    {"stride-past-input",   1,  2,  3,  3,   2, 2, 2, 1, 5, 4, 1, 1, 1, 1, 1, 1, 1, 0},
    {"no-input-channels",   2,  0,  3,  3,   3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {"empty-image-padded",  1,  2,  0,  4,   3, 1, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0},
};

static int64_t conv_out(int64_t size, int64_t before, int64_t after, int64_t k, int64_t d, int64_t stride)
{
    return (size + before + after - d * (k - 1) - 1) / stride + 1;
}

static cconv_conv2d_shape conv_shape(const ConvCase *cc)
{
    cconv_conv2d_shape sh;
    sh.n = cc->n; sh.c = cc->c; sh.h = cc->h; sh.w = cc->w;
    sh.k = cc->k; sh.r = cc->r; sh.s = cc->s; sh.groups = cc->groups;
    sh.stride_h = cc->sh; sh.stride_w = cc->sw; sh.dil_h = cc->dh; sh.dil_w = cc->dw;
    sh.pad_top = cc->pt; sh.pad_left = cc->pl;
    sh.p = conv_out(cc->h, cc->pt, cc->pb, cc->r, cc->dh, cc->sh);
    sh.q = conv_out(cc->w, cc->pl, cc->pr, cc->s, cc->dw, cc->sw);
    return sh;
}

/* The input index that output (p, q) reads for tap (r, s), or -1 where that is padding. */
static int64_t conv_tap(const cconv_conv2d_shape *sh, int64_t p, int64_t q, int64_t r, int64_t s)
{
    const int64_t ih = p * sh->stride_h - sh->pad_top + r * sh->dil_h;
    const int64_t iw = q * sh->stride_w - sh->pad_left + s * sh->dil_w;
    return (ih < 0 || ih >= sh->h || iw < 0 || iw >= sh->w) ? -1 : ih * sh->w + iw;
}

/* y = relu?(conv(x, w) + bias), and (with dy) the gradients, dy masked where y <= 0 with relu. */
static void naive_conv(const cconv_conv2d_shape *sh, const double *x, const double *w, const double *bias,
                       int relu, double *y, const double *dy, double *dx, double *dw, double *db)
{
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, HW = sh->h * sh->w;
    if (dy) {
        memset(dx, 0, (size_t)(sh->n * sh->c * HW) * sizeof(double));
        memset(dw, 0, (size_t)(sh->k * Cg * sh->r * sh->s) * sizeof(double));
        memset(db, 0, (size_t)sh->k * sizeof(double));
    }
    for (int64_t n = 0; n < sh->n; n++)
        for (int64_t k = 0; k < sh->k; k++) {
            const int64_t g = k / Kg;
            for (int64_t p = 0; p < sh->p; p++)
                for (int64_t q = 0; q < sh->q; q++) {
                    const int64_t o = ((n * sh->k + k) * sh->p + p) * sh->q + q;
                    double sum = bias ? bias[k] : 0.0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t r = 0; r < sh->r; r++)
                            for (int64_t s = 0; s < sh->s; s++) {
                                const int64_t at = conv_tap(sh, p, q, r, s);
                                if (at >= 0)
                                    sum += w[((k * Cg + c) * sh->r + r) * sh->s + s] * x[(n * sh->c + g * Cg + c) * HW + at];
                            }
                    if (relu && sum < 0) sum = 0;
                    y[o] = sum;
                    if (!dy) continue;
                    const double grad = (relu && !(y[o] > 0)) ? 0.0 : dy[o];
                    db[k] += grad;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t r = 0; r < sh->r; r++)
                            for (int64_t s = 0; s < sh->s; s++) {
                                const int64_t at = conv_tap(sh, p, q, r, s);
                                if (at < 0) continue;
                                const int64_t xi = (n * sh->c + g * Cg + c) * HW + at;
                                const int64_t wi = ((k * Cg + c) * sh->r + r) * sh->s + s;
                                dx[xi] += w[wi] * grad;
                                dw[wi] += x[xi] * grad;
                            }
                }
        }
}

static void run_conv_algorithm(const ConvCase *cc, int is_double, int threads, const char *isa,
                               const cconv_conv2d_algorithm algorithm[CCONV_CONV2D_PASS_COUNT])
{
    const cconv_conv2d_shape sh = conv_shape(cc);
    const int64_t nx = sh.n * sh.c * sh.h * sh.w, nw = sh.k * (sh.groups ? sh.c / sh.groups : 0) * sh.r * sh.s;
    const int64_t ny = sh.n * sh.k * sh.p * sh.q;
    const int activation = cc->relu ? CCONV_ACTIVATION_RELU : CCONV_ACTIVATION_NONE;
    const cconv_conv2d_options options = {activation, threads, {algorithm[0], algorithm[1], algorithm[2]}};
    char config[200];
    snprintf(config, sizeof config, "conv %s threads=%d isa=%s algorithms=%s,%s,%s", cc->name, threads, isa,
             cconv_conv2d_algorithm_name(algorithm[0]), cconv_conv2d_algorithm_name(algorithm[1]),
             cconv_conv2d_algorithm_name(algorithm[2]));

    double *x = random_array(nx, 0), *w = random_array(nw, 0), *bias = random_array(sh.k, 0);
    double *dy = random_array(ny, 0), *y = alloc_d(ny), *dx = alloc_d(nx), *dw = alloc_d(nw), *db = alloc_d(sh.k);
    naive_conv(&sh, x, w, cc->bias ? bias : NULL, cc->relu, y, dy, dx, dw, db);

    Buffer bx = to_buffer(x, nx, is_double), bw = to_buffer(w, nw, is_double), bb = to_buffer(bias, sh.k, is_double);
    Buffer by = to_buffer(NULL, ny, is_double), bdy = to_buffer(dy, ny, is_double);
    Buffer bdx = to_buffer(NULL, nx, is_double), bdw = to_buffer(NULL, nw, is_double), bdb = to_buffer(NULL, sh.k, is_double);
    int status;
    if (is_double)
        status = cconv_conv2d_forward_f64(&sh, (double *)bx.data, (double *)bw.data, cc->bias ? (double *)bb.data : NULL,
                                          (double *)by.data, &options);
    else
        status = cconv_conv2d_forward_f32(&sh, (float *)bx.data, (float *)bw.data, cc->bias ? (float *)bb.data : NULL,
                                          (float *)by.data, &options);
    expect_ok(config, status);
    check("y", config, &by, y, ny);
    /* the backward masks with the kernel's own y, as cconv.functional passes it */
    if (is_double)
        status = cconv_conv2d_backward_f64(&sh, (double *)bdy.data, (double *)by.data, (double *)bx.data,
                                           (double *)bw.data, (double *)bdx.data, (double *)bdw.data,
                                           (double *)bdb.data, &options);
    else
        status = cconv_conv2d_backward_f32(&sh, (float *)bdy.data, (float *)by.data, (float *)bx.data,
                                           (float *)bw.data, (float *)bdx.data, (float *)bdw.data,
                                           (float *)bdb.data, &options);
    expect_ok(config, status);
    check("dx", config, &bdx, dx, nx);
    check("dw", config, &bdw, dw, nw);
    check("db", config, &bdb, db, sh.k);

    free(x); free(w); free(bias); free(dy); free(y); free(dx); free(dw); free(db);
    free(bx.data); free(bw.data); free(bb.data); free(by.data); free(bdy.data);
    free(bdx.data); free(bdw.data); free(bdb.data);
}

/* One case with every algorithm that can run some pass of its geometry, forced by name in the
 * passes it can run (the GEMM runs the others), and with CCONV_CONV2D_AUTO. */
static void run_conv(const ConvCase *cc, int is_double, int threads, const char *isa)
{
    const cconv_conv2d_shape sh = conv_shape(cc);
    for (int a = CCONV_CONV2D_AUTO; a < CCONV_CONV2D_ALGORITHM_COUNT; a++) {
        cconv_conv2d_algorithm per_pass[CCONV_CONV2D_PASS_COUNT];
        int runs = 0;
        for (int p = 0; p < CCONV_CONV2D_PASS_COUNT; p++) {
            const int can = !cconv_conv2d_unsupported(&sh, (cconv_conv2d_pass)p, (cconv_conv2d_algorithm)a);
            per_pass[p] = can ? (cconv_conv2d_algorithm)a : CCONV_CONV2D_GEMM;
            runs |= can;
        }
        if (runs) run_conv_algorithm(cc, is_double, threads, isa, per_pass);
    }
}

/* The weight gradient computed by threads of an enclosing parallel region, each asking for 3
 * threads (OpenMP gives nested regions 1 unless nesting is enabled). Blocks of junk are freed
 * in between, so that reading memory the kernel did not write shows. */
static void run_conv_nested(void)
{
#ifdef _OPENMP
    const ConvCase cc = {"nested", 64, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const cconv_conv2d_shape sh = conv_shape(&cc);
    const int64_t nx = sh.n * sh.c * sh.h * sh.w, nw = sh.k * sh.c * sh.r * sh.s, ny = sh.n * sh.k * sh.p * sh.q;
    double *x = random_array(nx, 0), *w = random_array(nw, 0), *dy = random_array(ny, 0);
    double *y = alloc_d(ny), *dx = alloc_d(nx), *dw = alloc_d(nw), *db = alloc_d(sh.k);
    Buffer got[2];
    naive_conv(&sh, x, w, NULL, 0, y, dy, dx, dw, db);
    for (int round = 0; round < 3; round++) {
        for (int pass = 0; pass < 2; pass++)  /* the second pass reuses heap the first one grew */
            for (size_t size = 1024; size <= ((size_t)1 << 22); size *= 2) {
                unsigned char *junk = (unsigned char *)malloc(size);
                if (junk) memset(junk, 0x7f, size);
                free(junk);
            }
        int status[2] = {CCONV_OK, CCONV_OK};
        got[0] = to_buffer(NULL, nw, 1);
        got[1] = to_buffer(NULL, nw, 1);
#pragma omp parallel num_threads(2)
        {
            const int id = omp_get_thread_num();
            const cconv_conv2d_options options = {CCONV_ACTIVATION_NONE, 3, {CCONV_CONV2D_AUTO}};
            status[id] = cconv_conv2d_backward_f64(&sh, dy, NULL, x, w, NULL, (double *)got[id].data, NULL, &options);
        }
        expect_ok("conv nested", status[0]);
        expect_ok("conv nested", status[1]);
        check("dw", "conv called from inside a parallel region", &got[0], dw, nw);
        check("dw", "conv called from inside a parallel region", &got[1], dw, nw);
        free(got[0].data);
        free(got[1].data);
    }
    free(x); free(w); free(dy); free(y); free(dx); free(dw); free(db);
#endif
}

/* ------------------------------------------------------------------------------ pooling */

enum { MAX_POOL, AVG_POOL, AVG_POOL_NO_PAD_COUNT, LP_POOL };
static const char *POOL_NAMES[] = {"max", "avg", "avg-no-pad-count", "lp"};

typedef struct {
    const char *name;
    int64_t n, c, h, w, kh, kw, sh, sw, ph, pw;
    int ceil_mode;
    double norm_type;  /* lp pooling (padding must be 0 for it) */
} PoolCase;

static const PoolCase POOL_CASES[] = {
    /* name                n  c   h    w  kh kw sh sw ph pw ceil  p */
    {"3x3-s2-p1-ceil",     2, 3,  9,  10, 3, 3, 2, 2, 1, 1, 1, 2.0},
    {"2x2-s2",             2, 3,  8,   8, 2, 2, 2, 2, 0, 0, 0, 2.0},
    {"2x2-s2-odd-ceil",    1, 2,  7,   9, 2, 2, 2, 2, 0, 0, 1, 1.5},
    {"3x2-s1x2-p1x0",      2, 2,  7,  10, 3, 2, 1, 2, 1, 0, 0, 2.0},
    {"wide-rows",          1, 2,  4, 150, 2, 2, 1, 1, 1, 1, 0, 3.0},
    {"kernel-is-input",    2, 3,  5,   7, 5, 7, 5, 7, 0, 0, 0, 2.0},
    {"stride-past-input",  1, 2,  5,   5, 2, 3, 7, 6, 1, 1, 1, 1.0},
    {"1x1-image",          3, 2,  1,   1, 1, 1, 1, 1, 0, 0, 0, 0.5},
};

static int64_t pool_out(int64_t size, int64_t k, int64_t stride, int64_t pad, int ceil_mode)
{
    int64_t out = (size + 2 * pad - k + (ceil_mode ? stride - 1 : 0)) / stride + 1;
    if (ceil_mode && (out - 1) * stride >= size + pad) out--;
    return out;
}

/* One pooling op (forward and, with dy, backward) by the definitions in pool2d.h. */
static void naive_pool(const cconv_pool2d_shape *s, int op, double p, const double *x, double *y,
                       const double *dy, double *dx)
{
    const int64_t HW = s->h * s->w;
    if (dy) memset(dx, 0, (size_t)(s->n * s->c * HW) * sizeof(double));
    for (int64_t plane = 0; plane < s->n * s->c; plane++) {
        const double *xp = x + plane * HW;
        for (int64_t oh = 0; oh < s->p; oh++)
            for (int64_t ow = 0; ow < s->q; ow++) {
                const int64_t hs = oh * s->stride_h - s->pad_h, ws = ow * s->stride_w - s->pad_w;
                const int64_t he = hs + s->kh, we = ws + s->kw;
                const int64_t h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
                const int64_t h1 = he < s->h ? he : s->h, w1 = we < s->w ? we : s->w;
                const int64_t padded = ((he < s->h + s->pad_h ? he : s->h + s->pad_h) - hs) *
                                       ((we < s->w + s->pad_w ? we : s->w + s->pad_w) - ws);
                const int64_t real = (h1 - h0) * (w1 - w0), o = (plane * s->p + oh) * s->q + ow;
                double acc = op == MAX_POOL ? -INFINITY : 0.0;
                int64_t best = h0 * s->w + w0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        const double v = xp[ih * s->w + iw];
                        if (op == MAX_POOL) {
                            if (v > acc || v != v) {
                                acc = v;
                                best = ih * s->w + iw;
                            }
                        } else {
                            acc += op == LP_POOL ? pow(v, p) : v;
                        }
                    }
                const double scale = op == LP_POOL ? (double)(s->kh * s->kw) / (double)padded : 1.0;
                if (op == AVG_POOL) acc /= (double)padded;
                if (op == AVG_POOL_NO_PAD_COUNT) acc /= (double)real;
                const double sum = acc;
                if (op == LP_POOL) acc = pow(sum * scale, 1.0 / p);
                y[o] = acc;
                if (!dy) continue;
                double *dxp = dx + plane * HW;
                if (op == MAX_POOL) {
                    dxp[best] += dy[o];
                    continue;
                }
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        const double v = xp[ih * s->w + iw];
                        if (op == AVG_POOL) dxp[ih * s->w + iw] += dy[o] / (double)padded;
                        if (op == AVG_POOL_NO_PAD_COUNT) dxp[ih * s->w + iw] += dy[o] / (double)real;
                        if (op == LP_POOL && sum != 0.0)
                            dxp[ih * s->w + iw] += dy[o] * scale * pow(v, p - 1) * pow(acc, 1 - p);
                    }
            }
    }
}

static int pool_call(const cconv_pool2d_shape *s, int op, double p, int threads, const Buffer *x, Buffer *y,
                     const Buffer *dy, Buffer *dx)
{
    const int include = op != AVG_POOL_NO_PAD_COUNT;
    if (x->is_double) {
        const double *xd = (const double *)x->data;
        if (!dy) {
            double *yd = (double *)y->data;
            if (op == MAX_POOL) return cconv_max_pool2d_forward_f64(s, xd, yd, threads);
            if (op == LP_POOL) return cconv_lp_pool2d_forward_f64(s, xd, yd, p, threads);
            return cconv_avg_pool2d_forward_f64(s, xd, yd, include, threads);
        }
        const double *dyd = (const double *)dy->data;
        double *dxd = (double *)dx->data;
        if (op == MAX_POOL) return cconv_max_pool2d_backward_f64(s, dyd, xd, dxd, threads);
        if (op == LP_POOL) return cconv_lp_pool2d_backward_f64(s, dyd, xd, dxd, p, threads);
        return cconv_avg_pool2d_backward_f64(s, dyd, dxd, include, threads);
    }
    const float *xf = (const float *)x->data;
    if (!dy) {
        float *yf = (float *)y->data;
        if (op == MAX_POOL) return cconv_max_pool2d_forward_f32(s, xf, yf, threads);
        if (op == LP_POOL) return cconv_lp_pool2d_forward_f32(s, xf, yf, p, threads);
        return cconv_avg_pool2d_forward_f32(s, xf, yf, include, threads);
    }
    const float *dyf = (const float *)dy->data;
    float *dxf = (float *)dx->data;
    if (op == MAX_POOL) return cconv_max_pool2d_backward_f32(s, dyf, xf, dxf, threads);
    if (op == LP_POOL) return cconv_lp_pool2d_backward_f32(s, dyf, xf, dxf, p, threads);
    return cconv_avg_pool2d_backward_f32(s, dyf, dxf, include, threads);
}

static void run_pool(const PoolCase *pc, int op, int is_double, int threads)
{
    cconv_pool2d_shape s;
    s.n = pc->n; s.c = pc->c; s.h = pc->h; s.w = pc->w; s.kh = pc->kh; s.kw = pc->kw;
    s.stride_h = pc->sh; s.stride_w = pc->sw;
    s.pad_h = op == LP_POOL ? 0 : pc->ph;
    s.pad_w = op == LP_POOL ? 0 : pc->pw;
    s.p = pool_out(s.h, s.kh, s.stride_h, s.pad_h, pc->ceil_mode);
    s.q = pool_out(s.w, s.kw, s.stride_w, s.pad_w, pc->ceil_mode);
    const int64_t nx = s.n * s.c * s.h * s.w, ny = s.n * s.c * s.p * s.q;
    char config[160];
    snprintf(config, sizeof config, "%s-pool %s threads=%d", POOL_NAMES[op], pc->name, threads);

    double *x = random_array(nx, op == LP_POOL), *dy = random_array(ny, 0), *y = alloc_d(ny), *dx = alloc_d(nx);
    naive_pool(&s, op, pc->norm_type, x, y, dy, dx);
    Buffer bx = to_buffer(x, nx, is_double), by = to_buffer(NULL, ny, is_double);
    Buffer bdy = to_buffer(dy, ny, is_double), bdx = to_buffer(NULL, nx, is_double);
    expect_ok(config, pool_call(&s, op, pc->norm_type, threads, &bx, &by, NULL, NULL));
    check("y", config, &by, y, ny);
    expect_ok(config, pool_call(&s, op, pc->norm_type, threads, &bx, NULL, &bdy, &bdx));
    check("dx", config, &bdx, dx, nx);
    free(x); free(dy); free(y); free(dx);
    free(bx.data); free(by.data); free(bdy.data); free(bdx.data);
}

/* ------------------------------------------------------------------------------ main */

#if !defined(_WIN32)
static volatile int stop_churn;

/* A workspace and an array buffer, taken and given back. */
static void take_pooled_memory(void)
{
    size_t capacity;
    void *w = cconv_workspace_acquire(4096), *b = cconv_buffer_acquire(1 << 16, &capacity);
    cconv_workspace_release(w);
    cconv_buffer_release(b, capacity);
}

static void *churn_pool(void *unused)
{
    (void)unused;
    while (!stop_churn) take_pooled_memory();
    return NULL;
}

/* Fork up to FORKS times while a thread keeps taking and returning pooled memory; each child takes
 * some too and exits. A child that inherited the lock mid-use would wait forever: alarm() ends
 * it after a few seconds (room for a loaded machine), and the test stops there with a failure. */
static void run_fork_during_pool_use(void)
{
    enum { FORKS = 400 };
    const char *skip = getenv("CCONV_SKIP_FORK_TEST");
    if (skip && *skip && strcmp(skip, "0") != 0) {
        printf("skipping the fork test (CCONV_SKIP_FORK_TEST)\n");
        return;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, churn_pool, NULL) != 0) {
        printf("FAIL fork test: could not start a thread\n");
        failed++;
        return;
    }
    int stuck = 0;
    for (int i = 0; i < FORKS && !stuck; i++) {
        const pid_t pid = fork();
        if (pid == 0) {
            alarm(5);
            take_pooled_memory();
            _exit(0);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) stuck++;
    }
    stop_churn = 1;
    pthread_join(thread, NULL);
    if (stuck) {
        printf("FAIL fork test: a forked child could not take pooled memory\n");
        failed++;
    } else {
        passed++;
    }
}
#endif

int main(void)
{
    static const char *ISAS[] = {"scalar", "avx2", "avx512"};
    static const int THREADS[] = {1, 3};
    const char *forced = getenv("CCONV_ISA");
    const int n_conv = (int)(sizeof CONV_CASES / sizeof CONV_CASES[0]);
    const int n_pool = (int)(sizeof POOL_CASES / sizeof POOL_CASES[0]);

    cconv_gemm_configs_select();
    printf("micro-kernels: %s\n", forced && *forced ? "testing the one CCONV_ISA selects" : "testing every one this CPU runs");
    for (int i = 0; i < 3; i++) {
        if (forced && *forced) {
            if (i > 0) break;
        } else if (cconv_gemm_configs_force(ISAS[i]) != 0) {
            printf("skipping the %s micro-kernels (not built, or not supported here)\n", ISAS[i]);
            continue;
        }
        const char *isa = cconv_gemm_configs_current()->isa;
        for (int t = 0; t < 2; t++)
            for (int d = 0; d < 2; d++)
                for (int c = 0; c < n_conv; c++) run_conv(&CONV_CASES[c], d, THREADS[t], isa);
    }
    run_conv_nested();
    for (int t = 0; t < 2; t++)
        for (int d = 0; d < 2; d++)
            for (int c = 0; c < n_pool; c++)
                for (int op = MAX_POOL; op <= LP_POOL; op++) run_pool(&POOL_CASES[c], op, d, THREADS[t]);
#if !defined(_WIN32)
    run_fork_during_pool_use();
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
