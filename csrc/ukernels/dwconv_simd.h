/* dwconv_simd.h: the depthwise row kernels (gemm_config.h: dwconv_rows, dwconv_dots,
 * dwconv_scatter) with SIMD vectors along the row, stamped out by the <type>-dwconv-<isa>.c files.
 * The includer includes a vec_*.h with the masked tail operations (VMASK, VMASK_FIRST, VLOADM,
 * VSTOREM) and VDEINTERLEAVE, and defines REAL and the names UKERNEL_DW_ROWS, UKERNEL_DW_DOTS,
 * UKERNEL_DW_SCATTER and UKERNEL_DW_SPLIT.
 * The common tap counts (3x3 and 5x5 filters: 9 and 25 taps) run bodies whose tap count is a
 * constant, so that their loops unroll; other counts run the same bodies with a loop. Rows are
 * computed in tiles of several rows and vectors, for enough independent multiply-adds to keep the
 * FMA units busy on short rows. Stores (and every access of dots and scatter) past the end of a
 * row go through lane masks; rows' loads may run past it as gemm_config.h allows. */

/* act(v) with relu: max(0, v), a NaN v staying NaN. */
static inline VEC dw_act(VEC v, int relu) { return relu ? VMAX(VZERO(), v) : v; }

/* Stores v at p, only its first `left` lanes when left < VLEN (left >= 1). */
static inline void dw_store(REAL *p, VEC v, int64_t left)
{
    if (left >= VLEN) VSTOREU(p, v);
    else VSTOREM(p, VMASK_FIRST(left), v);
}

/* Four rows x two vectors of outputs from column 0 of in and out, of which the first `cols`
 * (VLEN < cols <= 2*VLEN) are kept: eight independent accumulators in named registers (not an
 * array a compiler might keep in memory), so that the multiply-adds of consecutive taps overlap.
 * Loads run whole vectors (up to VLEN - 1 elements past a row's last kept output). */
static inline void dw_rows_tile4x2(int64_t cols, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                                   const REAL *w, VEC vb, int relu, REAL *out, int64_t ldo)
{
    VEC a00 = vb, a01 = vb, a10 = vb, a11 = vb, a20 = vb, a21 = vb, a30 = vb, a31 = vb;
    for (int64_t t = 0; t < taps; ++t) {
        const VEC wt = VBCAST(w[t]);
        const REAL *p0 = in + off[t], *p1 = p0 + ldi, *p2 = p1 + ldi, *p3 = p2 + ldi;
        a00 = VFMA(wt, VLOADU(p0), a00);
        a01 = VFMA(wt, VLOADU(p0 + VLEN), a01);
        a10 = VFMA(wt, VLOADU(p1), a10);
        a11 = VFMA(wt, VLOADU(p1 + VLEN), a11);
        a20 = VFMA(wt, VLOADU(p2), a20);
        a21 = VFMA(wt, VLOADU(p2 + VLEN), a21);
        a30 = VFMA(wt, VLOADU(p3), a30);
        a31 = VFMA(wt, VLOADU(p3 + VLEN), a31);
    }
    VSTOREU(out, dw_act(a00, relu));
    dw_store(out + VLEN, dw_act(a01, relu), cols - VLEN);
    VSTOREU(out + ldo, dw_act(a10, relu));
    dw_store(out + ldo + VLEN, dw_act(a11, relu), cols - VLEN);
    VSTOREU(out + 2 * ldo, dw_act(a20, relu));
    dw_store(out + 2 * ldo + VLEN, dw_act(a21, relu), cols - VLEN);
    VSTOREU(out + 3 * ldo, dw_act(a30, relu));
    dw_store(out + 3 * ldo + VLEN, dw_act(a31, relu), cols - VLEN);
}

