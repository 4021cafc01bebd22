/* conv2d_generic.h: the type-generic body of conv2d.c, included once per element type with
 * REAL (float or double), FN(name) (appends _f32/_f64) and the micro-kernel accessors defined,
 * after gemm_generic.h (panel packing and the tile loop). Not a public header. Indices: row = (c*R + r)*S + s of the im2col matrix, column = oh*Q + ow. */

/* One run of an im2col row along an output row: dst[t*dstride] for t in [0, run) is input pixel
 * src_row[(ow0 + t)*sw + w_off], or 0 where that column is padding (outside ow in [lo, hi)) or
 * the whole input row is padding (src_row == NULL). */
static void FN(gather_run)(REAL *dst, int64_t dstride, const REAL *src_row, int64_t ow0, int64_t run,
                           int64_t lo, int64_t hi, int64_t sw, int64_t w_off)
{
    const int64_t a = src_row ? clamp64(lo - ow0, 0, run) : run;
    const int64_t b = src_row ? clamp64(hi - ow0, a, run) : run;
    int64_t t = 0;
    for (; t < a; ++t) dst[t * dstride] = 0;
    if (sw == 1 && dstride == 1)
        for (; t < b; ++t) dst[t] = src_row[ow0 + t + w_off];
    else
        for (; t < b; ++t) dst[t * dstride] = src_row[(ow0 + t) * sw + w_off];
    for (; t < run; ++t) dst[t * dstride] = 0;
}

/* The reverse of gather_run: dst_row[(ow0 + t)*sw + w_off] += src[t] where that is a real pixel. */
static void FN(scatter_add_run)(REAL *dst_row, const REAL *src, int64_t ow0, int64_t run, int64_t lo,
                                int64_t hi, int64_t sw, int64_t w_off)
{
    const int64_t a = clamp64(lo - ow0, 0, run), b = clamp64(hi - ow0, a, run);
    if (sw == 1)
        for (int64_t t = a; t < b; ++t) dst_row[ow0 + t + w_off] += src[t];
    else
        for (int64_t t = a; t < b; ++t) dst_row[(ow0 + t) * sw + w_off] += src[t];
}

/* Where im2col row `row` reads from: its input plane, and the offsets of its tap. */
typedef struct {
    int64_t c, h_off, w_off;
    int64_t ow_lo, ow_hi;  /* output columns whose input column is a real pixel */
} FN(im2col_row);

static FN(im2col_row) FN(decode_row)(const cconv_conv2d_shape *sh, int64_t row)
{
    FN(im2col_row) d;
    const int64_t RS = sh->r * sh->s, r = (row % RS) / sh->s, s = row % sh->s;
    d.c = row / RS;
    d.h_off = r * sh->dil_h - sh->pad_top;
    d.w_off = s * sh->dil_w - sh->pad_left;
    valid_outputs(d.w_off, sh->stride_w, sh->w, sh->q, &d.ow_lo, &d.ow_hi);
    return d;
}

/* Columns [j, j + count) of one im2col row (pixels q0 + j ...), walked one output row at a time. */
static void FN(gather_row)(const cconv_conv2d_shape *sh, const FN(im2col_row) *d, const REAL *plane,
                           int64_t q_first, int64_t count, REAL *dst, int64_t dstride)
{
    int64_t oh = q_first / sh->q, ow = q_first % sh->q, j = 0;
    while (j < count) {
        const int64_t run = min64(count - j, sh->q - ow), ih = oh * sh->stride_h + d->h_off;
        const REAL *src_row = (ih >= 0 && ih < sh->h) ? plane + ih * sh->w : NULL;
        FN(gather_run)(dst + j * dstride, dstride, src_row, ow, run, d->ow_lo, d->ow_hi, sh->stride_w, d->w_off);
        j += run;
        ow = 0;
        ++oh;
    }
}

/* Rows [k0, k0 + kc) x columns [q0, q0 + nq) of the im2col matrix of one image's group
 * (xg points at its first channel) into NR-column panels (the layout of gemm_generic.h). */
