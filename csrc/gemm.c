/* gemm.c: the portable (scalar) micro-kernels, run-time selection of the SIMD ones, and
 * aligned allocation. The scalar kernels are plain C that compilers auto-vectorize for the
 * baseline ISA; they are also the reference the SIMD kernels are tested against. */
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"

#define SCALAR_MR 4
#define SCALAR_NR 8

/* One generic body per element type: accumulate the MR x NR tile, then store its valid part. */
#define DEFINE_SCALAR_UKERNEL(NAME, REAL)                                                     \
    static void NAME(int64_t kc, const REAL *a, const REAL *b, REAL *c, int64_t ldc,          \
                     int64_t m, int64_t n, int accumulate)                                    \
    {                                                                                         \
        REAL acc[SCALAR_MR][SCALAR_NR];                                                       \
        memset(acc, 0, sizeof acc);                                                           \
        for (int64_t k = 0; k < kc; ++k) {                                                    \
            const REAL *ak = a + k * SCALAR_MR, *bk = b + k * SCALAR_NR;                      \
            for (int i = 0; i < SCALAR_MR; ++i)                                               \
                for (int j = 0; j < SCALAR_NR; ++j) acc[i][j] += ak[i] * bk[j];               \
        }                                                                                     \
        for (int64_t i = 0; i < m; ++i) {                                                     \
            REAL *ci = c + i * ldc;                                                           \
            if (accumulate)                                                                   \
                for (int64_t j = 0; j < n; ++j) ci[j] += acc[i][j];                           \
            else                                                                              \
                for (int64_t j = 0; j < n; ++j) ci[j] = acc[i][j];                            \
        }                                                                                     \
    }

DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f32, float)
DEFINE_SCALAR_UKERNEL(ukernel_4x8_scalar_f64, double)

const cconv_gemm_kernels cconv_gemm_scalar = {
    "scalar", SCALAR_MR, SCALAR_NR, ukernel_4x8_scalar_f32, SCALAR_MR, SCALAR_NR, ukernel_4x8_scalar_f64,
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

void *cconv_aligned_alloc(size_t bytes)
{
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    unsigned char *aligned = (unsigned char *)((start + 63) & ~(uintptr_t)63);
    ((void **)aligned)[-1] = raw;
    return aligned;
}

void cconv_aligned_free(void *p)
{
    if (p) free(((void **)p)[-1]);
}
