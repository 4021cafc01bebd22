/* conv2d_grad_weight.h: the gradient of the weights (and of the bias), for every algorithm.
 * Type-generic, included by conv2d.c per element type after conv2d_implicit_gemm.h.
 *
 * Work items are (image, group, block of output pixels), or on small maps (GEMM, plan->images > 1)
 * (group of whole images, group), whose pixels run on from image to image; each thread sums its items into a
 * private copy of dw; the copies are added in thread order, so the result is deterministic for a
 * fixed thread count, with no atomics. Each item first packs its block of dy^T (the bias
 * gradient is summed on the way, into private sums too), then runs its algorithm's product:
 *   GEMM / pointwise        dw[K_g, CRS]  += dy[K_g, block] . im2col(x)^T[block, CRS]
 *   GEMM, transposed        dw^T[CRS, K_g] += im2col(x)[CRS, block] . dy^T[block, K_g]
 *   implicit GEMM           dw^T[CRS, K_g] += slab . dy^T, A read in place from the slab
 * (the transposed sums are transposed into dw at the end). */

/* A thread's workspace: its packing space (a then b), then its private dw and db sums, then the
 * rows of dy of an item of several images, gathered side by side. */
typedef struct {
    int64_t a, b;        /* elements for A's and B's packing */
    int64_t partial;     /* a private copy of dw, or 0 when one thread sums into dw itself */
    int64_t db_partial;  /* private bias-gradient sums, or 0 without db */
    int64_t dy_rows;     /* an item's rows of dy (images side by side), or 0 for items of one image */
} FN(grad_weight_workspace);

static int64_t FN(grad_weight_stride)(const FN(grad_weight_workspace) *ws)
{
    return size_add(size_add(size_add(ws->a, ws->b), size_add(ws->partial, ws->db_partial)), ws->dy_rows);
}

/* What every item of one call shares. */
typedef struct {
    const FN(cconv_gemm_config) *cfg;
    const cconv_conv2d_shape *sh;
    conv2d_plan plan;
    const REAL *dy, *relu_y, *x;
    int64_t images;                /* images per item */
    int64_t block_pixels, blocks;  /* pixels per item (GEMM), items per image's (or images') group */
    /* the implicit GEMM's slab */
    slab_shape fs;
    int64_t wp, rows_per_block;
    slab_layout layout;
    const int64_t *off;
} FN(grad_weight_job);

/* The GEMM (and pointwise) item: pixels [q0, q0 + nq) of image n's group g (running on into the
 * next images), dy^T already packed in
 * dyt (A panels, or B panels when transposed); sums into acc (dw, or dw^T when transposed). */
static void FN(grad_weight_gemm_item)(const FN(grad_weight_job) *job, int64_t n, int64_t g, int64_t q0, int64_t nq,
                                      const REAL *dyt, REAL *work, REAL *acc)
{
    const cconv_conv2d_shape *sh = job->sh;
    const int64_t Kg = sh->k / sh->groups, Cg = sh->c / sh->groups, CRS = Cg * sh->r * sh->s;
    const FN(im2col_source) src = {job->cfg, sh, job->x + (n * sh->c + g * Cg) * sh->h * sh->w, NULL, q0,
                                   sh->c * sh->h * sh->w};
    const FN(gemm_pack_fn) pack = job->plan.algorithm == CCONV_CONV2D_POINTWISE && job->images == 1
                                      ? FN(pack_x_rows) : FN(pack_im2col_t_panels);
    const FN(gemm_operand) x_operand = {.pack = pack, .source = &src}, dy_operand = {.packed = dyt};
    const FN(gemm_problem) problem = {
        .m = job->plan.transposed ? CRS : Kg, .n = job->plan.transposed ? Kg : CRS, .k = nq,
        .a = job->plan.transposed ? x_operand : dy_operand,
        .b = job->plan.transposed ? dy_operand : x_operand,
        .c = acc + g * Kg * CRS, .ldc = job->plan.transposed ? Kg : CRS,
        .accumulate = 1,
    };
    FN(gemm_run)(job->cfg, &problem, work);
}

/* The implicit GEMM item: output rows [oh0, oh0 + rows) of image n's group g, with dy^T packed
 * in dyt as B panels; sums into acc as dw^T. */
