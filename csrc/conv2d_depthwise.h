/* conv2d_depthwise.h: the direct depthwise algorithm (CCONV_CONV2D_DEPTHWISE), groups == C: input
 * channel c alone feeds its m = K / C filters k = c*m + j. Forward, gradient of the input and
 * gradient of the weights (and of the bias). Type-generic, included by conv2d.c per element type
 * after conv2d_grad_weight.h.
 *
 * A depthwise convolution does only R*S multiply-adds per output, too few to hide its memory
 * traffic, so it runs plane by plane and streams x and y once. A work item copies the rows of one
 * input plane that a block of output rows reads into a per-thread zero-padded slab (bounded by
 * DW_SLAB_ELEMS, so that it stays in cache, plus ALIGN_ELEMS of slack that the row kernels' loads
 * may run into); each output row is then R*S shifted multiply-adds of
 * slab rows, vectorised along the row (the config's dwconv_rows, gemm_config.h). With a column
 * stride sw, each slab row is stored as sw phases (padded columns ph, ph + sw, ph + 2*sw, ... side
 * by side), so that the columns a tap reads for consecutive outputs are contiguous.
 *   forward         items (image, channel, block of output rows); the channel's m filters share
 *                   the slab.
 *   gradient of x   stride 1: the same gather on dy, the channel's m dy planes in one slab and the
 *                   filters flipped (the full correlation). Strided: per class of rows and columns
 *                   modulo the strides, a stride-1 gather with the taps that reach that class (the
 *                   phases of the filter) into a padded dx plane, then cropped into dx. With a
 *                   non-finite weight (whose products with dy's zero padding would put NaN where
 *                   the other algorithms have numbers), each dy row is instead scattered into the
 *                   zeroed plane (dwconv_scatter).
 *   gradient of w   items are channels: each thread sums whole channels over every image, in a
 *                   fixed order (deterministic, no private copies to add); each tap is a dot
 *                   product of dy rows with shifted slab rows (dwconv_dots).
 */

#ifndef CCONV_CONV2D_DEPTHWISE_GEOMETRY
#define CCONV_CONV2D_DEPTHWISE_GEOMETRY

/* A gather over zero-padded planes: each output plane (p x q) reads `planes` source planes
 * (h x w) at padded row oh*stride_h + r*dil_h and column ow*stride_w + s*dil_w, where source pixel
 * (0, 0) sits at padded (pad_top, pad_left) (negative: the source is cropped). */
typedef struct {
    int64_t planes, h, w, p, q;
    int64_t r, s, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int64_t width;           /* padded columns the outputs read: (q - 1)*stride_w + (s - 1)*dil_w + 1 */
    int64_t phase_len;       /* a slab row is stride_w phases of phase_len columns */
    int64_t row_len;         /* stride_w * phase_len */
    int64_t rows_per_block;  /* output rows per block */
    int64_t blocks;          /* blocks per output plane */
    int64_t slab_rows;       /* slab rows per source plane: what a block of rows_per_block reads */
} dw_geometry;

static dw_geometry dw_geometry_make(int64_t planes, int64_t h, int64_t w, int64_t p, int64_t q, int64_t r,
                                    int64_t s, int64_t stride_h, int64_t stride_w, int64_t dil_h, int64_t dil_w,
                                    int64_t pad_top, int64_t pad_left)
{
    dw_geometry g;
    g.planes = planes; g.h = h; g.w = w; g.p = p; g.q = q;
    g.r = r; g.s = s; g.stride_h = stride_h; g.stride_w = stride_w; g.dil_h = dil_h; g.dil_w = dil_w;
    g.pad_top = pad_top; g.pad_left = pad_left;
    g.width = (q - 1) * stride_w + (s - 1) * dil_w + 1;
    g.phase_len = ceil_div(g.width, stride_w);
    g.row_len = stride_w * g.phase_len;
    g.rows_per_block = p;
    g.blocks = p > 0 ? 1 : 0;
    g.slab_rows = (p - 1) * stride_h + (r - 1) * dil_h + 1;
    return g;
}

