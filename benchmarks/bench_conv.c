/* bench_conv.c: times cconv's convolution kernels from C (no Python), NNPACK-style.
 *
 *   make -C benchmarks && ./benchmarks/bench_conv --threads 2 --iterations 15
 *   ./benchmarks/bench_conv --batch 32 --channels 256 --size 14 --filters 256 --kernel 3 --pad 1
 *   ./benchmarks/bench_conv --depthwise --threads 2
 *
 * With no shape given it runs the standard table (the layer shapes of `python -m cconv.bench conv`). For each shape it
 * prints the median time of forward, backward-data and backward-weight, their GFLOP/s
 * (counting only real, non-padding multiply-adds) and the percentage of this machine's FMA
 * peak with the same thread count. The peak is measured again right after each pass (the best
 * of three runs of FMA chains, as the header's), so that a slow spell of a shared machine,
 * which lasts seconds, lowers both sides of the ratio rather than the kernels' side alone.
 * CCONV_ISA picks the kernels; --algorithm NAME (gemm, implicit_gemm, pointwise, depthwise, winograd;
 * default auto) forces one for every pass, and shapes it cannot run print "n/a". --depthwise runs the
 * depthwise layers instead (groups = C), which are bound by memory, not by FMAs: each also prints
 * the forward's bandwidth (input, output and weights, each moved once) beside this machine's copy
 * bandwidth with the same thread count, measured right after it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv2d.h"
#include "gemm_config.h"
#include "parallel.h"

double fma_peak_gflops(int threads, int runs);  /* fma_peak.c: the best of `runs` runs */

typedef struct {
    const char *name;
    int n, c, h, w, k, r, s, stride, pad;
    int groups;  /* 0: 1 */
} bench_shape;

static const bench_shape standard_shapes[] = {
    {"lenet1", 64, 1, 28, 28, 6, 5, 5, 1, 0, 1},        {"lenet2", 64, 6, 14, 14, 16, 5, 5, 1, 0, 1},
    {"mnist_a", 64, 1, 28, 28, 32, 3, 3, 1, 1, 1},      {"mnist_b", 64, 32, 14, 14, 64, 3, 3, 1, 1, 1},
    {"cifar_a", 64, 3, 32, 32, 64, 3, 3, 1, 1, 1},      {"cifar_b", 64, 64, 32, 32, 64, 3, 3, 1, 1, 1},
    {"cifar_c", 64, 128, 16, 16, 128, 3, 3, 1, 1, 1},   {"resnet_l3", 32, 256, 14, 14, 256, 3, 3, 1, 1, 1},
    {"resnet_s2", 32, 128, 28, 28, 256, 3, 3, 2, 1, 1}, {"pointwise", 32, 256, 14, 14, 512, 1, 1, 1, 0, 1},
    {"batch1_vgg", 1, 64, 56, 56, 64, 3, 3, 1, 1, 1},
};

static const bench_shape depthwise_shapes[] = {
    {"dw3_s1", 64, 96, 32, 32, 96, 3, 3, 1, 1, 96},       {"dw3_s2", 64, 144, 32, 32, 144, 3, 3, 2, 1, 144},
    {"dw5_s1", 32, 240, 14, 14, 240, 5, 5, 1, 2, 240},    {"dw3_s2_b1", 1, 32, 112, 112, 32, 3, 3, 2, 1, 32},
    {"mb_dw3_s1_b1", 1, 192, 28, 28, 192, 3, 3, 1, 1, 192},
};

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Multiply-adds that touch real (non-padding) input pixels. */
static double real_macs(const cconv_conv2d_shape *sh)
{
    double macs = 0;
    for (int64_t oh = 0; oh < sh->p; ++oh)
        for (int64_t r = 0; r < sh->r; ++r) {
            int64_t ih = oh * sh->stride_h + r * sh->dil_h - sh->pad_top;
            if (ih < 0 || ih >= sh->h) continue;
            for (int64_t ow = 0; ow < sh->q; ++ow)
                for (int64_t s = 0; s < sh->s; ++s) {
                    int64_t iw = ow * sh->stride_w + s * sh->dil_w - sh->pad_left;
                    if (iw >= 0 && iw < sh->w) macs += 1;
                }
        }
    return macs * (double)sh->n * (double)sh->k * (double)(sh->c / sh->groups);
}

