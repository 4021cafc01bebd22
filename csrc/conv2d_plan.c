/* conv2d_plan.c: which algorithm runs each convolution pass, and in which variant. Every rule
 * that picks between algorithms or micro-kernels lives here, with the reason for it; the
 * algorithms themselves (conv2d_gemm.h, conv2d_implicit_gemm.h, conv2d_grad_weight.h) only run. */
#include "conv2d_plan.h"

#include "checked_math.h"
#include "index_math.h"

static const char *const NAMES[CCONV_CONV2D_ALGORITHM_COUNT] = {
    [CCONV_CONV2D_AUTO] = "auto",
    [CCONV_CONV2D_GEMM] = "gemm",
    [CCONV_CONV2D_IMPLICIT_GEMM] = "implicit_gemm",
    [CCONV_CONV2D_POINTWISE] = "pointwise",
    [CCONV_CONV2D_DEPTHWISE] = "depthwise",
    [CCONV_CONV2D_WINOGRAD] = "winograd",
};

const char *cconv_conv2d_algorithm_name(cconv_conv2d_algorithm algorithm)
{
    return algorithm >= 0 && algorithm < CCONV_CONV2D_ALGORITHM_COUNT ? NAMES[algorithm] : NULL;
}

/* Whether rows [0, outputs) of an axis, stride apart, with a filter of `taps` taps dil apart, read
 * padded rows that fit an input of `size` with `pad` before it and at most
 * CCONV_CONV2D_EXTENT_MAX after it. */
static int reads_within(int64_t outputs, int64_t stride, int64_t taps, int64_t dil, int64_t pad, int64_t size)
{
    int64_t last_start, span, end;
    if (outputs == 0) return 1;
    return !ckd_mul64(&last_start, outputs - 1, stride) && !ckd_mul64(&span, taps - 1, dil) &&
           !ckd_add64(&end, last_start, span) && end < pad + size + CCONV_CONV2D_EXTENT_MAX;
}

const char *cconv_conv2d_shape_invalid(const cconv_conv2d_shape *sh)
{
    const int64_t sizes[] = {sh->n, sh->c, sh->h, sh->w, sh->k, sh->pad_top, sh->pad_left};
    const int64_t positive[] = {sh->r, sh->s, sh->groups, sh->stride_h, sh->stride_w, sh->dil_h, sh->dil_w};
    for (int i = 0; i < 7; ++i) {
        if (sizes[i] < 0 || sizes[i] > CCONV_CONV2D_EXTENT_MAX)
            return "a size or padding of the convolution is negative or larger than 2**31 - 1";
        if (positive[i] < 1 || positive[i] > CCONV_CONV2D_EXTENT_MAX)
            return "a filter extent, group count, stride or dilation of the convolution is not in [1, 2**31 - 1]";
    }
    if (sh->c % sh->groups || sh->k % sh->groups) return "the group count does not divide the channels and filters";
    if (sh->p < 0 || sh->q < 0 || !reads_within(sh->p, sh->stride_h, sh->r, sh->dil_h, sh->pad_top, sh->h) ||
        !reads_within(sh->q, sh->stride_w, sh->s, sh->dil_w, sh->pad_left, sh->w))
        return "the output size does not match the input, padding, filter, stride and dilation";
    if (!size_fits(size_product(sh->n, sh->c, sh->h, sh->w), sizeof(double)) ||
        !size_fits(size_product(sh->k, sh->c / sh->groups, sh->r, sh->s), sizeof(double)) ||
        !size_fits(size_product(sh->n, sh->k, sh->p, sh->q), sizeof(double)))
        return "the input, filters or output of the convolution would not fit memory";
    return NULL;
}

slab_shape conv2d_forward_slab(const cconv_conv2d_shape *sh)
{
    const slab_shape fs = {sh->n, sh->groups, sh->c / sh->groups, sh->h, sh->w, sh->k / sh->groups, sh->p, sh->q,
                           sh->r, sh->s, sh->dil_h, sh->dil_w, sh->pad_top, sh->pad_left, sh->stride_h, sh->stride_w};
    return fs;
}

slab_shape conv2d_grad_input_slab(const cconv_conv2d_shape *sh)
{
    const slab_shape fs = {sh->n, sh->groups, sh->k / sh->groups, sh->p, sh->q, sh->c / sh->groups, sh->h, sh->w,
                           sh->r, sh->s, sh->dil_h, sh->dil_w,
                           sh->dil_h * (sh->r - 1) - sh->pad_top, sh->dil_w * (sh->s - 1) - sh->pad_left, 1, 1};
    return fs;
}

