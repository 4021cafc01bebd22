/* test_sizes.c: C-level tests of the kernels' size arithmetic (plain C99, no Python).
 *
 *   - checked_math.h: ckd_add64 / ckd_mul64 (the compilers' builtins where built with them) and
 *     their portable division-based forms, against exact 128-bit arithmetic where the compiler
 *     has it, on the edge values of int64; the saturating size_* helpers; and the workspace
 *     pool's refusal of sizes that saturated.
 *   - Convolutions whose padding, dilation and stride reach 2**31 - 1 while the output stays tiny
 *     (so the answer is cheap, however large the padded input): forward and backward, with every
 *     algorithm that says it applies and with AUTO, against direct loops written here that read
 *     only the taps that hit the image (nothing padded is ever built). Every array is allocated at
 *     its exact size, so AddressSanitizer and Valgrind see any access past it, and UBSan built
 *     with -fno-wrapv sees any signed overflow on the way.
 *   - Shapes outside the kernels' limits (negative or past 2**31 - 1, outputs that read past any
 *     padding, arrays too large for memory), empty ones with huge extents, and the same for
 *     pooling and dense layers: refused with CCONV_EINVAL, or run, without touching the (NULL)
 *     arrays.
 * Prints a FAIL line per failure and "N passed, N failed"; exits 1 on any failure.
 *
 * Build: make -C tests/c run (see the Makefile).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked_math.h"
#include "conv2d.h"
#include "dense.h"
#include "gemm_config.h"
#include "pool2d.h"
#include "workspace.h"

static int passed, failed;

static void expect(int ok, const char *what, long long detail)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s (%lld)\n", what, detail);
    }
}

/* ------------------------------------------------------------------------- checked arithmetic */

static const int64_t EDGES[] = {0, 1, -1, 2, -2, 3, -3, 7, 1000, -1000, INT64_C(2147483647), -INT64_C(2147483648),
                                INT64_C(4294967296), -INT64_C(4294967296), INT64_C(3037000499), INT64_C(3037000500),
                                -INT64_C(3037000499), -INT64_C(3037000500), INT64_MAX / 2, INT64_MIN / 2,
                                INT64_MAX / 2 + 1, INT64_MAX - 1, INT64_MAX, INT64_MIN + 1, INT64_MIN};