/* The bytes per second of copying `bytes` (half read, half written) with `threads` threads, each
 * copying its share: the best of `runs` runs, as the FMA peak is. */
static double copy_bandwidth(size_t bytes, int threads, int runs)
{
    const int64_t half = (int64_t)(bytes / 2), chunk = (half + threads - 1) / threads;
    char *src = (char *)malloc((size_t)half), *dst = (char *)malloc((size_t)half);
    double times[15];
    memset(src, 1, (size_t)half);
    memset(dst, 2, (size_t)half);
    if (runs > 15) runs = 15;
    for (int i = -1; i < runs; ++i) {
        const double t0 = now_seconds();
        int part;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (part = 0; part < threads; ++part) {
            const int64_t start = part * chunk, end = start + chunk < half ? start + chunk : half;
            if (end > start) memcpy(dst + start, src + start, (size_t)(end - start));
        }
        if (i >= 0) times[i] = now_seconds() - t0;
    }
    qsort(times, (size_t)runs, sizeof(double), compare_doubles);
    free(src);
    free(dst);
    return (double)(2 * half) / times[0];
}

static float *random_array(int64_t count)
{
    float *a = (float *)malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    for (int64_t i = 0; i < count; ++i) a[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return a;
}

enum { FORWARD, BACKWARD_DATA, BACKWARD_WEIGHT, N_PASSES };
static const char *pass_names[N_PASSES] = {"fwd", "bwd_data", "bwd_weight"};

/* The median seconds of `iterations` calls of one pass (after two warm-up calls). */
static double time_pass(int pass, const cconv_conv2d_shape *sh, const float *x, const float *w,
                        float *y, float *dx, float *dw, const cconv_conv2d_options *options, int iterations)
{
    double times[101];
    if (iterations > 101) iterations = 101;
    for (int i = -2; i < iterations; ++i) {
        double t0 = now_seconds();
        if (pass == FORWARD) cconv_conv2d_forward_f32(sh, x, w, NULL, y, options);
        else if (pass == BACKWARD_DATA) cconv_conv2d_backward_f32(sh, y, NULL, x, w, dx, NULL, NULL, options);
        else cconv_conv2d_backward_f32(sh, y, NULL, x, w, NULL, dw, NULL, options);
        if (i >= 0) times[i] = now_seconds() - t0;
    }
    qsort(times, (size_t)iterations, sizeof(double), compare_doubles);
    return times[iterations / 2];
}

static void run_shape(const bench_shape *b, int threads, int iterations, cconv_conv2d_algorithm algorithm)
{
    const cconv_conv2d_options options = {CCONV_ACTIVATION_NONE, threads, {algorithm, algorithm, algorithm}};
    const int groups = b->groups > 0 ? b->groups : 1;
    cconv_conv2d_shape sh = {b->n, b->c, b->h, b->w, b->k, b->r, b->s, groups, b->stride, b->stride, 1, 1,
                             b->pad, b->pad, 0, 0};
    sh.p = (b->h + 2 * b->pad - b->r) / b->stride + 1;
    sh.q = (b->w + 2 * b->pad - b->s) / b->stride + 1;
    const int64_t nx = sh.n * sh.c * sh.h * sh.w, nw = sh.k * (sh.c / groups) * sh.r * sh.s;
    const int64_t ny = sh.n * sh.k * sh.p * sh.q;
    float *x = random_array(nx), *w = random_array(nw), *y = random_array(ny), *dx = random_array(nx);
    float *dw = random_array(nw);
    double forward_seconds = 0;
    const double gflop = 2.0 * real_macs(&sh) * 1e-9;
    printf("%-11s", b->name);
    for (int pass = 0; pass < N_PASSES; ++pass) {
        if (cconv_conv2d_unsupported(&sh, (cconv_conv2d_pass)pass, algorithm)) {
            printf("  %-32s", "n/a");
            continue;
        }
        const double t = time_pass(pass, &sh, x, w, y, dx, dw, &options, iterations);
        if (pass == FORWARD) forward_seconds = t;
        const double peak = fma_peak_gflops(threads, 3);  /* now, beside this pass */
        printf("  %8.3f ms %6.1f GF/s %3.0f%%", t * 1e3, gflop / t, 100.0 * gflop / t / peak);
    }
    if (b->groups > 1 && forward_seconds > 0) {  /* a depthwise layer: the forward against copying */
        const double bytes = (double)(nx + ny + nw) * sizeof(float);
        const double copy = copy_bandwidth((size_t)bytes, threads, 7);
        printf("  fwd %6.2f GB/s = %3.0f%% of copy %6.2f GB/s", bytes / forward_seconds * 1e-9,
               100.0 * bytes / forward_seconds / copy, copy * 1e-9);
    }
    printf("\n");
    free(x); free(w); free(y); free(dx); free(dw);
}

static int int_arg(int argc, char **argv, const char *name, int fallback)
{
    for (int i = 1; i + 1 < argc; ++i)
        if (!strcmp(argv[i], name)) return atoi(argv[i + 1]);
    return fallback;
}

static int has_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; ++i)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

