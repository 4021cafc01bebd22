/* conv2d_implicit_gemm.h: the implicit GEMM algorithm (CCONV_CONV2D_IMPLICIT_GEMM): forward and
 * the weight gradient's work item at any stride, gradient of the input at stride 1. Type-generic, included by
 * conv2d.c per element type after gemm_driver.h and conv2d_gemm.h.
 *
 * With stride 1, output pixel (oh, ow) reads input pixel (oh + r*dil_h - pad_top,
 * ow + s*dil_w - pad_left). Copy a block of input rows into a per-thread slab, row t at
 * slab[t*wp + pad_left ...] with wp = W + gap, and zeros in the gap between rows: the gap after a
 * row is the right padding of that row and the left padding of the next, so gap =
 * max(pad_left, pad_right) suffices (wp is at least Q, for padding wider than the filter).
 * Number the block's outputs f = t*wp + ow: then tap (c, r, s) of output f is
 * slab[f + off[c, r, s]], with off = c*plane + r*dil_h*wp + s*dil_w. Row (c, r, s) of the
 * im2col matrix is the slab shifted by a constant, so the micro-kernels read it in place through
 * an offset table (gemm_config.h) and nothing is packed per pixel: the offset kernel as B (filters x
 * pixels tiles), the pixel kernel as A (pixels x filters). Where tiles can follow the image rows
 * (gemm_config.h's runs, or rows of whole pixel tiles) they skip the columns ow >= Q; elsewhere those
 * are computed and dropped (one of every Q + 1 for a 'same' 3x3 convolution). The gradient of
 * the input is the same computation on dy with the filters transposed and flipped, so it runs
 * here too; the weight gradient reads the slab row by row (implicit_gemm_weight_block).
 *
 * With stride > 1, output (oh, ow) reads padded input row oh*stride_h + r*dil_h: split
 * r*dil_h = b*stride_h + phase, and it is row oh + b of the input rows of that phase (those
 * congruent to it modulo stride_h); columns likewise. The slab keeps, per channel, one plane per
 * phase in use (conv2d_plan.h's slab_layout), so tap (c, r, s) is again the slab shifted by a
 * constant, off = c*plane + phase index*phase_plane + b*wp + a, and the same micro-kernels run
 * strided convolutions without packing. Those planes are gathered element by element
 * (fill_slab_phases), with every padding column written.
 */

/* Input rows [ih0, ih0 + rows) of every channel of one image's group into the slab (zero
 * outside the image). With a relu_mask (laid out like x), entries whose mask is <= 0 are copied
 * as 0. Writes within slab[0, cin*plane + pad_left). */
static void FN(fill_slab)(const slab_shape *fs, const REAL *xg, const REAL *maskg, int64_t ih0,
                          int64_t rows, int64_t wp, int64_t plane, REAL *slab)
{
    const int64_t pl = fs->pad_left, w = fs->w;
    for (int64_t c = 0; c < fs->cin; ++c) {
        memset(slab + c * plane, 0, (size_t)pl * sizeof(REAL));  /* the first row's left padding */
        for (int64_t t = 0; t < rows; ++t) {
            const int64_t ih = ih0 + t, src_offset = (c * fs->h + ih) * w;
            REAL *dst = slab + c * plane + t * wp + pl;  /* then W pixels and the gap */
            if (ih < 0 || ih >= fs->h) {
                memset(dst, 0, (size_t)wp * sizeof(REAL));
                continue;
            }
            if (maskg)
                for (int64_t u = 0; u < w; ++u) dst[u] = FN(relu_grad)(xg[src_offset + u], maskg[src_offset + u]);
            else if (w > 0)  /* an empty image's x may be NULL */
                memcpy(dst, xg + src_offset, (size_t)w * sizeof(REAL));
            memset(dst + w, 0, (size_t)(wp - w) * sizeof(REAL));
        }
    }
}

/* c (m x n, leading dimension ldc) = act(base + A . B) (gemm_packed's), A from packed panels of
 * depth kc, row k of B at b + boff[k]. B's n columns lie in rows of `width` columns, `period` apart
 * (column j at j / width * period + j % width), where width is a multiple of NR or a divisor of
 * it that holds whole 64-byte vectors (gemm_config.h's runs); width = n is one plain row. C's are
 * contiguous. */
