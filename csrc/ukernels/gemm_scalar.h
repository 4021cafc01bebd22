/* gemm_scalar.h: the portable micro-kernels and packing transpose (gemm_config.h) in plain C, the
 * reference the SIMD ones are tested against; compilers vectorize them for the baseline ISA. The
 * includer defines REAL, MR, NR and the names UKERNEL_GEMM, UKERNEL_BOFF, UKERNEL_AOFF,
 * UKERNEL_PIX (MR pixels x NR filters) and UKERNEL_TRANSPOSE. */
#include <string.h>

/* c = act(base + acc) for the valid m x n part of the tile, as gemm_config.h defines it; the
 * bias is per row (bias[i]), or per column (bias[j]) for the pixel kernel. */
static void store_tile(REAL acc[MR][NR], REAL *c, int64_t ldc, int64_t m, int64_t n, int accumulate,
                       const REAL *bias, int bias_per_column, int relu)
{
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            REAL v = acc[i][j];
            if (accumulate) v += c[i * ldc + j];
            else if (bias) v += bias_per_column ? bias[j] : bias[i];
            c[i * ldc + j] = relu && v < 0 ? 0 : v;
        }
}

void UKERNEL_GEMM(int64_t kc, const REAL *a, const REAL *b, REAL *c, int64_t ldc, int64_t m, int64_t n,
                  int accumulate, const REAL *bias, int relu)
{
    REAL acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += a[k * MR + i] * b[k * NR + j];
    store_tile(acc, c, ldc, m, n, accumulate, bias, 0, relu);
}

void UKERNEL_BOFF(int64_t kc, const REAL *a, const REAL *b, const int64_t *boff, int64_t run, int64_t step,
                  REAL *c, int64_t ldc, int64_t m, int64_t n, int accumulate, const REAL *bias, int relu)
{
    REAL acc[MR][NR];
    int64_t col[NR];  /* where column j of a row of B sits, in runs */
    for (int j = 0; j < NR; ++j) col[j] = run >= NR ? j : j / run * step + j % run;
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; ++k) {
        const REAL *bk = b + boff[k];
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += a[k * MR + i] * bk[col[j]];
    }
    store_tile(acc, c, ldc, m, n, accumulate, bias, 0, relu);
}

void UKERNEL_AOFF(int64_t kc, const REAL *a, const int64_t *aoff, int64_t run, int64_t step, const REAL *b,
                  REAL *c, int64_t ldc, int64_t m, int64_t n, int accumulate, const REAL *bias, int relu)
{
    REAL acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; ++k) {
        const int64_t at = k / run * step + k % run;  /* element k of a row of A, in runs */
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += a[aoff[i] + at] * b[k * NR + j];
    }
    store_tile(acc, c, ldc, m, n, accumulate, bias, 0, relu);
}

void UKERNEL_PIX(int64_t kc, const REAL *a, const int64_t *aoff, const REAL *b, REAL *c, int64_t ldc, int64_t m,
                 int64_t n, int accumulate, const REAL *bias, int relu)
{
    REAL acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += a[aoff[k] + i] * b[k * NR + j];
    store_tile(acc, c, ldc, m, n, accumulate, bias, 1, relu);
}

void UKERNEL_TRANSPOSE(const REAL *src, const REAL *mask, int64_t lds, int64_t rows, int64_t cols, int64_t run,
                       int64_t period, REAL *dst, int64_t ldd, REAL *sums)
{
    int64_t base = 0, within = 0;  /* destination column base + within (gemm_config.h's runs) */
    for (int64_t j = 0; j < cols; ++j) {
        REAL *d = dst + (base + within) * ldd;
        for (int64_t i = 0; i < rows; ++i) {
            const REAL v = src[i * lds + j];
            d[i] = !mask || !(mask[i * lds + j] <= 0) ? v : 0;
            if (sums) sums[i] += d[i];
        }
        if (++within == run) {
            within = 0;
            base += period;
        }
    }
}
