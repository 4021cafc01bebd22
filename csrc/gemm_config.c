/* gemm_config.c: the per-ISA micro-kernel configs (gemm_config.h) and their run-time selection.
 * A new ISA is its micro-kernel files in ukernels/, one config per element type here, and one
 * entry in BUILT (with the CPU check that guards it). */
#include "gemm_config.h"

#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "ukernels/ukernels.h"

#if defined(CCONV_HAVE_AVX512) && !defined(CCONV_HAVE_AVX2)
#error "the AVX-512 configs use the AVX2 transposes: build the -avx2.c files too"
#endif

/* Cache blocking shared by every config: a depth block of 384 keeps an MR- or NR-wide panel in
 * L1 and a 384 x 384 block of B in L2 for both element types. */
#define KC 384
#define NC 384
#define MC 192
/* AVX2 CPUs have 32 KB of L1 data cache: a depth block of 256 keeps the B panel that the
 * micro-kernel reuses (NR x KC) in L1 beside the A panel it streams (MR x KC). */
#define KC_AVX2 256

static const cconv_gemm_config_f32 scalar_f32 = {
    .isa = "scalar",
    .tiles = {.mr = 4, .nr = 8, .pix_mr = 4, .pix_nr = 8, .kc = KC, .nc = NC, .mc = MC},
    .gemm = cconv_f32_gemm_4x8__scalar,
    .gemm_boff = cconv_f32_gemm_boff_4x8__scalar,
    .gemm_aoff = cconv_f32_gemm_aoff_4x8__scalar,
    .gemm_pix = cconv_f32_gemm_pix_4x8__scalar,
    .transpose = cconv_f32_transpose__scalar,
    .dwconv_rows = cconv_f32_dwconv_rows__scalar,
    .dwconv_dots = cconv_f32_dwconv_dots__scalar,
    .dwconv_scatter = cconv_f32_dwconv_scatter__scalar,
    .dwconv_split = cconv_f32_dwconv_split__scalar,
    .winograd_input = cconv_f32_winograd_input__scalar,
    .winograd_output = cconv_f32_winograd_output__scalar,
};
static const cconv_gemm_config_f64 scalar_f64 = {
    .isa = "scalar",
    .tiles = {.mr = 4, .nr = 8, .pix_mr = 4, .pix_nr = 8, .kc = KC, .nc = NC, .mc = MC},
    .gemm = cconv_f64_gemm_4x8__scalar,
    .gemm_boff = cconv_f64_gemm_boff_4x8__scalar,
    .gemm_aoff = cconv_f64_gemm_aoff_4x8__scalar,
    .gemm_pix = cconv_f64_gemm_pix_4x8__scalar,
    .transpose = cconv_f64_transpose__scalar,
    .dwconv_rows = cconv_f64_dwconv_rows__scalar,
    .dwconv_dots = cconv_f64_dwconv_dots__scalar,
    .dwconv_scatter = cconv_f64_dwconv_scatter__scalar,
    .dwconv_split = cconv_f64_dwconv_split__scalar,
    .winograd_input = cconv_f64_winograd_input__scalar,
    .winograd_output = cconv_f64_winograd_output__scalar,
};
static const cconv_gemm_configs scalar = {"scalar", &scalar_f32, &scalar_f64};

#if defined(CCONV_HAVE_AVX2)
/* 16 registers: no room for a pixel kernel wider than the B-offset kernel's tile. */
static const cconv_gemm_config_f32 avx2_f32 = {
    .isa = "avx2",
    .tiles = {.mr = 6, .nr = 16, .kc = KC_AVX2, .nc = NC, .mc = MC},
    .gemm = cconv_f32_gemm_6x16__avx2,
    .gemm_boff = cconv_f32_gemm_boff_6x16__avx2,
    .gemm_aoff = cconv_f32_gemm_aoff_6x16__avx2,
    .transpose = cconv_f32_transpose_8x8__avx2,
    .dwconv_rows = cconv_f32_dwconv_rows__avx2,
    .dwconv_dots = cconv_f32_dwconv_dots__avx2,
    .dwconv_scatter = cconv_f32_dwconv_scatter__avx2,
    .dwconv_split = cconv_f32_dwconv_split__avx2,
    .winograd_input = cconv_f32_winograd_input__avx2,
    .winograd_output = cconv_f32_winograd_output__avx2,
};
static const cconv_gemm_config_f64 avx2_f64 = {
    .isa = "avx2",
    .tiles = {.mr = 6, .nr = 8, .kc = KC_AVX2, .nc = NC, .mc = MC},
    .gemm = cconv_f64_gemm_6x8__avx2,
    .gemm_boff = cconv_f64_gemm_boff_6x8__avx2,
    .gemm_aoff = cconv_f64_gemm_aoff_6x8__avx2,
    .transpose = cconv_f64_transpose_4x4__avx2,
    .dwconv_rows = cconv_f64_dwconv_rows__avx2,
    .dwconv_dots = cconv_f64_dwconv_dots__avx2,
    .dwconv_scatter = cconv_f64_dwconv_scatter__avx2,
    .dwconv_split = cconv_f64_dwconv_split__avx2,
    .winograd_input = cconv_f64_winograd_input__avx2,
    .winograd_output = cconv_f64_winograd_output__avx2,
};
static const cconv_gemm_configs avx2 = {"avx2", &avx2_f32, &avx2_f64};
#endif