/* Slab rows that `rows` output rows read. */
static int64_t dw_slab_rows(const dw_geometry *g, int64_t rows)
{
    return (rows - 1) * g->stride_h + (g->r - 1) * g->dil_h + 1;
}

/* Blocks of output rows: as many rows as keep the slab within DW_SLAB_ELEMS (at least one), then
 * smaller blocks only while `items` planes' blocks would not share out evenly among `want` threads
 * (the busiest more than 1/8 over the mean: a batch of one image with few channels). */
static void dw_geometry_block(dw_geometry *g, int64_t items, int want)
{
    if (g->p == 0) return;
    const int64_t per_row = size_mul(g->planes, g->row_len), halo = (g->r - 1) * g->dil_h + 1;
    const int64_t fit = DW_SLAB_ELEMS / per_row - halo;
    const int64_t most = clamp64(fit < 0 ? 1 : fit / g->stride_h + 1, 1, g->p);
    int64_t blocks = ceil_div(g->p, most);
    while (blocks < g->p && 8 * ceil_div(items * blocks, want) * want > 9 * items * blocks) ++blocks;
    g->rows_per_block = ceil_div(g->p, blocks);
    g->blocks = ceil_div(g->p, g->rows_per_block);
    g->slab_rows = dw_slab_rows(g, g->rows_per_block);
}

/* Planes per work item when a block is a whole plane of `plane_size` slab elements: several small
 * ones (up to DW_GROUP_PLANES, within DW_GROUP_ELEMS together), so that the item copies all of them
 * before the row kernels read the first (their stores are done by then, not still in flight under
 * the kernels' wider loads) and the per-item costs are shared; but at least 8 items per thread of
 * `want` where `planes` allow, so that they still share out evenly. */
static int64_t dw_plane_group(const dw_geometry *g, int64_t plane_size, int64_t planes, int want)
{
    if (g->blocks != 1) return 1;
    const int64_t fit = clamp64(DW_GROUP_ELEMS / plane_size, 1, DW_GROUP_PLANES);
    return clamp64(planes / (8 * (int64_t)want), 1, fit);
}

/* off[(pl*R + r)*S + s] = where tap (pl, r, s) of output (0, 0) sits in the slab. */
static void dw_tap_offsets(const dw_geometry *g, int64_t *off)
{
    for (int64_t pl = 0; pl < g->planes; ++pl)
        for (int64_t r = 0; r < g->r; ++r)
            for (int64_t s = 0; s < g->s; ++s) {
                const int64_t col = s * g->dil_w;
                off[(pl * g->r + r) * g->s + s] = (pl * g->slab_rows + r * g->dil_h) * g->row_len +
                                                  col % g->stride_w * g->phase_len + col / g->stride_w;
            }
}

/* Phase columns [lo0, hi0) of phase 0 and [lo1, hi1) of phase 1 that both phases share: the
 * columns e that move as pairs (2e + base, 2e + base + 1). */
static void dw_phase_pairs(int64_t lo0, int64_t hi0, int64_t lo1, int64_t hi1, int64_t *lo, int64_t *hi)
{
    *lo = max64(lo0, lo1);
    *hi = max64(*lo, min64(hi0, hi1));
}

#endif

/* d[2e] = s0[e] and d[2e + 1] = s1[e] for e < n: two column phases back into a row. */
static void FN(dw_merge_phases)(REAL *d, const REAL *s0, const REAL *s1, int64_t n)
{
    for (int64_t e = 0; e < n; ++e) {
        d[2 * e] = s0[e];
        d[2 * e + 1] = s1[e];
    }
}

