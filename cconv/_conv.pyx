# cython: language_level=3
"""Thin wrappers over the kernels built on the packed GEMM (csrc/conv2d.c, csrc/dense.c, and the
micro-kernel dispatch of csrc/gemm.c): take C-contiguous buffers and validated sizes, release the
GIL, run the kernel. Argument checking lives in cconv/functional/."""
from cpython.buffer cimport PyBUF_FORMAT
from cython cimport floating
from libc.stdint cimport int64_t

import numpy as np


cdef extern from "conv2d.h":
    ctypedef struct cconv_conv2d_shape:
        int64_t n, c, h, w, k, r, s, groups, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, p, q
    int cconv_conv2d_forward_f32(const cconv_conv2d_shape *shape, const float *x, const float *w,
                                 const float *bias, float *y, int activation, int threads) nogil
    int cconv_conv2d_forward_f64(const cconv_conv2d_shape *shape, const double *x, const double *w,
                                 const double *bias, double *y, int activation, int threads) nogil
    int cconv_conv2d_backward_f32(const cconv_conv2d_shape *shape, const float *dy, const float *y,
                                  const float *x, const float *w, float *dx, float *dw, float *db,
                                  int activation, int threads) nogil
    int cconv_conv2d_backward_f64(const cconv_conv2d_shape *shape, const double *dy, const double *y,
                                  const double *x, const double *w, double *dx, double *dw, double *db,
                                  int activation, int threads) nogil

cdef extern from "dense.h":
    int cconv_dense_forward_f32(int64_t n, int64_t i, int64_t o, const float *x, const float *w,
                                const float *bias, float *y, int activation, int threads) nogil
    int cconv_dense_forward_f64(int64_t n, int64_t i, int64_t o, const double *x, const double *w,
                                const double *bias, double *y, int activation, int threads) nogil
    int cconv_dense_backward_f32(int64_t n, int64_t i, int64_t o, const float *dy, const float *y,
                                 const float *x, const float *w, float *dx, float *dw, float *db,
                                 int activation, int threads) nogil
    int cconv_dense_backward_f64(int64_t n, int64_t i, int64_t o, const double *dy, const double *y,
                                 const double *x, const double *w, double *dx, double *dw, double *db,
                                 int activation, int threads) nogil

cdef extern from "gemm.h":
    ctypedef struct cconv_gemm_kernels:
        const char *isa
        int mr_f32, nr_f32, mr_f64, nr_f64, mr_pix_f32, nr_pix_f32
    void cconv_gemm_kernels_select()
    const cconv_gemm_kernels *cconv_gemm_kernels_get()
    int cconv_gemm_kernels_force(const char *isa)
    const char *cconv_gemm_isas_built()

cdef extern from "workspace.h":
    void *cconv_buffer_acquire(size_t nbytes, size_t *capacity) nogil
    void cconv_buffer_release(void *p, size_t capacity) nogil
    size_t cconv_buffer_cached() nogil
    size_t cconv_workspace_trim() nogil
    size_t cconv_workspace_held() nogil

cdef extern from "parallel.h":
    int cconv_max_threads()
    int cconv_num_procs()
    int cconv_openmp_version()

cconv_gemm_kernels_select()


cdef cconv_conv2d_shape make_shape(tuple dims):
    cdef cconv_conv2d_shape sh
    (sh.n, sh.c, sh.h, sh.w, sh.k, sh.r, sh.s, sh.groups, sh.stride_h, sh.stride_w,
     sh.dil_h, sh.dil_w, sh.pad_top, sh.pad_left, sh.p, sh.q) = dims
    return sh


cdef inline floating *data_or_null(floating[::1] a):
    """The first element's address; NULL for None (an output to skip) or an empty buffer."""
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const floating *cdata_or_null(const floating[::1] a):
    """data_or_null for read-only buffers."""
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


def conv2d_forward(tuple dims, const floating[::1] x not None, const floating[::1] w not None, bias,
                   floating[::1] y not None, bint relu, int threads):
    """y = conv(x, w) + bias (then ReLU if relu) on flattened C-ordered buffers; dims as in
    cconv_conv2d_shape."""
    cdef cconv_conv2d_shape sh = make_shape(dims)
    cdef const floating[::1] b = bias
    cdef const floating *bp = cdata_or_null(b)
    cdef const floating *xp = cdata_or_null(x)
    cdef const floating *wp = cdata_or_null(w)
    cdef floating *yp = data_or_null(y)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_conv2d_forward_f32(&sh, xp, wp, bp, yp, relu, threads)
        else:
            status = cconv_conv2d_forward_f64(&sh, xp, wp, bp, yp, relu, threads)
    if status != 0:
        raise MemoryError("cconv.conv2d: could not allocate the convolution workspace")


