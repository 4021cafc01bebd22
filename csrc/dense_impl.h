/* dense_impl.h: the type-generic body of dense.c (REAL, UREAL, FN and CONFIG defined,
 * gemm_driver.h included first). Not a public header. */

/* c (m x n, leading dimension ldc) = A (m x k) . B (k x n) for strided A(i, p) = a[i*ars + p*acs]
 * and B(p, j) = b[p*brs + j*bcs], each optionally ReLU-masked (pack_panels). C is cut into tiles
 * that threads compute whole, each in a fixed order of k. */
/* Where a work item's packing callbacks read: a strided matrix M, element (i, j) at
 * m[i*rs + j*cs], optionally ReLU-masked (pack_panels). As A it gives rows x depth; as B, columns
 * x depth (M = B^T). */
typedef struct {
    const FN(cconv_gemm_config) *cfg;
    const REAL *m, *mask;
    int64_t rs, cs;
} FN(strided_source);

static void FN(pack_strided)(const void *source, int64_t i0, int64_t rows, int64_t p0, int64_t kc, int width,
                             REAL *out)
{
    const FN(strided_source) *src = (const FN(strided_source) *)source;
    const int64_t at = i0 * src->rs;
    FN(pack_panels)(src->cfg, src->m + at, src->mask ? src->mask + at : NULL, src->rs, src->cs, rows, p0, kc, width,
                    out);
}

/* c (m x n, leading dimension ldc) = A (m x k) . B (k x n) for strided A(i, p) = a[i*ars + p*acs]
 * and B(p, j) = b[p*brs + j*bcs], each optionally ReLU-masked. C is cut into tiles (work items)
 * that threads compute whole with gemm_run, each in a fixed order of k. */
static int FN(matmul)(const FN(cconv_gemm_config) *cfg, int64_t m, int64_t n, int64_t k, const REAL *a,
                      const REAL *amask, int64_t ars, int64_t acs, const REAL *b, const REAL *bmask, int64_t brs,
                      int64_t bcs, REAL *c, int64_t ldc, int threads)
{
    const int mr = cfg->tiles.mr, nr = cfg->tiles.nr;
    if (m == 0 || n == 0) return CCONV_OK;
    if (k == 0) {
        for (int64_t i = 0; i < m; ++i) memset(c + i * ldc, 0, (size_t)n * sizeof(REAL));
        return CCONV_OK;
    }
    const int want = cconv_threads_for(threads, 2.0 * m * n * k, GRAIN_FLOPS);
    int64_t mc = min64(round_up(m, mr), cfg->tiles.mc / mr * mr), nc = min64(round_up(n, nr), cfg->tiles.nc / nr * nr);
    while (ceil_div(m, mc) * ceil_div(n, nc) < 2 * want && nc > nr) nc = round_up(nc / 2, nr);
    while (ceil_div(m, mc) * ceil_div(n, nc) < 2 * want && mc > mr) mc = round_up(mc / 2, mr);
    const int64_t nb = ceil_div(n, nc), items = ceil_div(m, mc) * nb, kc_max = FN(gemm_depth_block)(cfg, k);
    /* One block of rows (a small batch) split into column blocks would have every item pack the
     * same A panels again: then A is packed once, by all threads, before the items. */
    const int shared_a = ceil_div(m, mc) == 1 && nb > 1;
    const int64_t a_rows = round_up(m, mr), kblocks = ceil_div(k, kc_max);
    const int64_t work_size = size_round_up(FN(gemm_workspace)(cfg, k, !shared_a, 1), ALIGN_ELEMS);
    const int t = (int)min64(want, items);
    const FN(strided_source) asrc = {cfg, a, amask, ars, acs};

    REAL *works = FN(workspace_acquire)(size_mul(t, work_size));
    REAL *ashared = shared_a ? FN(workspace_acquire)(size_mul(a_rows, k)) : NULL;
    if (!works || (shared_a && !ashared)) {
        cconv_workspace_release(works);
        cconv_workspace_release(ashared);
        return CCONV_ENOMEM;
    }
#pragma omp parallel num_threads(t)
    {
        REAL *work = works + cconv_thread_id() * work_size;
        int64_t it, kb;
        if (shared_a) {
#pragma omp for schedule(static)
            for (kb = 0; kb < kblocks; ++kb)  /* depth block kb at ashared + a_rows*p0 */
                FN(pack_strided)(&asrc, 0, m, kb * kc_max, min64(kc_max, k - kb * kc_max), mr,
                                 ashared + a_rows * kb * kc_max);
        }
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t i0 = it / nb * mc, j0 = it % nb * nc;
            const FN(strided_source) arows = {cfg, a + i0 * ars, amask ? amask + i0 * ars : NULL, ars, acs};
            const FN(strided_source) bcols = {cfg, b + j0 * bcs, bmask ? bmask + j0 * bcs : NULL, bcs, brs};
            const FN(gemm_problem) problem = {
                .m = min64(mc, m - i0), .n = min64(nc, n - j0), .k = k,
                .a = {.pack = FN(pack_strided), .source = &arows, .packed = shared_a ? ashared : NULL},
                .b = {.pack = FN(pack_strided), .source = &bcols},
                .c = c + i0 * ldc + j0, .ldc = ldc,
            };
            FN(gemm_run)(cfg, &problem, work);
        }
    }
    cconv_workspace_release(ashared);
    cconv_workspace_release(works);
    return CCONV_OK;
}