int64_t slab_row_period(const slab_shape *fs)
{
    /* Strided: each phase's rows hold Q outputs and the columns past them that the filter reads,
     * every one written explicitly (no gap shared between rows). */
    if (fs->stride_h > 1 || fs->stride_w > 1) return fs->q + (fs->s - 1) * fs->dil_w / fs->stride_w;
    const int64_t pad_right = fs->q + (fs->s - 1) * fs->dil_w - fs->w - fs->pad_left;
    if (fs->pad_left < 0 || pad_right < 0) return 0;
    return max64(fs->w + max64(fs->pad_left, pad_right), fs->q);  /* a row must hold Q outputs */
}

slab_layout slab_layout_make(const slab_shape *fs, int64_t rows)
{
    slab_layout L;
    int phases_h = 0;
    L.wp = slab_row_period(fs);
    L.halo = (fs->r - 1) * fs->dil_h / fs->stride_h;
    L.phases_w = 0;
    for (int64_t i = 0; i < SLAB_MAX_STRIDE; ++i) L.phase_h[i] = L.phase_w[i] = -1;
    /* r*dil_h % stride_h repeats with period stride_h: the first stride_h taps meet every phase in use */
    for (int64_t r = 0; r < min64(fs->r, fs->stride_h); ++r) {
        const int64_t phase = r * fs->dil_h % fs->stride_h;
        if (L.phase_h[phase] < 0) L.phase_h[phase] = (signed char)phases_h++;
    }
    for (int64_t s = 0; s < min64(fs->s, fs->stride_w); ++s) {
        const int64_t phase = s * fs->dil_w % fs->stride_w;
        if (L.phase_w[phase] < 0) L.phase_w[phase] = (signed char)L.phases_w++;
    }
    L.phase_plane = size_mul(size_add(rows, L.halo), L.wp);
    L.plane = size_mul(phases_h * L.phases_w, L.phase_plane);
    return L;
}

/* The implicit GEMM refuses geometries whose slab would hold more than this many elements per
 * block of one output row: only huge padding or dilation get there (with the answer mostly
 * zeros), and the GEMM, which packs only the pixels it reads, runs them in bounded memory. */
#define SLAB_ELEMENTS_MAX ((int64_t)1 << 27)

/* The elements of a slab for blocks of one output row (CCONV_SIZE_OVERFLOW when that does not
 * fit an int64). */
static int64_t slab_elements_per_row(const slab_shape *fs)
{
    return size_mul(fs->cin, slab_layout_make(fs, 1).plane);
}

/* The depthwise algorithm refuses geometries whose zero-padded planes (a per-thread copy of the
 * m planes of one channel that its gradient of the input may take whole) would hold more than
 * this many elements: huge images, padding or dilation, which the GEMM runs in bounded memory. */
#define DEPTHWISE_PLANE_ELEMENTS_MAX ((int64_t)1 << 24)

/* The elements of the m = K/C padded planes of one channel (CCONV_SIZE_OVERFLOW when that does
 * not fit an int64): the input's padded extent that the outputs read, or the output's padded by
 * the dilated filter (the gradient of the input), whichever is larger, each rounded up to whole
 * strides (a slab row holds stride_w phases, and the strided gradient of the input runs
 * stride_h * stride_w classes of pixels). The extents fit: the shape is valid
 * (cconv_conv2d_shape_invalid). */
static int64_t depthwise_plane_elements(const cconv_conv2d_shape *sh)
{
    const int64_t dilated_h = (sh->r - 1) * sh->dil_h, dilated_w = (sh->s - 1) * sh->dil_w;
    const int64_t read_h = max64(sh->p - 1, 0) * sh->stride_h + dilated_h + 1;
    const int64_t read_w = max64(sh->q - 1, 0) * sh->stride_w + dilated_w + 1;
    const int64_t rows = size_round_up(max64(read_h, sh->h + dilated_h), sh->stride_h);
    const int64_t cols = size_round_up(max64(read_w, sh->w + dilated_w), sh->stride_w);
    return size_mul(size_mul(sh->c ? sh->k / sh->c : 0, rows), cols);
}

/* The Winograd algorithm addresses its tiles with 32-bit offsets into a copy of a few rows. */
#define WINOGRAD_MAX_ROW (1 << 24)