static void FN(pack_im2col)(const cconv_conv2d_shape *sh, const REAL *xg, int64_t k0, int64_t kc,
                            int64_t q0, int64_t nq, int nr, REAL *out)
{
    const int64_t padded = round_up(nq, nr);
    for (int64_t kk = 0; kk < kc; ++kk) {
        const FN(im2col_row) d = FN(decode_row)(sh, k0 + kk);
        const REAL *plane = xg + d.c * sh->h * sh->w;
        REAL *row = out + kk * nr;  /* this im2col row's slot in panel 0; panel p is p*kc*nr on */
        /* Walk the columns in runs that stay on one output row and inside one panel. */
        int64_t oh = q0 / sh->q, ow = q0 % sh->q, panel = 0, offset = 0;
        for (int64_t j = 0; j < padded;) {
            const int64_t run = min64(min64(nq - j, sh->q - ow), nr - offset);
            REAL *dst = row + panel * kc * nr + offset;
            if (run <= 0) {  /* past the last column: zero the rest of the last panel */
                for (int64_t t = offset; t < nr; ++t) row[panel * kc * nr + t] = 0;
                break;
            }
            const int64_t ih = oh * sh->stride_h + d.h_off;
            FN(gather_run)(dst, 1, (ih >= 0 && ih < sh->h) ? plane + ih * sh->w : NULL, ow, run,
                           d.ow_lo, d.ow_hi, sh->stride_w, d.w_off);
            j += run;
            if ((ow += run) == sh->q) { ow = 0; ++oh; }
            if ((offset += run) == nr) { offset = 0; ++panel; }
        }
    }
}

/* The transpose: rows [q0, q0 + nq) (output pixels, the reduction) x columns [j0, j0 + n)
 * (im2col rows) into NR-column panels, for the weight gradient. Eight im2col rows at a time are
 * gathered contiguously (nq <= KC_MAX) and then transposed into place with the SIMD transpose. */
static void FN(pack_im2col_t)(const cconv_conv2d_shape *sh, const REAL *xg, int64_t q0, int64_t nq,
                              int64_t j0, int64_t n, int nr, REAL *out)
{
    enum { ROWS = 8 };
    REAL rows_buf[ROWS * KC_MAX];
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    for (int64_t p = 0; p < n; p += nr) {
        const int64_t cols = min64(nr, n - p);
        REAL *panel = out + (p / nr) * nq * nr;
        for (int64_t jj = 0; jj < nr; jj += ROWS) {
            const int64_t take = min64(ROWS, nr - jj);
            for (int64_t i = 0; i < take; ++i) {
                REAL *row = rows_buf + i * nq;
                if (jj + i >= cols) {  /* past the last im2col row: zero columns of the panel */
                    memset(row, 0, (size_t)nq * sizeof(REAL));
                    continue;
                }
                const FN(im2col_row) d = FN(decode_row)(sh, j0 + p + jj + i);
                FN(gather_row)(sh, &d, xg + d.c * sh->h * sh->w, q0, nq, row, 1);
            }
            TRANSPOSE(kern)(rows_buf, NULL, nq, take, nq, nq, 0, panel + jj, nr, NULL);
        }
    }
}

/* dxg += col2im of the block dcol (rows [row0, row0 + rows) x columns [q0, q0 + nq) of the
 * im2col matrix, leading dimension ld): each entry is added back to the pixel it was read from. */
static void FN(col2im_add)(const cconv_conv2d_shape *sh, const REAL *dcol, int64_t ld, int64_t row0,
                           int64_t rows, int64_t q0, int64_t nq, REAL *dxg)
{
    for (int64_t i = 0; i < rows; ++i) {
        const FN(im2col_row) d = FN(decode_row)(sh, row0 + i);
        REAL *plane = dxg + d.c * sh->h * sh->w;
        const REAL *src = dcol + i * ld;
        int64_t oh = q0 / sh->q, ow = q0 % sh->q, j = 0;
        while (j < nq) {
            const int64_t run = min64(nq - j, sh->q - ow), ih = oh * sh->stride_h + d.h_off;
            if (ih >= 0 && ih < sh->h)
                FN(scatter_add_run)(plane + ih * sh->w, src + j, ow, run, d.ow_lo, d.ow_hi, sh->stride_w, d.w_off);
            j += run;
            ow = 0;
            ++oh;
        }
    }
}

