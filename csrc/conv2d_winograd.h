/* conv2d_winograd.h: the Winograd algorithm (CCONV_CONV2D_WINOGRAD), Lavin and Gray's minimal
 * filtering F(m x m, 3 x 3) with m = 4 or 2, for 3x3 filters at stride 1 in one group (a dilated
 * convolution runs as one undilated convolution per phase): forward and gradient of the input.
 * Type-generic, included by conv2d.c per element type after gemm_driver.h.
 *
 * Each m x m tile of an output plane is A^T [sum over input channels of (G g G^T) . (B^T d B)] A,
 * where d is the (m+2) x (m+2) input tile under it and g the filter: (m+2)^2 multiplies per tile
 * and channel pair where direct convolution does 9 m^2 (2.25x fewer for m = 4). Summed over the
 * input channels, the (m+2)^2 element-wise products are as many independent matrix products,
 * (output channels x input channels) . (input channels x tiles), run on gemm_driver.h's loop nest
 * with the transformed filters packed once per call as their A operands.
 *
 * Work items are (group of images, band of tile rows), so the workspace is bounded by the item,
 * not the batch. Per item: each input channel's rows under the item's tiles are copied with their
 * zero padding and transformed (the config's winograd_input reads the tiles from the copy and
 * writes them in the products' B-panel layout, so nothing is packed), the products run, and the
 * config's winograd_output takes each output channel back to pixels with the bias and ReLU, into
 * the output rows. The gradient of the input is the forward of dy (masked by the ReLU's output
 * where the forward had one) with the filters flipped and transposed: conv2d_grad_input_slab's
 * geometry.
 *
 * The transforms mix every value of a tile into every other: one infinity or NaN in the input or
 * the filters would spoil its whole tile (inf - inf), where direct convolution keeps it to the
 * outputs that read it. Such calls run the GEMM instead (the input is checked as it is copied). */

/* Tiles per work item to aim for: enough columns for the products to reuse each packed filter
 * panel many times, few enough that an item's transformed tiles stay in the outer caches. */
#define WINO_ITEM_TILES 64
/* An item's transformed input and products stay under this many bytes (fewer tiles per item on
 * layers with many channels). */
#define WINO_ITEM_BYTES (4 << 20)

#ifndef CCONV_WINOGRAD_G  /* once for both element types */
#define CCONV_WINOGRAD_G
/* Filter transforms run as one product: element a*alpha + b of G g G^T is
 * sum over (r, s) of G[a][r] G[b][s] g(r, s), a (alpha^2 x 9) matrix times the filters' taps. */