static void FN(gemm_offsets)(const FN(cconv_gemm_config) *cfg, int64_t m, int64_t n, int64_t width, int64_t period,
                             int64_t kc, const REAL *apack, const REAL *b, const int64_t *boff, REAL *c,
                             int64_t ldc, int accumulate, const REAL *bias, int relu)
{
    const int mr = cfg->tiles.mr, nr = cfg->tiles.nr;
    const int64_t run = period ? min64(width, nr) : nr;
    int64_t row_start = 0, within = 0;  /* column j sits at row_start + within (no division per strip) */
    for (int64_t j = 0; j < n; j += nr) {
        const int64_t at = row_start + within;
        for (int64_t i = 0; i < m; i += mr)
            cfg->gemm_boff(kc, apack + (i / mr) * kc * mr, b + at, boff, run, period, c + i * ldc + j, ldc,
                              min64(mr, m - i), min64(nr, n - j), accumulate, bias ? bias + i : NULL, relu);
        for (within += nr; within >= width; within -= width) row_start += period;
    }
}

/* The same block with the pixel micro-kernel (gemm_config.h): c holds the block's outputs pixel-major,
 * filter panel p (NR_PIX filters) at c + p*ldp*NR_PIX and column j of the n at + j*NR_PIX (so
 * rows of whole tiles are stored without their gaps); wpack holds the m filters as NR_PIX-wide
 * panels of depth kc; bias (may be NULL) holds one value per filter, and c gets act(base + the
 * product) as in gemm_offsets. Tiles of MR_PIX pixels walk the n columns as gemm_offsets walks
 * its (rows of `width`, `period` apart; width a multiple of MR_PIX or width = n). */
static void FN(gemm_pixels)(const FN(cconv_gemm_config) *cfg, int64_t m, int64_t n, int64_t width, int64_t period,
                            int64_t kc, const REAL *wpack, const REAL *slab, const int64_t *off, REAL *c,
                            int64_t ldp, int accumulate, const REAL *bias, int relu)
{
    const int mr = cfg->tiles.pix_mr, nr = cfg->tiles.pix_nr;
    for (int64_t p0 = 0; p0 < m; p0 += nr) {
        const REAL *panel = wpack + (p0 / nr) * kc * nr;
        REAL *cp = c + (p0 / nr) * ldp * nr;
        int64_t row_start = 0, within = 0;
        for (int64_t j = 0; j < n; j += mr) {
            const int64_t at = row_start + within;
            cfg->gemm_pix(kc, slab + at, off, panel, cp + j * nr, nr, min64(mr, n - j), min64(nr, m - p0),
                              accumulate, bias ? bias + p0 : NULL, relu);
            for (within += mr; within >= width; within -= width) row_start += period;
        }
    }
}

/* dst[k*ldd + t*len + i] = c[panel(k) + t*step + i*NR_PIX + k % NR_PIX] for k < m, t < runs, i < len:
 * gemm_pixels' block (panel(k) = (k / NR_PIX)*ldp*NR_PIX) back to channel-major rows, eight channels
 * at a time, so that each transpose writes eight output rows front to back (all NR_PIX at once,
 * PQ apart, would fight over the same cache sets). */
static void FN(unpack_pixels)(const FN(cconv_gemm_config) *cfg, const REAL *c, int64_t ldp, int64_t m, int64_t runs,
                              int64_t len, int64_t step, REAL *dst, int64_t ldd)
{
    const int64_t nr = cfg->tiles.pix_nr;
    for (int64_t k0 = 0; k0 < m; k0 += 8)
        for (int64_t t = 0; t < runs; ++t)
            cfg->transpose(c + (k0 / nr) * ldp * nr + t * step + k0 % nr, NULL, nr, len, min64(8, m - k0), 8, 0,
                            dst + k0 * ldd + t * len, ldd, NULL);
}

/* Rows [oh0, oh0 + rows) of every phase plane in use of one image's group into the slab
 * (layout L): plane row t of phase (ph, pw) holds padded input row (oh0 + t)*stride_h + ph and
 * its padded columns i*stride_w + pw, i < wp (zero outside the image). */