#if defined(CCONV_HAVE_AVX512)
/* The depthwise row kernels are bandwidth-bound and the Winograd transforms a small part of
 * their algorithm's time: the AVX2 ones serve here too. */
static const cconv_gemm_config_f32 avx512_f32 = {
    .isa = "avx512",
    .tiles = {.mr = 8, .nr = 32, .pix_mr = 14, .pix_nr = 32, .kc = KC, .nc = NC, .mc = MC},
    .gemm = cconv_f32_gemm_8x32__avx512,
    .gemm_boff = cconv_f32_gemm_boff_8x32__avx512,
    .gemm_aoff = cconv_f32_gemm_aoff_8x32__avx512,
    .gemm_pix = cconv_f32_gemm_pix_14x32__avx512,
    .transpose = cconv_f32_transpose_8x8__avx2,
    .dwconv_rows = cconv_f32_dwconv_rows__avx2,
    .dwconv_dots = cconv_f32_dwconv_dots__avx2,
    .dwconv_scatter = cconv_f32_dwconv_scatter__avx2,
    .dwconv_split = cconv_f32_dwconv_split__avx2,
    .winograd_input = cconv_f32_winograd_input__avx2,
    .winograd_output = cconv_f32_winograd_output__avx2,
};
static const cconv_gemm_config_f64 avx512_f64 = {
    .isa = "avx512",
    .tiles = {.mr = 8, .nr = 16, .pix_mr = 14, .pix_nr = 16, .kc = KC, .nc = NC, .mc = MC},
    .gemm = cconv_f64_gemm_8x16__avx512,
    .gemm_boff = cconv_f64_gemm_boff_8x16__avx512,
    .gemm_aoff = cconv_f64_gemm_aoff_8x16__avx512,
    .gemm_pix = cconv_f64_gemm_pix_14x16__avx512,
    .transpose = cconv_f64_transpose_4x4__avx2,
    .dwconv_rows = cconv_f64_dwconv_rows__avx2,
    .dwconv_dots = cconv_f64_dwconv_dots__avx2,
    .dwconv_scatter = cconv_f64_dwconv_scatter__avx2,
    .dwconv_split = cconv_f64_dwconv_split__avx2,
    .winograd_input = cconv_f64_winograd_input__avx2,
    .winograd_output = cconv_f64_winograd_output__avx2,
};
static const cconv_gemm_configs avx512 = {"avx512", &avx512_f32, &avx512_f64};
#endif

/* Built configs, narrowest first, each with the check that this CPU runs it. */
static int always(void) { return 1; }
static const struct {
    const cconv_gemm_configs *configs;
    int (*cpu_runs)(void);
} BUILT[] = {
    {&scalar, always},
#if defined(CCONV_HAVE_AVX2)
    {&avx2, cconv_cpu_has_avx2_fma},
#endif
#if defined(CCONV_HAVE_AVX512)
    {&avx512, cconv_cpu_has_avx512},
#endif
};
#define N_BUILT ((int)(sizeof BUILT / sizeof BUILT[0]))

/* The configs in use. Written only by select/force and read once per operation; an aligned
 * pointer is read and written whole on every supported platform, and the atomic builtins say so
 * to the compiler where it has them. */
static const cconv_gemm_configs *current = &scalar;

#if defined(__GNUC__) || defined(__clang__)
#define LOAD_CURRENT() __atomic_load_n(&current, __ATOMIC_ACQUIRE)
#define STORE_CURRENT(p) __atomic_store_n(&current, (p), __ATOMIC_RELEASE)
#else
#define LOAD_CURRENT() (*(const cconv_gemm_configs *volatile *)&current)
#define STORE_CURRENT(p) (*(const cconv_gemm_configs *volatile *)&current = (p))
#endif

const cconv_gemm_configs *cconv_gemm_configs_built(int i) { return i >= 0 && i < N_BUILT ? BUILT[i].configs : NULL; }

const cconv_gemm_configs *cconv_gemm_configs_find(const char *isa)
{
    for (int i = 0; i < N_BUILT; ++i)
        if (!strcmp(BUILT[i].configs->isa, isa) && BUILT[i].cpu_runs()) return BUILT[i].configs;
    return NULL;
}

int cconv_gemm_configs_force(const char *isa)
{
    const cconv_gemm_configs *found = cconv_gemm_configs_find(isa);
    if (!found) return -1;
    STORE_CURRENT(found);
    return 0;
}

void cconv_gemm_configs_select(void)
{
    const char *forced = getenv("CCONV_ISA");
    if (forced && *forced && cconv_gemm_configs_force(forced) == 0) return;
    for (int i = N_BUILT - 1; i >= 0; --i)
        if (BUILT[i].cpu_runs()) {
            STORE_CURRENT(BUILT[i].configs);
            return;
        }
}

const cconv_gemm_configs *cconv_gemm_configs_current(void) { return LOAD_CURRENT(); }