static const double WINO_G4[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
static const double WINO_G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

/* One phase of a dilated convolution (the whole of an undilated one): outputs
 * (a + dil_h*i, b + dil_w*j) for i < p, j < q, whose tile element (0, 0) of tile (0, 0) reads
 * input pixel (row_off, col_off). */
typedef struct {
    int64_t p, q, a, b, row_off, col_off;
} winograd_phase;

/* How one phase's work items are cut: several whole images when an image has few tiles, else
 * bands of one image's tile rows. */
typedef struct {
    int64_t tiles_h, tiles_w, images, band, bands, items;
} winograd_items;

static winograd_items winograd_cut(const winograd_phase *ph, int m, int64_t n, int64_t item_tiles, int want)
{
    winograd_items c;
    c.tiles_h = ceil_div(ph->p, m);
    c.tiles_w = ceil_div(ph->q, m);
    c.images = 1;
    c.band = c.tiles_h;
    if (c.tiles_h * c.tiles_w < item_tiles) {
        c.images = min64(item_tiles / (c.tiles_h * c.tiles_w), max64(1, n / want));
        c.images = ceil_div(n, ceil_div(n, c.images));
    } else {
        c.band = clamp64(item_tiles / c.tiles_w, 1, c.tiles_h);
        c.band = min64(c.band, max64(1, c.tiles_h / ceil_div(want, n)));
        c.band = balanced_block(c.tiles_h, c.band);
    }
    c.bands = ceil_div(c.tiles_h, c.band);
    c.items = ceil_div(n, c.images) * c.bands;
    return c;
}
#endif

/* Filters per block of the filter transform (its rows of taps and of results stay in cache). */
#define WINO_FILTER_BLOCK 512

/* The transformed filters of the core convolution (fs->cout filters over fs->cin channels), as
 * the A operands of the alpha^2 products: product xi's (cout x cin) matrix at apack + xi*a_xi in
 * gemm_driver.h's layout of an operand packed before (MR-row panels, depth blocks of kc_max).
 * Filter (o, i) is w[o][i] for the forward, w[i][o] flipped for the gradient of the input. The
 * transform runs along that layout (position e of every product's matrix holds the same filter),
 * so each result lands where it is packed and the only scattered reads are the filters' taps. */
static void FN(winograd_pack_filters)(const FN(cconv_gemm_config) *cfg, int m, const slab_shape *fs, int flipped,
                                      const REAL *w, int64_t kc_max, int64_t a_xi, REAL *apack, int threads)
{
    const double(*G)[3] = m == 4 ? WINO_G4 : WINO_G2;
    const int alpha = m + 2, alpha2 = alpha * alpha, mr = cfg->tiles.mr;
    const int64_t cout = fs->cout, cin = fs->cin, rows = round_up(cout, mr), size = rows * cin;
    const int64_t panels = rows / mr, depth_blocks = ceil_div(cin, kc_max), depth_chunk = WINO_FILTER_BLOCK / mr;
    const int64_t chunks = depth_blocks * panels * ceil_div(min64(kc_max, cin), depth_chunk);
    const int t = (int)min64(cconv_threads_for(threads, 400.0 * (double)size, GRAIN_FLOPS), chunks);
    (void)t;  /* without OpenMP, the pragma that reads it is left out */
    REAL T[36][9];
    for (int a = 0; a < alpha; ++a)
        for (int b = 0; b < alpha; ++b)
            for (int tap = 0; tap < 9; ++tap) {
                const int r = flipped ? 2 - tap / 3 : tap / 3, s = flipped ? 2 - tap % 3 : tap % 3;
                T[a * alpha + b][tap] = (REAL)(G[a][r] * G[b][s]);
            }
    int64_t chunk;
    /* chunks: (depth block, panel, run of depth_chunk depths), the last run of a block shorter */
#pragma omp parallel for schedule(static) num_threads(t)
    for (chunk = 0; chunk < chunks; ++chunk) {
        const int64_t per_panel = ceil_div(min64(kc_max, cin), depth_chunk), per_block = panels * per_panel;
        const int64_t p0 = chunk / per_block * kc_max, kc = min64(kc_max, cin - p0);
        const int64_t panel = chunk % per_block / per_panel;
        const int64_t k0 = chunk % per_panel * depth_chunk, depths = min64(depth_chunk, kc - k0);
        if (depths <= 0) continue;  /* a short last depth block has fewer runs */
        const int64_t e0 = rows * p0 + panel * kc * mr + k0 * mr, count = depths * mr;
        REAL taps[9][WINO_FILTER_BLOCK];
        for (int64_t kk = 0; kk < depths; ++kk)
            for (int lane = 0; lane < mr; ++lane) {
                const int64_t o = panel * mr + lane, i = p0 + k0 + kk;
                const REAL *g = w + (flipped ? i * cout + o : o * cin + i) * 9;
                for (int tap = 0; tap < 9; ++tap) taps[tap][kk * mr + lane] = o < cout ? g[tap] : 0;
            }
        for (int x = 0; x < alpha2; ++x) {
            REAL *dst = apack + x * a_xi + e0;
            for (int64_t e = 0; e < count; ++e) dst[e] = 0;
            for (int tap = 0; tap < 9; ++tap) {
                const REAL c = T[x][tap];
                if (c != 0)
                    for (int64_t e = 0; e < count; ++e) dst[e] += c * taps[tap][e];
            }
        }
    }
}

/* Phase (a, b) of the convolution fs: outputs (a + dil_h*i, b + dil_w*j). */
static winograd_phase FN(winograd_phase_at)(const slab_shape *fs, int64_t a, int64_t b)
{
    const winograd_phase ph = {ceil_div(fs->p - a, fs->dil_h), ceil_div(fs->q - b, fs->dil_w), a, b,
                               a - fs->pad_top, b - fs->pad_left};
    return ph;
}

/* Rows [row0, row0 + rows) of phase ph's input (a plane of fs->h x fs->w at x, masked by mask
 * where given), each zero-padded to `width` columns: band element (i, j) is input pixel
 * (ph->row_off + dil_h*(row0 + i), ph->col_off + dil_w*j), zero outside the plane. Returns
 * nonzero when a value copied is an infinity or a NaN. Rows are short: plain loops, which the
 * compiler vectorises, beat calls to memcpy. */
static int FN(winograd_pad_rows)(const slab_shape *fs, const winograd_phase *ph, const REAL *x, const REAL *mask,
                                 int64_t row0, int64_t rows, int64_t width, REAL *band)
{
    const int64_t dw = fs->dil_w;
    int64_t lo, hi;
    int bad = 0;
    valid_outputs(ph->col_off, dw, fs->w, width, &lo, &hi);
    for (int64_t i = 0; i < rows; ++i) {
        const int64_t h = ph->row_off + fs->dil_h * (row0 + i);
        REAL *dst = band + i * width;
        if (h < 0 || h >= fs->h || lo == hi) {
            for (int64_t j = 0; j < width; ++j) dst[j] = 0;
            continue;
        }
        const REAL *src = x + h * fs->w, *msk = mask ? mask + h * fs->w : NULL;
        const int64_t off = ph->col_off;
        for (int64_t j = 0; j < lo; ++j) dst[j] = 0;
        if (msk)
            for (int64_t j = lo; j < hi; ++j) dst[j] = FN(relu_grad)(src[off + j * dw], msk[off + j * dw]);
        else if (dw == 1)
            for (int64_t j = lo; j < hi; ++j) dst[j] = src[off + j];
        else
            for (int64_t j = lo; j < hi; ++j) dst[j] = src[off + j * dw];
        bad |= !FN(all_finite)(dst + lo, hi - lo);
        for (int64_t j = hi; j < width; ++j) dst[j] = 0;
    }
    return bad;
}

/* dst[j*step] = src[j] for j < n. */
static void FN(winograd_copy)(REAL *dst, int64_t step, const REAL *src, int64_t n)
{
    if (step == 1)
        for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
    else
        for (int64_t j = 0; j < n; ++j) dst[j * step] = src[j];
}

/* The core convolution fs (one group, 3x3, stride 1, any dilation) of x (masked by mask where
 * given) with filters w (flipped and transposed with `flipped`), + bias, ReLU with relu, into y,
 * with output tiles of m x m. A dilated convolution is dil_h * dil_w undilated ones, one per
 * phase (output rows a, a + dil_h, ...; columns b, b + dil_w, ...), each reading every dil_h-th
 * input row and dil_w-th column. *non_finite is set when x holds an infinity or a NaN that the
 * tiles read (y is then to be computed another way). */
static int FN(winograd_run)(const FN(cconv_gemm_config) *cfg, const slab_shape *fs, int m, const REAL *x,
                            const REAL *mask, const REAL *w, int flipped, const REAL *bias, int relu, REAL *y,
                            int threads, int *non_finite)
{
    const int alpha = m + 2, alpha2 = alpha * alpha, nr = cfg->tiles.nr;
    const int64_t cin = fs->cin, cout = fs->cout, HW = fs->h * fs->w, PQ = fs->p * fs->q;
    const winograd_phase first = FN(winograd_phase_at)(fs, 0, 0);
    const double tiles = (double)(ceil_div(fs->p, m) + min64(fs->dil_h, fs->p)) *
                         (double)(ceil_div(fs->q, m) + min64(fs->dil_w, fs->q));  /* phases round up */
    const int want = cconv_threads_for(threads, 2.0 * fs->n * cout * cin * alpha2 * tiles, GRAIN_FLOPS);
    /* tiles per item: WINO_ITEM_TILES, fewer where the bytes cap or the threads ask for it; the
     * first phase is the largest, and its items size the workspace */
    const double tile_bytes = (double)alpha2 * (double)(cin + cout) * (double)sizeof(REAL);
    const int64_t item_tiles = max64(1, min64(WINO_ITEM_TILES, (int64_t)(WINO_ITEM_BYTES / tile_bytes)));
    const winograd_items largest = winograd_cut(&first, m, fs->n, item_tiles, want);
    const int64_t max_tiles = largest.images * largest.band * largest.tiles_w;
    const int64_t max_slot = size_mul(largest.band * m + 2, size_add(size_mul(largest.tiles_w, m), 2));
    const int64_t kc_max = FN(gemm_depth_block)(cfg, cin);
    const int64_t a_xi = size_round_up(size_mul(round_up(cout, cfg->tiles.mr), cin), ALIGN_ELEMS);
    const int64_t ldv = size_add(size_mul(cin, round_up(max_tiles, nr)), ALIGN_ELEMS);
    const int64_t ldo = size_mul(max_tiles + ALIGN_ELEMS, m);
    const int64_t in_size = size_round_up(size_add(size_mul(largest.images, max_slot), ALIGN_ELEMS), ALIGN_ELEMS);
    const int64_t v_size = size_round_up(size_mul(alpha2, ldv), ALIGN_ELEMS);
    const int64_t m_size =
        size_round_up(size_add(size_mul(size_mul(alpha2, cout), max_tiles), ALIGN_ELEMS), ALIGN_ELEMS);
    const int64_t o_size = size_round_up(size_mul(m, ldo), ALIGN_ELEMS);
    const int64_t toff_size = round_up(ceil_div((max_tiles + ALIGN_ELEMS) * (int64_t)sizeof(int32_t), sizeof(REAL)),
                                       ALIGN_ELEMS);
    const int64_t work_size = size_add(size_add(size_add(in_size, v_size), size_add(m_size, o_size)), toff_size);
    if (in_size > INT32_MAX) return CCONV_ENOMEM;  /* the tiles' offsets into it are 32-bit */
    const int64_t phases_h = min64(fs->dil_h, fs->p), phases_w = min64(fs->dil_w, fs->q);
    int64_t all_items = 0;
    for (int64_t a = 0; a < phases_h; ++a)
        for (int64_t b = 0; b < phases_w; ++b) {
            const winograd_phase ph = FN(winograd_phase_at)(fs, a, b);
            all_items += winograd_cut(&ph, m, fs->n, item_tiles, want).items;
        }
    const int t = (int)min64(want, all_items);

    REAL *apack = FN(workspace_acquire)(size_mul(alpha2, a_xi));
    REAL *works = FN(workspace_acquire)(size_mul(t, work_size));
    if (!apack || !works) {
        cconv_workspace_release(apack);
        cconv_workspace_release(works);
        return CCONV_ENOMEM;
    }
    FN(winograd_pack_filters)(cfg, m, fs, flipped, w, kc_max, a_xi, apack, threads);
    /* one parallel region for every phase, without a barrier between phases: their items write
     * disjoint outputs */
#pragma omp parallel num_threads(t)
    {
        REAL *in = works + cconv_thread_id() * work_size, *v = in + in_size, *mt = v + v_size;
        REAL *o = mt + m_size;
        int32_t *toff = (int32_t *)(void *)(o + o_size);
        int bad = 0;
        for (int64_t a = 0; a < phases_h; ++a)
            for (int64_t b = 0; b < phases_w; ++b) {
                const winograd_phase ph = FN(winograd_phase_at)(fs, a, b);
                const winograd_items cut = winograd_cut(&ph, m, fs->n, item_tiles, want);
                const int64_t tiles_w = cut.tiles_w, ldi = tiles_w * m + 2, slot = (cut.band * m + 2) * ldi;
                int64_t it;
#pragma omp for schedule(static) nowait
                for (it = 0; it < cut.items; ++it) {
                    const int64_t img0 = it / cut.bands * cut.images, tr0 = it % cut.bands * cut.band;
                    const int64_t count = min64(cut.images, fs->n - img0), rows = min64(cut.band, cut.tiles_h - tr0);
                    const int64_t nt = count * rows * tiles_w, padded = round_up(nt, nr);
                    const int64_t ldt = cin * padded + ALIGN_ELEMS;
                    for (int64_t s = 0, tt = 0; s < count; ++s)
                        for (int64_t tr = 0; tr < rows; ++tr)
                            for (int64_t u = 0; u < tiles_w; ++u)
                                toff[tt++] = (int32_t)(s * slot + tr * m * ldi + u * m);
                    for (int64_t tt = nt; tt < nt + ALIGN_ELEMS; ++tt) toff[tt] = 0;
                    for (int64_t c = 0; c < cin; ++c) {
                        for (int64_t s = 0; s < count; ++s) {
                            const int64_t plane = ((img0 + s) * cin + c) * HW;
                            bad |= FN(winograd_pad_rows)(fs, &ph, x + plane, mask ? mask + plane : NULL, tr0 * m,
                                                         rows * m + 2, ldi, in + s * slot);
                        }
                        const int64_t p0 = c / kc_max * kc_max, kc = min64(kc_max, cin - p0);
                        cfg->winograd_input(m, nt, in, ldi, toff, v + padded * p0 + (c - p0) * nr, ldt, nr, kc * nr);
                    }
                    for (int xi = 0; xi < alpha2; ++xi) {
                        const FN(gemm_problem) problem = {
                            .m = cout, .n = nt, .k = cin,
                            .a = {.packed = apack + xi * a_xi},
                            .b = {.packed = v + xi * ldt},
                            .c = mt + xi * cout * nt, .ldc = nt,
                        };
                        FN(gemm_run)(cfg, &problem, in);  /* both operands packed: its workspace goes unused */
                    }
                    for (int64_t k = 0; k < cout; ++k) {
                        /* the item's tiles in a row: tile row r's output rows at o + i*ldo + r*tiles_w*m */
                        cfg->winograd_output(m, nt, mt + k * nt, cout * nt, bias ? bias[k] : 0, relu, o, ldo);
                        for (int64_t s = 0; s < count; ++s)
                            for (int64_t tr = 0; tr < rows; ++tr)
                                for (int64_t i = 0, row = (tr0 + tr) * m; i < m && row < ph.p; ++i, ++row) {
                                    REAL *dst = y + ((img0 + s) * cout + k) * PQ + (a + row * fs->dil_h) * fs->q + b;
                                    FN(winograd_copy)(dst, fs->dil_w, o + i * ldo + (s * rows + tr) * tiles_w * m, ph.q);
                                }
                    }
                }
            }
        if (bad) {
#pragma omp atomic write
            *non_finite = 1;
        }
    }
    cconv_workspace_release(apack);
    cconv_workspace_release(works);
    return CCONV_OK;
}

static int FN(winograd_forward)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                const conv2d_plan *plan, const REAL *x, const REAL *w, const REAL *bias, REAL *y,
                                int relu, int threads)
{
    const slab_shape fs = conv2d_forward_slab(sh);
    const conv2d_plan gemm = {CCONV_CONV2D_GEMM, 0, 0, 1, 0};
    int non_finite = !FN(all_finite)(w, sh->k * sh->c * 9), status = CCONV_OK;
    if (!non_finite)
        status = FN(winograd_run)(cfg, &fs, plan->winograd_tile, x, NULL, w, 0, bias, relu, y, threads, &non_finite);
    return non_finite ? FN(gemm_forward)(cfg, sh, &gemm, x, w, bias, y, relu, threads) : status;
}

static int FN(winograd_grad_input)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                   const conv2d_plan *plan, const REAL *dy, const REAL *relu_y, const REAL *w,
                                   REAL *dx, int threads)
{
    const slab_shape fs = conv2d_grad_input_slab(sh);
    const conv2d_plan gemm = {CCONV_CONV2D_GEMM, 0, 0, 1, 0};
    int non_finite = !FN(all_finite)(w, sh->k * sh->c * 9), status = CCONV_OK;
    if (!non_finite)
        status = FN(winograd_run)(cfg, &fs, plan->winograd_tile, dy, relu_y, w, 1, NULL, 0, dx, threads, &non_finite);
    return non_finite ? FN(gemm_grad_input)(cfg, sh, &gemm, dy, relu_y, w, dx, threads) : status;
}