static void test_checked_arithmetic(void)
{
    const int count = (int)(sizeof EDGES / sizeof EDGES[0]);
    for (int i = 0; i < count; i++)
        for (int j = 0; j < count; j++) {
            const int64_t a = EDGES[i], b = EDGES[j];
            int64_t sum = 0, sum_p = 0, product = 0, product_p = 0;
            const int add_over = ckd_add64(&sum, a, b), add_over_p = ckd_add64_portable(&sum_p, a, b);
            const int mul_over = ckd_mul64(&product, a, b), mul_over_p = ckd_mul64_portable(&product_p, a, b);
            expect(add_over == add_over_p && (add_over || sum == sum_p), "ckd_add64 agrees with its portable form",
                   (long long)(i * count + j));
            expect(mul_over == mul_over_p && (mul_over || product == product_p),
                   "ckd_mul64 agrees with its portable form", (long long)(i * count + j));
#ifdef __SIZEOF_INT128__
            const __int128 exact_sum = (__int128)a + b, exact_product = (__int128)a * b;
            expect(add_over_p == (exact_sum > INT64_MAX || exact_sum < INT64_MIN) &&
                       (add_over_p || sum_p == (int64_t)exact_sum),
                   "ckd_add64_portable is exact", (long long)(i * count + j));
            expect(mul_over_p == (exact_product > INT64_MAX || exact_product < INT64_MIN) &&
                       (mul_over_p || product_p == (int64_t)exact_product),
                   "ckd_mul64_portable is exact", (long long)(i * count + j));
#endif
        }
    const int64_t big = INT64_C(1) << 40;
    expect(size_mul(big, big) == CCONV_SIZE_OVERFLOW, "size_mul saturates", 0);
    expect(size_mul(size_mul(big, big), 0) == CCONV_SIZE_OVERFLOW, "an overflow sticks through a product by 0", 0);
    expect(size_add(CCONV_SIZE_OVERFLOW, -5) == CCONV_SIZE_OVERFLOW, "size_add of a negative is not a size", 0);
    expect(size_add(INT64_MAX - 3, 3) == CCONV_SIZE_OVERFLOW, "size_add reaching the sentinel saturates", 0);
    expect(size_round_up(INT64_MAX - 10, 16) == CCONV_SIZE_OVERFLOW, "size_round_up saturates", 0);
    expect(size_round_up(33, 16) == 48 && size_round_up(0, 16) == 0, "size_round_up rounds", 0);
    expect(size_product(0, big, big, big) == 0 && size_product(big, big, big, 0) == 0,
           "an empty axis makes an empty array however large the others", 0);
    expect(size_product(big, big, 1, 1) == CCONV_SIZE_OVERFLOW, "size_product saturates", 0);
    expect(size_product(2, 3, 4, 5) == 120, "size_product multiplies", 0);
    expect(!size_fits(CCONV_SIZE_OVERFLOW, 1) && !size_fits(-1, 1) && !size_fits(INT64_MAX / 4, 8) && size_fits(16, 8),
           "size_fits", 0);
    expect(cconv_workspace_acquire_elems(CCONV_SIZE_OVERFLOW, 4) == NULL, "a saturated workspace is refused", 0);
    expect(cconv_workspace_acquire_elems(-1, 4) == NULL, "a negative workspace is refused", 0);
    expect(cconv_workspace_acquire_elems(INT64_MAX / 2, 8) == NULL, "a workspace past the address space is refused", 0);
    void *small = cconv_workspace_acquire_elems(10, 8);
    expect(small != NULL, "a small workspace is given", 0);
    cconv_workspace_release(small);
}

/* --------------------------------------------------------------------- huge, cheap convolutions */

#define BIG INT64_C(2147483647)

static uint64_t rng_state = 2024;

static uint64_t next_random(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng_state >> 11;
}

/* Uniform in [lo, hi] (hi - lo < 2**53). */
static int64_t draw(int64_t lo, int64_t hi) { return lo + (int64_t)(next_random() % (uint64_t)(hi - lo + 1)); }

/* One axis of a convolution with a tiny output: (stride, dilation, taps, input size, padding
 * before, outputs), where the padding after (implicit) is at most BIG. Half the time some tap
 * meets the image; strides and dilations are small or reach BIG. */
typedef struct {
    int64_t stride, dil, taps, size, pad, outputs;
} Axis;

static int64_t huge_or_small(void)
{
    switch (draw(0, 3)) {
    case 0: return 1;
    case 1: return draw(2, 5);
    case 2: return draw(BIG / 2, BIG);
    default: return draw(6, 3000);
    }
}

/* With `winograd`, an axis the Winograd algorithm runs: three taps at stride 1. */
static Axis draw_axis(int winograd)
{
    Axis a;
    int64_t span;
    do {  /* until some padding of at most BIG on each side gives the outputs */
        a.stride = winograd ? 1 : huge_or_small();
        a.dil = huge_or_small();
        a.taps = winograd ? 3 : draw(1, 3);
        a.size = draw(1, 4);
        a.outputs = draw(1, 3);
        span = (a.outputs - 1) * a.stride + (a.taps - 1) * a.dil + 1;  /* < 2**34 */
    } while (span > a.size + 2 * BIG);
    const int64_t lowest = span - a.size - BIG > 0 ? span - a.size - BIG : 0;     /* the padding after <= BIG */
    if (draw(0, 1)) {  /* output o, tap t on image row i */
        const int64_t o = draw(0, a.outputs - 1), t = draw(0, a.taps - 1), i = draw(0, a.size - 1);
        a.pad = o * a.stride + t * a.dil - i;
        if (a.pad >= lowest && a.pad <= BIG) return a;
    }
    a.pad = draw(lowest, BIG > lowest ? BIG : lowest);
    return a;
}