static int is_pointwise(const cconv_conv2d_shape *sh)
{
    return sh->r == 1 && sh->s == 1 && sh->stride_h == 1 && sh->stride_w == 1 && sh->pad_top == 0 &&
           sh->pad_left == 0 && sh->p == sh->h && sh->q == sh->w;
}

const char *cconv_conv2d_unsupported(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass,
                                     cconv_conv2d_algorithm algorithm)
{
    if (pass < 0 || pass >= CCONV_CONV2D_PASS_COUNT) return "unknown pass";
    const char *invalid = cconv_conv2d_shape_invalid(sh);
    if (invalid) return invalid;
    switch (algorithm) {
    case CCONV_CONV2D_AUTO:
    case CCONV_CONV2D_GEMM:
        return NULL;
    case CCONV_CONV2D_IMPLICIT_GEMM: {
        if (sh->stride_h > SLAB_MAX_STRIDE || sh->stride_w > SLAB_MAX_STRIDE)
            return "the implicit GEMM runs strides up to 16";
        if (pass == CCONV_CONV2D_GRAD_INPUT && (sh->stride_h != 1 || sh->stride_w != 1))
            return "the implicit GEMM's gradient of the input runs stride 1 only";
        const slab_shape fs = pass == CCONV_CONV2D_GRAD_INPUT ? conv2d_grad_input_slab(sh) : conv2d_forward_slab(sh);
        if (!slab_row_period(&fs))
            return "the implicit GEMM's gradient of the input needs padding no wider than the dilated filter "
                   "minus one on each side (wider padding crops the gradient)";
        if (slab_elements_per_row(&fs) > SLAB_ELEMENTS_MAX)
            return "the implicit GEMM's copy of the padded input would be too large for this padding and dilation "
                   "(the GEMM runs it)";
        return NULL;
    }
    case CCONV_CONV2D_POINTWISE:
        return is_pointwise(sh) ? NULL : "the pointwise algorithm runs 1x1 filters with stride 1 and no padding only";
    case CCONV_CONV2D_DEPTHWISE:
        if (sh->groups != sh->c) return "the depthwise algorithm runs groups == C only (one input channel per group)";
        if (depthwise_plane_elements(sh) > DEPTHWISE_PLANE_ELEMENTS_MAX)
            return "the depthwise algorithm's zero-padded planes would be too large for this image, padding and "
                   "dilation (the GEMM runs it)";
        return NULL;
    case CCONV_CONV2D_WINOGRAD:
        if (sh->r != 3 || sh->s != 3 || sh->stride_h != 1 || sh->stride_w != 1 || sh->groups != 1)
            return "the Winograd algorithm runs 3x3 filters with stride 1 and one group only";
        if (max64(sh->w, sh->q) > WINOGRAD_MAX_ROW)
            return "the Winograd algorithm runs rows of at most 2^24 pixels (its tile offsets are 32-bit)";
        if (pass == CCONV_CONV2D_GRAD_WEIGHT)
            return "the Winograd algorithm runs the forward and the gradient of the input; the weight gradient runs "
                   "a direct algorithm (ask for {'grad_input': 'winograd'})";
        return NULL;
    default:
        return "unknown algorithm";
    }
}

/* The fraction of a tile dimension of `tile` that `n` rows or columns fill. */
static double tile_fill(int64_t n, int64_t tile) { return (double)n / (double)size_round_up(n, tile); }

/* Whether at least a quarter of each slab row is outputs: the implicit GEMM computes (or copies)
 * a whole row period per output row, so padding or dilation far wider than the map (cheap
 * answers of huge geometries) would cost it far more than the GEMM, which packs only what the
 * outputs read. Ordinary layers keep most of each row. */
static int slab_mostly_outputs(const slab_shape *fs)
{
    return size_mul(fs->q, 4) >= slab_row_period(fs);
}

/* The GEMM's gradient of the input writes each of its products (Cg*R*S rows) and adds it back into
 * dx (col2im): about this many multiply-adds' worth per product, which its depth of K/groups
 * filters must repay. */
#define GEMM_DX_OUTPUT_COST 8.0

