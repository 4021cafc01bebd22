/* gemm_driver.h: the one loop nest that every packed matrix product runs on, its packing
 * routines and its epilogue helpers, shared by conv2d.c and dense.c. Type-generic: included once
 * per element type with REAL, UREAL (the unsigned integer of REAL's size) and FN(name) defined,
 * after gemm_config.h and index_math.h. Not a public header.
 *
 * gemm_run is BLIS's loop nest: for each block of nc columns of C, for each depth block of kc,
 * pack B's block into NR-wide panels; for each block of mc rows, pack A's block into MR-tall
 * panels; then the micro-kernel computes every MR x NR tile. What differs between a
 * convolution's passes and a dense layer is only where A and B come from: a packing callback
 * (im2col fused into packing, so no im2col matrix ever exists), or panels packed once before
 * (a layer's weights). The callers share out independent problems (images, groups, blocks of
 * pixels) among threads, and each thread runs gemm_run on its own workspace. */

/* A workspace of `count` elements (a size from checked_math.h, so CCONV_SIZE_OVERFLOW when it did
 * not fit), or NULL when it cannot be had. */
static REAL *FN(workspace_acquire)(int64_t count)
{
    return (REAL *)cconv_workspace_acquire_elems(count, sizeof(REAL));
}

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
 * config's SIMD transpose. sums (may be NULL) gets each row's sum added: a bias gradient, taken
 * while M is in registers. */
static void FN(transpose_panels)(const FN(cconv_gemm_config) *cfg, const REAL *a, const REAL *relu_mask, int64_t lds,
                                 int64_t m, int64_t kc, int width, REAL *out, REAL *sums)
{
    for (int64_t i0 = 0; i0 < m; i0 += width) {
        const int64_t rows = min64(width, m - i0), offset = i0 * lds;
        REAL *panel = out + (i0 / width) * kc * width;
        cfg->transpose(a + offset, relu_mask ? relu_mask + offset : NULL, lds, rows, kc, kc, 0, panel, width,
                       sums ? sums + i0 : NULL);
        for (int64_t kk = 0; rows < width && kk < kc; ++kk)
            for (int64_t i = rows; i < width; ++i) panel[kk * width + i] = 0;
    }
}

/* Rows [0, m) x columns [k0, k0 + kc) of a strided matrix M, element (i, j) at a[i*rs + j*cs],
 * into panels of `width` rows stored k-major: out[(i / width)*kc*width + kk*width + i % width];
 * rows past m are zero. This is the A-panel layout (width = MR) and, for M = B^T, the
 * B-panel layout (width = NR) of gemm_config.h. With a relu_mask (laid out like M: a ReLU's
 * output), entries whose mask is <= 0 are packed as zero (a NaN output passes its gradient). */
static void FN(pack_panels)(const FN(cconv_gemm_config) *cfg, const REAL *a, const REAL *relu_mask, int64_t rs,
                            int64_t cs, int64_t m, int64_t k0, int64_t kc, int width, REAL *out)
{
    if (cs == 1 && rs != 1) {  /* rows of M are contiguous: a transpose (the SIMD one) */
        FN(transpose_panels)(cfg, a + k0, relu_mask ? relu_mask + k0 : NULL, rs, m, kc, width, out, NULL);
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
            else if (rs == 1)  /* a row of the panel is contiguous in M: a loop the compiler
                                * vectorises (a library call per row of a few elements costs more) */
                for (; i < rows; ++i) dst[i] = src[i];
            else
                for (; i < rows; ++i) dst[i] = src[i * rs];
            for (; i < width; ++i) dst[i] = 0;
        }
    }
}

/* One operand of gemm_run. Either `pack` fills panels of `width` from `source`, for rows
 * [i0, i0 + rows) of A (columns of B) and depth [p0, p0 + kc); or `packed` holds the whole
 * operand packed before, depth block p0 at packed + round_up(rows of A or columns of B, width)*p0
 * (the layout pack_panels gives each depth block). */
typedef void (*FN(gemm_pack_fn))(const void *source, int64_t i0, int64_t rows, int64_t p0, int64_t kc, int width,
                                 REAL *out);
typedef struct {
    FN(gemm_pack_fn) pack;
    const void *source;
    const REAL *packed;
} FN(gemm_operand);

/* C (m x n, leading dimension ldc) = act(base + A (m x k) . B (k x n)): base is C itself with
 * accumulate, else bias (one value per row of C; NULL: zero), and act is max(., 0) with relu
 * (keeping NaN), both on the micro-kernels' stores (gemm_config.h). */
typedef struct {
    int64_t m, n, k;
    FN(gemm_operand) a, b;
    REAL *c;
    int64_t ldc;
    int accumulate;
    const REAL *bias;
    int relu;
} FN(gemm_problem);