/* Four rows x one vector (cols <= VLEN kept), as dw_rows_tile4x2. */
static inline void dw_rows_tile4x1(int64_t cols, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                                   const REAL *w, VEC vb, int relu, REAL *out, int64_t ldo)
{
    VEC a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (int64_t t = 0; t < taps; ++t) {
        const VEC wt = VBCAST(w[t]);
        const REAL *p0 = in + off[t];
        a0 = VFMA(wt, VLOADU(p0), a0);
        a1 = VFMA(wt, VLOADU(p0 + ldi), a1);
        a2 = VFMA(wt, VLOADU(p0 + 2 * ldi), a2);
        a3 = VFMA(wt, VLOADU(p0 + 3 * ldi), a3);
    }
    dw_store(out, dw_act(a0, relu), cols);
    dw_store(out + ldo, dw_act(a1, relu), cols);
    dw_store(out + 2 * ldo, dw_act(a2, relu), cols);
    dw_store(out + 3 * ldo, dw_act(a3, relu), cols);
}

/* One row, the first `cols` of up to four vectors (cols >= 1), four accumulators. */
static inline void dw_rows_tile1x4(int64_t cols, int64_t taps, const REAL *in, const int64_t *off, const REAL *w,
                                   VEC vb, int relu, REAL *out)
{
    VEC a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (int64_t t = 0; t < taps; ++t) {
        const VEC wt = VBCAST(w[t]);
        const REAL *p0 = in + off[t];
        a0 = VFMA(wt, VLOADU(p0), a0);
        if (cols > VLEN) a1 = VFMA(wt, VLOADU(p0 + VLEN), a1);
        if (cols > 2 * VLEN) a2 = VFMA(wt, VLOADU(p0 + 2 * VLEN), a2);
        if (cols > 3 * VLEN) a3 = VFMA(wt, VLOADU(p0 + 3 * VLEN), a3);
    }
    dw_store(out, dw_act(a0, relu), cols);
    if (cols > VLEN) dw_store(out + VLEN, dw_act(a1, relu), cols - VLEN);
    if (cols > 2 * VLEN) dw_store(out + 2 * VLEN, dw_act(a2, relu), cols - 2 * VLEN);
    if (cols > 3 * VLEN) dw_store(out + 3 * VLEN, dw_act(a3, relu), cols - 3 * VLEN);
}

/* dwconv_rows for `taps` taps: blocks of four rows in tiles of two vectors (one for a last
 * narrow strip), the rows left over one at a time in strips of up to four vectors. */
