/* conv2d_flat.h: the type-generic stride-1 convolution of conv2d.c, included after
 * gemm_generic.h and before conv2d_generic.h (whose entry points choose it). Not a public header.
 *
 * With stride 1, output pixel (oh, ow) reads input pixel (oh + r*dil_h - pad_top,
 * ow + s*dil_w - pad_left). Copy a block of input rows into a per-thread slab, row t at
 * slab[t*wp + pad_left ...] with wp = W + gap, and zeros in the gap between rows: the gap after a
 * row is the right padding of that row and the left padding of the next, so gap =
 * max(pad_left, pad_right) suffices (wp is at least Q, for padding wider than the filter). Number the block's outputs f = t*wp + ow: then tap (c, r, s)
 * of output f is slab[f + off[c, r, s]], with off = c*plane + r*dil_h*wp + s*dil_w. Row (c, r, s)
 * of the im2col matrix is the slab shifted by a constant, so the micro-kernels read B in place
 * through an offset table (gemm.h) and nothing is packed per pixel. The columns ow >= Q of that
 * numbering are computed and dropped (one of every Q + 1 for a 'same' 3x3 convolution).
 * The gradient of the input is the same computation on dy with the filters transposed and
 * flipped, so it runs here too.
 */

/* dst[j] = src[j] + b for j < len, then max(., 0) with relu (keeping NaN); dst may be src. */
static void FN(add_bias_act)(REAL *dst, const REAL *src, int64_t len, REAL b, int relu)
{
    if (relu)
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + b < 0 ? 0 : src[j] + b;
    else
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] + b;
}

/* Group g's weights (rows x depth, row-major at src + g*rows*depth) for every group, in MR-row
 * panels whose depth blocks of kc_max start at apack + g*a_group + round_up(rows, MR)*k0. */
static void FN(pack_weights)(const REAL *src, int64_t groups, int64_t rows, int64_t depth, int64_t kc_max, int mr,
                             int64_t a_group, REAL *apack)
{
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t k0 = 0; k0 < depth; k0 += kc_max)
            FN(pack_panels)(src + g * rows * depth, NULL, depth, 1, rows, k0, min64(kc_max, depth - k0), mr,
                            apack + g * a_group + round_up(rows, mr) * k0);
}

/* Input rows [ih0, ih0 + rows) of every channel of one image's group into the slab (zero
 * outside the image). With a relu_mask (laid out like x), entries whose mask is <= 0 are copied
 * as 0. Writes within slab[0, cin*plane + pad_left). */
static void FN(fill_slab)(const flat_shape *fs, const REAL *xg, const REAL *maskg, int64_t ih0,
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
            else
                memcpy(dst, xg + src_offset, (size_t)w * sizeof(REAL));
            memset(dst + w, 0, (size_t)(wp - w) * sizeof(REAL));
        }
    }
}

/* c (m x n, leading dimension ldc) = (accumulate ? c : 0) + A . B, A from packed panels of depth
 * kc, row k of B at b + boff[k]. The n columns lie in rows of `width` columns, `period` apart
 * (column j at j / width * period + j % width, in B's rows and in C's), where width is a
 * multiple of NR or a divisor of it that holds whole 64-byte vectors (gemm.h's runs); width = n
 * is one plain row. */
static void FN(gemm_offsets)(const cconv_gemm_kernels *kern, int64_t m, int64_t n, int64_t width, int64_t period,
                             int64_t kc, const REAL *apack, const REAL *b, const int64_t *boff, REAL *c,
                             int64_t ldc, int accumulate)
{
    const int mr = KERNEL_MR(kern), nr = KERNEL_NR(kern);
    const int64_t run = period ? min64(width, nr) : nr;
    int64_t row_start = 0, within = 0;  /* column j sits at row_start + within (no division per strip) */
    for (int64_t j = 0; j < n; j += nr) {
        const int64_t at = row_start + within;
        for (int64_t i = 0; i < m; i += mr)
            UKERNEL_OFF(kern)(kc, apack + (i / mr) * kc * mr, b + at, boff, run, period, c + i * ldc + at, ldc,
                              min64(mr, m - i), min64(nr, n - j), accumulate);
        for (within += nr; within >= width; within -= width) row_start += period;
    }
}

