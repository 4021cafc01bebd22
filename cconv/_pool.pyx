# cython: language_level=3
"""Thin wrappers over csrc/pool2d.c: flattened C-contiguous arrays in, GIL released, C called.

Validation and output allocation happen in cconv.functional.pool. `dims` is the tuple
(n, c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, p, q); every array is passed flattened.
"""
cimport cython
from libc.stdint cimport int64_t


cdef extern from "pool2d.h" nogil:
    int CCONV_ENOMEM

    ctypedef struct cconv_pool2d_shape:
        int64_t n, c, h, w
        int64_t kh, kw
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t p, q

    int cconv_max_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                     int threads)
    int cconv_max_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                     int threads)
    int cconv_max_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy,
                                      const float *x, float *dx, int threads)
    int cconv_max_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy,
                                      const double *x, double *dx, int threads)
    int cconv_avg_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                     int count_include_pad, int threads)
    int cconv_avg_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                     int count_include_pad, int threads)
    int cconv_avg_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, float *dx,
                                      int count_include_pad, int threads)
    int cconv_avg_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy,
                                      double *dx, int count_include_pad, int threads)
    int cconv_lp_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                    double norm_type, int threads)
    int cconv_lp_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                    double norm_type, int threads)
    int cconv_lp_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy,
                                     const float *x, float *dx, double norm_type, int threads)
    int cconv_lp_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy,
                                     const double *x, double *dx, double norm_type, int threads)


cdef cconv_pool2d_shape make_shape(tuple dims) except *:
    cdef cconv_pool2d_shape s
    (s.n, s.c, s.h, s.w, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.p, s.q) = dims
    return s


cdef check(int status):
    if status == CCONV_ENOMEM:
        raise MemoryError("cconv pooling kernel could not allocate its workspace")


def max_forward(const cython.floating[::1] x, cython.floating[::1] y, tuple dims, int threads):
    cdef cconv_pool2d_shape s = make_shape(dims)
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_max_pool2d_forward_f32(&s, &x[0], &y[0], threads)
        else:
            status = cconv_max_pool2d_forward_f64(&s, &x[0], &y[0], threads)
    check(status)


def max_backward(const cython.floating[::1] dy, const cython.floating[::1] x,
                 cython.floating[::1] dx, tuple dims, int threads):
    cdef cconv_pool2d_shape s = make_shape(dims)
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_max_pool2d_backward_f32(&s, &dy[0], &x[0], &dx[0], threads)
        else:
            status = cconv_max_pool2d_backward_f64(&s, &dy[0], &x[0], &dx[0], threads)
    check(status)


def avg_forward(const cython.floating[::1] x, cython.floating[::1] y, tuple dims,
                bint count_include_pad, int threads):
    cdef cconv_pool2d_shape s = make_shape(dims)
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_avg_pool2d_forward_f32(&s, &x[0], &y[0], count_include_pad, threads)
        else:
            status = cconv_avg_pool2d_forward_f64(&s, &x[0], &y[0], count_include_pad, threads)
    check(status)


def avg_backward(const cython.floating[::1] dy, cython.floating[::1] dx, tuple dims,
                 bint count_include_pad, int threads):
    cdef cconv_pool2d_shape s = make_shape(dims)
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_avg_pool2d_backward_f32(&s, &dy[0], &dx[0], count_include_pad, threads)
        else:
            status = cconv_avg_pool2d_backward_f64(&s, &dy[0], &dx[0], count_include_pad, threads)
    check(status)


def lp_forward(const cython.floating[::1] x, cython.floating[::1] y, tuple dims,
               double norm_type, int threads):
    cdef cconv_pool2d_shape s = make_shape(dims)
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_lp_pool2d_forward_f32(&s, &x[0], &y[0], norm_type, threads)
        else:
            status = cconv_lp_pool2d_forward_f64(&s, &x[0], &y[0], norm_type, threads)
    check(status)


def lp_backward(const cython.floating[::1] dy, const cython.floating[::1] x,
                cython.floating[::1] dx, tuple dims, double norm_type, int threads):
    cdef cconv_pool2d_shape s = make_shape(dims)
    cdef int status
    with nogil:
        if cython.floating is float:
            status = cconv_lp_pool2d_backward_f32(&s, &dy[0], &x[0], &dx[0], norm_type, threads)
        else:
            status = cconv_lp_pool2d_backward_f64(&s, &dy[0], &x[0], &dx[0], norm_type, threads)
    check(status)
