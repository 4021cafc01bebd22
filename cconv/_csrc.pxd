# cython: language_level=3
"""The C API of csrc/ as the Cython wrappers see it: declared once here, cimported by each
wrapper. Shapes and options cross as these typed structs and enums; Python code never sees their
field order or enum values."""
from libc.stdint cimport int64_t


cdef extern from "status.h" nogil:
    enum:
        CCONV_OK
        CCONV_ENOMEM
        CCONV_EINVAL
        CCONV_ACTIVATION_NONE
        CCONV_ACTIVATION_RELU


cdef extern from "conv2d.h" nogil:
    ctypedef struct cconv_conv2d_shape:
        int64_t n, c, h, w
        int64_t k, r, s
        int64_t groups
        int64_t stride_h, stride_w
        int64_t dil_h, dil_w
        int64_t pad_top, pad_left
        int64_t p, q

    ctypedef enum cconv_conv2d_algorithm:
        CCONV_CONV2D_AUTO
        CCONV_CONV2D_ALGORITHM_COUNT

    ctypedef enum cconv_conv2d_pass:
        CCONV_CONV2D_FORWARD
        CCONV_CONV2D_GRAD_INPUT
        CCONV_CONV2D_GRAD_WEIGHT
        CCONV_CONV2D_PASS_COUNT

    ctypedef struct cconv_conv2d_options:
        int activation
        int threads
        cconv_conv2d_algorithm algorithm[<int>CCONV_CONV2D_PASS_COUNT]

    const char *cconv_conv2d_algorithm_name(cconv_conv2d_algorithm algorithm)
    const char *cconv_conv2d_unsupported(const cconv_conv2d_shape *shape, cconv_conv2d_pass pass_,
                                         cconv_conv2d_algorithm algorithm)
    cconv_conv2d_algorithm cconv_conv2d_auto(const cconv_conv2d_shape *shape, cconv_conv2d_pass pass_, int elem_size)
    int cconv_conv2d_forward_f32(const cconv_conv2d_shape *shape, const float *x, const float *w, const float *bias,
                                 float *y, const cconv_conv2d_options *options)
    int cconv_conv2d_forward_f64(const cconv_conv2d_shape *shape, const double *x, const double *w,
                                 const double *bias, double *y, const cconv_conv2d_options *options)
    int cconv_conv2d_backward_f32(const cconv_conv2d_shape *shape, const float *dy, const float *y, const float *x,
                                  const float *w, float *dx, float *dw, float *db,
                                  const cconv_conv2d_options *options)
    int cconv_conv2d_backward_f64(const cconv_conv2d_shape *shape, const double *dy, const double *y,
                                  const double *x, const double *w, double *dx, double *dw, double *db,
                                  const cconv_conv2d_options *options)


cdef extern from "dense.h" nogil:
    int cconv_dense_forward_f32(int64_t n, int64_t features_in, int64_t features_out, const float *x,
                                const float *w, const float *bias, float *y, int activation, int threads)
    int cconv_dense_forward_f64(int64_t n, int64_t features_in, int64_t features_out, const double *x,
                                const double *w, const double *bias, double *y, int activation, int threads)
    int cconv_dense_backward_f32(int64_t n, int64_t features_in, int64_t features_out, const float *dy,
                                 const float *y, const float *x, const float *w, float *dx, float *dw, float *db,
                                 int activation, int threads)
    int cconv_dense_backward_f64(int64_t n, int64_t features_in, int64_t features_out, const double *dy,
                                 const double *y, const double *x, const double *w, double *dx, double *dw,
                                 double *db, int activation, int threads)


cdef extern from "gemm_config.h" nogil:
    ctypedef struct cconv_gemm_tiles:
        int mr, nr, pix_mr, pix_nr
        int64_t kc, nc, mc

    ctypedef struct cconv_gemm_config_f32:
        const char *isa
        cconv_gemm_tiles tiles

    ctypedef struct cconv_gemm_config_f64:
        const char *isa
        cconv_gemm_tiles tiles

    ctypedef struct cconv_gemm_configs:
        const char *isa
        const cconv_gemm_config_f32 *f32
        const cconv_gemm_config_f64 *f64

    const cconv_gemm_configs *cconv_gemm_configs_built(int i)
    const cconv_gemm_configs *cconv_gemm_configs_find(const char *isa)
    void cconv_gemm_configs_select()
    const cconv_gemm_configs *cconv_gemm_configs_current()
    int cconv_gemm_configs_force(const char *isa)