/* The depth of gemm_run's blocks for a reduction of k: as few blocks of at most kc as possible,
 * of nearly equal size. Operands packed before must be packed in blocks of this depth. */
static int64_t FN(gemm_depth_block)(const FN(cconv_gemm_config) *cfg, int64_t k)
{
    return balanced_block(k, cfg->tiles.kc);
}

/* The elements of the A block gemm_run packs for a problem of depth k (A not packed before). */
static int64_t FN(gemm_a_block)(const FN(cconv_gemm_config) *cfg, int64_t k)
{
    return size_round_up(size_mul(round_up(cfg->tiles.mc, cfg->tiles.mr), FN(gemm_depth_block)(cfg, k)), 16);
}

/* Elements of workspace one thread needs to run gemm_run on a problem of depth k, 64-byte aligned
 * (panels are read aligned): the A block it packs (unless A was packed before: packs_a = 0), then
 * the B block (unless B was: packs_b = 0). */
static int64_t FN(gemm_workspace)(const FN(cconv_gemm_config) *cfg, int64_t k, int packs_a, int packs_b)
{
    const cconv_gemm_tiles *t = &cfg->tiles;
    const int64_t b_block = size_round_up(size_mul(round_up(t->nc, t->nr), FN(gemm_depth_block)(cfg, k)), 16);
    return size_add(packs_a ? FN(gemm_a_block)(cfg, k) : 0, packs_b ? b_block : 0);
}

/* The tiles of one packed block: c (m x n) = act(base + A . B) from panels of depth kc. */
static void FN(gemm_macro_kernel)(const FN(cconv_gemm_config) *cfg, int64_t m, int64_t n, int64_t kc,
                                  const REAL *apack, const REAL *bpack, REAL *c, int64_t ldc, int accumulate,
                                  const REAL *bias, int relu)
{
    const int mr = cfg->tiles.mr, nr = cfg->tiles.nr;
    for (int64_t j = 0; j < n; j += nr)
        for (int64_t i = 0; i < m; i += mr)
            cfg->gemm(kc, apack + (i / mr) * kc * mr, bpack + (j / nr) * kc * nr, c + i * ldc + j, ldc,
                      min64(mr, m - i), min64(nr, n - j), accumulate, bias ? bias + i : NULL, relu);
}

/* Runs problem p on one thread; `work` holds gemm_workspace(cfg, p->k, A packed here, B packed
 * here) elements. An A operand packed before is read in the same blocks of mc rows as one packed
 * here, so that the block each strip of B meets stays in cache. */
static void FN(gemm_run)(const FN(cconv_gemm_config) *cfg, const FN(gemm_problem) *p, REAL *work)
{
    const cconv_gemm_tiles *t = &cfg->tiles;
    const int64_t kc_max = FN(gemm_depth_block)(cfg, p->k);
    const int64_t mc = round_up(t->mc, t->mr), nc = round_up(t->nc, t->nr);
    REAL *apanels = work, *bpanels = work + (p->a.packed ? 0 : FN(gemm_a_block)(cfg, p->k));
    for (int64_t j0 = 0; j0 < p->n; j0 += nc) {
        const int64_t cols = min64(nc, p->n - j0);
        for (int64_t p0 = 0; p0 < p->k; p0 += kc_max) {
            const int64_t kc = min64(kc_max, p->k - p0);
            const int first = p0 == 0, last = p0 + kc == p->k;
            const REAL *b = p->b.packed ? p->b.packed + round_up(p->n, t->nr) * p0 + j0 * kc : bpanels;
            if (!p->b.packed) p->b.pack(p->b.source, j0, cols, p0, kc, t->nr, bpanels);
            for (int64_t i0 = 0; i0 < p->m; i0 += mc) {
                const int64_t rows = min64(mc, p->m - i0);
                const REAL *a = p->a.packed ? p->a.packed + round_up(p->m, t->mr) * p0 + i0 * kc : apanels;
                if (!p->a.packed) p->a.pack(p->a.source, i0, rows, p0, kc, t->mr, apanels);
                FN(gemm_macro_kernel)(cfg, rows, cols, kc, a, b, p->c + i0 * p->ldc + j0, p->ldc,
                                      p->accumulate || !first, first && !p->accumulate && p->bias ? p->bias + i0 : NULL,
                                      p->relu && last);
            }
        }
    }
}

/* dst[j] = act(src[j] + b) for j < len, act = max(., 0) with relu (keeping NaN); dst may be src.
 * The epilogue of results that do not come straight from a micro-kernel's stores. */
static inline void FN(add_bias_act)(REAL *dst, const REAL *src, int64_t len, REAL b, int relu)
{
    if (relu)
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + b < 0 ? 0 : src[j] + b;
    else
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + b;
}
