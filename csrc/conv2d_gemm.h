/* conv2d_gemm.h: the GEMM algorithm (CCONV_CONV2D_GEMM) and its pointwise case
 * (CCONV_CONV2D_POINTWISE), forward and gradient of the input, on gemm_driver.h's loop nest.
 * Type-generic, included by conv2d.c per element type after conv2d_im2col.h. Per image n and
 * group g, with CRS = (C/groups)*R*S and PQ = P*Q output pixels:
 *   forward      y[K_g, PQ]    = w[K_g, CRS] . im2col(x)[CRS, PQ]          (+ bias, ReLU)
 *   grad input   dcol[CRS, PQ] = w^T[CRS, K_g] . dy[K_g, PQ], then col2im(dcol) -> dx
 * The weights are packed once per call; im2col is packed from x block by block. In the pointwise
 * case (1x1, stride 1, no padding) im2col is x and col2im the identity. On small maps a work
 * item takes several whole images side by side (plan->images; conv2d_im2col.h's image_columns),
 * so that the packed weights stream once per group of images, and its product goes through a
 * buffer to the images' rows. The weight gradient of both is in conv2d_grad_weight.h. */

/* Group g's weights (rows x depth, row-major at src + g*rows*depth) for every group, in
 * `width`-row panels whose depth blocks of kc_max start at apack + g*a_group + round_up(rows,
 * width)*k0: gemm_driver.h's layout of an operand packed before. */
static void FN(pack_weights)(const FN(cconv_gemm_config) *cfg, const REAL *src, int64_t groups, int64_t rows,
                             int64_t depth, int64_t kc_max, int width, int64_t a_group, REAL *apack)
{
    for (int64_t g = 0; g < groups; ++g)
        for (int64_t k0 = 0; k0 < depth; k0 += kc_max)
            FN(pack_panels)(cfg, src + g * rows * depth, NULL, depth, 1, rows, k0, min64(kc_max, depth - k0), width,
                            apack + g * a_group + round_up(rows, width) * k0);
}

/* With no input channels (C = 0) the output is the bias. */
static void FN(conv2d_bias_only)(const cconv_conv2d_shape *sh, const REAL *bias, int relu, REAL *y)
{
    const int64_t PQ = sh->p * sh->q;
    for (int64_t i = 0; i < sh->n * sh->k; ++i) {
        const REAL b = bias ? bias[i % sh->k] : 0;
        for (int64_t j = 0; j < PQ; ++j) y[i * PQ + j] = relu && b < 0 ? 0 : b;
    }
}

/* Work items are (image, group, block of nc output pixels), or with plan->images > 1 (group of
 * whole images, group): then C is the images' columns side by side, in a per-thread buffer,
 * copied to each image's rows of y. */