/* Whether the implicit GEMM beats the GEMM on the forward or the gradient of the input (fs). It
 * saves packing cin*R*S values per output pixel and costs a copy of cout outputs, so it needs
 * cin*R*S >= cout; and a 1x1 filter's packing is a plain copy, which the GEMM does as fast. In
 * the forward both run tiles of cout filters, and only the packing differs. In the gradient of
 * the input the GEMM's tiles are taller (cout*R*S rows, the im2col rows), which wins when cout
 * fills under 3/4 of the micro-kernel's MR rows, unless its depth (cin, the filters of a group)
 * is too shallow to repay writing and col2im'ing its products: the implicit GEMM's extra
 * multiply-adds per product, cin * (1/fill - 1/GEMM's fill), must then exceed
 * GEMM_DX_OUTPUT_COST (thin groups: ResNeXt's 8 filters per group stay with the implicit GEMM). */
static int implicit_gemm_pays(const slab_shape *fs, cconv_conv2d_pass pass, const cconv_gemm_tiles *tiles)
{
    if (fs->r * fs->s == 1 || size_mul(size_mul(fs->cin, fs->r), fs->s) < fs->cout || !slab_mostly_outputs(fs))
        return 0;
    if (pass != CCONV_CONV2D_GRAD_INPUT) return 1;
    const double fill = tile_fill(fs->cout, tiles->mr);
    const double gemm_fill = tile_fill(size_mul(size_mul(fs->cout, fs->r), fs->s), tiles->mr);
    return fill >= 0.75 || (double)fs->cin * (1.0 / fill - 1.0 / gemm_fill) <= GEMM_DX_OUTPUT_COST;
}

/* Whether the implicit GEMM's weight gradient beats the GEMM's: reading the slab in place beats
 * packing im2col^T, whose cost each packed value repays over only K/groups multiply-adds. Few
 * filters per group leave most of the implicit GEMM's NR-wide tiles empty, but they repay the
 * GEMM's packing even less. */
static int implicit_gemm_pays_for_weights(const cconv_conv2d_shape *sh)
{
    const slab_shape fs = conv2d_forward_slab(sh);
    return sh->r * sh->s > 1 && slab_mostly_outputs(&fs);
}

/* Whether the implicit GEMM's tiles can cover whole output rows with the B-offset kernel: Q a
 * multiple of NR, or a divisor of it in whole 64-byte vectors (gemm_config.h's runs). */
int slab_offset_row_runs(const slab_shape *fs, const cconv_gemm_tiles *tiles, int elem_size)
{
    const int64_t vec = 64 / elem_size;
    return fs->q % tiles->nr == 0 || (tiles->nr % fs->q == 0 && fs->q % vec == 0);
}

/* Whether the implicit GEMM runs the pixel micro-kernel rather than the B-offset one: the config
 * has one, and the share of its tiles' lanes that compute kept outputs is at least the B-offset
 * kernel's (on a tie the pixel kernel wins: it loads its filters aligned and broadcasts pixels).
 * Its tiles cover whole rows when Q is a multiple of its MR (no lane wasted), else they run along
 * the slab's rows and compute their gaps. */
static int pixel_kernel_pays(const slab_shape *fs, const cconv_gemm_tiles *tiles, int elem_size)
{
    if (!tiles->pix_mr) return 0;
    const double gap_fill = (double)fs->q / (double)slab_row_period(fs);
    const double pix = tile_fill(fs->cout, tiles->pix_nr) * (fs->q % tiles->pix_mr == 0 ? 1.0 : gap_fill);
    const double offset = tile_fill(fs->cout, tiles->mr) * (slab_offset_row_runs(fs, tiles, elem_size) ? 1.0 : gap_fill);
    return pix >= offset;
}

/* Whether the GEMM weight gradient computes dw^T = im2col . dy^T rather than dw = dy . im2col^T:
 * when few im2col rows (C*R*S) would leave most of each NR-wide tile empty (a first layer:
 * C*R*S = 9, K = 32), the product turned around fills its tiles better. */
static int transposed_pays(const cconv_conv2d_shape *sh, const cconv_gemm_tiles *tiles)
{
    const int64_t kg = sh->k / sh->groups, crs = size_mul(size_mul(sh->c / sh->groups, sh->r), sh->s);
    return tile_fill(crs, tiles->mr) * tile_fill(kg, tiles->nr) > 1.25 * tile_fill(kg, tiles->mr) * tile_fill(crs, tiles->nr);
}

/* The output of the convolution Winograd runs for `pass`: the gradient of the input is a
 * convolution whose outputs are the input's pixels. */
static int64_t winograd_output_rows(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass)
{
    return pass == CCONV_CONV2D_GRAD_INPUT ? sh->h : sh->p;
}

static int64_t winograd_output_columns(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass)
{
    return pass == CCONV_CONV2D_GRAD_INPUT ? sh->w : sh->q;
}