/* Whether x (n, in), w (in, out) and y (n, out) are arrays whose sizes fit memory. */
static int FN(dense_shape_valid)(int64_t n, int64_t in, int64_t out)
{
    return size_fits(size_product(n, in, 1, 1), sizeof(REAL)) && size_fits(size_product(in, out, 1, 1), sizeof(REAL)) &&
           size_fits(size_product(n, out, 1, 1), sizeof(REAL));
}

int FN(cconv_dense_forward)(int64_t n, int64_t in, int64_t out, const REAL *x, const REAL *w,
                            const REAL *bias, REAL *y, int activation, int threads)
{
    const FN(cconv_gemm_config) *cfg = cconv_gemm_configs_current()->CONFIG;
    if (!FN(dense_shape_valid)(n, in, out)) return CCONV_EINVAL;
    if (FN(matmul)(cfg, n, out, in, x, NULL, in, 1, w, NULL, out, 1, y, out, threads) != CCONV_OK)
        return CCONV_ENOMEM;
    if (bias || activation == CCONV_ACTIVATION_RELU)  /* relu keeps NaN */
        for (int64_t i = 0; i < n; ++i) {
            REAL *row = y + i * out;
            for (int64_t j = 0; j < out; ++j) {
                const REAL v = row[j] + (bias ? bias[j] : 0);
                row[j] = activation == CCONV_ACTIVATION_RELU && v < 0 ? 0 : v;
            }
        }
    return CCONV_OK;
}

int FN(cconv_dense_backward)(int64_t n, int64_t in, int64_t out, const REAL *dy, const REAL *y,
                             const REAL *x, const REAL *w, REAL *dx, REAL *dw, REAL *db, int activation,
                             int threads)
{
    const FN(cconv_gemm_config) *cfg = cconv_gemm_configs_current()->CONFIG;
    const REAL *mask = activation == CCONV_ACTIVATION_RELU ? y : NULL;
    if (!FN(dense_shape_valid)(n, in, out)) return CCONV_EINVAL;
    if (db) {  /* column sums, row by row: every column its own running sum, in a fixed order */
        memset(db, 0, (size_t)out * sizeof(REAL));
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < out; ++j)
                db[j] += mask ? FN(relu_grad)(dy[i * out + j], mask[i * out + j]) : dy[i * out + j];
    }
    /* dx (n, in) = dy (n, out) . w^T;  dw (in, out) = x^T . dy */
    if (dx && FN(matmul)(cfg, n, in, out, dy, mask, out, 1, w, NULL, 1, out, dx, in, threads) != CCONV_OK)
        return CCONV_ENOMEM;
    if (dw && FN(matmul)(cfg, in, out, n, x, NULL, 1, in, dy, mask, out, 1, dw, out, threads) != CCONV_OK)
        return CCONV_ENOMEM;
    return CCONV_OK;
}
