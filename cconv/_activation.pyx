# cython: language_level=3
"""Thin wrappers over csrc/gelu.c (the exact GELU): flattened C-contiguous arrays in, GIL
released, C called. cconv.layers.GELU allocates the outputs; the C API is declared in _csrc.pxd."""
cimport cython
from libc.stdint cimport int64_t

from cconv._csrc cimport *


def gelu_forward(const cython.floating[::1] x, cython.floating[::1] y, int threads):
    """y = x * Phi(x), element-wise."""
    cdef int64_t count = x.shape[0]
    if y.shape[0] != count:
        raise ValueError("gelu_forward: x and y must have the same size")
    if count == 0:
        return
    with nogil:
        if cython.floating is float:
            cconv_gelu_forward_f32(count, &x[0], &y[0], threads)
        else:
            cconv_gelu_forward_f64(count, &x[0], &y[0], threads)


def gelu_backward(const cython.floating[::1] dy, const cython.floating[::1] x, cython.floating[::1] dx,
                  int threads):
    """dx = dy * d(x * Phi(x))/dx, element-wise."""
    cdef int64_t count = x.shape[0]
    if dy.shape[0] != count or dx.shape[0] != count:
        raise ValueError("gelu_backward: dy, x and dx must have the same size")
    if count == 0:
        return
    with nogil:
        if cython.floating is float:
            cconv_gelu_backward_f32(count, &dy[0], &x[0], &dx[0], threads)
        else:
            cconv_gelu_backward_f64(count, &dy[0], &x[0], &dx[0], threads)