def conv2d_backward(tuple dims, const floating[::1] dy not None, relu_y, const floating[::1] x not None,
                    const floating[::1] w not None,
                    floating[::1] dx, floating[::1] dw, floating[::1] db, int threads):
    """Gradients of conv2d_forward into dx, dw, db (each may be None to skip it). relu_y: None,
    or the output of a forward pass with relu=True, whose derivative then masks dy."""
    cdef cconv_conv2d_shape sh = make_shape(dims)
    cdef const floating[::1] ry = relu_y
    cdef const floating *ryp = cdata_or_null(ry)
    cdef int activation = 1 if relu_y is not None else 0
    if ry is not None and ry.shape[0] != dy.shape[0]:
        raise ValueError("relu_y must have as many elements as dy")
    cdef const floating *dyp = cdata_or_null(dy)
    cdef const floating *xp = cdata_or_null(x)
    cdef const floating *wp = cdata_or_null(w)
    cdef floating *dxp = data_or_null(dx)
    cdef floating *dwp = data_or_null(dw)
    cdef floating *dbp = data_or_null(db)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_conv2d_backward_f32(&sh, dyp, ryp, xp, wp, dxp, dwp, dbp, activation, threads)
        else:
            status = cconv_conv2d_backward_f64(&sh, dyp, ryp, xp, wp, dxp, dwp, dbp, activation, threads)
    if status != 0:
        raise MemoryError("cconv.conv2d_backward: could not allocate the convolution workspace")


def dense_forward(int64_t n, int64_t features_in, int64_t features_out, const floating[::1] x not None,
                  const floating[::1] w not None, bias, floating[::1] y not None, bint relu, int threads):
    """y (n, out) = x (n, in) . w (in, out) + bias (then ReLU if relu), on flattened buffers."""
    if x.shape[0] != n * features_in or w.shape[0] != features_in * features_out or y.shape[0] != n * features_out:
        raise ValueError("dense_forward: buffer sizes do not match the dimensions")
    cdef const floating[::1] b = bias
    if b is not None and b.shape[0] != features_out:
        raise ValueError("dense_forward: bias size does not match the dimensions")
    cdef const floating *bp = cdata_or_null(b)
    cdef const floating *xp = cdata_or_null(x)
    cdef const floating *wp = cdata_or_null(w)
    cdef floating *yp = data_or_null(y)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_dense_forward_f32(n, features_in, features_out, xp, wp, bp, yp, relu, threads)
        else:
            status = cconv_dense_forward_f64(n, features_in, features_out, xp, wp, bp, yp, relu, threads)
    if status != 0:
        raise MemoryError("cconv.dense: could not allocate the matrix-multiply workspace")


def dense_backward(int64_t n, int64_t features_in, int64_t features_out, const floating[::1] dy not None,
                   relu_y, const floating[::1] x not None, const floating[::1] w not None,
                   floating[::1] dx, floating[::1] dw, floating[::1] db, int threads):
    """Gradients of dense_forward into dx, dw, db (each may be None to skip it); relu_y as in
    conv2d_backward."""
    if (dy.shape[0] != n * features_out or x.shape[0] != n * features_in
            or w.shape[0] != features_in * features_out
            or (dx is not None and dx.shape[0] != x.shape[0]) or (dw is not None and dw.shape[0] != w.shape[0])
            or (db is not None and db.shape[0] != features_out)):
        raise ValueError("dense_backward: buffer sizes do not match the dimensions")
    cdef const floating[::1] ry = relu_y
    if ry is not None and ry.shape[0] != dy.shape[0]:
        raise ValueError("relu_y must have as many elements as dy")
    cdef const floating *ryp = cdata_or_null(ry)
    cdef int activation = 1 if relu_y is not None else 0
    cdef const floating *dyp = cdata_or_null(dy)
    cdef const floating *xp = cdata_or_null(x)
    cdef const floating *wp = cdata_or_null(w)
    cdef floating *dxp = data_or_null(dx)
    cdef floating *dwp = data_or_null(dw)
    cdef floating *dbp = data_or_null(db)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_dense_backward_f32(n, features_in, features_out, dyp, ryp, xp, wp, dxp, dwp, dbp,
                                              activation, threads)
        else:
            status = cconv_dense_backward_f64(n, features_in, features_out, dyp, ryp, xp, wp, dxp, dwp, dbp,
                                              activation, threads)
    if status != 0:
        raise MemoryError("cconv.dense_backward: could not allocate the matrix-multiply workspace")


