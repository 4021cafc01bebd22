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


OPERATIONS = ("max", "avg", "lp")


def forward(str op, PoolGeometry g not None, const cython.floating[::1] x, cython.floating[::1] y, double option,
            int threads):
    """y = pooling `op` of x; option: count_include_pad (avg, 0 or 1) or norm_type (lp)."""
    cdef int which = OPERATIONS.index(op), flag = <int>option, status
    with nogil:
        if cython.floating is float:
            if which == 0:
                status = cconv_max_pool2d_forward_f32(&g.shape, &x[0], &y[0], threads)
            elif which == 1:
                status = cconv_avg_pool2d_forward_f32(&g.shape, &x[0], &y[0], flag, threads)
            else:
                status = cconv_lp_pool2d_forward_f32(&g.shape, &x[0], &y[0], option, threads)
        else:
            if which == 0:
                status = cconv_max_pool2d_forward_f64(&g.shape, &x[0], &y[0], threads)
            elif which == 1:
                status = cconv_avg_pool2d_forward_f64(&g.shape, &x[0], &y[0], flag, threads)
            else:
                status = cconv_lp_pool2d_forward_f64(&g.shape, &x[0], &y[0], option, threads)
    check_status(status, f"{op}_pool2d")


def backward(str op, PoolGeometry g not None, const cython.floating[::1] dy, const cython.floating[::1] x,
             cython.floating[::1] dx, double option, int threads):
    """dx = the gradient of pooling `op` for dy; option as in forward (average pooling does not
    read x)."""
    cdef int which = OPERATIONS.index(op), flag = <int>option, status
    with nogil:
        if cython.floating is float:
            if which == 0:
                status = cconv_max_pool2d_backward_f32(&g.shape, &dy[0], &x[0], &dx[0], threads)
            elif which == 1:
                status = cconv_avg_pool2d_backward_f32(&g.shape, &dy[0], &dx[0], flag, threads)
            else:
                status = cconv_lp_pool2d_backward_f32(&g.shape, &dy[0], &x[0], &dx[0], option, threads)
        else:
            if which == 0:
                status = cconv_max_pool2d_backward_f64(&g.shape, &dy[0], &x[0], &dx[0], threads)
            elif which == 1:
                status = cconv_avg_pool2d_backward_f64(&g.shape, &dy[0], &dx[0], flag, threads)
            else:
                status = cconv_lp_pool2d_backward_f64(&g.shape, &dy[0], &x[0], &dx[0], option, threads)
    check_status(status, f"{op}_pool2d_backward")
