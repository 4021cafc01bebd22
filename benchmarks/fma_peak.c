/* fma_peak.c: measures this machine's single-precision FMA peak (GFLOP/s) on `threads`
 * threads by timing chains of independent FMAs, with the widest vectors the CPU runs
 * (AVX-512 or AVX2 on x86-64 with GCC/Clang, detected at run time; else plain C). */
#include <time.h>

#include "cpu_features.h"
#include "parallel.h"

#define CHAINS 16      /* independent FMA chains: enough to cover latency x pipes */
#define AVX2_CHAINS 12 /* AVX2 has 16 vector registers: 16 chains plus 2 constants would spill */

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_PEAK 1

__attribute__((target("avx512f"))) static double fma_loop_avx512(long iterations)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; ++i) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iterations; ++it)
        for (int i = 0; i < CHAINS; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 sum = acc[0];
    for (int i = 1; i < CHAINS; ++i) sum = _mm512_add_ps(sum, acc[i]);
    return 2.0 * 16 * CHAINS * (double)iterations + (_mm512_reduce_add_ps(sum) > 1e30f ? 1 : 0);
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iterations)
{
    __m256 acc[AVX2_CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < AVX2_CHAINS; ++i) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iterations; ++it)
        for (int i = 0; i < AVX2_CHAINS; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float out[8];
    __m256 sum = acc[0];
    for (int i = 1; i < AVX2_CHAINS; ++i) sum = _mm256_add_ps(sum, acc[i]);
    _mm256_storeu_ps(out, sum);
    return 2.0 * 8 * AVX2_CHAINS * (double)iterations + (out[0] > 1e30f ? 1 : 0);
}
#endif

static double fma_loop_plain(long iterations)
{
    float acc[8] = {0};
    for (long it = 0; it < iterations; ++it)
        for (int i = 0; i < 8; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
    return 2.0 * 8 * (double)iterations + (acc[0] > 1e30f ? 1 : 0);
}

static double fma_loop(long iterations)
{
#ifdef HAVE_X86_PEAK
    if (cconv_cpu_has_avx512()) return fma_loop_avx512(iterations);
    if (cconv_cpu_has_avx2_fma()) return fma_loop_avx2(iterations);
#endif
    return fma_loop_plain(iterations);
}

static double seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One measurement: `iterations` rounds of the FMA chains on every thread, in GFLOP/s. */
static double fma_rate_gflops(int threads, long iterations)
{
    double flops = 0, t0 = seconds();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    flops += fma_loop(iterations);
    return flops / (seconds() - t0) * 1e-9;
}

double fma_peak_gflops(int threads, int runs)
{
    double best = 0;
    for (int rep = 0; rep < runs; ++rep) {  /* the best of several: wide units warm up (clock, power gating) */
        const double rate = fma_rate_gflops(threads, 10000000);
        if (rate > best) best = rate;
    }
    return best;
}