static void FN(fill_slab_phases)(const slab_shape *fs, const slab_layout *L, const REAL *xg, int64_t oh0,
                                 int64_t rows, REAL *slab)
{
    const int64_t sh = fs->stride_h, sw = fs->stride_w, wp = L->wp;
    for (int64_t c = 0; c < fs->cin; ++c)
        for (int64_t ph = 0; ph < sh; ++ph) {
            if (L->phase_h[ph] < 0) continue;
            for (int64_t pw = 0; pw < sw; ++pw) {
                if (L->phase_w[pw] < 0) continue;
                REAL *plane = slab + c * L->plane + (L->phase_h[ph] * L->phases_w + L->phase_w[pw]) * L->phase_plane;
                /* columns i in [lo, hi) are inside the image: 0 <= i*sw + pw - pad_left < W */
                const int64_t lo = clamp64(ceil_div(max64(fs->pad_left - pw, 0), sw), 0, wp);
                const int64_t hi = clamp64(ceil_div(max64(fs->w + fs->pad_left - pw, 0), sw), lo, wp);
                for (int64_t t = 0; t < rows; ++t) {
                    const int64_t ih = (oh0 + t) * sh + ph - fs->pad_top;
                    REAL *dst = plane + t * wp;
                    if (ih < 0 || ih >= fs->h) {
                        memset(dst, 0, (size_t)wp * sizeof(REAL));
                        continue;
                    }
                    const REAL *src = xg + (c * fs->h + ih) * fs->w;
                    memset(dst, 0, (size_t)lo * sizeof(REAL));
                    for (int64_t i = lo; i < hi; ++i) dst[i] = src[i * sw + pw - fs->pad_left];
                    memset(dst + hi, 0, (size_t)(wp - hi) * sizeof(REAL));
                }
            }
        }
}

/* Rows [oh0, oh0 + rows) of one block's outputs: their input rows (and the halo) into the slab. */
static void FN(fill_block)(const slab_shape *fs, const slab_layout *L, const REAL *xg, const REAL *maskg,
                           int64_t oh0, int64_t rows, REAL *slab)
{
    if (fs->stride_h > 1 || fs->stride_w > 1)
        FN(fill_slab_phases)(fs, L, xg, oh0, rows + L->halo, slab);
    else
        FN(fill_slab)(fs, xg, maskg, oh0 - fs->pad_top, rows + L->halo, L->wp, L->plane, slab);
}

/* Output rows per block (*ph) and blocks per image (*nblk): about SLAB_COLS flat columns per
 * block, then more (smaller) blocks only while the items would not share out evenly among `want`
 * threads: the busiest thread more than 1/8 over the mean (a batch of one image on 2 threads).
 * Every block copies R - 1 rows of halo, so blocks stay as large as that allows: 64 images on 16
 * threads keep whole images. */
static void FN(slab_blocks)(const slab_shape *fs, int64_t wp, int want, int64_t *ph, int64_t *nblk)
{
    const int64_t images = fs->n * fs->groups;
    int64_t blocks = ceil_div(fs->p, clamp64(SLAB_COLS / wp, 1, fs->p));
    while (blocks < fs->p && 8 * ceil_div(images * blocks, want) * want > 9 * images * blocks) ++blocks;
    *ph = ceil_div(fs->p, blocks);
    *nblk = ceil_div(fs->p, *ph);
}

/* off[(c*R + r)*S + s] = where tap (c, r, s) of flat output 0 sits in a slab of layout L; then
 * `pad` zeros (for the rows of partial micro-tiles). */
static void FN(slab_offsets)(const slab_shape *fs, const slab_layout *L, int64_t pad, int64_t *off)
{
    const int64_t RS = fs->r * fs->s, CRS = fs->cin * RS;
    for (int64_t crs = 0; crs < CRS; ++crs) {
        const int64_t rh = crs % RS / fs->s * fs->dil_h, sw = crs % fs->s * fs->dil_w;
        const int64_t phase = L->phase_h[rh % fs->stride_h] * L->phases_w + L->phase_w[sw % fs->stride_w];
        off[crs] = crs / RS * L->plane + phase * L->phase_plane + rh / fs->stride_h * L->wp + sw / fs->stride_w;
    }
    for (int64_t i = 0; i < pad; ++i) off[CRS + i] = 0;
}