/* Padded rows [u0, u0 + rows) of the source planes into the slab, plane pl's row t at
 * slab + (pl*slab_rows + t)*row_len in phases. Source plane pl is at src + offset + pl*plane_stride
 * (mask, laid out like src, may be NULL: entries whose mask is <= 0 are copied as 0); src is only
 * read where the plane has pixels (it may be NULL for an empty one). The columns of a row that
 * fall outside the source are the same in every row and block: the slab is zeroed once per call
 * and nothing writes them, so only the source's columns are copied (rows outside it are zeroed
 * whole, as a row of another block may have held pixels). */
static void FN(dw_fill)(const FN(cconv_gemm_config) *cfg, const dw_geometry *g, const REAL *src, const REAL *mask,
                        int64_t offset, int64_t plane_stride, int64_t u0, int64_t rows, REAL *slab)
{
    const int64_t sw = g->stride_w, len = g->phase_len, pad = g->pad_left;
    /* the slab rows whose source rows are in the plane: [t0, t1) */
    const int64_t t0 = clamp64(g->pad_top - u0, 0, rows), t1 = g->w ? clamp64(g->pad_top + g->h - u0, t0, rows) : t0;
    for (int64_t pl = 0; pl < g->planes; ++pl) {
        REAL *plane = slab + pl * g->slab_rows * g->row_len;
        const int64_t at = offset + pl * plane_stride + (u0 + t0 - g->pad_top) * g->w;  /* source of row t0 */
        memset(plane, 0, (size_t)(t0 * g->row_len) * sizeof(REAL));
        memset(plane + t1 * g->row_len, 0, (size_t)((rows - t1) * g->row_len) * sizeof(REAL));
        if (t1 == t0) continue;
        if (sw == 2 && !mask) {  /* the pairs by the config's split (vectorised), the odd ends one by one */
            int64_t lo0, hi0, lo1, hi1, lo, hi;
            valid_outputs(-pad, 2, g->w, len, &lo0, &hi0);
            valid_outputs(1 - pad, 2, g->w, len, &lo1, &hi1);
            dw_phase_pairs(lo0, hi0, lo1, hi1, &lo, &hi);
            for (int64_t t = t0; t < t1; ++t) {
                REAL *dst = plane + t * g->row_len;
                const REAL *row = src + at + (t - t0) * g->w;
                if (hi > lo) cfg->dwconv_split(hi - lo, row + (2 * lo - pad), dst + lo, dst + len + lo);
                for (int64_t e = lo0; e < min64(lo, hi0); ++e) dst[e] = row[2 * e - pad];
                for (int64_t e = max64(hi, lo0); e < hi0; ++e) dst[e] = row[2 * e - pad];
                for (int64_t e = lo1; e < min64(lo, hi1); ++e) dst[len + e] = row[2 * e + 1 - pad];
                for (int64_t e = max64(hi, lo1); e < hi1; ++e) dst[len + e] = row[2 * e + 1 - pad];
            }
            continue;
        }
        for (int64_t ph = 0; ph < sw; ++ph) {
            int64_t lo, hi;  /* phase columns e whose source column e*sw + ph - pad_left is in the plane */
            valid_outputs(ph - pad, sw, g->w, len, &lo, &hi);
            if (hi == lo) continue;
            for (int64_t t = t0; t < t1; ++t) {
                REAL *d = plane + t * g->row_len + ph * len + lo;
                const int64_t first = at + (t - t0) * g->w + lo * sw + ph - pad;  /* source of column lo */
                if (mask)
                    for (int64_t e = 0; e < hi - lo; ++e)
                        d[e] = FN(relu_grad)(src[first + e * sw], mask[first + e * sw]);
                else if (sw == 1)
                    memcpy(d, src + first, (size_t)(hi - lo) * sizeof(REAL));
                else
                    for (int64_t e = 0; e < hi - lo; ++e) d[e] = src[first + e * sw];
            }
        }
    }
}

