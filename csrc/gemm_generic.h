/* gemm_generic.h: type-generic packing into micro-kernel panels and the loop over C's tiles,
 * shared by conv2d.c and dense.c. Included once per element type with REAL, UREAL (the unsigned
 * integer of REAL's size), FN(name), UKERNEL(k), TRANSPOSE(k), KERNEL_MR(k), KERNEL_NR(k) defined and
 * index_math.h included.
 * Not a public header. */

/* The ReLU derivative applied to a gradient: g where the ReLU's output y is > 0 (or NaN, as in
 * torch), else exactly 0 (also for an infinite g). Computed with a bit mask, not a branch: which
 * outputs are positive is as random as the data, and mispredicted branches cost more than the
 * whole multiply-add they feed. */
static inline REAL FN(relu_grad)(REAL g, REAL y)
{
    UREAL bits;
    const UREAL keep = (UREAL)0 - (UREAL)!(y <= 0);
    memcpy(&bits, &g, sizeof bits);
    bits &= keep;
    memcpy(&g, &bits, sizeof g);
    return g;
}

/* Rows [0, m) x columns [0, kc) of a row-major M (row i at a + i*lds, relu_mask likewise) into
 * panels of `width` rows as pack_panels (below) lays them out, rows past m zero, through the
 * kernel table's SIMD transpose. sums (may be NULL) gets each row's sum added: a bias gradient,
 * taken while M is in registers. */
static void FN(transpose_panels)(const REAL *a, const REAL *relu_mask, int64_t lds, int64_t m, int64_t kc,
                                 int width, REAL *out, REAL *sums)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    for (int64_t i0 = 0; i0 < m; i0 += width) {
        const int64_t rows = min64(width, m - i0), offset = i0 * lds;
        REAL *panel = out + (i0 / width) * kc * width;
        TRANSPOSE(kern)(a + offset, relu_mask ? relu_mask + offset : NULL, lds, rows, kc, kc, 0, panel, width,
                        sums ? sums + i0 : NULL);
        for (int64_t kk = 0; rows < width && kk < kc; ++kk)
            for (int64_t i = rows; i < width; ++i) panel[kk * width + i] = 0;
    }
}

/* Rows [0, m) x columns [k0, k0 + kc) of a strided matrix M, element (i, j) at a[i*rs + j*cs],
 * into panels of `width` rows stored k-major: out[(i / width)*kc*width + kk*width + i % width];
 * rows past m are zero. This is the A-panel layout (width = MR) and, for M = B^T, the
 * B-panel layout (width = NR) of gemm.h. With a relu_mask (laid out like M: a ReLU's output),
 * entries whose mask is <= 0 are packed as zero (a NaN output passes its gradient, as in torch). */
static void FN(pack_panels)(const REAL *a, const REAL *relu_mask, int64_t rs, int64_t cs, int64_t m,
                            int64_t k0, int64_t kc, int width, REAL *out)
{
    if (cs == 1 && rs != 1) {  /* rows of M are contiguous: a transpose (the SIMD one) */
        FN(transpose_panels)(a + k0, relu_mask ? relu_mask + k0 : NULL, rs, m, kc, width, out, NULL);
        return;
    }
    for (int64_t i0 = 0; i0 < m; i0 += width) {
        const int64_t rows = min64(width, m - i0);
        REAL *panel = out + (i0 / width) * kc * width;
        for (int64_t kk = 0; kk < kc; ++kk) {
            const int64_t offset = i0 * rs + (k0 + kk) * cs;
            const REAL *src = a + offset;
            REAL *dst = panel + kk * width;
            int64_t i = 0;
            if (relu_mask)
                for (; i < rows; ++i) dst[i] = FN(relu_grad)(src[i * rs], relu_mask[offset + i * rs]);
            else
                for (; i < rows; ++i) dst[i] = src[i * rs];
            for (; i < width; ++i) dst[i] = 0;
        }
    }
}

/* c (m x n, leading dimension ldc) = act(base + A . B) from packed panels of depth kc: base and
 * act as the micro-kernels' (gemm.h), bias (may be NULL) holding one value per row of c. */
static void FN(gemm_packed)(const cconv_gemm_kernels *kern, int64_t m, int64_t n, int64_t kc,
                            const REAL *apack, const REAL *bpack, REAL *c, int64_t ldc, int accumulate,
                            const REAL *bias, int relu)
{
    const int mr = KERNEL_MR(kern), nr = KERNEL_NR(kern);
    for (int64_t j = 0; j < n; j += nr)
        for (int64_t i = 0; i < m; i += mr)
            UKERNEL(kern)(kc, apack + (i / mr) * kc * mr, bpack + (j / nr) * kc * nr, c + i * ldc + j,
                          ldc, min64(mr, m - i), min64(nr, n - j), accumulate, bias ? bias + i : NULL, relu);
}