/* y[n, g*cout + k] = act(bias[g*cout + k] + sum over (c, r, s) of A_g[k, (c*R + r)*S + s] times
 * x[n, g*cin + c] at tap (r, s)), stride 1. apack holds group g's A (cout x cin*R*S) at
 * apack + g*a_group, in MR-row panels whose depth blocks of kc_max start at a_rows*k0 (as the
 * forward packs its weights). mask (laid out like x, may be NULL) zeroes x where mask <= 0.
 * bias may be NULL; relu applies max(., 0) (keeping NaN). */
static int FN(conv_flat)(const flat_shape *fs, const REAL *x, const REAL *mask, const REAL *apack,
                         int64_t a_group, int64_t kc_max, const REAL *bias, int relu, REAL *y, int threads)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    const int64_t mr = KERNEL_MR(kern), nr = KERNEL_NR(kern), G = fs->groups;
    const int64_t RS = fs->r * fs->s, CRS = fs->cin * RS, HW = fs->h * fs->w, PQ = fs->p * fs->q;
    const int64_t wp = flat_row_period(fs), halo = (fs->r - 1) * fs->dil_h;
    const int64_t a_rows = round_up(fs->cout, mr);
    if (fs->n == 0 || fs->cout == 0 || PQ == 0) return CCONV_OK;
    const int want = cconv_threads_for(threads, 2.0 * fs->n * G * fs->cout * CRS * PQ, GRAIN_FLOPS);
    int64_t ph, nblk;
    flat_blocks(fs, wp, want, &ph, &nblk);
    const int64_t items = fs->n * G * nblk, plane = (ph + halo) * wp;
    const int64_t slab_size = round_up(fs->cin * plane + wp + nr + (fs->s - 1) * fs->dil_w, ALIGN_ELEMS);
    const int64_t mc = min64(fs->cout, max64(1, FLAT_ROWS / mr) * mr);
    const int64_t ldc = round_up(ph * wp, ALIGN_ELEMS), cbuf_size = round_up(mc * ldc, ALIGN_ELEMS);
    const int t = (int)min64(want, items);
    /* When Q is a multiple of NR, or a divisor of it in whole 64-byte vectors, tiles can cover
     * whole rows and skip the dropped columns (a 16- or 32-pixel-wide image computes no waste). */
    const int64_t vec = 64 / (int64_t)sizeof(REAL);
    const int row_runs = fs->q % nr == 0 || (nr % fs->q == 0 && fs->q % vec == 0);

    int64_t *off = (int64_t *)cconv_workspace_acquire((size_t)CRS * sizeof(int64_t));
    REAL *work = (REAL *)cconv_workspace_acquire((size_t)(t * (slab_size + cbuf_size)) * sizeof(REAL));
    if (!off || !work) {
        cconv_workspace_release(off);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    flat_offsets(fs, wp, plane, 0, off);

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
            FN(fill_slab)(fs, x + x_offset, mask ? mask + x_offset : NULL, oh0 - fs->pad_top, rows + halo, wp,
                          plane, slab);
            for (int64_t m0 = 0; m0 < fs->cout; m0 += mc) {  /* blocks of mc output channels */
                const int64_t m = min64(mc, fs->cout - m0);
                for (int64_t k0 = 0; k0 < CRS; k0 += kc_max) {
                    const int64_t kc = min64(kc_max, CRS - k0);
                    /* With row runs, only the rows' Q columns, skipping the gaps; else one plain row. */
                    FN(gemm_offsets)(kern, m, row_runs ? rows * fs->q : cols, row_runs ? fs->q : cols, row_runs ? wp : 0,
                                     kc, apack + g * a_group + a_rows * k0 + m0 * kc, slab, off + k0, cbuf, ldc, k0 > 0);
                }
                for (int64_t k = 0; k < m; ++k) {  /* drop the columns ow >= Q; bias and ReLU */
                    const int64_t ch = g * fs->cout + m0 + k;
                    const REAL b = bias ? bias[ch] : 0;
                    REAL *dst = y + (n * G * fs->cout + ch) * PQ + oh0 * fs->q;
                    for (int64_t row = 0; row < rows; ++row)
                        FN(add_bias_act)(dst + row * fs->q, cbuf + k * ldc + row * wp, fs->q, b, relu);
                }
            }
        }
    }
    cconv_workspace_release(off);
    cconv_workspace_release(work);
    return CCONV_OK;
}