/* y[n, c*m + j] = act(bias + the filter's taps over x[n, c]) for every image n, channel c, j < m. */
static int FN(depthwise_forward)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                 const conv2d_plan *plan, const REAL *x, const REAL *w, const REAL *bias, REAL *y,
                                 int relu, int threads)
{
    const int64_t C = sh->c, m = sh->k / C, RS = sh->r * sh->s, HW = sh->h * sh->w, PQ = sh->p * sh->q;
    dw_geometry g = dw_geometry_make(1, sh->h, sh->w, sh->p, sh->q, sh->r, sh->s, sh->stride_h, sh->stride_w,
                                     sh->dil_h, sh->dil_w, sh->pad_top, sh->pad_left);
    const int want = cconv_threads_for(threads, 2.0 * sh->n * sh->k * RS * PQ, GRAIN_FLOPS);
    (void)plan;
    dw_geometry_block(&g, sh->n * C, want);
    const int64_t plane_size = size_round_up(size_add(size_mul(g.slab_rows, g.row_len), ALIGN_ELEMS), ALIGN_ELEMS);
    const int64_t group = dw_plane_group(&g, plane_size, sh->n * C, want), groups = ceil_div(sh->n * C, group);
    const int64_t items = groups * g.blocks, slab_size = size_mul(group, plane_size);
    const int t = (int)min64(want, items);
    int64_t *off = (int64_t *)cconv_workspace_acquire_elems(RS, sizeof(int64_t));
    REAL *work = FN(workspace_acquire)(size_mul(t, slab_size));
    if (!off || !work) {
        cconv_workspace_release(off);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    dw_tap_offsets(&g, off);
#pragma omp parallel num_threads(t)
    {
        REAL *slab = work + cconv_thread_id() * slab_size;
        int64_t it;
        memset(slab, 0, (size_t)slab_size * sizeof(REAL));  /* the padding columns (dw_fill) and slack */
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {  /* planes [first, last) (plane = n*C + c), block blk of each */
            const int64_t blk = it % g.blocks, first = it / g.blocks * group, last = min64(first + group, sh->n * C);
            const int64_t oh0 = blk * g.rows_per_block, rows = min64(g.rows_per_block, sh->p - oh0);
            for (int64_t plane = first; plane < last; ++plane)
                FN(dw_fill)(cfg, &g, x, NULL, plane * HW, HW, oh0 * sh->stride_h, dw_slab_rows(&g, rows),
                            slab + (plane - first) * plane_size);
            for (int64_t plane = first; plane < last; ++plane)
                for (int64_t j = 0; j < m; ++j) {
                    const int64_t k = plane % C * m + j;  /* y plane n*K + k = plane*m + j */
                    cfg->dwconv_rows(rows, sh->q, RS, slab + (plane - first) * plane_size, sh->stride_h * g.row_len,
                                     off, w + k * RS, bias ? bias[k] : 0, relu, y + (plane * m + j) * PQ + oh0 * sh->q,
                                     sh->q);
                }
        }
    }
    cconv_workspace_release(off);
    cconv_workspace_release(work);
    return CCONV_OK;
}

/* dx by the gather (stride 1, finite weights): dx[n, c] = the full correlation of the channel's m
 * dy planes (masked by relu_y) with their flipped filters. */
static int FN(depthwise_grad_input_gather)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                           const REAL *dy, const REAL *relu_y, const REAL *w, REAL *dx, int threads)
{
    const int64_t C = sh->c, m = sh->k / C, RS = sh->r * sh->s, HW = sh->h * sh->w, PQ = sh->p * sh->q;
    dw_geometry g = dw_geometry_make(m, sh->p, sh->q, sh->h, sh->w, sh->r, sh->s, 1, 1, sh->dil_h, sh->dil_w,
                                     sh->dil_h * (sh->r - 1) - sh->pad_top, sh->dil_w * (sh->s - 1) - sh->pad_left);
    const int want = cconv_threads_for(threads, 2.0 * sh->n * sh->k * RS * HW, GRAIN_FLOPS);
    dw_geometry_block(&g, sh->n * C, want);
    const int64_t items = sh->n * C * g.blocks;
    const int64_t slab_size =
        size_round_up(size_add(size_mul(size_mul(m, g.slab_rows), g.row_len), ALIGN_ELEMS), ALIGN_ELEMS);
    const int t = (int)min64(want, items);
    int64_t *off = (int64_t *)cconv_workspace_acquire_elems(m * RS, sizeof(int64_t));
    REAL *flipped = FN(workspace_acquire)(sh->k * RS);
    REAL *work = FN(workspace_acquire)(size_mul(t, slab_size));
    if (!off || !flipped || !work) {
        cconv_workspace_release(off);
        cconv_workspace_release(flipped);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    dw_tap_offsets(&g, off);
    for (int64_t k = 0; k < sh->k; ++k)  /* channel c's taps (j, r, s) are filter c*m + j's, flipped */
        for (int64_t rs = 0; rs < RS; ++rs) flipped[k * RS + rs] = w[k * RS + RS - 1 - rs];
#pragma omp parallel num_threads(t)
    {
        REAL *slab = work + cconv_thread_id() * slab_size;
        int64_t it;
        memset(slab, 0, (size_t)slab_size * sizeof(REAL));  /* the padding columns (dw_fill) and slack */
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t blk = it % g.blocks, plane = it / g.blocks;  /* plane = n*C + c */
            const int64_t ih0 = blk * g.rows_per_block, rows = min64(g.rows_per_block, sh->h - ih0);
            FN(dw_fill)(cfg, &g, dy, relu_y, plane * m * PQ, PQ, ih0, dw_slab_rows(&g, rows), slab);
            cfg->dwconv_rows(rows, sh->w, m * RS, slab, g.row_len, off, flipped + plane % C * m * RS, 0, 0,
                             dx + plane * HW + ih0 * sh->w, sh->w);
        }
    }
    cconv_workspace_release(off);
    cconv_workspace_release(flipped);
    cconv_workspace_release(work);
    return CCONV_OK;
}