/* The input pixel index that output o's tap t reads along an axis, or -1 for padding. */
static int64_t axis_tap(const Axis *a, int64_t o, int64_t t)
{
    const int64_t at = o * a->stride + t * a->dil - a->pad;
    return at >= 0 && at < a->size ? at : -1;
}

/* y, dx, dw, db of a convolution by direct loops over the taps (no padded copy). */
static void direct_conv(const cconv_conv2d_shape *sh, const Axis *ah, const Axis *aw, const double *x,
                        const double *w, const double *dy, double *y, double *dx, double *dw, double *db)
{
    const int64_t cg = sh->c / sh->groups, kg = sh->k / sh->groups;
    memset(y, 0, (size_t)(sh->n * sh->k * sh->p * sh->q) * sizeof(double));
    memset(dx, 0, (size_t)(sh->n * sh->c * sh->h * sh->w) * sizeof(double));
    memset(dw, 0, (size_t)(sh->k * cg * sh->r * sh->s) * sizeof(double));
    memset(db, 0, (size_t)sh->k * sizeof(double));
    for (int64_t n = 0; n < sh->n; n++)
        for (int64_t k = 0; k < sh->k; k++)
            for (int64_t oh = 0; oh < sh->p; oh++)
                for (int64_t ow = 0; ow < sh->q; ow++) {
                    const int64_t yi = ((n * sh->k + k) * sh->p + oh) * sh->q + ow;
                    db[k] += dy[yi];
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t r = 0; r < sh->r; r++)
                            for (int64_t s = 0; s < sh->s; s++) {
                                const int64_t ih = axis_tap(ah, oh, r), iw = axis_tap(aw, ow, s);
                                if (ih < 0 || iw < 0) continue;
                                const int64_t xi = ((n * sh->c + k / kg * cg + c) * sh->h + ih) * sh->w + iw;
                                const int64_t wi = ((k * cg + c) * sh->r + r) * sh->s + s;
                                y[yi] += w[wi] * x[xi];
                                dx[xi] += w[wi] * dy[yi];
                                dw[wi] += x[xi] * dy[yi];
                            }
                }
}

static double *random_doubles(int64_t count)
{
    double *a = (double *)malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
    if (!a) exit(2);
    for (int64_t i = 0; i < count; i++) a[i] = (double)(next_random() % 2001) / 1000.0 - 1.0;
    return a;
}

static int close_to(const double *got, const double *want, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-10 * (1.0 + fabs(want[i])))) return 0;
    return 1;
}

/* How many passes of the drawn geometries each algorithm ran (it did not refuse them). */
static int runs[CCONV_CONV2D_ALGORITHM_COUNT];