static int FN(gemm_forward)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh, const conv2d_plan *plan,
                            const REAL *x, const REAL *w, const REAL *bias, REAL *y, int relu, int threads)
{
    const int pointwise = plan->algorithm == CCONV_CONV2D_POINTWISE;
    const int nr = cfg->tiles.nr;
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, CRS = Cg * sh->r * sh->s;
    const int64_t PQ = sh->p * sh->q, HW = sh->h * sh->w, images = plan->images, padded = round_up(PQ, nr);
    const int64_t nc = images > 1 ? images * padded : min64(padded, round_up(cfg->tiles.nc, nr));
    const int64_t nqb = images > 1 ? 1 : ceil_div(PQ, nc), items = ceil_div(sh->n, images) * G * nqb;
    const int64_t kc_max = FN(gemm_depth_block)(cfg, CRS);
    const int64_t a_rows = round_up(Kg, cfg->tiles.mr), a_group = size_round_up(size_mul(a_rows, CRS), ALIGN_ELEMS);
    const int64_t work_size = size_round_up(FN(gemm_workspace)(cfg, CRS, 0, 1), ALIGN_ELEMS);
    const int64_t cbuf_size = images > 1 ? size_round_up(size_mul(Kg, nc), ALIGN_ELEMS) : 0;
    const int t = (int)min64(cconv_threads_for(threads, 2.0 * sh->n * sh->k * CRS * PQ, GRAIN_FLOPS), items);

    REAL *apack = FN(workspace_acquire)(size_mul(G, a_group));
    REAL *works = FN(workspace_acquire)(size_mul(t, size_add(work_size, cbuf_size)));
    if (!apack || !works) {
        cconv_workspace_release(apack);
        cconv_workspace_release(works);
        return CCONV_ENOMEM;
    }
    FN(pack_weights)(cfg, w, G, Kg, CRS, kc_max, cfg->tiles.mr, a_group, apack);
#pragma omp parallel num_threads(t)
    {
        REAL *work = works + cconv_thread_id() * (work_size + cbuf_size), *cbuf = work + work_size;
        int64_t it;
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t qb = it % nqb, g = (it / nqb) % G, n = it / (nqb * G) * images, q0 = qb * nc;
            const FN(gemm_pack_fn) pack = pointwise ? FN(pack_x_columns) : FN(pack_im2col_b);
            const FN(im2col_source) src = {cfg, sh, x + (n * sh->c + g * Cg) * HW, NULL, q0, sh->c * HW};
            const int64_t count = min64(images, sh->n - n);
            const FN(image_columns) several = {pack, src, count, padded};
            const FN(gemm_problem) problem = {
                .m = Kg, .n = images > 1 ? count * padded : min64(nc, PQ - q0), .k = CRS,
                .a = {.packed = apack + g * a_group},
                .b = images > 1 ? (FN(gemm_operand)){.pack = FN(pack_image_columns), .source = &several}
                                : (FN(gemm_operand)){.pack = pack, .source = &src},
                .c = images > 1 ? cbuf : y + (n * sh->k + g * Kg) * PQ + q0, .ldc = images > 1 ? count * padded : PQ,
                .bias = bias ? bias + g * Kg : NULL, .relu = relu,
            };
            FN(gemm_run)(cfg, &problem, work);
            for (int64_t i = 0; images > 1 && i < count; ++i)
                for (int64_t k = 0; k < Kg; ++k)
                    memcpy(y + ((n + i) * sh->k + g * Kg + k) * PQ, cbuf + k * problem.ldc + i * padded,
                           (size_t)PQ * sizeof(REAL));
        }
    }
    cconv_workspace_release(apack);
    cconv_workspace_release(works);
    return CCONV_OK;
}

/* Work items are (image, or group of plan->images images, group, block of input channels): each
 * writes only its own channels of dx, so no two threads touch the same element. Blocks are small
 * enough to bound the workspace and numerous enough to keep every thread busy. */