def openmp_version():
    """The _OPENMP date this build was compiled with (e.g. 201511), or 0 without OpenMP."""
    return cconv_openmp_version()


def openmp_max_threads():
    return cconv_max_threads()


def openmp_num_procs():
    return cconv_num_procs()


def simd_paths_built():
    return cconv_gemm_isas_built().decode().split(",")


def simd_path():
    """(name, mr_f32, nr_f32) of the GEMM micro-kernels in use."""
    cdef const cconv_gemm_kernels *k = cconv_gemm_kernels_get()
    return k.isa.decode(), k.mr_f32, k.nr_f32


def simd_pixel_tile():
    """(pixels, filters) of the f32 pixel micro-kernel in use (gemm.h), or None without one."""
    cdef const cconv_gemm_kernels *k = cconv_gemm_kernels_get()
    return (k.mr_pix_f32, k.nr_pix_f32) if k.mr_pix_f32 else None


def force_simd_path(str isa):
    """Use the named micro-kernels ('scalar', 'avx2', 'avx512') from now on (testing aid)."""
    if cconv_gemm_kernels_force(isa.encode()) != 0:
        raise ValueError(f"SIMD path {isa!r} is not built or not supported by this CPU; "
                         f"built: {simd_paths_built()}")


# ------------------------------------------------------------------------------ array memory

CACHED_MIN_BYTES = 64 * 1024  # smaller arrays come from np.empty (malloc's own bins)
CACHED_MAX_BYTES = 1 << 60
cdef char *BYTE_FORMAT = "B"  # a string literal: static storage


cdef class CachedBuffer:
    """Writable bytes from the C buffer cache (csrc/workspace.c). When the last array viewing them
    dies, so does this object, and the memory goes back to the cache, warm for the next call."""
    cdef void *data
    cdef size_t capacity
    cdef Py_ssize_t nbytes
    cdef Py_ssize_t itemsize

    def __getbuffer__(self, Py_buffer *view, int flags):
        view.buf = self.data
        view.obj = self
        view.len = self.nbytes
        view.readonly = 0
        view.itemsize = 1
        view.format = BYTE_FORMAT if flags & PyBUF_FORMAT else NULL
        view.ndim = 1
        view.shape = &self.nbytes
        view.strides = &self.itemsize
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        if self.data != NULL:
            cconv_buffer_release(self.data, self.capacity)


def empty(shape, dtype):
    """An uninitialised C-contiguous array like np.empty(shape, dtype), 64-byte aligned, whose
    memory comes from (and returns to) the buffer cache when it is large."""
    dtype = np.dtype(dtype)
    try:
        shape = tuple(shape)
    except TypeError:  # one extent, as np.empty takes it
        shape = (shape,)
    count = 1
    for extent in shape:
        count *= extent
    nbytes = count * dtype.itemsize
    if not CACHED_MIN_BYTES <= nbytes <= CACHED_MAX_BYTES or min(shape) < 0:
        return np.empty(shape, dtype)  # small, or np.empty's error for an impossible size
    cdef CachedBuffer buf = CachedBuffer.__new__(CachedBuffer)
    buf.itemsize = 1
    buf.nbytes = nbytes
    buf.data = cconv_buffer_acquire(<size_t>nbytes, &buf.capacity)
    if buf.data == NULL:
        raise MemoryError(f"cconv: could not allocate {nbytes} bytes for an array of shape {shape}")
    return np.frombuffer(buf, dtype, count).reshape(shape)


def release_memory():
    """Free the cached array buffers and idle workspaces; returns the bytes freed."""
    return cconv_workspace_trim()


def memory_held():
    """(bytes of idle cached array buffers, bytes of workspaces in the pool)."""
    return cconv_buffer_cached(), cconv_workspace_held()