int FN(cconv_conv2d_forward)(const cconv_conv2d_shape *sh, const REAL *x, const REAL *w,
                             const REAL *bias, REAL *y, int activation, int threads)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    const int mr = KERNEL_MR(kern), nr = KERNEL_NR(kern), relu = activation == CCONV_ACTIVATION_RELU;
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, CRS = Cg * sh->r * sh->s;
    const int64_t PQ = sh->p * sh->q, HW = sh->h * sh->w;
    if (sh->n == 0 || sh->k == 0 || PQ == 0) return CCONV_OK;
    if (CRS == 0) {  /* no input channels: the output is the bias */
        for (int64_t i = 0; i < sh->n * sh->k; ++i) {
            const REAL b = bias ? bias[i % sh->k] : 0;
            for (int64_t j = 0; j < PQ; ++j) y[i * PQ + j] = relu && b < 0 ? 0 : b;
        }
        return CCONV_OK;
    }
    const int64_t kc_max = balanced_block(CRS, KC_MAX), nc = min64(round_up(PQ, nr), round_up(NC_MAX, nr));
    const int64_t nqb = ceil_div(PQ, nc), items = sh->n * G * nqb;
    const flat_shape fs = forward_flat_shape(sh);
    const int flat = sh->stride_h == 1 && sh->stride_w == 1 && use_flat(&fs, mr);
    const int width = flat ? FN(flat_panel_width)(kern, &fs) : mr;  /* of the packed weights' panels */
    const int64_t a_rows = round_up(Kg, width), a_group = round_up(a_rows * CRS, ALIGN_ELEMS);
    const int64_t b_size = round_up(kc_max * nc, ALIGN_ELEMS);
    const int t = (int)min64(cconv_threads_for(threads, 2.0 * sh->n * sh->k * CRS * PQ, GRAIN_FLOPS), items);

    REAL *apack = (REAL *)cconv_workspace_acquire((size_t)(G * a_group) * sizeof(REAL));
    REAL *bpacks = flat ? NULL : (REAL *)cconv_workspace_acquire((size_t)(t * b_size) * sizeof(REAL));
    if (!apack || (!flat && !bpacks)) {
        cconv_workspace_release(apack);
        cconv_workspace_release(bpacks);
        return CCONV_ENOMEM;
    }
    /* The weights of group g, depth block starting at k0, live at apack + g*a_group + a_rows*k0. */
    FN(pack_weights)(w, G, Kg, CRS, kc_max, width, a_group, apack);
    if (flat) {
        const int status = FN(conv_flat)(&fs, x, NULL, apack, a_group, kc_max, bias, relu, y, threads);
        cconv_workspace_release(apack);
        return status;
    }

#pragma omp parallel num_threads(t)
    {
        REAL *bpack = bpacks + cconv_thread_id() * b_size;
        int64_t it;
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t qb = it % nqb, g = (it / nqb) % G, n = it / (nqb * G);
            const int64_t q0 = qb * nc, nq = min64(nc, PQ - q0);
            const REAL *xg = x + (n * sh->c + g * Cg) * HW;
            REAL *yblock = y + (n * sh->k + g * Kg) * PQ + q0;
            for (int64_t k0 = 0; k0 < CRS; k0 += kc_max) {
                const int64_t kc = min64(kc_max, CRS - k0);
                FN(pack_im2col)(sh, xg, k0, kc, q0, nq, nr, bpack);
                FN(gemm_packed)(kern, Kg, nq, kc, apack + g * a_group + a_rows * k0, bpack, yblock, PQ, k0 > 0,
                                k0 == 0 && bias ? bias + g * Kg : NULL, relu && k0 + kc == CRS);  /* the epilogue */
            }
        }
    }
    cconv_workspace_release(apack);
    cconv_workspace_release(bpacks);
    return CCONV_OK;
}