static void run_huge_case(int index)
{
    const int winograd = draw(0, 3) == 0;  /* a quarter of the geometries are 3x3, stride 1, one group */
    const Axis ah = draw_axis(winograd), aw = draw_axis(winograd);
    const int64_t groups = winograd ? 1 : draw(1, 3), depthwise = draw(0, 2) == 0;
    cconv_conv2d_shape sh;
    memset(&sh, 0, sizeof sh);
    sh.n = draw(1, 2);
    sh.groups = groups;
    sh.c = groups * (depthwise ? 1 : draw(1, 3));
    sh.k = groups * draw(1, 3);
    sh.h = ah.size, sh.w = aw.size, sh.r = ah.taps, sh.s = aw.taps;
    sh.stride_h = ah.stride, sh.stride_w = aw.stride, sh.dil_h = ah.dil, sh.dil_w = aw.dil;
    sh.pad_top = ah.pad, sh.pad_left = aw.pad, sh.p = ah.outputs, sh.q = aw.outputs;
    const char *invalid = cconv_conv2d_shape_invalid(&sh);
    expect(invalid == NULL, "a drawn huge geometry is valid", index);
    if (invalid) {
        printf("  %s\n", invalid);
        return;
    }
    const int64_t x_size = sh.n * sh.c * sh.h * sh.w, w_size = sh.k * (sh.c / groups) * sh.r * sh.s;
    const int64_t y_size = sh.n * sh.k * sh.p * sh.q;
    double *x = random_doubles(x_size), *w = random_doubles(w_size), *dy = random_doubles(y_size);
    double *want_y = random_doubles(y_size), *want_dx = random_doubles(x_size), *want_dw = random_doubles(w_size);
    double *want_db = random_doubles(sh.k);
    double *y = random_doubles(y_size), *dx = random_doubles(x_size), *dw = random_doubles(w_size);
    double *db = random_doubles(sh.k);
    direct_conv(&sh, &ah, &aw, x, w, dy, want_y, want_dx, want_dw, want_db);
    for (int algorithm = CCONV_CONV2D_AUTO; algorithm < CCONV_CONV2D_ALGORITHM_COUNT; algorithm++) {
        cconv_conv2d_options options;
        memset(&options, 0, sizeof options);
        options.threads = 1 + index % 2;
        for (int pass = 0; pass < CCONV_CONV2D_PASS_COUNT; pass++) options.algorithm[pass] = CCONV_CONV2D_GEMM;
        for (int pass = 0; pass < CCONV_CONV2D_PASS_COUNT; pass++) {
            const int refused = cconv_conv2d_unsupported(&sh, (cconv_conv2d_pass)pass, algorithm) != NULL;
            options.algorithm[pass] = (cconv_conv2d_algorithm)algorithm;
            runs[algorithm] += !refused;
            if (pass == CCONV_CONV2D_FORWARD) {
                const int status = cconv_conv2d_forward_f64(&sh, x, w, NULL, y, &options);
                expect(refused ? status == CCONV_EINVAL : status == CCONV_OK && close_to(y, want_y, y_size),
                       "forward of a huge, cheap geometry", index * 10 + algorithm);
            } else {
                const int status = cconv_conv2d_backward_f64(&sh, dy, NULL, x, w, dx, dw, db, &options);
                const int right = pass == CCONV_CONV2D_GRAD_INPUT
                                      ? close_to(dx, want_dx, x_size)
                                      : close_to(dw, want_dw, w_size) && close_to(db, want_db, sh.k);
                expect(refused ? status == CCONV_EINVAL : status == CCONV_OK && right,
                       pass == CCONV_CONV2D_GRAD_INPUT ? "grad_input of a huge, cheap geometry"
                                                       : "grad_weight of a huge, cheap geometry",
                       index * 10 + algorithm);
            }
            options.algorithm[pass] = CCONV_CONV2D_GEMM;
        }
    }
    free(x), free(w), free(dy), free(want_y), free(want_dx), free(want_dw), free(want_db);
    free(y), free(dx), free(dw), free(db);
}

/* The reproducer: 641 channels, a 3x2 filter, padding and dilation near 2**31 along
 * rows and 6700416 / 13400832 along columns, a 1x1 output; and its variant whose middle filter
 * row meets the pixel. AUTO runs them; the implicit GEMM refuses them. */