/* dx of a strided convolution, as a zero-padded dx plane laid out as the forward's slab (row
 * u = ih + pad_top, column v = iw + pad_left in phases), cropped into dx at the end. Padded pixel
 * (u, v) = (sh*a + alpha, sw*b + beta) receives the taps (r, s) with r*dil_h = alpha and
 * s*dil_w = beta modulo the strides, from dy pixel (a - kr, b - ms), kr = (r*dil_h - alpha) / sh,
 * ms = (s*dil_w - beta) / sw: for each class (alpha, beta) of rows and columns, a stride-1 gather
 * (dwconv_rows) over a zero-padded copy of the channel's dy planes with the class's taps. With a
 * non-finite weight (whose products with dy's zero padding would be NaN) each dy row is instead
 * scattered into the zeroed plane (dwconv_scatter). */
static int FN(depthwise_grad_input_strided)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                            const REAL *dy, const REAL *relu_y, const REAL *w, REAL *dx,
                                            int gather, int threads)
{
    const int64_t C = sh->c, m = sh->k / C, RS = sh->r * sh->s, HW = sh->h * sh->w, PQ = sh->p * sh->q;
    const dw_geometry g = dw_geometry_make(1, sh->h, sh->w, sh->p, sh->q, sh->r, sh->s, sh->stride_h, sh->stride_w,
                                           sh->dil_h, sh->dil_w, sh->pad_top, sh->pad_left);
    const int64_t sw = sh->stride_w, sth = sh->stride_h, len = g.phase_len, left = sh->pad_left, items = sh->n * C;
    const int64_t classes = sth * sw, taps = m * RS;
    /* the gather's padded dy: kt rows above and mt columns left of dy, rows and columns past it
     * up to what the classes read */
    const int64_t kt = (sh->r - 1) * sh->dil_h / sth, mt = (sh->s - 1) * sh->dil_w / sw;
    const int64_t dy_rows = kt + max64(sh->p, ceil_div(g.slab_rows, sth)), dy_cols = mt + max64(sh->q, len);
    const int64_t plane_size = size_round_up(size_mul(g.slab_rows, g.row_len), ALIGN_ELEMS);
    const int64_t slab_size =
        gather ? size_round_up(size_add(size_mul(size_mul(m, dy_rows), dy_cols), ALIGN_ELEMS), ALIGN_ELEMS) : 0;
    const int64_t masked_size = relu_y && !gather ? round_up(PQ, ALIGN_ELEMS) : 0;
    const int64_t wc_size = gather ? round_up(taps, ALIGN_ELEMS) : 0;
    const int64_t stride = size_add(size_add(plane_size, slab_size), masked_size + wc_size);
    const int t = (int)min64(cconv_threads_for(threads, 2.0 * sh->n * sh->k * RS * PQ, GRAIN_FLOPS), items);
    /* off: the scatter's RS offsets, or the gather's taps grouped by class (class_start[cl] to
     * class_start[cl + 1]), each tap's offset in the padded dy and its index j*RS + r*S + s */
    int64_t *off = (int64_t *)cconv_workspace_acquire_elems(size_add(2 * taps, size_mul(sth, sw) + 1), sizeof(int64_t));
    REAL *work = FN(workspace_acquire)(size_mul(t, stride));
    if (!off || !work) {
        cconv_workspace_release(off);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    int64_t *tap_index = off + taps, *class_start = off + 2 * taps;
    dw_geometry dyg = g;  /* the gather's padded dy, as dw_fill reads it */
    if (gather) {
        int64_t n_taps = 0;
        for (int64_t cl = 0; cl < classes; ++cl) {
            const int64_t alpha = cl / sw, beta = cl % sw;
            class_start[cl] = n_taps;
            for (int64_t j = 0; j < m; ++j)
                for (int64_t r = 0; r < sh->r; ++r)
                    for (int64_t s = 0; s < sh->s; ++s) {
                        if ((r * sh->dil_h - alpha) % sth || (s * sh->dil_w - beta) % sw) continue;
                        const int64_t kr = (r * sh->dil_h - alpha) / sth, ms = (s * sh->dil_w - beta) / sw;
                        if (kr < 0 || ms < 0) continue;  /* r*dil_h < alpha: no output row reads it here */
                        off[n_taps] = (j * dy_rows - kr) * dy_cols - ms;
                        tap_index[n_taps++] = (j * sh->r + r) * sh->s + s;
                    }
        }
        class_start[classes] = n_taps;
        dyg = dw_geometry_make(m, sh->p, sh->q, sh->p, sh->q, 1, 1, 1, 1, 1, 1, kt, mt);
        dyg.width = dyg.phase_len = dyg.row_len = dy_cols;
        dyg.slab_rows = dy_rows;
    } else {
        dw_tap_offsets(&g, off);
    }
    /* with sw == 2, the phase columns of dx's row that move as pairs */
    int64_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0, pairs_lo = 0, pairs_hi = 0;
    if (sw == 2) {
        valid_outputs(-left, 2, sh->w, len, &lo0, &hi0);
        valid_outputs(1 - left, 2, sh->w, len, &lo1, &hi1);
        dw_phase_pairs(lo0, hi0, lo1, hi1, &pairs_lo, &pairs_hi);
    }
#pragma omp parallel num_threads(t)
    {
        REAL *padded = work + cconv_thread_id() * stride, *slab = padded + plane_size;
        REAL *masked = slab + slab_size, *wc = masked + masked_size;
        int64_t it;
        if (gather) memset(slab, 0, (size_t)slab_size * sizeof(REAL));  /* the padding (dw_fill) and slack */
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {  /* it = n*C + c */
            const int64_t c = it % C;
            if (gather) {
                FN(dw_fill)(cfg, &dyg, dy, relu_y, it * m * PQ, PQ, 0, dy_rows, slab);
                for (int64_t i = 0; i < taps; ++i) wc[i] = w[c * taps + tap_index[i]];
                for (int64_t cl = 0; cl < classes; ++cl) {
                    const int64_t alpha = cl / sw, beta = cl % sw;
                    int64_t a_lo, a_hi, b_lo, b_hi;  /* the class's pixels that dx keeps */
                    if (alpha >= g.slab_rows) continue;
                    valid_outputs(alpha - sh->pad_top, sth, sh->h, ceil_div(g.slab_rows - alpha, sth), &a_lo, &a_hi);
                    valid_outputs(beta - left, sw, sh->w, len, &b_lo, &b_hi);
                    if (a_hi == a_lo || b_hi == b_lo) continue;
                    const int64_t first = class_start[cl];
                    cfg->dwconv_rows(a_hi - a_lo, b_hi - b_lo, class_start[cl + 1] - first,
                                     slab + (a_lo + kt) * dy_cols + b_lo + mt, dy_cols, off + first, wc + first, 0, 0,
                                     padded + (sth * a_lo + alpha) * g.row_len + beta * len + b_lo, sth * g.row_len);
                }
            } else {
                memset(padded, 0, (size_t)(g.slab_rows * g.row_len) * sizeof(REAL));
                for (int64_t j = 0; j < m; ++j) {
                    const int64_t k = c * m + j;
                    const REAL *grad = dy + (it * m + j) * PQ;
                    if (relu_y) {
                        const REAL *y = relu_y + (it * m + j) * PQ;
                        for (int64_t i = 0; i < PQ; ++i) masked[i] = FN(relu_grad)(grad[i], y[i]);
                        grad = masked;
                    }
                    cfg->dwconv_scatter(sh->p, sh->q, RS, grad, sh->q, off, w + k * RS, padded, sth * g.row_len);
                }
            }
            for (int64_t ih = 0; ih < sh->h; ++ih) {  /* dx row ih is padded row ih + pad_top */
                REAL *dst = dx + it * HW + ih * sh->w;
                const int64_t u = ih + sh->pad_top;
                memset(dst, 0, (size_t)sh->w * sizeof(REAL));
                if (u < 0 || u >= g.slab_rows) continue;
                const REAL *src = padded + u * g.row_len;
                if (sw == 2) {  /* the pairs together, the odd ends one by one */
                    if (pairs_hi > pairs_lo)
                        FN(dw_merge_phases)(dst + (2 * pairs_lo - left), src + pairs_lo, src + len + pairs_lo,
                                            pairs_hi - pairs_lo);
                    for (int64_t e = lo0; e < min64(pairs_lo, hi0); ++e) dst[2 * e - left] = src[e];
                    for (int64_t e = max64(pairs_hi, lo0); e < hi0; ++e) dst[2 * e - left] = src[e];
                    for (int64_t e = lo1; e < min64(pairs_lo, hi1); ++e) dst[2 * e + 1 - left] = src[len + e];
                    for (int64_t e = max64(pairs_hi, lo1); e < hi1; ++e) dst[2 * e + 1 - left] = src[len + e];
                    continue;
                }
                for (int64_t ph = 0; ph < sw; ++ph) {
                    int64_t lo, hi;  /* phase columns e whose dx column e*sw + ph - pad_left is in the row */
                    valid_outputs(ph - left, sw, sh->w, len, &lo, &hi);
                    for (int64_t e = lo; e < hi; ++e) dst[e * sw + ph - left] = src[ph * len + e];
                }
            }
        }
    }
    cconv_workspace_release(off);
    cconv_workspace_release(work);
    return CCONV_OK;
}

static int FN(depthwise_grad_input)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                    const conv2d_plan *plan, const REAL *dy, const REAL *relu_y, const REAL *w,
                                    REAL *dx, int threads)
{
    (void)plan;
    if (sh->h * sh->w == 0) return CCONV_OK;
    const int finite = FN(all_finite)(w, sh->k * sh->r * sh->s);
    if (sh->stride_h == 1 && sh->stride_w == 1 && finite)
        return FN(depthwise_grad_input_gather)(cfg, sh, dy, relu_y, w, dx, threads);
    return FN(depthwise_grad_input_strided)(cfg, sh, dy, relu_y, w, dx, finite, threads);
}