/* The sum of row[0..len), in SUM_LANES independent partial sums added in a fixed order:
 * deterministic, vectorizable without reassociation, and more accurate than one running sum. */
static REAL FN(sum_row)(const REAL *row, const REAL *relu_mask, int64_t len)
{
    REAL lanes[SUM_LANES] = {0};
    int64_t j = 0;
    if (relu_mask) {
        for (; j + SUM_LANES <= len; j += SUM_LANES)
            for (int l = 0; l < SUM_LANES; ++l) lanes[l] += FN(relu_grad)(row[j + l], relu_mask[j + l]);
        for (; j < len; ++j) lanes[0] += FN(relu_grad)(row[j], relu_mask[j]);
    } else {
        for (; j + SUM_LANES <= len; j += SUM_LANES)
            for (int l = 0; l < SUM_LANES; ++l) lanes[l] += row[j + l];
        for (; j < len; ++j) lanes[0] += row[j];
    }
    REAL sum = 0;
    for (int l = 0; l < SUM_LANES; ++l) sum += lanes[l];
    return sum;
}

/* db[k] = sum over images and pixels of dy[n, k, :], each k summed by one thread in a fixed order. */
static void FN(conv2d_grad_bias)(const cconv_conv2d_shape *sh, const REAL *dy, const REAL *relu_y, REAL *db,
                                 int threads)
{
    const int64_t PQ = sh->p * sh->q, K = sh->k;
    const int t = (int)min64(cconv_threads_for(threads, (double)sh->n * K * PQ, 8.0 * GRAIN_FLOPS),
                             max64(K, 1));
    int64_t k;
    (void)t;  /* unused without OpenMP */
#pragma omp parallel for schedule(static) num_threads(t)
    for (k = 0; k < K; ++k) {
        REAL sum = 0;
        for (int64_t n = 0; n < sh->n; ++n) {
            const int64_t offset = (n * K + k) * PQ;
            sum += FN(sum_row)(dy + offset, relu_y ? relu_y + offset : NULL, PQ);
        }
        db[k] = sum;
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

/* The stride-1 gradient of the input: dx = conv(mask(dy), w transposed to (C_g, K_g) and flipped),
 * padded so that output pixel h reads dy rows h - (dil_h*(R-1) - pad_top) + r*dil_h. */
static int FN(conv2d_grad_input_flat)(const cconv_conv2d_shape *sh, const REAL *dy, const REAL *relu_y,
                                      const REAL *w, REAL *dx, int threads)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    const int64_t mr = KERNEL_MR(kern), G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, RS = sh->r * sh->s;
    const flat_shape fs = {sh->n, G, Kg, sh->p, sh->q, Cg, sh->h, sh->w, sh->r, sh->s, sh->dil_h, sh->dil_w,
                           sh->dil_h * (sh->r - 1) - sh->pad_top, sh->dil_w * (sh->s - 1) - sh->pad_left};
    /* The padding of dy meets every filter tap here, where the packed path skips it: 0 times a
     * non-finite weight would put NaN where torch (and the packed path) has a number. */
    if (!use_flat(&fs, mr) || !FN(all_finite)(w, sh->k * Cg * RS)) return FLAT_NOT_APPLICABLE;
    const int width = FN(flat_panel_width)(kern, &fs);
    const int64_t depth = Kg * RS, kc_max = balanced_block(depth, KC_MAX), a_rows = round_up(Cg, width);
    const int64_t a_group = round_up(a_rows * depth, ALIGN_ELEMS);
    REAL *wt = (REAL *)cconv_workspace_acquire((size_t)(G * Cg * depth) * sizeof(REAL));
    REAL *apack = (REAL *)cconv_workspace_acquire((size_t)(G * a_group) * sizeof(REAL));
    int status = CCONV_ENOMEM;
    if (wt && apack) {
        /* wt[g, c, k, r, s] = w[g*Kg + k, c, R-1-r, S-1-s] */
        for (int64_t g = 0; g < G; ++g)
            for (int64_t c = 0; c < Cg; ++c)
                for (int64_t k = 0; k < Kg; ++k)
                    for (int64_t rs = 0; rs < RS; ++rs)
                        wt[((g * Cg + c) * Kg + k) * RS + rs] = w[((g * Kg + k) * Cg + c) * RS + RS - 1 - rs];
        FN(pack_weights)(wt, G, Cg, depth, kc_max, width, a_group, apack);
        status = FN(conv_flat)(&fs, dy, relu_y, apack, a_group, kc_max, NULL, 0, dx, threads);
    }
    cconv_workspace_release(wt);
    cconv_workspace_release(apack);
    return status;
}

static int FN(conv2d_grad_input)(const cconv_conv2d_shape *sh, const REAL *dy, const REAL *relu_y,
                                 const REAL *w, REAL *dx, int threads)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    const int mr = KERNEL_MR(kern), nr = KERNEL_NR(kern);
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, RS = sh->r * sh->s, CRS = Cg * RS;
    const int64_t PQ = sh->p * sh->q, HW = sh->h * sh->w;
    if (sh->n == 0 || CRS == 0) return CCONV_OK;
    if (Kg == 0 || PQ == 0) {
        memset(dx, 0, (size_t)(sh->n * sh->c * HW) * sizeof(REAL));
        return CCONV_OK;
    }
    if (sh->stride_h == 1 && sh->stride_w == 1) {
        const int status = FN(conv2d_grad_input_flat)(sh, dy, relu_y, w, dx, threads);
        if (status != FLAT_NOT_APPLICABLE) return status;
    }
    /* Work items are (image, group, block of input channels): each writes only its own channels
     * of dx, so no two threads touch the same element. Blocks are small enough to bound the
     * workspace and numerous enough to keep every thread busy. */
    const double flops = 2.0 * sh->n * sh->k * CRS * PQ;
    const int want = cconv_threads_for(threads, flops, GRAIN_FLOPS);
    int64_t cb = max64(1, min64(Cg, DX_ROWS_MAX / RS));
    cb = max64(1, min64(cb, Cg / max64(1, ceil_div(2 * (int64_t)want, sh->n * G))));
    const int64_t ncb = ceil_div(Cg, cb), items = sh->n * G * ncb;
    const int64_t kc_max = balanced_block(Kg, KC_MAX), nc = min64(round_up(PQ, nr), round_up(NC_MAX, nr));
    const int64_t a_rows = round_up(cb * RS, mr), a_block = round_up(a_rows * Kg, ALIGN_ELEMS);
    const int64_t b_size = round_up(kc_max * nc, ALIGN_ELEMS), col_size = round_up(a_rows * nc, ALIGN_ELEMS);
    const int t = (int)min64(want, items);
    const int identity = RS == 1 && PQ == HW && sh->stride_h == 1 && sh->stride_w == 1 && sh->pad_top == 0 &&
                         sh->pad_left == 0;  /* output pixel i reads input pixel i */

    REAL *apack = (REAL *)cconv_workspace_acquire((size_t)(G * ncb * a_block) * sizeof(REAL));
    REAL *work = (REAL *)cconv_workspace_acquire((size_t)(t * (b_size + col_size)) * sizeof(REAL));
    if (!apack || !work) {
        cconv_workspace_release(apack);
        cconv_workspace_release(work);
        return CCONV_ENOMEM;
    }
    /* w^T of group g, channel block cbi: rows = im2col rows of the block, columns = filters. */
    for (int64_t g = 0; g < G; ++g)
        for (int64_t cbi = 0; cbi < ncb; ++cbi) {
            const int64_t c0 = cbi * cb, rows = min64(cb, Cg - c0) * RS;
            for (int64_t k0 = 0; k0 < Kg; k0 += kc_max)
                FN(pack_panels)(w + g * Kg * CRS + c0 * RS, NULL, 1, CRS, rows, k0, min64(kc_max, Kg - k0), mr,
                           apack + (g * ncb + cbi) * a_block + a_rows * k0);
        }

#pragma omp parallel num_threads(t)
    {
        REAL *bpack = work + cconv_thread_id() * (b_size + col_size), *dcol = bpack + b_size;
        int64_t it;
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t cbi = it % ncb, g = (it / ncb) % G, n = it / (ncb * G);
            const int64_t c0 = cbi * cb, rows = min64(cb, Cg - c0) * RS;
            const int64_t dy_offset = (n * sh->k + g * Kg) * PQ;
            const REAL *dyg = dy + dy_offset, *maskg = relu_y ? relu_y + dy_offset : NULL;
            REAL *dxg = dx + (n * sh->c + g * Cg) * HW;
            const REAL *ablock = apack + (g * ncb + cbi) * a_block;
            if (!identity) memset(dxg + c0 * HW, 0, (size_t)(rows / RS * HW) * sizeof(REAL));
            for (int64_t q0 = 0; q0 < PQ; q0 += nc) {
                const int64_t nq = min64(nc, PQ - q0);
                /* col2im is the identity for a 1x1 filter with stride 1 and no padding: write dx. */
                REAL *dst = identity ? dxg + c0 * HW + q0 : dcol;
                const int64_t ld = identity ? HW : nc;
                for (int64_t k0 = 0; k0 < Kg; k0 += kc_max) {
                    const int64_t kc = min64(kc_max, Kg - k0);
                    FN(pack_panels)(dyg + q0, maskg ? maskg + q0 : NULL, 1, PQ, nq, k0, kc, nr, bpack);
                    FN(gemm_packed)(kern, rows, nq, kc, ablock + a_rows * k0, bpack, dst, ld, k0 > 0, NULL, 0);
                }
                if (!identity) FN(col2im_add)(sh, dcol, nc, c0 * RS, rows, q0, nq, dxg);
            }
        }
    }
    cconv_workspace_release(apack);
    cconv_workspace_release(work);
    return CCONV_OK;
}