static void FN(grad_weight_implicit_item)(const FN(grad_weight_job) *job, int64_t n, int64_t g, int64_t oh0,
                                          int64_t rows, const REAL *dyt, REAL *slab, REAL *acc)
{
    const cconv_conv2d_shape *sh = job->sh;
    const int64_t Kg = sh->k / sh->groups, Cg = sh->c / sh->groups, CRS = Cg * sh->r * sh->s;
    FN(fill_block)(&job->fs, &job->layout, job->x + (n * sh->c + g * Cg) * sh->h * sh->w, NULL, oh0, rows, slab);
    FN(implicit_gemm_weight_block)(job->cfg, CRS, Kg, rows, sh->q, job->wp, slab, job->off, dyt, acc + g * Kg * CRS);
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
    const int t = (int)min64(cconv_threads_for(threads, (double)sh->n * K * PQ, 8.0 * GRAIN_FLOPS), max64(K, 1));
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

static int FN(conv2d_grad_weight)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                  const conv2d_plan *plan, const REAL *dy, const REAL *relu_y, const REAL *x, REAL *dw,
                                  REAL *db, int threads)
{
    const int mr = cfg->tiles.mr, nr = cfg->tiles.nr;
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, CRS = Cg * sh->r * sh->s;
    const int64_t PQ = sh->p * sh->q, dw_size = sh->k * CRS;
    memset(dw, 0, (size_t)dw_size * sizeof(REAL));
    if (db) memset(db, 0, (size_t)sh->k * sizeof(REAL));
    if (sh->n == 0 || PQ == 0) return CCONV_OK;
    if (dw_size == 0) {  /* no weights (C = 0 or K = 0); dy may still have a bias gradient */
        if (db) FN(conv2d_grad_bias)(sh, dy, relu_y, db, threads);
        return CCONV_OK;
    }
    const int implicit = plan->algorithm == CCONV_CONV2D_IMPLICIT_GEMM, transposed = implicit || plan->transposed;
    const int want = cconv_threads_for(threads, 2.0 * sh->n * sh->k * CRS * PQ, GRAIN_FLOPS);
    FN(grad_weight_job) job = {.cfg = cfg, .sh = sh, .plan = *plan, .dy = dy, .relu_y = relu_y, .x = x,
                               .images = implicit ? 1 : clamp64(plan->images, 1, max64(1, IM2COL_T_DEPTH_MAX / PQ)),
                               .fs = conv2d_forward_slab(sh)};
    FN(grad_weight_workspace) ws = {0, 0, 0, 0, 0};
    if (implicit) {
        job.wp = slab_row_period(&job.fs);
        FN(slab_blocks)(&job.fs, job.wp, want, &job.rows_per_block, &job.blocks);
        job.layout = slab_layout_make(&job.fs, job.rows_per_block);
        ws.a = size_round_up(size_add(size_add(size_mul(Cg, job.layout.plane), job.wp), nr + (sh->s - 1) * sh->dil_w),
                             ALIGN_ELEMS);  /* the slab */
        ws.b = size_round_up(size_mul(size_mul(round_up(Kg, nr), job.rows_per_block), job.wp), ALIGN_ELEMS);  /* dy^T */
    } else if (job.images > 1) {  /* one block: all pixels of the item's images */
        job.block_pixels = job.images * PQ;
        job.blocks = 1;
        ws.dy_rows = size_round_up(size_mul(Kg, job.block_pixels), ALIGN_ELEMS);
    } else {  /* im2col^T is gathered through a buffer of IM2COL_T_DEPTH_MAX pixels per row */
        job.block_pixels = min64(PQ, min64(cfg->tiles.kc, IM2COL_T_DEPTH_MAX));
        job.blocks = ceil_div(PQ, job.block_pixels);
    }
    if (!implicit) {
        const int64_t dyt = size_round_up(size_mul(round_up(Kg, transposed ? nr : mr), job.block_pixels), ALIGN_ELEMS);
        const int64_t gemm =
            size_round_up(FN(gemm_workspace)(cfg, job.block_pixels, transposed, !transposed), ALIGN_ELEMS);
        ws.a = transposed ? gemm : dyt;  /* the operand packed per item comes first */
        ws.b = transposed ? dyt : gemm;
    }
    const int64_t items = ceil_div(sh->n, job.images) * G * job.blocks;
    const int t = (int)min64(want, items);
    ws.partial = (t > 1 || transposed) ? size_round_up(dw_size, ALIGN_ELEMS) : 0;
    ws.db_partial = db ? size_round_up(sh->k, ALIGN_ELEMS) : 0;
    const int64_t stride = FN(grad_weight_stride)(&ws);

    REAL *work = FN(workspace_acquire)(size_mul(t, stride));
    int64_t *off = implicit ? (int64_t *)cconv_workspace_acquire_elems(CRS + mr, sizeof(int64_t)) : NULL;
    if (!work || (implicit && !off)) {
        cconv_workspace_release(work);
        cconv_workspace_release(off);
        return CCONV_ENOMEM;
    }
    if (implicit) FN(slab_offsets)(&job.fs, &job.layout, mr, off);
    job.off = off;
#pragma omp parallel num_threads(t)
    {
        REAL *mine = work + cconv_thread_id() * stride, *a = mine, *b = mine + ws.a;
        REAL *acc = ws.partial ? b + ws.b : dw, *bias_acc = db ? b + ws.b + ws.partial : NULL;
        REAL *dyt = transposed ? b : a, *dy_rows = mine + stride - ws.dy_rows;
        int64_t it;
        int p;
        /* Zero all t private copies, shared out (OpenMP may run fewer than t threads: a serial
         * build, a nested region, OMP_THREAD_LIMIT; all t are summed). */
#pragma omp for schedule(static)
        for (p = 0; p < ((ws.partial || ws.db_partial) ? t : 0); ++p)
            memset(work + p * stride + ws.a + ws.b, 0, (size_t)(ws.partial + ws.db_partial) * sizeof(REAL));
        /* The slab: what a block does not write must still be finite (it meets zeros). */
        if (implicit) memset(a, 0, (size_t)ws.a * sizeof(REAL));
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t blk = it % job.blocks, g = (it / job.blocks) % G, n = it / (job.blocks * G) * job.images;
            const int64_t rows = implicit ? min64(job.rows_per_block, sh->p - blk * job.rows_per_block) : 0;
            const int64_t q0 = implicit ? blk * job.rows_per_block * sh->q : blk * job.block_pixels;
            const int64_t count = min64(job.images, sh->n - n);
            const int64_t nq = implicit ? rows * sh->q : min64(job.block_pixels, count * PQ - q0);
            const int64_t dy_offset = (n * sh->k + g * Kg) * PQ;
            if (job.images > 1) {  /* the images' rows of dy side by side (masked), then as one */
                for (int64_t k = 0; k < Kg; ++k)
                    for (int64_t i = 0; i < count; ++i) {
                        const int64_t at = dy_offset + (i * sh->k + k) * PQ;
                        REAL *dst = dy_rows + k * nq + i * PQ;
                        if (relu_y)
                            for (int64_t j = 0; j < PQ; ++j) dst[j] = FN(relu_grad)(dy[at + j], relu_y[at + j]);
                        else
                            memcpy(dst, dy + at, (size_t)PQ * sizeof(REAL));
                    }
                FN(transpose_panels)(cfg, dy_rows, NULL, nq, Kg, nq, transposed ? nr : mr, dyt,
                                     bias_acc ? bias_acc + g * Kg : NULL);
            } else {
                FN(transpose_panels)(cfg, dy + dy_offset + q0, relu_y ? relu_y + dy_offset + q0 : NULL, PQ, Kg, nq,
                                     transposed ? nr : mr, dyt, bias_acc ? bias_acc + g * Kg : NULL);
            }
            if (implicit)
                FN(grad_weight_implicit_item)(&job, n, g, blk * job.rows_per_block, rows, dyt, a, acc);
            else
                FN(grad_weight_gemm_item)(&job, n, g, q0, nq, dyt, transposed ? a : b, acc);
        }
        if (ws.partial) {  /* the implicit barrier above makes every private copy complete */
            REAL *first = work + ws.a + ws.b;  /* thread 0's copy; a transposed sum lands there */
            int64_t i;
#pragma omp for schedule(static)
            for (i = 0; i < dw_size; ++i) {
                REAL sum = first[i];
                for (int q = 1; q < t; ++q) sum += work[q * stride + ws.a + ws.b + i];
                if (transposed) first[i] = sum;
                else dw[i] = sum;
            }
            if (transposed) {  /* dw[g, k, crs] = the sum at [g, crs, k], in blocks of 64 crs */
                const int64_t blocks = ceil_div(CRS, 64);
                int64_t bl;
#pragma omp for schedule(static)
                for (bl = 0; bl < G * blocks; ++bl) {
                    const int64_t g = bl / blocks, c0 = bl % blocks * 64;
                    cfg->transpose(first + (g * CRS + c0) * Kg, NULL, Kg, min64(64, CRS - c0), Kg, Kg, 0,
                                   dw + g * Kg * CRS + c0, CRS, NULL);
                }
            }
        }
        if (ws.db_partial) {
            int64_t k;
#pragma omp for schedule(static)
            for (k = 0; k < sh->k; ++k) {
                REAL sum = 0;
                for (int q = 0; q < t; ++q) sum += work[q * stride + ws.a + ws.b + ws.partial + k];
                db[k] = sum;
            }
        }
    }
    cconv_workspace_release(work);
    cconv_workspace_release(off);
    return CCONV_OK;
}