/* y[n, g*cout + k] = act(bias[g*cout + k] + sum over (c, r, s) of A_g[k, (c*R + r)*S + s] times
 * x[n, g*cin + c] at tap (r, s)). apack holds group g's A (cout x cin*R*S) at
 * apack + g*a_group, packed by pack_weights in panels of `width` rows (the pixel kernel's NR or
 * the B-offset kernel's MR, as plan says) whose depth blocks of kc_max start at
 * round_up(cout, width)*k0. mask (laid out like x, may be NULL) zeroes x where mask <= 0. bias
 * may be NULL; relu applies max(., 0) (keeping NaN). */
static int FN(implicit_gemm_run)(const FN(cconv_gemm_config) *cfg, const slab_shape *fs, int pix, const REAL *x,
                                 const REAL *mask, const REAL *apack, int64_t a_group, int64_t kc_max,
                                 const REAL *bias, int relu, REAL *y, int threads)
{
    const int64_t nr = cfg->tiles.nr, G = fs->groups;
    const int64_t mr_pix = cfg->tiles.pix_mr, nr_pix = cfg->tiles.pix_nr;
    const int64_t RS = fs->r * fs->s, CRS = fs->cin * RS, HW = fs->h * fs->w, PQ = fs->p * fs->q;
    const int64_t wp = slab_row_period(fs);
    const int64_t width = pix ? nr_pix : cfg->tiles.mr, a_rows = round_up(fs->cout, width);
    if (fs->n == 0 || fs->cout == 0 || PQ == 0) return CCONV_OK;
    const int want = cconv_threads_for(threads, 2.0 * fs->n * G * fs->cout * CRS * PQ, GRAIN_FLOPS);
    int64_t ph, nblk;
    FN(slab_blocks)(fs, wp, want, &ph, &nblk);
    const slab_layout L = slab_layout_make(fs, ph);
    const int64_t items = fs->n * G * nblk;
    /* the slab, and what the taps of a block's last flat column read past it */
    const int64_t slab_size = size_round_up(
        size_add(size_add(size_mul(fs->cin, L.plane), wp), max64(nr, mr_pix) + (fs->s - 1) * fs->dil_w), ALIGN_ELEMS);
    const int64_t mc = min64(fs->cout, max64(1, SLAB_ROWS / width) * width);
    /* cbuf: mc rows of ldc flat columns (B-offset kernel), or round_up(mc, NR_PIX) filters of ldc
     * flat columns pixel-major (pixel kernel; its tiles may run MR_PIX - 1 columns past the block) */
    const int64_t ldc = size_round_up(size_add(size_mul(ph, wp), pix ? mr_pix : 0), ALIGN_ELEMS);
    const int64_t cbuf_size = size_round_up(size_mul(round_up(mc, width), ldc), ALIGN_ELEMS);
    const int t = (int)min64(want, items);
    /* Tiles cover whole rows, skipping the dropped columns, when Q suits the kernel's tile
     * (gemm_config.h's runs for the B-offset kernel, rows of whole tiles for the pixel kernel);
     * else one plain row. */
    const int row_runs = pix ? fs->q % mr_pix == 0 : slab_offset_row_runs(fs, &cfg->tiles, (int)sizeof(REAL));

    int64_t *off = (int64_t *)cconv_workspace_acquire_elems(CRS, sizeof(int64_t));
    REAL *work = FN(workspace_acquire)(size_mul(t, size_add(slab_size, cbuf_size)));
    if (!off || !work) {
        cconv_workspace_release(off);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    FN(slab_offsets)(fs, &L, 0, off);

#pragma omp parallel num_threads(t)
    {
        REAL *slab = work + cconv_thread_id() * (slab_size + cbuf_size), *cbuf = slab + slab_size;
        int64_t it;
        /* Reads past a short block's rows see this thread's earlier blocks or these zeros; they
         * only feed dropped columns. */
        memset(slab, 0, (size_t)slab_size * sizeof(REAL));
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t blk = it % nblk, g = (it / nblk) % G, n = it / (nblk * G);
            const int64_t oh0 = blk * ph, rows = min64(ph, fs->p - oh0), cols = rows * wp;
            const int64_t x_offset = (n * G + g) * fs->cin * HW;
            FN(fill_block)(fs, &L, x + x_offset, mask ? mask + x_offset : NULL, oh0, rows, slab);
            for (int64_t m0 = 0; m0 < fs->cout; m0 += mc) {  /* blocks of mc output channels */
                const int64_t m = min64(mc, fs->cout - m0);
                const int64_t n_cols = row_runs ? rows * fs->q : cols, run = row_runs ? fs->q : cols;
                REAL *dst = y + (n * G * fs->cout + g * fs->cout + m0) * PQ + oh0 * fs->q;
                /* Row runs of the offset kernel write straight into y, bias and ReLU with the stores
                 * (which spread over the work instead of one burst of cache misses at the end); the
                 * pixel kernel's tiles (bias and ReLU with theirs) and the offset kernel's gapped
                 * rows go through cbuf. */
                const int in_place = row_runs && !pix;
                for (int64_t k0 = 0; k0 < CRS; k0 += kc_max) {
                    const int64_t kc = min64(kc_max, CRS - k0);
                    const REAL *a = apack + g * a_group + a_rows * k0 + m0 * kc;
                    if (pix)
                        FN(gemm_pixels)(cfg, m, n_cols, run, row_runs ? wp : 0, kc, a, slab, off + k0, cbuf, ldc,
                                        k0 > 0, k0 == 0 && bias ? bias + g * fs->cout + m0 : NULL,
                                        relu && k0 + kc == CRS);
                    else
                        FN(gemm_offsets)(cfg, m, n_cols, run, row_runs ? wp : 0, kc, a, slab, off + k0,
                                         in_place ? dst : cbuf, in_place ? PQ : ldc, k0 > 0,
                                         in_place && k0 == 0 && bias ? bias + g * fs->cout + m0 : NULL,
                                         in_place && relu && k0 + kc == CRS);
                }
                if (pix)  /* transpose the kept columns into place */
                    FN(unpack_pixels)(cfg, cbuf, ldc, m, row_runs ? 1 : rows, row_runs ? rows * fs->q : fs->q,
                                      wp * nr_pix, dst, PQ);
                for (int64_t k = 0; !in_place && !pix && k < m; ++k) {  /* bias, ReLU; drop columns ow >= Q */
                    const REAL b = bias ? bias[g * fs->cout + m0 + k] : 0;
                    for (int64_t row = 0; row < rows; ++row)
                        FN(add_bias_act)(dst + k * PQ + row * fs->q, cbuf + k * ldc + row * wp, fs->q, b, relu);
                }
            }
        }
    }
    cconv_workspace_release(off);
    cconv_workspace_release(work);
    return CCONV_OK;
}

