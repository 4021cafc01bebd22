# cython: language_level=3
"""Thin wrappers over the kernels built on the packed GEMM (csrc/conv2d.c, csrc/dense.c, and the
micro-kernel configs of csrc/gemm_config.c): take C-contiguous buffers and validated sizes,
release the GIL, run the kernel. Argument checking lives in cconv/functional/; the C API is
declared in _csrc.pxd."""
from cython cimport floating
from libc.stdint cimport int64_t

from cconv._csrc cimport *

import numpy as np

cconv_gemm_configs_select()

PASSES = ("forward", "grad_input", "grad_weight")


def _algorithm_names():
    names, i = [], 1  # 0 is "auto"
    while i < CCONV_CONV2D_ALGORITHM_COUNT:
        names.append(cconv_conv2d_algorithm_name(<cconv_conv2d_algorithm>i).decode())
        i += 1
    return tuple(names)


ALGORITHMS = _algorithm_names()  # the convolution algorithms built, in the order of conv2d.h


cdef cconv_conv2d_algorithm algorithm_id(str name) except *:
    if name == "auto":
        return CCONV_CONV2D_AUTO
    cdef int i = ALGORITHMS.index(name) + 1
    return <cconv_conv2d_algorithm>i


cdef cconv_conv2d_pass pass_id(str name) except *:
    cdef int i = PASSES.index(name)
    return <cconv_conv2d_pass>i


cdef class ConvGeometry:
    """One convolution's sizes (csrc/conv2d.h's cconv_conv2d_shape), built from validated ints."""
    cdef cconv_conv2d_shape shape

    def __init__(self, *, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s,
                 int64_t groups, stride, dilation, int64_t pad_top, int64_t pad_left, int64_t p, int64_t q):
        self.shape.n, self.shape.c, self.shape.h, self.shape.w = n, c, h, w
        self.shape.k, self.shape.r, self.shape.s, self.shape.groups = k, r, s, groups
        self.shape.stride_h, self.shape.stride_w = stride
        self.shape.dil_h, self.shape.dil_w = dilation
        self.shape.pad_top, self.shape.pad_left = pad_top, pad_left
        self.shape.p, self.shape.q = p, q

    def unsupported(self, str pass_name, str algorithm):
        """None when `algorithm` can run pass `pass_name` of this geometry, else why not."""
        cdef const char *why = cconv_conv2d_unsupported(&self.shape, pass_id(pass_name),
                                                        algorithm_id(algorithm))
        return None if why == NULL else why.decode()

    def auto(self, str pass_name, dtype):
        """The algorithm 'auto' runs for pass `pass_name` with this dtype on the micro-kernels in use."""
        cdef cconv_conv2d_algorithm a = cconv_conv2d_auto(&self.shape, pass_id(pass_name),
                                                          np.dtype(dtype).itemsize)
        return cconv_conv2d_algorithm_name(a).decode()


cdef cconv_conv2d_options conv_options(bint relu, algorithms, int threads) except *:
    """Options for conv2d.h; `algorithms` maps pass names to algorithm names (missing: auto)."""
    cdef cconv_conv2d_options options
    options.activation = CCONV_ACTIVATION_RELU if relu else CCONV_ACTIVATION_NONE
    options.threads = threads
    for i, name in enumerate(PASSES):
        options.algorithm[i] = algorithm_id(algorithms.get(name, "auto"))
    return options


cdef inline floating *data_or_null(floating[::1] a):
    """The first element's address; NULL for None (an output to skip) or an empty buffer."""
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


cdef inline const floating *cdata_or_null(const floating[::1] a):
    """data_or_null for read-only buffers."""
    return &a[0] if a is not None and a.shape[0] > 0 else NULL


def conv2d_forward(ConvGeometry geometry not None, const floating[::1] x not None, const floating[::1] w not None,
                   bias, floating[::1] y not None, bint relu, dict algorithms, int threads):
    """y = conv(x, w) + bias (then ReLU if relu) on flattened C-ordered buffers."""
    cdef cconv_conv2d_options options = conv_options(relu, algorithms, threads)
    cdef const floating[::1] b = bias
    cdef const floating *bp = cdata_or_null(b), *xp = cdata_or_null(x), *wp = cdata_or_null(w)
    cdef floating *yp = data_or_null(y)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_conv2d_forward_f32(&geometry.shape, xp, wp, bp, yp, &options)
        else:
            status = cconv_conv2d_forward_f64(&geometry.shape, xp, wp, bp, yp, &options)
    check_status(status, "conv2d")


def conv2d_backward(ConvGeometry geometry not None, const floating[::1] dy not None, relu_y,
                    const floating[::1] x not None, const floating[::1] w not None,
                    floating[::1] dx, floating[::1] dw, floating[::1] db, dict algorithms, int threads):
    """Gradients of conv2d_forward into dx, dw, db (each may be None to skip it). relu_y: None,
    or the output of a forward pass with relu=True, whose derivative then masks dy."""
    cdef cconv_conv2d_options options = conv_options(relu_y is not None, algorithms, threads)
    cdef const floating[::1] ry = relu_y
    cdef const floating *ryp = cdata_or_null(ry)
    if ry is not None and ry.shape[0] != dy.shape[0]:
        raise ValueError("relu_y must have as many elements as dy")
    cdef const floating *dyp = cdata_or_null(dy), *xp = cdata_or_null(x), *wp = cdata_or_null(w)
    cdef floating *dxp = data_or_null(dx), *dwp = data_or_null(dw), *dbp = data_or_null(db)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_conv2d_backward_f32(&geometry.shape, dyp, ryp, xp, wp, dxp, dwp, dbp, &options)
        else:
            status = cconv_conv2d_backward_f64(&geometry.shape, dyp, ryp, xp, wp, dxp, dwp, dbp, &options)
    check_status(status, "conv2d_backward")