static void test_reproducer(void)
{
    for (int variant = 0; variant < 2; variant++) {
        cconv_conv2d_shape sh = {1, 641, 1, 1, 8, 3, 2, 1, 1, 1, BIG, 13400832, BIG, 6700416, 1, 1};
        if (variant) sh.s = 1, sh.dil_w = 1, sh.pad_left = 0;
        const int64_t w_size = 8 * 641 * 3 * sh.s;
        double *x = random_doubles(641), *w = random_doubles(w_size), *dy = random_doubles(8);
        double *y = random_doubles(8), *dx = random_doubles(641), *dw = random_doubles(w_size), *db = random_doubles(8);
        cconv_conv2d_options options;
        memset(&options, 0, sizeof options);
        options.threads = 2;
        expect(cconv_conv2d_forward_f64(&sh, x, w, NULL, y, &options) == CCONV_OK, "the reproducer runs", variant);
        int right = 1;
        for (int k = 0; k < 8; k++) {  /* only filter row 1, column 0 meets the pixel, in the variant */
            double want = 0;
            for (int c = 0; variant && c < 641; c++) want += w[(k * 641 + c) * 3 + 1] * x[c];
            right &= fabs(y[k] - want) <= 1e-10 * (1 + fabs(want));
        }
        expect(right, "the reproducer's output", variant);
        expect(cconv_conv2d_backward_f64(&sh, dy, NULL, x, w, dx, dw, db, &options) == CCONV_OK,
               "the reproducer's backward runs", variant);
        options.algorithm[CCONV_CONV2D_FORWARD] = CCONV_CONV2D_IMPLICIT_GEMM;
        expect(cconv_conv2d_forward_f64(&sh, x, w, NULL, y, &options) == CCONV_EINVAL,
               "the implicit GEMM refuses the reproducer", variant);
        free(x), free(w), free(dy), free(y), free(dx), free(dw), free(db);
    }
}

/* ------------------------------------------------------------------------------ refusals */