static int FN(conv2d_grad_weight)(const cconv_conv2d_shape *sh, const REAL *dy, const REAL *relu_y,
                                  const REAL *x, REAL *dw, REAL *db, int threads)
{
    const cconv_gemm_kernels *kern = cconv_gemm_kernels_get();
    const int mr = KERNEL_MR(kern), nr = KERNEL_NR(kern);
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, CRS = Cg * sh->r * sh->s;
    const int64_t PQ = sh->p * sh->q, HW = sh->h * sh->w, dw_size = sh->k * CRS;
    memset(dw, 0, (size_t)dw_size * sizeof(REAL));
    if (db) memset(db, 0, (size_t)sh->k * sizeof(REAL));
    if (sh->n == 0 || PQ == 0) return CCONV_OK;
    if (dw_size == 0) {  /* no weights (C = 0 or K = 0); dy may still have a bias gradient */
        if (db) FN(conv2d_grad_bias)(sh, dy, relu_y, db, threads);
        return CCONV_OK;
    }
    /* Work items are (image, group, block of output pixels); each thread sums its items into a
     * private copy of dw, and the copies are added in thread order: deterministic for a fixed
     * thread count, with no atomics. When few im2col rows would leave most of each NR-wide
     * tile empty (a first layer: CRS = 9, K = 32), the product is computed transposed,
     * dw^T[CRS, K_g] = im2col(x) . dy^T, into the private copies, which are then always used. */
    /* db, when asked for, is summed as dy is packed (the transposes' row sums), into private
     * copies too (after dw's), which are added in thread order. */
    /* The stride-1 path (conv2d_flat.h) reads x in place from a slab, dw^T = slab . dy^T, one
     * image row at a time (so it multiplies exactly the products the packed path does). It wins
     * while the filters fill at least half of an NR-wide tile (LeNet's 16 do: 1.7x faster than
     * packing im2col^T, whose cost each packed value repays over only K multiply-adds). */
    const flat_shape fs = forward_flat_shape(sh);
    const int flat = sh->stride_h == 1 && sh->stride_w == 1 && flat_row_period(&fs) > 0 && sh->r * sh->s > 1 &&
                     tile_fill(Kg, nr) >= 0.5;
    const int transposed = flat || tile_fill(CRS, mr) * tile_fill(Kg, nr) > 1.25 * tile_fill(Kg, mr) * tile_fill(CRS, nr);
    const int want = cconv_threads_for(threads, 2.0 * sh->n * sh->k * CRS * PQ, GRAIN_FLOPS);
    const int64_t wp = flat ? flat_row_period(&fs) : 0, halo = (sh->r - 1) * sh->dil_h;
    int64_t ph = 0, nblk = 0;
    if (flat) flat_blocks(&fs, wp, want, &ph, &nblk);
    const int64_t plane = (ph + halo) * wp;
    const int64_t kq = min64(PQ, KC_MAX), nqb = flat ? nblk : ceil_div(PQ, kq), items = sh->n * G * nqb;
    const int64_t nc = min64(round_up(CRS, transposed ? mr : nr), round_up(NC_MAX, nr));
    const int64_t a_size = round_up(flat ? Cg * plane + wp + nr + (sh->s - 1) * sh->dil_w
                                         : (transposed ? nc : round_up(Kg, mr)) * kq, ALIGN_ELEMS);
    const int64_t b_size = round_up(transposed ? round_up(Kg, nr) * (flat ? ph * wp : kq) : nc * kq, ALIGN_ELEMS);
    const int t = (int)min64(want, items);
    const int64_t partial = (t > 1 || transposed) ? round_up(dw_size, ALIGN_ELEMS) : 0;
    const int64_t db_partial = db ? round_up(sh->k, ALIGN_ELEMS) : 0;
    const int64_t stride = a_size + b_size + partial + db_partial;

    REAL *work = (REAL *)cconv_workspace_acquire((size_t)(t * stride) * sizeof(REAL));
    int64_t *off = flat ? (int64_t *)cconv_workspace_acquire((size_t)(CRS + mr) * sizeof(int64_t)) : NULL;
    if (!work || (flat && !off)) {
        cconv_workspace_release(work);
        cconv_workspace_release(off);
        return CCONV_ENOMEM;
    }
    if (flat) flat_offsets(&fs, wp, plane, mr, off);
#pragma omp parallel num_threads(t)
    {
        REAL *apack = work + cconv_thread_id() * stride, *bpack = apack + a_size;
        REAL *acc = partial ? bpack + b_size : dw, *bias_acc = db ? bpack + b_size + partial : NULL;
        int64_t it;
        int p;
        /* Zero all t private copies, shared out (OpenMP may run fewer than t threads: a serial
         * build, a nested region, OMP_THREAD_LIMIT; all t are summed). Serially, 16 threads' copies
         * of a large layer's dw took longer than their gradient. */
#pragma omp for schedule(static)
        for (p = 0; p < ((partial || db_partial) ? t : 0); ++p)
            memset(work + p * stride + a_size + b_size, 0, (size_t)(partial + db_partial) * sizeof(REAL));
        /* The slab: what a block does not write must still be finite (it meets zeros). */
        if (flat) memset(apack, 0, (size_t)a_size * sizeof(REAL));
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t qb = it % nqb, g = (it / nqb) % G, n = it / (nqb * G);
            const int64_t oh0 = qb * ph, block_rows = flat ? min64(ph, sh->p - oh0) : 0;  /* a stride-1 block */
            const int64_t q0 = flat ? oh0 * sh->q : qb * kq, nq = flat ? block_rows * sh->q : min64(kq, PQ - q0);
            const int64_t dy_offset = (n * sh->k + g * Kg) * PQ;
            const REAL *xg = x + (n * sh->c + g * Cg) * HW, *dyg = dy + dy_offset;
            const REAL *maskg = relu_y ? relu_y + dy_offset : NULL;
            /* dy^T of the item's pixels [q0, q0 + nq): B panels for the transposed products, else
             * A panels; the bias gradient is summed on the way. */
            FN(transpose_panels)(dyg + q0, maskg ? maskg + q0 : NULL, PQ, Kg, nq, transposed ? nr : mr,
                                 transposed ? bpack : apack, bias_acc ? bias_acc + g * Kg : NULL);
            if (flat) {
                FN(fill_slab)(&fs, xg, NULL, oh0 - sh->pad_top, block_rows + halo, wp, plane, apack);
                FN(flat_grad_weight_block)(kern, CRS, Kg, block_rows, sh->q, wp, apack, off, bpack,
                                           acc + g * Kg * CRS);
                continue;
            }
            if (transposed) {
                for (int64_t i0 = 0; i0 < CRS; i0 += nc) {
                    const int64_t rows = min64(nc, CRS - i0);
                    FN(pack_im2col_t)(sh, xg, q0, nq, i0, rows, mr, apack);  /* im2col as A panels */
                    FN(gemm_packed)(kern, rows, Kg, nq, apack, bpack, acc + g * Kg * CRS + i0 * Kg, Kg, 1, NULL, 0);
                }
                continue;
            }
            for (int64_t j0 = 0; j0 < CRS; j0 += nc) {
                const int64_t ncols = min64(nc, CRS - j0);
                FN(pack_im2col_t)(sh, xg, q0, nq, j0, ncols, nr, bpack);
                FN(gemm_packed)(kern, Kg, ncols, nq, apack, bpack, acc + g * Kg * CRS + j0, CRS, 1, NULL, 0);
            }
        }
        if (partial) {  /* the implicit barrier above makes every private copy complete */
            REAL *first = work + a_size + b_size;  /* thread 0's copy; a transposed sum lands there */
            int64_t i;
#pragma omp for schedule(static)
            for (i = 0; i < dw_size; ++i) {
                REAL sum = first[i];
                for (int p = 1; p < t; ++p) sum += work[p * stride + a_size + b_size + i];
                if (transposed) first[i] = sum;
                else dw[i] = sum;
            }
            if (transposed) {  /* dw[g, k, crs] = the sum at [g, crs, k], in blocks of 64 crs */
                const int64_t blocks = ceil_div(CRS, 64);
                int64_t b;
#pragma omp for schedule(static)
                for (b = 0; b < G * blocks; ++b) {
                    const int64_t g = b / blocks, c0 = b % blocks * 64;
                    TRANSPOSE(kern)(first + (g * CRS + c0) * Kg, NULL, Kg, min64(64, CRS - c0), Kg, Kg, 0,
                                    dw + g * Kg * CRS + c0, CRS, NULL);
                }
            }
        }
        if (db_partial) {
            int64_t k;
#pragma omp for schedule(static)
            for (k = 0; k < sh->k; ++k) {
                REAL sum = 0;
                for (int p = 0; p < t; ++p) sum += work[p * stride + a_size + b_size + partial + k];
                db[k] = sum;
            }
        }
    }
    cconv_workspace_release(work);
    cconv_workspace_release(off);
    return CCONV_OK;
}

int FN(cconv_conv2d_backward)(const cconv_conv2d_shape *sh, const REAL *dy, const REAL *y, const REAL *x,
                              const REAL *w, REAL *dx, REAL *dw, REAL *db, int activation, int threads)
{
    const REAL *relu_y = activation == CCONV_ACTIVATION_RELU ? y : NULL;
    if (db && !dw) FN(conv2d_grad_bias)(sh, dy, relu_y, db, threads);  /* else summed with dw */
    if (dx && FN(conv2d_grad_input)(sh, dy, relu_y, w, dx, threads) != CCONV_OK) return CCONV_ENOMEM;
    if (dw && FN(conv2d_grad_weight)(sh, dy, relu_y, x, dw, db, threads) != CCONV_OK) return CCONV_ENOMEM;
    return CCONV_OK;
}
