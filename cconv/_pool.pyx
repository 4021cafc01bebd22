# cython: language_level=3
"""Thin wrappers over csrc/pool2d.c: flattened C-contiguous arrays in, GIL released, C called.

Validation and output allocation happen in cconv.functional.pool, which describes each call's
sizes as a PoolGeometry; the C API is declared in _csrc.pxd.
"""
cimport cython
from libc.stdint cimport int64_t

from cconv._csrc cimport *


cdef class PoolGeometry:
    """One pooling's sizes (csrc/pool2d.h's cconv_pool2d_shape), built from validated ints."""
    cdef cconv_pool2d_shape shape

    def __init__(self, *, int64_t n, int64_t c, int64_t h, int64_t w, kernel, stride, padding, int64_t p,
                 int64_t q):
        self.shape.n, self.shape.c, self.shape.h, self.shape.w = n, c, h, w
        self.shape.kh, self.shape.kw = kernel
        self.shape.stride_h, self.shape.stride_w = stride
        self.shape.pad_h, self.shape.pad_w = padding
        self.shape.p, self.shape.q = p, q

    @property
    def output_shape(self):
        return (self.shape.n, self.shape.c, self.shape.p, self.shape.q)


def max_forward(PoolGeometry g not None, const cython.floating[::1] x, cython.floating[::1] y, int threads):
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_max_pool2d_forward_f32(&g.shape, &x[0], &y[0], threads)
        else:
            status = cconv_max_pool2d_forward_f64(&g.shape, &x[0], &y[0], threads)
    check_status(status, "max_pool2d")


def max_backward(PoolGeometry g not None, const cython.floating[::1] dy, const cython.floating[::1] x,
                 cython.floating[::1] dx, int threads):
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_max_pool2d_backward_f32(&g.shape, &dy[0], &x[0], &dx[0], threads)
        else:
            status = cconv_max_pool2d_backward_f64(&g.shape, &dy[0], &x[0], &dx[0], threads)
    check_status(status, "max_pool2d_backward")


def avg_forward(PoolGeometry g not None, const cython.floating[::1] x, cython.floating[::1] y,
                bint count_include_pad, int threads):
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_avg_pool2d_forward_f32(&g.shape, &x[0], &y[0], count_include_pad, threads)
        else:
            status = cconv_avg_pool2d_forward_f64(&g.shape, &x[0], &y[0], count_include_pad, threads)
    check_status(status, "avg_pool2d")


def avg_backward(PoolGeometry g not None, const cython.floating[::1] dy, cython.floating[::1] dx,
                 bint count_include_pad, int threads):
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_avg_pool2d_backward_f32(&g.shape, &dy[0], &dx[0], count_include_pad, threads)
        else:
            status = cconv_avg_pool2d_backward_f64(&g.shape, &dy[0], &dx[0], count_include_pad, threads)
    check_status(status, "avg_pool2d_backward")


def lp_forward(PoolGeometry g not None, const cython.floating[::1] x, cython.floating[::1] y, double norm_type,
               int threads):
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_lp_pool2d_forward_f32(&g.shape, &x[0], &y[0], norm_type, threads)
        else:
            status = cconv_lp_pool2d_forward_f64(&g.shape, &x[0], &y[0], norm_type, threads)
    check_status(status, "lp_pool2d")


def lp_backward(PoolGeometry g not None, const cython.floating[::1] dy, const cython.floating[::1] x,
                cython.floating[::1] dx, double norm_type, int threads):
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_lp_pool2d_backward_f32(&g.shape, &dy[0], &x[0], &dx[0], norm_type, threads)
        else:
            status = cconv_lp_pool2d_backward_f64(&g.shape, &dy[0], &x[0], &dx[0], norm_type, threads)
    check_status(status, "lp_pool2d_backward")