static int FN(gemm_grad_input)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                               const conv2d_plan *plan, const REAL *dy, const REAL *relu_y, const REAL *w, REAL *dx,
                               int threads)
{
    const int pointwise = plan->algorithm == CCONV_CONV2D_POINTWISE;
    const int mr = cfg->tiles.mr, nr = cfg->tiles.nr;
    const int64_t G = sh->groups, Kg = sh->k / G, Cg = sh->c / G, RS = sh->r * sh->s, CRS = Cg * RS;
    const int64_t PQ = sh->p * sh->q, HW = sh->h * sh->w;
    const int64_t images = plan->images, blocks = ceil_div(sh->n, images), padded = round_up(PQ, nr);
    const double flops = 2.0 * sh->n * sh->k * CRS * PQ;
    const int want = cconv_threads_for(threads, flops, GRAIN_FLOPS);
    int64_t cb = max64(1, min64(Cg, DX_ROWS_MAX / RS));
    cb = max64(1, min64(cb, Cg / max64(1, ceil_div(2 * (int64_t)want, blocks * G))));
    const int64_t ncb = ceil_div(Cg, cb), items = blocks * G * ncb;
    const int64_t kc_max = FN(gemm_depth_block)(cfg, Kg);
    const int64_t nc = images > 1 ? images * padded : min64(round_up(PQ, nr), round_up(cfg->tiles.nc, nr));
    const int64_t a_rows = round_up(cb * RS, mr), a_block = size_round_up(size_mul(a_rows, Kg), ALIGN_ELEMS);
    const int64_t work_size = size_round_up(FN(gemm_workspace)(cfg, Kg, 0, 1), ALIGN_ELEMS);
    const int64_t col_size = pointwise && images == 1 ? 0 : size_round_up(size_mul(a_rows, nc), ALIGN_ELEMS);
    const int t = (int)min64(want, items);

    REAL *apack = FN(workspace_acquire)(size_mul(size_mul(G, ncb), a_block));
    REAL *works = FN(workspace_acquire)(size_mul(t, size_add(work_size, col_size)));
    if (!apack || !works) {
        cconv_workspace_release(apack);
        cconv_workspace_release(works);
        return CCONV_ENOMEM;
    }
    /* w^T of group g, channel block cbi: rows = im2col rows of the block, columns = filters. */
    for (int64_t g = 0; g < G; ++g)
        for (int64_t cbi = 0; cbi < ncb; ++cbi) {
            const int64_t c0 = cbi * cb, rows = min64(cb, Cg - c0) * RS;
            for (int64_t k0 = 0; k0 < Kg; k0 += kc_max)
                FN(pack_panels)(cfg, w + g * Kg * CRS + c0 * RS, NULL, 1, CRS, rows, k0, min64(kc_max, Kg - k0), mr,
                                apack + (g * ncb + cbi) * a_block + a_rows * k0);
        }

#pragma omp parallel num_threads(t)
    {
        REAL *work = works + cconv_thread_id() * (work_size + col_size), *dcol = work + work_size;
        int64_t it;
#pragma omp for schedule(static)
        for (it = 0; it < items; ++it) {
            const int64_t cbi = it % ncb, g = (it / ncb) % G, n0 = it / (ncb * G) * images;
            const int64_t count = min64(images, sh->n - n0), c0 = cbi * cb, rows = min64(cb, Cg - c0) * RS;
            const int64_t dy_offset = (n0 * sh->k + g * Kg) * PQ;
            const REAL *a = apack + (g * ncb + cbi) * a_block;
            for (int64_t i = 0; i < count; ++i)
                if (!pointwise || images > 1)
                    memset(dx + ((n0 + i) * sh->c + g * Cg + c0) * HW, 0, (size_t)(rows / RS * HW) * sizeof(REAL));
            if (images > 1) {  /* the images' columns side by side, then col2im image by image */
                const FN(image_columns) src = {
                    FN(pack_dy_columns),
                    {cfg, sh, dy + dy_offset, relu_y ? relu_y + dy_offset : NULL, 0, sh->k * PQ}, count, padded};
                const FN(gemm_problem) problem = {
                    .m = rows, .n = count * padded, .k = Kg, .a = {.packed = a},
                    .b = {.pack = FN(pack_image_columns), .source = &src}, .c = dcol, .ldc = count * padded,
                };
                FN(gemm_run)(cfg, &problem, work);
                for (int64_t i = 0; i < count; ++i)
                    FN(col2im_add)(sh, dcol + i * padded, problem.ldc, c0 * RS, rows, 0, PQ,
                                   dx + ((n0 + i) * sh->c + g * Cg) * HW);
                continue;
            }
            REAL *dxg = dx + (n0 * sh->c + g * Cg) * HW;
            for (int64_t q0 = 0; q0 < PQ; q0 += nc) {
                const FN(im2col_source) src = {cfg, sh, dy + dy_offset, relu_y ? relu_y + dy_offset : NULL, q0, 0};
                /* In the pointwise case col2im is the identity: the product is written into dx. */
                const FN(gemm_problem) problem = {
                    .m = rows, .n = min64(nc, PQ - q0), .k = Kg,
                    .a = {.packed = a},
                    .b = {.pack = FN(pack_dy_columns), .source = &src},
                    .c = pointwise ? dxg + c0 * HW + q0 : dcol, .ldc = pointwise ? HW : nc,
                };
                FN(gemm_run)(cfg, &problem, work);
                if (!pointwise) FN(col2im_add)(sh, dcol, nc, c0 * RS, rows, q0, problem.n, dxg);
            }
        }
    }
    cconv_workspace_release(apack);
    cconv_workspace_release(works);
    return CCONV_OK;
}