cdef extern from "pool2d.h" nogil:
    ctypedef struct cconv_pool2d_shape:
        int64_t n, c, h, w
        int64_t kh, kw
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t p, q

    int cconv_max_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y, int threads)
    int cconv_max_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y, int threads)
    int cconv_max_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, const float *x,
                                      float *dx, int threads)
    int cconv_max_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy, const double *x,
                                      double *dx, int threads)
    int cconv_avg_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y,
                                     int count_include_pad, int threads)
    int cconv_avg_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y,
                                     int count_include_pad, int threads)
    int cconv_avg_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, float *dx,
                                      int count_include_pad, int threads)
    int cconv_avg_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy, double *dx,
                                      int count_include_pad, int threads)
    int cconv_lp_pool2d_forward_f32(const cconv_pool2d_shape *shape, const float *x, float *y, double norm_type,
                                    int threads)
    int cconv_lp_pool2d_forward_f64(const cconv_pool2d_shape *shape, const double *x, double *y, double norm_type,
                                    int threads)
    int cconv_lp_pool2d_backward_f32(const cconv_pool2d_shape *shape, const float *dy, const float *x, float *dx,
                                     double norm_type, int threads)
    int cconv_lp_pool2d_backward_f64(const cconv_pool2d_shape *shape, const double *dy, const double *x,
                                     double *dx, double norm_type, int threads)


cdef extern from "batchnorm2d.h" nogil:
    void cconv_batchnorm2d_forward_f32(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                                       const float *beta, double eps, int use_batch_stats, double momentum,
                                       float *running_mean, float *running_var, double *mean, double *invstd,
                                       float *y, int threads)
    void cconv_batchnorm2d_forward_f64(int64_t n, int64_t c, int64_t hw, const double *x, const double *gamma,
                                       const double *beta, double eps, int use_batch_stats, double momentum,
                                       double *running_mean, double *running_var, double *mean, double *invstd,
                                       double *y, int threads)
    void cconv_batchnorm2d_backward_f32(int64_t n, int64_t c, int64_t hw, const float *dy, const float *x,
                                        const float *gamma, const double *mean, const double *invstd,
                                        int batch_stats, float *dx, float *dgamma, float *dbeta, int threads)
    void cconv_batchnorm2d_backward_f64(int64_t n, int64_t c, int64_t hw, const double *dy, const double *x,
                                        const double *gamma, const double *mean, const double *invstd,
                                        int batch_stats, double *dx, double *dgamma, double *dbeta, int threads)


cdef extern from "gelu.h" nogil:
    void cconv_gelu_forward_f32(int64_t count, const float *x, float *y, int threads)
    void cconv_gelu_forward_f64(int64_t count, const double *x, double *y, int threads)
    void cconv_gelu_backward_f32(int64_t count, const float *dy, const float *x, float *dx, int threads)
    void cconv_gelu_backward_f64(int64_t count, const double *dy, const double *x, double *dx, int threads)


cdef extern from "parallel.h" nogil:
    int cconv_max_threads()
    int cconv_num_procs()
    int cconv_openmp_version()


cdef inline int check_status(int status, str what) except -1:
    """Raise for a kernel's status (status.h): MemoryError for CCONV_ENOMEM, ValueError for
    CCONV_EINVAL (the Python layer checks first, so that one only guards the boundary)."""
    if status == CCONV_ENOMEM:
        raise MemoryError(f"cconv.{what}: could not allocate the kernel's workspace (out of memory, or a size "
                          f"too large for memory for this geometry)")
    if status == CCONV_EINVAL:
        raise ValueError(f"cconv.{what}: the kernel refused its arguments (a geometry outside its limits, or an "
                         f"algorithm that does not apply)")
    if status != CCONV_OK:
        raise RuntimeError(f"cconv.{what}: kernel failed with status {status}")
    return 0