def dense_forward(int64_t n, int64_t features_in, int64_t features_out, const floating[::1] x not None,
                  const floating[::1] w not None, bias, floating[::1] y not None, bint relu, int threads):
    """y (n, out) = x (n, in) . w (in, out) + bias (then ReLU if relu), on flattened buffers."""
    cdef object rows = n, inputs = features_in  # sizes multiplied as Python ints: no int64 overflow
    if x.shape[0] != rows * inputs or w.shape[0] != inputs * features_out or y.shape[0] != rows * features_out:
        raise ValueError("dense_forward: buffer sizes do not match the dimensions")
    cdef const floating[::1] b = bias
    if b is not None and b.shape[0] != features_out:
        raise ValueError("dense_forward: bias size does not match the dimensions")
    cdef const floating *bp = cdata_or_null(b), *xp = cdata_or_null(x), *wp = cdata_or_null(w)
    cdef floating *yp = data_or_null(y)
    cdef int activation = CCONV_ACTIVATION_RELU if relu else CCONV_ACTIVATION_NONE
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_dense_forward_f32(n, features_in, features_out, xp, wp, bp, yp, activation, threads)
        else:
            status = cconv_dense_forward_f64(n, features_in, features_out, xp, wp, bp, yp, activation, threads)
    check_status(status, "dense")


def dense_backward(int64_t n, int64_t features_in, int64_t features_out, const floating[::1] dy not None,
                   relu_y, const floating[::1] x not None, const floating[::1] w not None,
                   floating[::1] dx, floating[::1] dw, floating[::1] db, int threads):
    """Gradients of dense_forward into dx, dw, db (each may be None to skip it); relu_y as in
    conv2d_backward."""
    cdef object rows = n, inputs = features_in  # sizes multiplied as Python ints: no int64 overflow
    if (dy.shape[0] != rows * features_out or x.shape[0] != rows * inputs
            or w.shape[0] != inputs * features_out
            or (dx is not None and dx.shape[0] != x.shape[0]) or (dw is not None and dw.shape[0] != w.shape[0])
            or (db is not None and db.shape[0] != features_out)):
        raise ValueError("dense_backward: buffer sizes do not match the dimensions")
    cdef const floating[::1] ry = relu_y
    if ry is not None and ry.shape[0] != dy.shape[0]:
        raise ValueError("relu_y must have as many elements as dy")
    cdef const floating *ryp = cdata_or_null(ry)
    cdef int activation = CCONV_ACTIVATION_RELU if relu_y is not None else CCONV_ACTIVATION_NONE
    cdef const floating *dyp = cdata_or_null(dy), *xp = cdata_or_null(x), *wp = cdata_or_null(w)
    cdef floating *dxp = data_or_null(dx), *dwp = data_or_null(dw), *dbp = data_or_null(db)
    cdef int status
    with nogil:
        if floating is float:
            status = cconv_dense_backward_f32(n, features_in, features_out, dyp, ryp, xp, wp, dxp, dwp, dbp,
                                              activation, threads)
        else:
            status = cconv_dense_backward_f64(n, features_in, features_out, dyp, ryp, xp, wp, dxp, dwp, dbp,
                                              activation, threads)
    check_status(status, "dense_backward")


def openmp_version():
    """The _OPENMP date this build was compiled with (e.g. 201511), or 0 without OpenMP."""
    return cconv_openmp_version()


def openmp_max_threads():
    return cconv_max_threads()


def openmp_num_procs():
    return cconv_num_procs()


def simd_paths_built():
    """Names of the micro-kernel configs compiled in, narrowest first."""
    names, i = [], 0
    while cconv_gemm_configs_built(i) != NULL:
        names.append(cconv_gemm_configs_built(i).isa.decode())
        i += 1
    return names


def simd_path():
    """(name, mr_f32, nr_f32) of the GEMM micro-kernels in use."""
    cdef const cconv_gemm_configs *c = cconv_gemm_configs_current()
    return c.isa.decode(), c.f32.tiles.mr, c.f32.tiles.nr


def simd_pixel_tile():
    """(pixels, filters) of the f32 pixel micro-kernel in use, or None without one."""
    cdef const cconv_gemm_configs *c = cconv_gemm_configs_current()
    return (c.f32.tiles.pix_mr, c.f32.tiles.pix_nr) if c.f32.tiles.pix_mr else None


def force_simd_path(str isa):
    """Use the named micro-kernels ('scalar', 'avx2', 'avx512') from now on (testing aid). Calls
    already running keep the kernels they started with."""
    if cconv_gemm_configs_force(isa.encode()) != 0:
        raise ValueError(f"SIMD path {isa!r} is not built or not supported by this CPU; "
                         f"built: {simd_paths_built()}")


# ------------------------------------------------------------------------------ scratch workspaces
cdef extern from "workspace.h" nogil:
    size_t cconv_workspace_trim()
    size_t cconv_workspace_held()


def workspace_trim():
    """Free the kernels' idle scratch workspaces (csrc/workspace.c); returns the bytes freed.
    cconv.release_memory() calls it along with emptying the array buffer cache (cconv._memory)."""
    return cconv_workspace_trim()


def workspace_held():
    """Bytes of scratch workspaces in the kernels' pool, in use or not."""
    return cconv_workspace_held()
