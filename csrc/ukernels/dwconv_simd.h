/* dwconv_simd.h: the depthwise row kernels (gemm_config.h: dwconv_rows, dwconv_dots,
 * dwconv_scatter) with SIMD vectors along the row, stamped out by the <type>-dwconv-<isa>.c files.
 * The includer includes a vec_*.h with the masked tail operations (VMASK, VMASK_FIRST, VLOADM,
 * VSTOREM) and defines REAL and the names UKERNEL_DW_ROWS, UKERNEL_DW_DOTS, UKERNEL_DW_SCATTER.
 * The common tap counts (3x3 and 5x5 filters: 9 and 25 taps) run bodies whose tap count is a
 * constant, so that their loops unroll; other counts run the same bodies with a loop. Rows are
 * computed in tiles of several rows and vectors, for enough independent multiply-adds to keep the
 * FMA units busy on short rows. Stores (and every access of dots and scatter) past the end of a
 * row go through lane masks; rows' loads may run past it as gemm_config.h allows. */

#define DW_MAX_HELD 9  /* taps per block of the weight gradient's dot products, one accumulator each */

/* Rows [0, nrows) (nrows <= 4) x nv vectors (nv <= 2) of outputs from column 0 of in and out, of
 * which the first `cols` are kept: nrows*nv independent accumulators, so that the multiply-adds of
 * consecutive taps overlap. Loads run whole vectors (past `cols`, up to VLEN - 1 elements past the
 * row's last kept output); stores keep `cols` columns. */
static inline void dw_rows_tile(int nrows, int nv, int64_t cols, int64_t taps, const REAL *in, int64_t ldi,
                                const int64_t *off, const REAL *w, VEC vb, int relu, REAL *out, int64_t ldo)
{
    VEC acc[4][2];
    for (int i = 0; i < nrows; ++i)
        for (int v = 0; v < nv; ++v) acc[i][v] = vb;
    for (int64_t t = 0; t < taps; ++t) {
        const VEC wt = VBCAST(w[t]);
        const REAL *p = in + off[t];
        for (int i = 0; i < nrows; ++i)
            for (int v = 0; v < nv; ++v) acc[i][v] = VFMA(wt, VLOADU(p + i * ldi + v * VLEN), acc[i][v]);
    }
    for (int i = 0; i < nrows; ++i)
        for (int v = 0; v < nv; ++v) {
            const VEC r = relu ? VMAX(VZERO(), acc[i][v]) : acc[i][v];  /* max(0, v): a NaN v stays NaN */
            const int64_t left = cols - v * VLEN;
            if (left >= VLEN) VSTOREU(out + i * ldo + v * VLEN, r);
            else VSTOREM(out + i * ldo + v * VLEN, VMASK_FIRST(left), r);
        }
}

/* dwconv_rows for `taps` taps, in tiles of up to 4 rows x 2 vectors. */
static inline void dw_rows_body(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi,
                                const int64_t *off, const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    const VEC vb = VBCAST(bias);
    for (int64_t i = 0; i < rows; i += 4) {
        const int nrows = (int)(rows - i < 4 ? rows - i : 4);
        const REAL *row = in + i * ldi;
        REAL *dst = out + i * ldo;
        for (int64_t j = 0; j < q; j += 2 * VLEN) {
            const int64_t cols = q - j < 2 * VLEN ? q - j : 2 * VLEN;
            const int nv = cols > VLEN ? 2 : 1;
            switch (nrows * 2 + nv - 1) {  /* constant tile shapes, so that the loops unroll */
            case 9: dw_rows_tile(4, 2, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            case 8: dw_rows_tile(4, 1, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            case 7: dw_rows_tile(3, 2, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            case 6: dw_rows_tile(3, 1, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            case 5: dw_rows_tile(2, 2, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            case 4: dw_rows_tile(2, 1, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            case 3: dw_rows_tile(1, 2, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            default: dw_rows_tile(1, 1, cols, taps, row + j, ldi, off, w, vb, relu, dst + j, ldo); break;
            }
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
