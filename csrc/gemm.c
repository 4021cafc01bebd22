/* gemm.c: the portable (scalar) micro-kernels and packing transposes, and the run-time
 * selection of the SIMD ones. The scalar kernels are plain C that compilers auto-vectorize for the
 * baseline ISA; they are also the reference the SIMD kernels are tested against. */
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"

#define SCALAR_MR 4
#define SCALAR_NR 8

/* One generic body per element type and operand layout: accumulate the MR x NR tile (A element
 * (k, i) is A_ELEM(k, i), row k of B starts at B_ROW(k)), then store its valid part. */
#define DEFINE_SCALAR_UKERNEL(NAME, REAL, AB_ARGS, A_ELEM, B_ROW, PROLOGUE, NEXT_K)           \
    static void NAME(int64_t kc, AB_ARGS(REAL), REAL *c, int64_t ldc, int64_t m, int64_t n,   \
                     int accumulate, const REAL *bias, int relu)                              \
    {                                                                                         \
        REAL acc[SCALAR_MR][SCALAR_NR];                                                       \
        PROLOGUE                                                                              \
        memset(acc, 0, sizeof acc);                                                           \
        for (int64_t k = 0; k < kc; ++k) {                                                    \
            const REAL *bk = B_ROW(k);                                                        \
            for (int i = 0; i < SCALAR_MR; ++i)                                               \
                for (int j = 0; j < SCALAR_NR; ++j) acc[i][j] += A_ELEM(k, i) * bk[j];        \
            NEXT_K                                                                            \
        }                                                                                     \
        for (int64_t i = 0; i < m; ++i) {                                                     \
            REAL *ci = c + i * ldc;                                                           \
            for (int64_t j = 0; j < n; ++j) {                                                 \
                const REAL v = accumulate ? ci[j] + acc[i][j] : bias ? bias[i] + acc[i][j] : acc[i][j]; \
                ci[j] = relu && v < 0 ? 0 : v;                                                \
            }                                                                                 \
        }                                                                                     \
    }
#define PANEL_ARGS(REAL) const REAL *a, const REAL *b
#define B_OFFSET_ARGS(REAL) const REAL *a, const REAL *b, const int64_t *boff, int64_t run, int64_t step
#define A_OFFSET_ARGS(REAL) const REAL *a, const int64_t *aoff, int64_t run, int64_t step, const REAL *b
#define PANEL_A(k, i) a[(k) * SCALAR_MR + (i)]
#define OFFSET_A(k, i) a[aoff[i] + (k)]
#define PANEL_B(k) (b + (k) * SCALAR_NR)
#define OFFSET_B(k) (b + boff[k])
#define NOTHING
/* A scalar tile row is 8 elements, 32 or 64 bytes: no shorter run holds a whole 64-byte vector,
 * so gemm.h's runs are never shorter than the row here, and a row is one contiguous run. */
#define ONE_RUN (void)run; (void)step;
/* A's rows in runs (gemm.h): at the end of each run, move A to the next one (k counts within the run). */
#define A_RUNS int64_t within = 0;
#define NEXT_A_RUN                  \
    if (++within == run) {          \
        within = 0;                 \
        a += step - run;            \
    }

DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f32, float, PANEL_ARGS, PANEL_A, PANEL_B, NOTHING, NOTHING)
DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f64, double, PANEL_ARGS, PANEL_A, PANEL_B, NOTHING, NOTHING)
DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f32_off, float, B_OFFSET_ARGS, PANEL_A, OFFSET_B, ONE_RUN, NOTHING)
DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f64_off, double, B_OFFSET_ARGS, PANEL_A, OFFSET_B, ONE_RUN, NOTHING)
DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f32_aoff, float, A_OFFSET_ARGS, OFFSET_A, PANEL_B, A_RUNS, NEXT_A_RUN)
DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f64_aoff, double, A_OFFSET_ARGS, OFFSET_A, PANEL_B, A_RUNS, NEXT_A_RUN)

#define DEFINE_SCALAR_TRANSPOSE(NAME, REAL)                                                       \
    static void NAME(const REAL *src, const REAL *mask, int64_t lds, int64_t rows, int64_t cols,   \
                     int64_t run, int64_t period, REAL *dst, int64_t ldd, REAL *sums)              \
    {                                                                                              \
        int64_t base = 0, within = 0; /* destination column base + within (gemm.h's runs) */       \
        for (int64_t j = 0; j < cols; ++j) {                                                       \
            REAL *d = dst + (base + within) * ldd;                                                 \
            for (int64_t i = 0; i < rows; ++i) {                                                   \
                const REAL v = src[i * lds + j];                                                   \
                d[i] = !mask || !(mask[i * lds + j] <= 0) ? v : 0;                                 \
                if (sums) sums[i] += d[i];                                                         \
            }                                                                                      \
            if (++within == run) {                                                                 \
                within = 0;                                                                        \
                base += period;                                                                    \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_SCALAR_TRANSPOSE(transpose_scalar_f32, float)
DEFINE_SCALAR_TRANSPOSE(transpose_scalar_f64, double)

const cconv_gemm_kernels cconv_gemm_scalar = {
    "scalar", SCALAR_MR, SCALAR_NR, ukernel_4x8_scalar_f32, ukernel_4x8_scalar_f32_off, ukernel_4x8_scalar_f32_aoff,
    SCALAR_MR, SCALAR_NR, ukernel_4x8_scalar_f64, ukernel_4x8_scalar_f64_off, ukernel_4x8_scalar_f64_aoff,
    transpose_scalar_f32, transpose_scalar_f64,
    0, 0, NULL, 0, 0, NULL,
};

static const cconv_gemm_kernels *selected = &cconv_gemm_scalar;

/* The compiled-in paths this CPU can run, widest first. */
static const cconv_gemm_kernels *supported(const char *isa)
{
#if defined(CCONV_HAVE_AVX512)
    if ((!isa || !strcmp(isa, "avx512")) && cconv_cpu_has_avx512()) return &cconv_gemm_avx512;
#endif
#if defined(CCONV_HAVE_AVX2)
    if ((!isa || !strcmp(isa, "avx2")) && cconv_cpu_has_avx2_fma()) return &cconv_gemm_avx2;
#endif
    if (!isa || !strcmp(isa, "scalar")) return &cconv_gemm_scalar;
    return NULL;
}

int cconv_gemm_kernels_force(const char *isa)
{
    const cconv_gemm_kernels *k = supported(isa);
    if (!k) return -1;
    selected = k;
    return 0;
}

void cconv_gemm_kernels_select(void)
{
    const char *forced = getenv("CCONV_ISA");
    if (forced && *forced && cconv_gemm_kernels_force(forced) == 0) return;
    selected = supported(NULL);
}

const cconv_gemm_kernels *cconv_gemm_kernels_get(void) { return selected; }

const char *cconv_gemm_isas_built(void)
{
    return "scalar"
#if defined(CCONV_HAVE_AVX2)
           ",avx2"
#endif
#if defined(CCONV_HAVE_AVX512)
           ",avx512"
#endif
        ;
}
