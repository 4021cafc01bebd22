# cython: language_level=3
"""Thin wrappers over csrc/batchnorm2d.c: flattened C-contiguous arrays and validated sizes in,
GIL released, C called. The layer (cconv.layers.BatchNorm2D, through cconv.functional.norm)
checks the arrays and allocates the outputs; the C API is declared in _csrc.pxd."""
cimport cython
from libc.stdint cimport int64_t

from cconv._csrc cimport *


cdef inline int check_sizes(int64_t n, int64_t c, int64_t hw, Py_ssize_t big, Py_ssize_t small) except -1:
    if n < 0 or c < 0 or hw < 0 or big != n * c * hw or small != c:
        raise ValueError("batchnorm2d: buffer sizes do not match the dimensions")
    return 0


def forward(int64_t n, int64_t c, int64_t hw, const cython.floating[::1] x, const cython.floating[::1] gamma,
            const cython.floating[::1] beta, double eps, bint use_batch_stats, double momentum,
            cython.floating[::1] running_mean, cython.floating[::1] running_var, double[::1] mean,
            double[::1] invstd, cython.floating[::1] y, int threads):
    """y = batch norm of x (N, C, HW); the statistics used go to mean and invstd; in training the
    running statistics are updated in place (see csrc/batchnorm2d.h)."""
    check_sizes(n, c, hw, x.shape[0], gamma.shape[0])
    if (y.shape[0] != x.shape[0] or beta.shape[0] != c or running_mean.shape[0] != c
            or running_var.shape[0] != c or mean.shape[0] != c or invstd.shape[0] != c):
        raise ValueError("batchnorm2d: buffer sizes do not match the dimensions")
    if c == 0:
        return
    with nogil:
        if cython.floating is float:
            cconv_batchnorm2d_forward_f32(n, c, hw, &x[0] if x.shape[0] else NULL, &gamma[0], &beta[0], eps,
                                          use_batch_stats, momentum, &running_mean[0], &running_var[0], &mean[0],
                                          &invstd[0], &y[0] if y.shape[0] else NULL, threads)
        else:
            cconv_batchnorm2d_forward_f64(n, c, hw, &x[0] if x.shape[0] else NULL, &gamma[0], &beta[0], eps,
                                          use_batch_stats, momentum, &running_mean[0], &running_var[0], &mean[0],
                                          &invstd[0], &y[0] if y.shape[0] else NULL, threads)


def backward(int64_t n, int64_t c, int64_t hw, const cython.floating[::1] dy, const cython.floating[::1] x,
             const cython.floating[::1] gamma, const double[::1] mean, const double[::1] invstd, bint batch_stats,
             cython.floating[::1] dx, cython.floating[::1] dgamma, cython.floating[::1] dbeta, int threads):
    """Gradients of forward into dx (None to skip it), dgamma and dbeta."""
    check_sizes(n, c, hw, x.shape[0], gamma.shape[0])
    if (dy.shape[0] != x.shape[0] or (dx is not None and dx.shape[0] != x.shape[0]) or mean.shape[0] != c
            or invstd.shape[0] != c or dgamma.shape[0] != c or dbeta.shape[0] != c):
        raise ValueError("batchnorm2d_backward: buffer sizes do not match the dimensions")
    if c == 0:
        return
    cdef cython.floating *dxp = &dx[0] if dx is not None and dx.shape[0] else NULL
    with nogil:
        if cython.floating is float:
            cconv_batchnorm2d_backward_f32(n, c, hw, &dy[0] if dy.shape[0] else NULL, &x[0] if x.shape[0] else NULL,
                                           &gamma[0], &mean[0], &invstd[0], batch_stats, dxp, &dgamma[0], &dbeta[0],
                                           threads)
        else:
            cconv_batchnorm2d_backward_f64(n, c, hw, &dy[0] if dy.shape[0] else NULL, &x[0] if x.shape[0] else NULL,
                                           &gamma[0], &mean[0], &invstd[0], batch_stats, dxp, &dgamma[0], &dbeta[0],
                                           threads)