/* acc[crs*cout + k] += sum over the block's outputs j < rows*q (rows of q, wp apart in the slab)
 * of slab[off[crs] + (j / q)*wp + j % q] * dy[k, j]: one image block's share of dw^T, with A read
 * in place from the slab in runs of one image row (gemm_config.h's A-offset micro-kernels) and dy as
 * transpose_panels' NR-wide panels of its compact rows. off holds CRS offsets and MR zeros. */
static void FN(implicit_gemm_weight_block)(const FN(cconv_gemm_config) *cfg, int64_t crs_count, int64_t cout,
                                       int64_t rows, int64_t q, int64_t wp, const REAL *slab, const int64_t *off,
                                       const REAL *dy_panels, REAL *acc)
{
    const int64_t mr = cfg->tiles.mr, nr = cfg->tiles.nr, cols = rows * q;
    const int64_t kc_max = balanced_block(rows, max64(1, cfg->tiles.kc / q)) * q;  /* whole rows per depth block */
    for (int64_t f0 = 0; f0 < cols; f0 += kc_max) {
        const int64_t kc = min64(kc_max, cols - f0);
        for (int64_t p0 = 0; p0 < cout; p0 += nr)
            for (int64_t i0 = 0; i0 < crs_count; i0 += mr)
                cfg->gemm_aoff(kc, slab + f0 / q * wp, off + i0, q, wp, dy_panels + p0 * cols + f0 * nr,
                                   acc + i0 * cout + p0, cout, min64(mr, crs_count - i0), min64(nr, cout - p0), 1,
                                   NULL, 0);
    }
}

