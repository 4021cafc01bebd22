/* conv2d_algorithms.h: every convolution algorithm for one element type, their table, and the
 * entry points of conv2d.h; included by conv2d.c once per type (REAL, UREAL, REAL_EXPONENT_BITS
 * and FN defined). */
#include "gemm_driver.h"
#include "conv2d_im2col.h"
#include "conv2d_gemm.h"
#include "conv2d_implicit_gemm.h"
#include "conv2d_grad_weight.h"
#include "conv2d_depthwise.h"
#include "conv2d_winograd.h"

typedef struct {
    int (*forward)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh, const conv2d_plan *plan,
                   const REAL *x, const REAL *w, const REAL *bias, REAL *y, int relu, int threads);
    int (*grad_input)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh, const conv2d_plan *plan,
                      const REAL *dy, const REAL *relu_y, const REAL *w, REAL *dx, int threads);
    int (*grad_weight)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh, const conv2d_plan *plan,
                       const REAL *dy, const REAL *relu_y, const REAL *x, REAL *dw, REAL *db, int threads);
} FN(conv2d_algorithm);

static const FN(conv2d_algorithm) FN(ALGORITHMS)[CCONV_CONV2D_ALGORITHM_COUNT] = {
    [CCONV_CONV2D_GEMM] = {FN(gemm_forward), FN(gemm_grad_input), FN(conv2d_grad_weight)},
    [CCONV_CONV2D_IMPLICIT_GEMM] = {FN(implicit_gemm_forward), FN(implicit_gemm_grad_input), FN(conv2d_grad_weight)},
    [CCONV_CONV2D_POINTWISE] = {FN(gemm_forward), FN(gemm_grad_input), FN(conv2d_grad_weight)},
    [CCONV_CONV2D_DEPTHWISE] = {FN(depthwise_forward), FN(depthwise_grad_input), FN(depthwise_grad_weight)},
    [CCONV_CONV2D_WINOGRAD] = {FN(winograd_forward), FN(winograd_grad_input), NULL},  /* no weight pass */
};

/* The plan for `pass`, or CCONV_EINVAL in *status when the shape is invalid or the requested
 * algorithm cannot run it. */
static conv2d_plan FN(plan_pass)(const FN(cconv_gemm_config) *cfg, const cconv_conv2d_shape *sh,
                                 cconv_conv2d_pass pass, const cconv_conv2d_options *options, int *status)
{
    const cconv_conv2d_algorithm requested = options->algorithm[pass];
    const conv2d_plan none = {CCONV_CONV2D_GEMM, 0, 0, 1, 0};
    if (cconv_conv2d_unsupported(sh, pass, requested)) {
        *status = CCONV_EINVAL;
        return none;
    }
    return conv2d_make_plan(sh, pass, requested, &cfg->tiles, (int)sizeof(REAL), options->threads);
}

int FN(cconv_conv2d_forward)(const cconv_conv2d_shape *sh, const REAL *x, const REAL *w, const REAL *bias, REAL *y,
                             const cconv_conv2d_options *options)
{
    const FN(cconv_gemm_config) *cfg = cconv_gemm_configs_current()->CONFIG;
    const int relu = options->activation == CCONV_ACTIVATION_RELU;
    int status = CCONV_OK;
    const conv2d_plan plan = FN(plan_pass)(cfg, sh, CCONV_CONV2D_FORWARD, options, &status);
    if (status != CCONV_OK) return status;
    if (sh->n == 0 || sh->k == 0 || sh->p == 0 || sh->q == 0) return CCONV_OK;
    if (sh->c == 0) {
        FN(conv2d_bias_only)(sh, bias, relu, y);
        return CCONV_OK;
    }
    return FN(ALGORITHMS)[plan.algorithm].forward(cfg, sh, &plan, x, w, bias, y, relu, options->threads);
}

int FN(cconv_conv2d_backward)(const cconv_conv2d_shape *sh, const REAL *dy, const REAL *y, const REAL *x,
                              const REAL *w, REAL *dx, REAL *dw, REAL *db, const cconv_conv2d_options *options)
{
    const FN(cconv_gemm_config) *cfg = cconv_gemm_configs_current()->CONFIG;
    const REAL *relu_y = options->activation == CCONV_ACTIVATION_RELU ? y : NULL;
    const int threads = options->threads;
    int status = CCONV_OK;
    if (cconv_conv2d_shape_invalid(sh)) return CCONV_EINVAL;
    /* only the passes asked for: an algorithm forced on a pass that is skipped is not checked */
    const conv2d_plan none = {CCONV_CONV2D_AUTO, 0, 0, 1, 0};
    const conv2d_plan dx_plan = dx ? FN(plan_pass)(cfg, sh, CCONV_CONV2D_GRAD_INPUT, options, &status) : none;
    const conv2d_plan dw_plan = dw ? FN(plan_pass)(cfg, sh, CCONV_CONV2D_GRAD_WEIGHT, options, &status) : none;
    if (status != CCONV_OK) return status;
    if (sh->n == 0 || sh->c == 0 || sh->k == 0 || sh->p == 0 || sh->q == 0) {
        /* nothing flows between x, w and dy (the arrays' sizes fit: the shape is valid) */
        if (dx) memset(dx, 0, (size_t)size_product(sh->n, sh->c, sh->h, sh->w) * sizeof(REAL));
        if (dw) memset(dw, 0, (size_t)size_product(sh->k, sh->c / sh->groups, sh->r, sh->s) * sizeof(REAL));
        if (db && (sh->n == 0 || sh->p == 0 || sh->q == 0))
            memset(db, 0, (size_t)sh->k * sizeof(REAL));
        else if (db)  /* C = 0: the bias alone */
            FN(conv2d_grad_bias)(sh, dy, relu_y, db, threads);
        return CCONV_OK;
    }
    if (db && !dw) FN(conv2d_grad_bias)(sh, dy, relu_y, db, threads);  /* else summed with dw */
    if (dx) {
        status = FN(ALGORITHMS)[dx_plan.algorithm].grad_input(cfg, sh, &dx_plan, dy, relu_y, w, dx, threads);
        if (status != CCONV_OK) return status;
    }
    if (dw) status = FN(ALGORITHMS)[dw_plan.algorithm].grad_weight(cfg, sh, &dw_plan, dy, relu_y, x, dw, db, threads);
    return status;
}