static inline void dw_rows_body(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi,
                                const int64_t *off, const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    const VEC vb = VBCAST(bias);
    int64_t i = 0;
    for (; i + 4 <= rows; i += 4)
        for (int64_t j = 0; j < q; j += 2 * VLEN) {
            const int64_t cols = q - j < 2 * VLEN ? q - j : 2 * VLEN;
            const REAL *src = in + i * ldi + j;
            REAL *dst = out + i * ldo + j;
            if (cols > VLEN) dw_rows_tile4x2(cols, taps, src, ldi, off, w, vb, relu, dst, ldo);
            else dw_rows_tile4x1(cols, taps, src, ldi, off, w, vb, relu, dst, ldo);
        }
    for (; i < rows; ++i)
        for (int64_t j = 0; j < q; j += 4 * VLEN)
            dw_rows_tile1x4(q - j < 4 * VLEN ? q - j : 4 * VLEN, taps, in + i * ldi + j, off, w, vb, relu,
                            out + i * ldo + j);
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

/* dwconv_dots for a block of n <= 4 taps: two named accumulators per tap (even and odd vectors
 * of a row), so that the multiply-adds overlap and stay in registers. */
static inline void dw_dots_block4(int64_t rows, int64_t q, int n, const REAL *in, int64_t ldi, const int64_t *off,
                                  const REAL *dy, int64_t ldd, REAL *sums)
{
    const VEC z = VZERO();
    VEC a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    const int64_t o0 = off[0], o1 = n > 1 ? off[1] : 0, o2 = n > 2 ? off[2] : 0, o3 = n > 3 ? off[3] : 0;
    for (int64_t i = 0; i < rows; ++i) {
        const REAL *x = in + i * ldi, *d = dy + i * ldd;
        int64_t j = 0;
        for (; j + 2 * VLEN <= q; j += 2 * VLEN) {
            const VEC d0 = VLOADU(d + j), d1 = VLOADU(d + j + VLEN);
            a0 = VFMA(d0, VLOADU(x + o0 + j), a0);
            b0 = VFMA(d1, VLOADU(x + o0 + j + VLEN), b0);
            if (n > 1) {
                a1 = VFMA(d0, VLOADU(x + o1 + j), a1);
                b1 = VFMA(d1, VLOADU(x + o1 + j + VLEN), b1);
            }
            if (n > 2) {
                a2 = VFMA(d0, VLOADU(x + o2 + j), a2);
                b2 = VFMA(d1, VLOADU(x + o2 + j + VLEN), b2);
            }
            if (n > 3) {
                a3 = VFMA(d0, VLOADU(x + o3 + j), a3);
                b3 = VFMA(d1, VLOADU(x + o3 + j + VLEN), b3);
            }
        }
        for (; j < q; j += VLEN) {
            if (q - j >= VLEN) {
                const VEC d0 = VLOADU(d + j);
                a0 = VFMA(d0, VLOADU(x + o0 + j), a0);
                if (n > 1) a1 = VFMA(d0, VLOADU(x + o1 + j), a1);
                if (n > 2) a2 = VFMA(d0, VLOADU(x + o2 + j), a2);
                if (n > 3) a3 = VFMA(d0, VLOADU(x + o3 + j), a3);
            } else {  /* both operands masked: the lanes past q add exact zeros */
                const VMASK m = VMASK_FIRST(q - j);
                const VEC d0 = VLOADM(d + j, m);
                b0 = VFMA(d0, VLOADM(x + o0 + j, m), b0);
                if (n > 1) b1 = VFMA(d0, VLOADM(x + o1 + j, m), b1);
                if (n > 2) b2 = VFMA(d0, VLOADM(x + o2 + j, m), b2);
                if (n > 3) b3 = VFMA(d0, VLOADM(x + o3 + j, m), b3);
            }
        }
    }
    sums[0] += dw_lane_sum(VADD(a0, b0));
    if (n > 1) sums[1] += dw_lane_sum(VADD(a1, b1));
    if (n > 2) sums[2] += dw_lane_sum(VADD(a2, b2));
    if (n > 3) sums[3] += dw_lane_sum(VADD(a3, b3));
}

void UKERNEL_DW_DOTS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *dy, int64_t ldd, REAL *sums)
{
    /* as few blocks of at most 4 taps as possible, of nearly equal size: 3x3 as 3 + 3 + 3 */
    const int64_t blocks = (taps + 3) / 4, size = (taps + blocks - 1) / blocks;
    for (int64_t t0 = 0; t0 < taps; t0 += size) {
        const int n = (int)(taps - t0 < size ? taps - t0 : size);
        dw_dots_block4(rows, q, n, in, ldi, off + t0, dy, ldd, sums + t0);
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

void UKERNEL_DW_SPLIT(int64_t n, const REAL *s, REAL *d0, REAL *d1)
{
    int64_t e = 0;
    for (; e + VLEN <= n; e += VLEN) {
        VEC even, odd;
        VDEINTERLEAVE(VLOADU(s + 2 * e), VLOADU(s + 2 * e + VLEN), even, odd);
        VSTOREU(d0 + e, even);
        VSTOREU(d1 + e, odd);
    }
    for (; e < n; ++e) {
        d0[e] = s[2 * e];
        d1[e] = s[2 * e + 1];
    }
}

#undef UKERNEL_DW_ROWS
#undef UKERNEL_DW_SPLIT
#undef UKERNEL_DW_DOTS
#undef UKERNEL_DW_SCATTER