static void test_invalid_and_empty_shapes(void)
{
    const cconv_conv2d_shape good = {1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 5, 5};
    cconv_conv2d_options options;
    memset(&options, 0, sizeof options);
    options.threads = 1;
    expect(cconv_conv2d_shape_invalid(&good) == NULL, "a plain shape is valid", 0);
    for (int i = 0; i < 12; i++) {
        cconv_conv2d_shape sh = good;
        switch (i) {
        case 0: sh.n = -1; break;
        case 1: sh.c = BIG + 1; break;
        case 2: sh.pad_top = -1; break;
        case 3: sh.pad_left = BIG + 1; break;
        case 4: sh.stride_h = 0; break;
        case 5: sh.dil_w = BIG + 1; break;
        case 6: sh.groups = 2, sh.k = 3; break;                   /* groups must divide k */
        case 7: sh.p = 4 * BIG; break;                            /* reads past any padding */
        case 8: sh.q = INT64_MAX; break;                          /* (q - 1)*stride overflows */
        case 9: sh.stride_h = BIG, sh.p = 3; break;               /* the third row starts past BIG */
        case 10: sh.n = BIG, sh.c = BIG, sh.h = BIG, sh.w = BIG, sh.p = sh.q = BIG; break;  /* 2**124 */
        default: sh.k = BIG, sh.c = BIG, sh.r = BIG, sh.s = BIG, sh.pad_top = sh.pad_left = BIG; break;
        }
        expect(cconv_conv2d_shape_invalid(&sh) != NULL, "an invalid shape is refused", i);
        expect(cconv_conv2d_forward_f32(&sh, NULL, NULL, NULL, NULL, &options) == CCONV_EINVAL,
               "the forward refuses an invalid shape", i);
        expect(cconv_conv2d_backward_f64(&sh, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &options) == CCONV_EINVAL,
               "the backward refuses an invalid shape", i);
        (void)cconv_conv2d_auto(&sh, CCONV_CONV2D_FORWARD, 4);  /* only must not overflow (UBSan) */
    }
    /* empty arrays whose other extents are huge: nothing to compute, nothing read */
    for (int i = 0; i < 3; i++) {
        /* no images, with the largest input and output planes; no filters, with the largest ones
         * (C*R*S far past an int64); no images, with a stride that skips past the input */
        cconv_conv2d_shape sh = {0, BIG, BIG, BIG, 1, 1, 1, 1, 1, 1, 1, 1, BIG, BIG, 3 * BIG, 3 * BIG};
        if (i == 1) sh.n = 1, sh.h = sh.w = 1, sh.k = 0, sh.r = sh.s = BIG, sh.p = sh.q = BIG;
        if (i == 2) sh.c = sh.h = sh.w = 1, sh.stride_h = sh.stride_w = BIG, sh.p = sh.q = 3;
        const char *invalid = cconv_conv2d_shape_invalid(&sh);
        expect(invalid == NULL, "an empty shape with huge extents is valid", i);
        if (invalid) printf("  %s\n", invalid);
        for (int algorithm = CCONV_CONV2D_AUTO; algorithm < CCONV_CONV2D_ALGORITHM_COUNT; algorithm++)
            for (int pass = 0; pass < CCONV_CONV2D_PASS_COUNT; pass++)
                (void)cconv_conv2d_unsupported(&sh, (cconv_conv2d_pass)pass, algorithm);  /* UBSan */
        (void)cconv_conv2d_auto(&sh, CCONV_CONV2D_GRAD_WEIGHT, 8);
        const int forward = cconv_conv2d_forward_f32(&sh, NULL, NULL, NULL, NULL, &options);
        const int backward = cconv_conv2d_backward_f32(&sh, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &options);
        expect(forward == CCONV_OK && backward == CCONV_OK, "an empty convolution runs without reading anything", i);
    }
    /* pooling */
    const cconv_pool2d_shape pool_good = {1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 2, 2};
    float px[16], py[4];
    for (int i = 0; i < 16; i++) px[i] = (float)i;
    expect(cconv_max_pool2d_forward_f32(&pool_good, px, py, 1) == CCONV_OK && py[3] == 15.0f,
           "a plain pooling runs", 0);
    for (int i = 0; i < 5; i++) {
        cconv_pool2d_shape s = pool_good;
        switch (i) {
        case 0: s.kh = 0; break;
        case 1: s.pad_w = -1; break;
        case 2: s.p = 3; break;  /* the third window would start past the input */
        case 3: s.n = BIG, s.c = BIG, s.h = BIG, s.w = BIG; break;
        default: s.stride_w = BIG + 1; break;
        }
        expect(cconv_avg_pool2d_forward_f32(&s, NULL, NULL, 1, 1) == CCONV_EINVAL &&
                   cconv_lp_pool2d_backward_f64(&s, NULL, NULL, NULL, 2.0, 1) == CCONV_EINVAL,
               "pooling refuses an invalid shape", i);
    }
    const cconv_pool2d_shape pool_empty = {0, BIG, BIG, BIG, BIG, BIG, 1, 1, 0, 0, 1, 1};
    expect(cconv_max_pool2d_forward_f64(&pool_empty, NULL, NULL, 1) == CCONV_OK, "an empty pooling runs", 0);
    /* dense */
    expect(cconv_dense_forward_f32(INT64_C(1) << 40, INT64_C(1) << 40, 1, NULL, NULL, NULL, NULL, 0, 1) == CCONV_EINVAL,
           "dense refuses arrays past memory", 0);
    expect(cconv_dense_backward_f64(-1, 2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 1) == CCONV_EINVAL,
           "dense refuses a negative size", 0);
}

int main(void)
{
    const char *quick = getenv("CCONV_QUICK_SWEEP");
    const int cases = quick && *quick == '1' ? 40 : 200;
    cconv_gemm_configs_select();
    test_checked_arithmetic();
    test_reproducer();
    test_invalid_and_empty_shapes();
    for (int i = 0; i < cases; i++) run_huge_case(i);
    printf("passes of %d huge, cheap geometries run:", cases);
    for (int a = CCONV_CONV2D_AUTO; a < CCONV_CONV2D_ALGORITHM_COUNT; a++) {
        printf(" %s %d", cconv_conv2d_algorithm_name((cconv_conv2d_algorithm)a), runs[a]);
        if (a != CCONV_CONV2D_POINTWISE) expect(runs[a] > 0, "every algorithm runs some drawn geometry", a);
    }
    printf("\n");
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
