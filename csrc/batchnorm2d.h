/* batchnorm2d.h: 2-D batch normalisation of NCHW arrays (PyTorch's BatchNorm2d), forward and
 * backward.
 *
 * x is seen as (N, C, HW); channel c is normalised over its M = N*HW values:
 *   y = (x - mean_c) * invstd_c * gamma_c + beta_c,   invstd_c = 1 / sqrt(var_c + eps).
 * Training (use_batch_stats nonzero and M > 0): mean_c and the biased var_c are the batch's,
 * accumulated in double for both element types (the mean first, then the squared deviations from
 * it), and the running statistics are updated in place:
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * var * M / max(M - 1, 1).
 * Otherwise (eval mode, or an empty batch in training) mean_c and var_c are the running ones,
 * which are left untouched.
 * The forward returns the mean and invstd it used in `mean` and `invstd` (C doubles each), which
 * the backward takes back. With batch statistics (batch_stats nonzero) the backward is
 *   dgamma_c = sum dy * xhat,  dbeta_c = sum dy,
 *   dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M),   xhat = (x - mean) * invstd;
 * with fixed (running) statistics dx = gamma * invstd * dy. dx may be NULL to skip it.
 * Each channel is computed by one thread in a fixed order: the results do not depend on
 * `threads` (the OpenMP thread count to use, clamped to what the work is worth). Nothing is
 * allocated, so the functions cannot fail. All arrays are dense and C-ordered.
 */
#ifndef CCONV_BATCHNORM2D_H
#define CCONV_BATCHNORM2D_H

#include <stdint.h>

void cconv_batchnorm2d_forward_f32(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                                   const float *beta, double eps, int use_batch_stats, double momentum,
                                   float *running_mean, float *running_var, double *mean, double *invstd,
                                   float *y, int threads);
void cconv_batchnorm2d_forward_f64(int64_t n, int64_t c, int64_t hw, const double *x, const double *gamma,
                                   const double *beta, double eps, int use_batch_stats, double momentum,
                                   double *running_mean, double *running_var, double *mean, double *invstd,
                                   double *y, int threads);

void cconv_batchnorm2d_backward_f32(int64_t n, int64_t c, int64_t hw, const float *dy, const float *x,
                                    const float *gamma, const double *mean, const double *invstd,
                                    int batch_stats, float *dx, float *dgamma, float *dbeta, int threads);
void cconv_batchnorm2d_backward_f64(int64_t n, int64_t c, int64_t hw, const double *dy, const double *x,
                                    const double *gamma, const double *mean, const double *invstd,
                                    int batch_stats, double *dx, double *dgamma, double *dbeta, int threads);

#endif
