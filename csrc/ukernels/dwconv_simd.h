/* dwconv_simd.h: the depthwise row kernels (gemm_config.h: dwconv_rows, dwconv_dots,
 * dwconv_scatter) with SIMD vectors along the row, stamped out by the <type>-dwconv-<isa>.c files.
 * The includer includes a vec_*.h with the masked tail operations (VMASK, VMASK_FIRST, VLOADM,
 * VSTOREM) and defines REAL and the names UKERNEL_DW_ROWS, UKERNEL_DW_DOTS, UKERNEL_DW_SCATTER.
 * The common tap counts (3x3 and 5x5 filters: 9 and 25 taps) run bodies whose tap count is a
 * constant, so that their loops unroll and a 3x3 filter's weights stay in registers; other counts
 * run the same bodies with a loop. Tails shorter than a vector go through lane masks, so nothing
 * outside the rows is read or written. */

#define DW_MAX_HELD 9  /* taps whose weight vectors are held in registers across a row */

/* dwconv_rows for `taps` taps. With taps <= DW_MAX_HELD the weights are broadcast once per call. */
static inline void dw_rows_body(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi,
                                const int64_t *off, const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    const VEC vb = VBCAST(bias), zero = VZERO();
    VEC held[DW_MAX_HELD];
    const int hold = taps <= DW_MAX_HELD;
    for (int64_t t = 0; hold && t < taps; ++t) held[t] = VBCAST(w[t]);
    for (int64_t i = 0; i < rows; ++i) {
        const REAL *row = in + i * ldi;
        REAL *dst = out + i * ldo;
        int64_t j = 0;
        for (; j + 2 * VLEN <= q; j += 2 * VLEN) {
            VEC a0 = vb, a1 = vb;
            for (int64_t t = 0; t < taps; ++t) {
                const VEC wt = hold ? held[t] : VBCAST(w[t]);
                const REAL *p = row + off[t] + j;
                a0 = VFMA(wt, VLOADU(p), a0);
                a1 = VFMA(wt, VLOADU(p + VLEN), a1);
            }
            if (relu) {  /* max(0, v): a NaN v stays NaN */
                a0 = VMAX(zero, a0);
                a1 = VMAX(zero, a1);
            }
            VSTOREU(dst + j, a0);
            VSTOREU(dst + j + VLEN, a1);
        }
        for (; j < q; j += VLEN) {
            const VMASK m = VMASK_FIRST(q - j < VLEN ? q - j : VLEN);
            VEC a0 = vb;
            for (int64_t t = 0; t < taps; ++t) a0 = VFMA(hold ? held[t] : VBCAST(w[t]), VLOADM(row + off[t] + j, m), a0);
            if (relu) a0 = VMAX(zero, a0);
            VSTOREM(dst + j, m, a0);
        }
    }
}

void UKERNEL_DW_ROWS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    if (taps == 9) dw_rows_body(rows, q, 9, in, ldi, off, w, bias, relu, out, ldo);
    else if (taps == 25) dw_rows_body(rows, q, 25, in, ldi, off, w, bias, relu, out, ldo);
    else dw_rows_body(rows, q, taps, in, ldi, off, w, bias, relu, out, ldo);
}

/* The sum of v's lanes, in a fixed order. */
static inline REAL dw_lane_sum(VEC v)
{
    REAL lanes[VLEN];
    VSTOREU(lanes, v);
    for (int width = VLEN / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
    return lanes[0];
}

/* dwconv_dots for a block of `taps` <= DW_MAX_HELD taps, one vector accumulator each. */
static inline void dw_dots_block(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi,
                                 const int64_t *off, const REAL *dy, int64_t ldd, REAL *sums)
{
    VEC acc[DW_MAX_HELD];
    for (int64_t t = 0; t < taps; ++t) acc[t] = VZERO();
    for (int64_t i = 0; i < rows; ++i) {
        const REAL *row = in + i * ldi, *d = dy + i * ldd;
        int64_t j = 0;
        for (; j + VLEN <= q; j += VLEN) {
            const VEC dv = VLOADU(d + j);
            for (int64_t t = 0; t < taps; ++t) acc[t] = VFMA(dv, VLOADU(row + off[t] + j), acc[t]);
        }
        if (j < q) {  /* both operands masked: the lanes past q add exact zeros */
            const VMASK m = VMASK_FIRST(q - j);
            const VEC dv = VLOADM(d + j, m);
            for (int64_t t = 0; t < taps; ++t) acc[t] = VFMA(dv, VLOADM(row + off[t] + j, m), acc[t]);
        }
    }
    for (int64_t t = 0; t < taps; ++t) sums[t] += dw_lane_sum(acc[t]);
}

void UKERNEL_DW_DOTS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *dy, int64_t ldd, REAL *sums)
{
    /* blocks of at most DW_MAX_HELD taps: a 3x3 filter in one block, 5x5 as 9 + 8 + 8 */
    for (int64_t t0 = 0; t0 < taps;) {
        const int64_t left = taps - t0, block = left <= DW_MAX_HELD ? left : DW_MAX_HELD - 1;
        switch (block) {
        case 9: dw_dots_block(rows, q, 9, in, ldi, off + t0, dy, ldd, sums + t0); break;
        case 8: dw_dots_block(rows, q, 8, in, ldi, off + t0, dy, ldd, sums + t0); break;
        default: dw_dots_block(rows, q, block, in, ldi, off + t0, dy, ldd, sums + t0); break;
        }
        t0 += block;
    }
}

void UKERNEL_DW_SCATTER(int64_t rows, int64_t q, int64_t taps, const REAL *dy, int64_t ldd, const int64_t *off,
                        const REAL *w, REAL *out, int64_t ldo)
{
    for (int64_t i = 0; i < rows; ++i) {
        const REAL *d = dy + i * ldd;
        for (int64_t t = 0; t < taps; ++t) {
            const VEC wt = VBCAST(w[t]);
            REAL *dst = out + i * ldo + off[t];
            int64_t j = 0;
            for (; j + VLEN <= q; j += VLEN) VSTOREU(dst + j, VFMA(wt, VLOADU(d + j), VLOADU(dst + j)));
            if (j < q) {
                const VMASK m = VMASK_FIRST(q - j);
                VSTOREM(dst + j, m, VFMA(wt, VLOADM(d + j, m), VLOADM(dst + j, m)));
            }
        }
    }
}

#undef DW_MAX_HELD
#undef UKERNEL_DW_ROWS
#undef UKERNEL_DW_DOTS
#undef UKERNEL_DW_SCATTER
