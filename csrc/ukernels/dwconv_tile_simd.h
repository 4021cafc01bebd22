/* dwconv_tile_simd.h: one height of the depthwise row kernels' tiles, included by dwconv_simd.h once
 * per height with DW_N defined (1 to 8): dw_rows_tile1_<DW_N>, DW_N rows x one vector, and for
 * DW_N <= 4 dw_rows_tile2_<DW_N>, DW_N rows x two vectors. DW_N is a constant, so that the tests on
 * it fold away and each row keeps its accumulator in a named register (not an array a compiler
 * might keep in memory): the multiply-adds of consecutive taps overlap. Outputs from column 0 of
 * in and out, the first `cols` of each row kept; loads run whole vectors (up to VLEN - 1 elements
 * past a row's last kept output). */

/* DW_N rows x one vector (cols <= VLEN kept). */
DW_INLINE void DW_PASTE(dw_rows_tile1_, DW_N)(int64_t cols, int64_t taps, const REAL *in, int64_t ldi,
                                                  const int64_t *off, const REAL *w, VEC vb, int relu, REAL *out,
                                                  int64_t ldo)
{
    VEC a0 = vb, a1 = vb, a2 = vb, a3 = vb, a4 = vb, a5 = vb, a6 = vb, a7 = vb;
    for (int64_t t = 0; t < taps; ++t) {
        const VEC wt = VBCAST(w[t]);
        const REAL *p = in + off[t];
        a0 = VFMA(wt, VLOADU(p), a0);
        if (DW_N > 1) a1 = VFMA(wt, VLOADU(p + ldi), a1);
        if (DW_N > 2) a2 = VFMA(wt, VLOADU(p + 2 * ldi), a2);
        if (DW_N > 3) a3 = VFMA(wt, VLOADU(p + 3 * ldi), a3);
        if (DW_N > 4) a4 = VFMA(wt, VLOADU(p + 4 * ldi), a4);
        if (DW_N > 5) a5 = VFMA(wt, VLOADU(p + 5 * ldi), a5);
        if (DW_N > 6) a6 = VFMA(wt, VLOADU(p + 6 * ldi), a6);
        if (DW_N > 7) a7 = VFMA(wt, VLOADU(p + 7 * ldi), a7);
    }
    dw_store(out, dw_act(a0, relu), cols);
    if (DW_N > 1) dw_store(out + ldo, dw_act(a1, relu), cols);
    if (DW_N > 2) dw_store(out + 2 * ldo, dw_act(a2, relu), cols);
    if (DW_N > 3) dw_store(out + 3 * ldo, dw_act(a3, relu), cols);
    if (DW_N > 4) dw_store(out + 4 * ldo, dw_act(a4, relu), cols);
    if (DW_N > 5) dw_store(out + 5 * ldo, dw_act(a5, relu), cols);
    if (DW_N > 6) dw_store(out + 6 * ldo, dw_act(a6, relu), cols);
    if (DW_N > 7) dw_store(out + 7 * ldo, dw_act(a7, relu), cols);
}

#if DW_N <= 4
/* DW_N rows x two vectors (VLEN < cols <= 2*VLEN kept). */
DW_INLINE void DW_PASTE(dw_rows_tile2_, DW_N)(int64_t cols, int64_t taps, const REAL *in, int64_t ldi,
                                                  const int64_t *off, const REAL *w, VEC vb, int relu, REAL *out,
                                                  int64_t ldo)
{
    VEC a00 = vb, a01 = vb, a10 = vb, a11 = vb, a20 = vb, a21 = vb, a30 = vb, a31 = vb;
    for (int64_t t = 0; t < taps; ++t) {
        const VEC wt = VBCAST(w[t]);
        const REAL *p0 = in + off[t];
        a00 = VFMA(wt, VLOADU(p0), a00);
        a01 = VFMA(wt, VLOADU(p0 + VLEN), a01);
        if (DW_N > 1) {
            a10 = VFMA(wt, VLOADU(p0 + ldi), a10);
            a11 = VFMA(wt, VLOADU(p0 + ldi + VLEN), a11);
        }
        if (DW_N > 2) {
            a20 = VFMA(wt, VLOADU(p0 + 2 * ldi), a20);
            a21 = VFMA(wt, VLOADU(p0 + 2 * ldi + VLEN), a21);
        }
        if (DW_N > 3) {
            a30 = VFMA(wt, VLOADU(p0 + 3 * ldi), a30);
            a31 = VFMA(wt, VLOADU(p0 + 3 * ldi + VLEN), a31);
        }
    }
    VSTOREU(out, dw_act(a00, relu));
    dw_store(out + VLEN, dw_act(a01, relu), cols - VLEN);
    if (DW_N > 1) {
        VSTOREU(out + ldo, dw_act(a10, relu));
        dw_store(out + ldo + VLEN, dw_act(a11, relu), cols - VLEN);
    }
    if (DW_N > 2) {
        VSTOREU(out + 2 * ldo, dw_act(a20, relu));
        dw_store(out + 2 * ldo + VLEN, dw_act(a21, relu), cols - VLEN);
    }
    if (DW_N > 3) {
        VSTOREU(out + 3 * ldo, dw_act(a30, relu));
        dw_store(out + 3 * ldo + VLEN, dw_act(a31, relu), cols - VLEN);
    }
}
#endif

#undef DW_N