/* dy rows [oh0, oh0 + rows) of one image's group (cout x P x Q; with a relu_mask, masked) as
 * B panels of width nr in the flat numbering of the block: panel p holds dy[p*nr + j, f] at
 * [f*nr + j] for f = t*wp + ow < rows*wp, zero for ow >= Q and for channels past cout. With
 * sums, sums[k] += the sum of what is packed for channel k (the bias gradient). */
static void FN(pack_dy_flat)(const flat_shape *fs, const REAL *dyg, const REAL *maskg, int64_t oh0, int64_t rows,
                             int64_t wp, int nr, REAL *out, REAL *sums)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    const int64_t cols = rows * wp, PQ = fs->p * fs->q;
    for (int64_t k0 = 0; k0 < fs->cout; k0 += nr) {
        const int64_t live = min64(nr, fs->cout - k0), offset = k0 * PQ + oh0 * fs->q;
        REAL *panel = out + k0 / nr * cols * nr;
        /* The block's rows are contiguous in dy; each lands in its own row of wp columns. */
        TRANSPOSE(kern)(dyg + offset, maskg ? maskg + offset : NULL, PQ, live, rows * fs->q, fs->q, wp, panel, nr,
                        sums ? sums + k0 : NULL);
        for (int64_t t = 0; t < rows; ++t) {
            REAL *row = panel + t * wp * nr;
            for (int64_t u = 0; live < nr && u < fs->q; ++u)  /* channels past cout */
                for (int64_t i = live; i < nr; ++i) row[u * nr + i] = 0;
            memset(row + fs->q * nr, 0, (size_t)((wp - fs->q) * nr) * sizeof(REAL));  /* the gap */
        }
    }
}

/* acc[crs*cout + k] += sum over the block's flat outputs f < cols of slab[off[crs] + f] * dy[k, f]
 * (dy as pack_dy_flat's panels): one image block's share of dw^T, with A read in place from the
 * slab (gemm.h's A-offset micro-kernels). off holds CRS offsets and MR zeros after them. */
static void FN(flat_grad_weight_block)(const cconv_gemm_kernels *kern, int64_t crs_count, int64_t cout,
                                       int64_t cols, const REAL *slab, const int64_t *off, const REAL *dy_panels,
                                       REAL *acc)
{
    const int64_t mr = KERNEL_MR(kern), nr = KERNEL_NR(kern), kc_max = balanced_block(cols, KC_MAX);
    for (int64_t f0 = 0; f0 < cols; f0 += kc_max) {
        const int64_t kc = min64(kc_max, cols - f0);
        for (int64_t p0 = 0; p0 < cout; p0 += nr)
            for (int64_t i0 = 0; i0 < crs_count; i0 += mr)
                UKERNEL_AOFF(kern)(kc, slab + f0, off + i0, dy_panels + p0 * cols + f0 * nr, acc + i0 * cout + p0, cout,
                                   min64(mr, crs_count - i0), min64(nr, cout - p0), 1);
    }
}