/* Whether no element of a[0..count) is an infinity or a NaN (all exponent bits set). */
static int FN(all_finite)(const REAL *a, int64_t count)
{
    const UREAL exponent = REAL_EXPONENT_BITS;
    UREAL bad = 0;
    for (int64_t i = 0; i < count; ++i) {
        UREAL bits;
        memcpy(&bits, a + i, sizeof bits);
        bad |= (UREAL)((bits & exponent) == exponent);
    }
    return !bad;
}

static int FN(implicit_gemm_forward)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                     const conv2d_plan *plan, const REAL *x, const REAL *w, const REAL *bias, REAL *y,
                                     int relu, int threads)
{
    const int pix = plan->pixel_kernel;
    const slab_shape fs = conv2d_forward_slab(sh);
    const int width = pix ? cfg->tiles.pix_nr : cfg->tiles.mr;
    const int64_t G = sh->groups, Kg = sh->k / G, CRS = sh->c / G * sh->r * sh->s;
    const int64_t kc_max = FN(gemm_depth_block)(cfg, CRS);
    const int64_t a_group = size_round_up(size_mul(round_up(Kg, width), CRS), ALIGN_ELEMS);
    REAL *apack = FN(workspace_acquire)(size_mul(G, a_group));
    if (!apack) return CCONV_ENOMEM;
    FN(pack_weights)(cfg, w, G, Kg, CRS, kc_max, width, a_group, apack);
    const int status = FN(implicit_gemm_run)(cfg, &fs, pix, x, NULL, apack, a_group, kc_max, bias, relu, y, threads);
    cconv_workspace_release(apack);
    return status;
}

/* dx = conv(mask(dy), w transposed to (C_g, K_g) and flipped) (conv2d_grad_input_slab). The
 * padding of dy meets every filter tap here, where the GEMM skips it: 0 times a non-finite weight
 * would put NaN where torch (and the GEMM) has a number, so such weights run the GEMM. */
static int FN(implicit_gemm_grad_input)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                        const conv2d_plan *plan, const REAL *dy, const REAL *relu_y, const REAL *w,
                                        REAL *dx, int threads)
{
    const int pix = plan->pixel_kernel;
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, RS = sh->r * sh->s;
    if (!FN(all_finite)(w, sh->k * Cg * RS)) {
        const conv2d_plan gemm = {CCONV_CONV2D_GEMM, 0, 0, 1, 0};
        return FN(gemm_grad_input)(cfg, sh, &gemm, dy, relu_y, w, dx, threads);
    }
    const slab_shape fs = conv2d_grad_input_slab(sh);
    const int width = pix ? cfg->tiles.pix_nr : cfg->tiles.mr;
    const int64_t depth = Kg * RS, kc_max = FN(gemm_depth_block)(cfg, depth);
    const int64_t a_group = size_round_up(size_mul(round_up(Cg, width), depth), ALIGN_ELEMS);
    REAL *wt = FN(workspace_acquire)(size_mul(size_mul(G, Cg), depth));
    REAL *apack = FN(workspace_acquire)(size_mul(G, a_group));
    int status = CCONV_ENOMEM;
    if (wt && apack) {
        /* wt[g, c, k, r, s] = w[g*Kg + k, c, R-1-r, S-1-s] */
        for (int64_t g = 0; g < G; ++g)
            for (int64_t c = 0; c < Cg; ++c)
                for (int64_t k = 0; k < Kg; ++k)
                    for (int64_t rs = 0; rs < RS; ++rs)
                        wt[((g * Cg + c) * Kg + k) * RS + rs] = w[((g * Kg + k) * Cg + c) * RS + RS - 1 - rs];
        FN(pack_weights)(cfg, wt, G, Cg, depth, kc_max, width, a_group, apack);
        status = FN(implicit_gemm_run)(cfg, &fs, pix, dy, relu_y, apack, a_group, kc_max, NULL, 0, dx, threads);
    }
    cconv_workspace_release(wt);
    cconv_workspace_release(apack);
    return status;
}
