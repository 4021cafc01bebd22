/* dwconv_scalar.h: the portable depthwise row kernels (gemm_config.h: dwconv_rows, dwconv_dots,
 * dwconv_scatter) in plain C, the reference the SIMD ones are tested against. The includer defines
 * REAL and the names UKERNEL_DW_ROWS, UKERNEL_DW_DOTS, UKERNEL_DW_SCATTER and UKERNEL_DW_SPLIT. */

void UKERNEL_DW_ROWS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < q; ++j) {
            REAL v = bias;
            for (int64_t t = 0; t < taps; ++t) v += w[t] * in[i * ldi + off[t] + j];
            out[i * ldo + j] = relu && v < 0 ? 0 : v;  /* a NaN v stays NaN */
        }
}

void UKERNEL_DW_DOTS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *dy, int64_t ldd, REAL *sums)
{
    for (int64_t t = 0; t < taps; ++t) {
        REAL sum = 0;
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < q; ++j) sum += dy[i * ldd + j] * in[i * ldi + off[t] + j];
        sums[t] += sum;
    }
}

void UKERNEL_DW_SCATTER(int64_t rows, int64_t q, int64_t taps, const REAL *dy, int64_t ldd, const int64_t *off,
                        const REAL *w, REAL *out, int64_t ldo)
{
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t t = 0; t < taps; ++t)
            for (int64_t j = 0; j < q; ++j) out[i * ldo + off[t] + j] += w[t] * dy[i * ldd + j];
}

void UKERNEL_DW_SPLIT(int64_t n, const REAL *s, REAL *d0, REAL *d1)
{
    for (int64_t e = 0; e < n; ++e) {
        d0[e] = s[2 * e];
        d1[e] = s[2 * e + 1];
    }
}

#undef UKERNEL_DW_ROWS
#undef UKERNEL_DW_SPLIT
#undef UKERNEL_DW_DOTS
#undef UKERNEL_DW_SCATTER