/* The side m of the Winograd output tiles, F(m x m, 3 x 3): the one with fewer multiplies per kept
 * output, counting the outputs computed past the map's edge (tiles cover ceil(P/m)*m rows): the
 * products cost (m+2)^2 per tile, 36/16 per output at m = 4 against 16/4 at m = 2, so m = 2 only
 * wins on maps of a few pixels. Larger tiles lose accuracy (the transforms' constants grow). */
static int winograd_tile(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass)
{
    const int64_t p = winograd_output_rows(sh, pass), q = winograd_output_columns(sh, pass);
    const double f4 = 36.0 * (double)ceil_div(p, 4) * (double)ceil_div(q, 4);
    const double f2 = 16.0 * (double)ceil_div(p, 2) * (double)ceil_div(q, 2);
    return f2 < f4 ? 2 : 4;
}

/* Whether the Winograd algorithm beats direct convolution on `pass`: its products do a quarter of
 * the multiply-adds, but each tile costs an input transform per input channel and an output
 * transform per output channel, which the products repay only when both channel counts are
 * large: it pays while cin*cout / (cin + cout), the products' work per transform, is at least
 * WINOGRAD_MIN_WORK. The filters are transformed once per call, which the products repay only
 * over at least WINOGRAD_MIN_TILES output tiles (a batch of one small map has fewer). A dilated
 * convolution runs one per phase of the dilation, each on a map dil times smaller per side,
 * which must keep WINOGRAD_MIN_PHASE outputs per side for its tiles not to be mostly edge. */
#define WINOGRAD_MIN_WORK 16.0
#define WINOGRAD_MIN_TILES 32.0
#define WINOGRAD_MIN_PHASE 8

static int winograd_pays(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass)
{
    const double cin = (double)(pass == CCONV_CONV2D_GRAD_INPUT ? sh->k : sh->c);
    const double cout = (double)(pass == CCONV_CONV2D_GRAD_INPUT ? sh->c : sh->k);
    const int64_t p = winograd_output_rows(sh, pass), q = winograd_output_columns(sh, pass);
    const double tiles = (double)sh->n * (double)ceil_div(p, 4) * (double)ceil_div(q, 4);
    /* dilated: one convolution per phase, each on a map dil times smaller per side */
    const int dilated = sh->dil_h > 1 || sh->dil_w > 1;
    const int phases_large = !dilated || (p / sh->dil_h >= WINOGRAD_MIN_PHASE && q / sh->dil_w >= WINOGRAD_MIN_PHASE);
    return cin * cout >= WINOGRAD_MIN_WORK * (cin + cout) && tiles >= WINOGRAD_MIN_TILES && phases_large;
}

/* The weights of a group below this many bytes stay in cache from one image to the next, and
 * nothing is gained by taking several images per work item. */
#define IMAGES_WEIGHT_BYTES (256 * 1024)

/* How many whole images the GEMM's work items of `pass` could hold: when a group's weights are
 * too large to stay in cache between images (and in the weight gradient, its sums of dw), the
 * images whose pixels fit one block of columns (forward and gradient of the input, each image's
 * columns rounded up to whole NR-wide panels) or one depth block (weight gradient). Below two,
 * items stay within one image. */
static int64_t images_per_block(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass, const cconv_gemm_tiles *tiles,
                                int elem_size)
{
    const int64_t pq = size_mul(sh->p, sh->q), groups = max64(sh->groups, 1);
    const double weight_bytes = (double)(sh->k / groups) * (double)(sh->c / groups) * (double)(sh->r * sh->s) * elem_size;
    if (pq == 0 || weight_bytes < IMAGES_WEIGHT_BYTES) return 1;
    const int64_t fit = pass == CCONV_CONV2D_GRAD_WEIGHT ? tiles->kc / pq : tiles->nc / size_round_up(pq, tiles->nr);
    return clamp64(fit, 1, max64(sh->n, 1));
}

/* Whole images per work item of the GEMM: on small maps, several, so that the weights (or, in
 * the weight gradient, the sums of dw) stream from memory once per group of images instead of
 * once per image; as many as fit (images_per_block) while every thread still gets an item, in
 * groups of nearly equal size. */
static int64_t images_per_item(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass, const cconv_gemm_tiles *tiles,
                               int elem_size, int threads)
{
    int64_t images = images_per_block(sh, pass, tiles, elem_size);
    images = min64(images, max64(1, sh->n * sh->groups / max64(threads, 1)));
    return images > 1 ? ceil_div(sh->n, ceil_div(sh->n, images)) : 1;
}