/* The algorithm --algorithm names (default auto); exits on an unknown name. */
static cconv_conv2d_algorithm algorithm_arg(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; ++i) {
        if (strcmp(argv[i], "--algorithm")) continue;
        for (int a = 0; cconv_conv2d_algorithm_name((cconv_conv2d_algorithm)a); ++a)
            if (!strcmp(argv[i + 1], cconv_conv2d_algorithm_name((cconv_conv2d_algorithm)a)))
                return (cconv_conv2d_algorithm)a;
        fprintf(stderr, "unknown --algorithm %s\n", argv[i + 1]);
        exit(2);
    }
    return CCONV_CONV2D_AUTO;
}

int main(int argc, char **argv)
{
    cconv_gemm_configs_select();
    const cconv_conv2d_algorithm algorithm = algorithm_arg(argc, argv);
    const int threads = int_arg(argc, argv, "--threads", cconv_max_threads());
    const int iterations = int_arg(argc, argv, "--iterations", 11);
    const double peak = fma_peak_gflops(threads, 6);
    printf("cconv bench_conv: float32, %d thread(s), kernels %s, algorithm %s, OpenMP %d, measured FMA peak "
           "%.1f GFLOP/s\n", threads, cconv_gemm_configs_current()->isa, cconv_conv2d_algorithm_name(algorithm),
           cconv_openmp_version(), peak);
    printf("%-11s", "shape");
    for (int pass = 0; pass < N_PASSES; ++pass) printf("  %-32s", pass_names[pass]);
    printf("\n");
    if (int_arg(argc, argv, "--batch", 0) > 0) {
        bench_shape b = {"custom", int_arg(argc, argv, "--batch", 1), int_arg(argc, argv, "--channels", 1),
                         int_arg(argc, argv, "--size", 28), int_arg(argc, argv, "--size", 28),
                         int_arg(argc, argv, "--filters", 1), int_arg(argc, argv, "--kernel", 3),
                         int_arg(argc, argv, "--kernel", 3), int_arg(argc, argv, "--stride", 1),
                         int_arg(argc, argv, "--pad", 0), int_arg(argc, argv, "--groups", 1)};
        run_shape(&b, threads, iterations, algorithm);
        return 0;
    }
    if (has_flag(argc, argv, "--depthwise"))
        for (size_t i = 0; i < sizeof depthwise_shapes / sizeof depthwise_shapes[0]; ++i)
            run_shape(&depthwise_shapes[i], threads, iterations, algorithm);
    else
        for (size_t i = 0; i < sizeof standard_shapes / sizeof standard_shapes[0]; ++i)
            run_shape(&standard_shapes[i], threads, iterations, algorithm);
    return 0;
}
