/* conv2d_im2col.h: the im2col matrix of a convolution, never materialised: packing routines that
 * read x straight into micro-kernel panels (gemm_driver.h), one block at a time, and col2im, which
 * adds a block of im2col gradients back onto dx. Type-generic, included by conv2d.c per element
 * type after gemm_driver.h. Indices: row = (c*R + r)*S + s of the im2col matrix of one image's
 * group, column = oh*Q + ow (an output pixel). */

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

/* Columns [j, j + count) of one im2col row (pixels q_first + j ...), walked one output row at a
 * time; pixels past the image's P*Q continue in the next image, image_stride elements on. */
static void FN(gather_row)(const cconv_conv2d_shape *sh, const FN(im2col_row) *d, const REAL *plane,
                           int64_t image_stride, int64_t q_first, int64_t count, REAL *dst, int64_t dstride)
{
    const int64_t pq = sh->p * sh->q;
    int64_t oh = q_first % pq / sh->q, ow = q_first % sh->q, j = 0;
    plane += q_first / pq * image_stride;
    while (j < count) {
        const int64_t run = min64(count - j, sh->q - ow), ih = oh * sh->stride_h + d->h_off;
        const REAL *src_row = (ih >= 0 && ih < sh->h) ? plane + ih * sh->w : NULL;
        FN(gather_run)(dst + j * dstride, dstride, src_row, ow, run, d->ow_lo, d->ow_hi, sh->stride_w, d->w_off);
        j += run;
        ow = 0;
        if (++oh == sh->p) {
            oh = 0;
            plane += image_stride;
        }
    }
}

/* Rows [k0, k0 + kc) x columns [q0, q0 + nq) of the im2col matrix of one image's group
 * (xg points at its first channel) into NR-column panels (the layout of gemm_driver.h). */
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

/* The transpose: rows [q0, q0 + nq) (output pixels, the reduction, running on into the next
 * images, image_stride apart) x columns [j0, j0 + n) (im2col rows) into NR-column panels, for the
 * weight gradient. Eight im2col rows at a time are gathered contiguously (nq <=
 * IM2COL_T_DEPTH_MAX) and then transposed into place with the SIMD transpose. */
static void FN(pack_im2col_t)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh, const REAL *xg,
                              int64_t image_stride, int64_t q0, int64_t nq, int64_t j0, int64_t n, int nr,
                              REAL *out)
{
    enum { ROWS = 8 };
    REAL rows_buf[ROWS * IM2COL_T_DEPTH_MAX];
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
                FN(gather_row)(sh, &d, xg + d.c * sh->h * sh->w, image_stride, q0, nq, row, 1);
            }
            cfg->transpose(rows_buf, NULL, nq, take, nq, nq, 0, panel + jj, nr, NULL);
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

/* Where the packing callbacks (gemm_driver.h's gemm_pack_fn) of a work item read: one image's
 * group of x (or of dy, with its ReLU mask), from output pixel q0 on; the weight gradient's
 * pixels run on into the next images, image_stride elements apart. */
typedef struct {
    const FN(cconv_gemm_config) *cfg;
    const cconv_conv2d_shape *sh;
    const REAL *xg;
    const REAL *mask;  /* dy's ReLU mask (the forward's output), or NULL */
    int64_t q0;
    int64_t image_stride;
} FN(im2col_source);

/* B = im2col: depth = im2col rows [p0, p0 + kc), columns = pixels q0 + [j0, j0 + cols). */
static void FN(pack_im2col_b)(const void *source, int64_t j0, int64_t cols, int64_t p0, int64_t kc, int width,
                              REAL *out)
{
    const FN(im2col_source) *src = (const FN(im2col_source) *)source;
    FN(pack_im2col)(src->sh, src->xg, p0, kc, src->q0 + j0, cols, width, out);
}

/* im2col^T: depth = pixels q0 + [p0, p0 + kc), rows (of A) or columns (of B) = im2col rows
 * [i0, i0 + n): B of dw = dy . im2col^T, or A of dw^T = im2col . dy^T. */
static void FN(pack_im2col_t_panels)(const void *source, int64_t i0, int64_t n, int64_t p0, int64_t kc, int width,
                                     REAL *out)
{
    const FN(im2col_source) *src = (const FN(im2col_source) *)source;
    FN(pack_im2col_t)(src->cfg, src->sh, src->xg, src->image_stride, src->q0 + p0, kc, i0, n, width, out);
}

/* The pointwise case, where im2col is x itself (row c = channel plane c). B = x's channels
 * [p0, p0 + kc) x pixels q0 + [j0, j0 + cols). */
static void FN(pack_x_columns)(const void *source, int64_t j0, int64_t cols, int64_t p0, int64_t kc, int width,
                               REAL *out)
{
    const FN(im2col_source) *src = (const FN(im2col_source) *)source;
    const int64_t hw = src->sh->h * src->sh->w;
    FN(pack_panels)(src->cfg, src->xg + src->q0 + j0, NULL, 1, hw, cols, p0, kc, width, out);
}

/* The pointwise im2col^T: channels [i0, i0 + n) x pixels q0 + [p0, p0 + kc), rows of x
 * transposed (as pack_im2col_t_panels). */
static void FN(pack_x_rows)(const void *source, int64_t i0, int64_t n, int64_t p0, int64_t kc, int width, REAL *out)
{
    const FN(im2col_source) *src = (const FN(im2col_source) *)source;
    const int64_t hw = src->sh->h * src->sh->w;
    FN(pack_panels)(src->cfg, src->xg + i0 * hw + src->q0, NULL, hw, 1, n, p0, kc, width, out);
}

/* dy's rows (filters) as B: depth = filters [p0, p0 + kc), columns = pixels q0 + [j0, j0 + cols),
 * ReLU-masked. (The gradient of the input multiplies w^T by dy.) */
static void FN(pack_dy_columns)(const void *source, int64_t j0, int64_t cols, int64_t p0, int64_t kc, int width,
                                REAL *out)
{
    const FN(im2col_source) *src = (const FN(im2col_source) *)source;
    const int64_t pq = src->sh->p * src->sh->q, at = src->q0 + j0;
    FN(pack_panels)(src->cfg, src->xg + at, src->mask ? src->mask + at : NULL, 1, pq, cols, p0, kc, width, out);
}

/* Whole images side by side as B, for maps too small to fill the micro-kernels' tiles and the
 * cache blocks on their own: image i's P*Q columns start at column i*padded (padded: P*Q rounded
 * up to whole panels), packed by `pack` from `first` moved on by i*image_stride (x or dy, and
 * dy's mask); the columns between are zero. gemm_run packs them in one block (images*padded is
 * at most its nc), so j0 is 0 and cols all of them. */
typedef struct {
    FN(gemm_pack_fn) pack;
    FN(im2col_source) first;
    int64_t images, padded;
} FN(image_columns);

static void FN(pack_image_columns)(const void *source, int64_t j0, int64_t cols, int64_t p0, int64_t kc, int width,
                                   REAL *out)
{
    const FN(image_columns) *src = (const FN(image_columns) *)source;
    const int64_t pq = src->first.sh->p * src->first.sh->q;
    (void)j0;
    (void)cols;
    for (int64_t i = 0; i < src->images; ++i) {
        FN(im2col_source) one = src->first;
        one.xg += i * one.image_stride;
        if (one.mask) one.mask += i * one.image_stride;
        src->pack(&one, 0, pq, p0, kc, width, out + i * src->padded * kc);
    }
}