/* dw[c*m + j] = the sum over images of (masked) dy[n, c*m + j] correlated with x[n, c]; db (may
 * be NULL) the sums of the masked dy planes. One thread sums each channel, images and blocks in
 * order: the result does not depend on the thread count. */
static int FN(depthwise_grad_weight)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                     const conv2d_plan *plan, const REAL *dy, const REAL *relu_y, const REAL *x,
                                     REAL *dw, REAL *db, int threads)
{
    const int64_t C = sh->c, m = sh->k / C, RS = sh->r * sh->s, HW = sh->h * sh->w, PQ = sh->p * sh->q;
    dw_geometry g = dw_geometry_make(1, sh->h, sh->w, sh->p, sh->q, sh->r, sh->s, sh->stride_h, sh->stride_w,
                                     sh->dil_h, sh->dil_w, sh->pad_top, sh->pad_left);
    (void)plan;
    memset(dw, 0, (size_t)(sh->k * RS) * sizeof(REAL));
    if (db) memset(db, 0, (size_t)sh->k * sizeof(REAL));
    if (sh->n == 0 || PQ == 0) return CCONV_OK;
    dw_geometry_block(&g, 1, 1);  /* blocks bound the slab only: threads share out channels */
    const int64_t slab_size =  /* ALIGN_ELEMS of slack: dwconv_dots reads whole vectors past a row */
        size_round_up(size_add(size_mul(g.slab_rows, g.row_len), ALIGN_ELEMS), ALIGN_ELEMS);
    const int64_t masked_size = relu_y ? round_up(g.rows_per_block * sh->q, ALIGN_ELEMS) : 0;
    const int t = (int)min64(cconv_threads_for(threads, 2.0 * sh->n * sh->k * RS * PQ, GRAIN_FLOPS), C);
    int64_t *off = (int64_t *)cconv_workspace_acquire_elems(RS, sizeof(int64_t));
    REAL *work = FN(workspace_acquire)(size_mul(t, size_add(slab_size, masked_size)));
    if (!off || !work) {
        cconv_workspace_release(off);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    dw_tap_offsets(&g, off);
#pragma omp parallel num_threads(t)
    {
        REAL *slab = work + cconv_thread_id() * (slab_size + masked_size), *masked = slab + slab_size;
        int64_t c;
        memset(slab, 0, (size_t)slab_size * sizeof(REAL));  /* the padding columns (dw_fill) */
#pragma omp for schedule(static)
        for (c = 0; c < C; ++c)
            for (int64_t n = 0; n < sh->n; ++n)
                for (int64_t blk = 0; blk < g.blocks; ++blk) {
                    const int64_t oh0 = blk * g.rows_per_block, rows = min64(g.rows_per_block, sh->p - oh0);
                    FN(dw_fill)(cfg, &g, x, NULL, (n * C + c) * HW, HW, oh0 * sh->stride_h, dw_slab_rows(&g, rows),
                                slab);
                    for (int64_t j = 0; j < m; ++j) {
                        const int64_t k = c * m + j, at = (n * sh->k + k) * PQ + oh0 * sh->q;
                        const REAL *grad = dy + at;
                        if (relu_y) {
                            for (int64_t i = 0; i < rows * sh->q; ++i)
                                masked[i] = FN(relu_grad)(grad[i], relu_y[at + i]);
                            grad = masked;
                        }
                        cfg->dwconv_dots(rows, sh->q, RS, slab, sh->stride_h * g.row_len, off, grad, sh->q,
                                         dw + k * RS);
                        if (db) db[k] += FN(sum_row)(grad, NULL, rows * sh->q);
                    }
                }
    }
    cconv_workspace_release(off);
    cconv_workspace_release(work);
    return CCONV_OK;
}