/* The algorithm AUTO runs: the depthwise algorithm for a depthwise convolution (below); Winograd
 * for 3x3 stride-1 filters where it pays (above); on maps
 * small enough that the GEMM's items hold several images, the GEMM (the implicit GEMM streams the
 * weights once per image); else the implicit GEMM where it applies and pays (rules above), else
 * the pointwise product for 1x1 filters (it packs the input rows as they are), else the GEMM. */
static cconv_conv2d_algorithm choose(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass,
                                     const cconv_gemm_tiles *tiles, int elem_size)
{
    /* With one input channel per group, the GEMMs multiply per group m = K/C filter rows (one
     * for a plain depthwise layer) by a depth of only R*S: most of each MR-row micro-tile is
     * wasted and the packing costs as much as the arithmetic, while the direct algorithm streams
     * each plane once. A single group (C = 1) is an ordinary convolution whose K filters fill the
     * GEMM's tiles, so it stays with the rules below. */
    if (sh->groups > 1 && !cconv_conv2d_unsupported(sh, pass, CCONV_CONV2D_DEPTHWISE)) return CCONV_CONV2D_DEPTHWISE;
    if (!cconv_conv2d_unsupported(sh, pass, CCONV_CONV2D_WINOGRAD) && winograd_pays(sh, pass))
        return CCONV_CONV2D_WINOGRAD;
    if (images_per_block(sh, pass, tiles, elem_size) > 1) return is_pointwise(sh) ? CCONV_CONV2D_POINTWISE : CCONV_CONV2D_GEMM;
    if (!cconv_conv2d_unsupported(sh, pass, CCONV_CONV2D_IMPLICIT_GEMM)) {
        const slab_shape fs = pass == CCONV_CONV2D_GRAD_INPUT ? conv2d_grad_input_slab(sh) : conv2d_forward_slab(sh);
        const int pays = pass == CCONV_CONV2D_GRAD_WEIGHT ? implicit_gemm_pays_for_weights(sh)
                                                          : implicit_gemm_pays(&fs, pass, tiles);
        if (pays) return CCONV_CONV2D_IMPLICIT_GEMM;
    }
    if (is_pointwise(sh)) return CCONV_CONV2D_POINTWISE;
    return CCONV_CONV2D_GEMM;
}

conv2d_plan conv2d_make_plan(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass, cconv_conv2d_algorithm requested,
                             const cconv_gemm_tiles *tiles, int elem_size, int threads)
{
    conv2d_plan plan = {requested == CCONV_CONV2D_AUTO ? choose(sh, pass, tiles, elem_size) : requested, 0, 0, 1, 0};
    if (plan.algorithm == CCONV_CONV2D_GEMM || plan.algorithm == CCONV_CONV2D_POINTWISE)
        plan.images = images_per_item(sh, pass, tiles, elem_size, threads);
    if (plan.algorithm == CCONV_CONV2D_IMPLICIT_GEMM && pass != CCONV_CONV2D_GRAD_WEIGHT) {
        const slab_shape fs = pass == CCONV_CONV2D_GRAD_INPUT ? conv2d_grad_input_slab(sh) : conv2d_forward_slab(sh);
        plan.pixel_kernel = pixel_kernel_pays(&fs, tiles, elem_size);
    }
    if (plan.algorithm == CCONV_CONV2D_WINOGRAD) plan.winograd_tile = winograd_tile(sh, pass);
    if (plan.algorithm != CCONV_CONV2D_IMPLICIT_GEMM && pass == CCONV_CONV2D_GRAD_WEIGHT)
        plan.transposed = transposed_pays(sh, tiles);
    return plan;
}

cconv_conv2d_algorithm cconv_conv2d_auto(const cconv_conv2d_shape *sh, cconv_conv2d_pass pass, int elem_size)
{
    const cconv_gemm_configs *configs = cconv_gemm_configs_current();
    const cconv_gemm_tiles *tiles = elem_size == 8 ? &configs->f64->tiles : &configs->f32->tiles;
    if (cconv_conv2d_shape_invalid(sh)) return CCONV_CONV2D_GEMM;  /* which no call runs */
    return conv2d_make_plan(sh, pass, CCONV_CONV2D_AUTO, tiles, elem_size, 1).algorithm;
}
