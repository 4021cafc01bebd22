/* gemm.h: the packed-panel matrix-multiply building blocks the convolution kernels run on.
 *
 * C (m x n) += A (m x kc) * B (kc x n) is computed one MR x NR tile at a time by a
 * micro-kernel that reads A from an "A panel" (MR rows, stored k-major: a[k*MR + i]) and B
 * from a "B panel" (NR columns, stored k-major: b[k*NR + j]). The convolution files pack
 * their operands straight into these layouts (im2col fused into packing), so no whole-batch
 * im2col buffer ever exists. Which micro-kernels run (and so MR and NR) is chosen once, at
 * start-up, from the CPU's features: see cconv_gemm_kernels_select().
 */
#ifndef CCONV_GEMM_H
#define CCONV_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* c[i*ldc + j] (i < m <= MR, j < n <= NR) = act(base + sum_k a[k*MR+i] * b[k*NR+j]), where base is
 * c itself with accumulate, else bias[i] (bias not NULL) or 0, and act is max(., 0) with relu
 * (keeping NaN) or nothing: a convolution's bias and ReLU ride on its first and last depth
 * blocks' stores. a and b are 64-byte aligned panels; full tiles (m == MR, n == NR) are the fast
 * case. Every micro-kernel below ends with the same (c, ldc, m, n, accumulate, bias, relu). */
typedef void (*cconv_ukernel_f32)(int64_t kc, const float *a, const float *b, float *c,
                                  int64_t ldc, int64_t m, int64_t n, int accumulate, const float *bias, int relu);
typedef void (*cconv_ukernel_f64)(int64_t kc, const double *a, const double *b, double *c,
                                  int64_t ldc, int64_t m, int64_t n, int accumulate, const double *bias, int relu);

/* The same product with B read in place instead of from a panel: row k of B is NR elements at
 * b + boff[k] (any alignment; all NR must be readable, also for n < NR), in runs of `run`:
 * column j at b + boff[k] + (j / run) * step + j % run, while C's column j stays at c + i*ldc + j
 * (C holds the runs side by side). run is NR or more (one contiguous row), or a divisor of NR
 * holding whole 64-byte vectors, so that no SIMD vector straddles two runs. The convolution's
 * stride-1 path points these rows into a zero-padded copy of the input, so it packs nothing;
 * runs let one tile cover several image rows without their padding gaps, and write them
 * straight into the output, whose rows have no gaps. */
typedef void (*cconv_ukernel_off_f32)(int64_t kc, const float *a, const float *b, const int64_t *boff,
                                      int64_t run, int64_t step, float *c, int64_t ldc, int64_t m, int64_t n,
                                      int accumulate, const float *bias, int relu);
typedef void (*cconv_ukernel_off_f64)(int64_t kc, const double *a, const double *b, const int64_t *boff,
                                      int64_t run, int64_t step, double *c, int64_t ldc, int64_t m, int64_t n,
                                      int accumulate, const double *bias, int relu);

/* And with A read in place: row i of A (i < MR; all MR must be readable, also for m < MR) is kc
 * elements at a + aoff[i], in runs of `run` that start `step` apart: element k at
 * a + aoff[i] + (k / run) * step + k % run (run >= kc: one contiguous run). The stride-1 weight
 * gradient reads the slab this way, one run per image row, skipping the padding gaps. */
typedef void (*cconv_ukernel_aoff_f32)(int64_t kc, const float *a, const int64_t *aoff, int64_t run, int64_t step,
                                       const float *b, float *c, int64_t ldc, int64_t m, int64_t n, int accumulate,
                                       const float *bias, int relu);
typedef void (*cconv_ukernel_aoff_f64)(int64_t kc, const double *a, const int64_t *aoff, int64_t run,
                                       int64_t step, const double *b, double *c, int64_t ldc, int64_t m, int64_t n,
                                       int accumulate, const double *bias, int relu);

/* And with A's columns read in place: A[i][k] = a[aoff[k] + i] (all MR_PIX rows readable, also for
 * m < MR_PIX), B from a panel of NR_PIX columns. The stride-1 convolution runs it with A = pixels
 * of its slab (tap k of output pixel i at slab + off[k] + i) and B = the filters, so a tile is
 * MR_PIX pixels x NR_PIX filters: pixels broadcast from any row geometry (14-pixel rows waste no
 * lane) and the filters loaded aligned; its bias is per column (filter): bias[j]. Only tables
 * with wide registers have one (else NULL). */
typedef void (*cconv_ukernel_pix_f32)(int64_t kc, const float *a, const int64_t *aoff, const float *b, float *c,
                                      int64_t ldc, int64_t m, int64_t n, int accumulate, const float *bias, int relu);
typedef void (*cconv_ukernel_pix_f64)(int64_t kc, const double *a, const int64_t *aoff, const double *b,
                                      double *c, int64_t ldc, int64_t m, int64_t n, int accumulate, const double *bias,
                                      int relu);

/* The packing transpose: dst[col(j)*ldd + i] = src[i*lds + j] for i < rows, j < cols, where
 * destination column col(j) = (j / run) * period + j % run (run >= cols: col(j) = j). With a
 * mask laid out like src (a ReLU's output), entries whose mask is <= 0 are written as exactly 0
 * (a NaN mask passes its entry, as in torch). When sums is not NULL, sums[i] += the sum of the
 * values written for row i (a bias gradient, while dy is in registers). The weight gradients
 * pack dy^T with it. */
typedef void (*cconv_transpose_f32)(const float *src, const float *mask, int64_t lds, int64_t rows, int64_t cols,
                                    int64_t run, int64_t period, float *dst, int64_t ldd, float *sums);
typedef void (*cconv_transpose_f64)(const double *src, const double *mask, int64_t lds, int64_t rows,
                                    int64_t cols, int64_t run, int64_t period, double *dst, int64_t ldd,
                                    double *sums);

typedef struct {
    const char *isa;          /* "avx512", "avx2" or "scalar" */
    int mr_f32, nr_f32;
    cconv_ukernel_f32 ukernel_f32;
    cconv_ukernel_off_f32 ukernel_off_f32;
    cconv_ukernel_aoff_f32 ukernel_aoff_f32;
    int mr_f64, nr_f64;
    cconv_ukernel_f64 ukernel_f64;
    cconv_ukernel_off_f64 ukernel_off_f64;
    cconv_ukernel_aoff_f64 ukernel_aoff_f64;
    cconv_transpose_f32 transpose_f32;
    cconv_transpose_f64 transpose_f64;
    int mr_pix_f32, nr_pix_f32;  /* 0, 0 and NULL where there is no pixel kernel */
    cconv_ukernel_pix_f32 ukernel_pix_f32;
    int mr_pix_f64, nr_pix_f64;
    cconv_ukernel_pix_f64 ukernel_pix_f64;
} cconv_gemm_kernels;

/* The portable micro-kernels (always built; the reference for the SIMD ones). */
extern const cconv_gemm_kernels cconv_gemm_scalar;
#if defined(CCONV_HAVE_AVX2)
extern const cconv_gemm_kernels cconv_gemm_avx2;
#endif
#if defined(CCONV_HAVE_AVX512)
extern const cconv_gemm_kernels cconv_gemm_avx512;
#endif

/* Choose the micro-kernels for this CPU: the widest ISA it supports, unless the environment
 * variable CCONV_ISA names another one ("scalar", "avx2", "avx512") that it supports.
 * Call once at start-up (not thread-safe); cconv_gemm_kernels_get() then returns the choice. */
void cconv_gemm_kernels_select(void);
const cconv_gemm_kernels *cconv_gemm_kernels_get(void);
/* Force a path by name; returns 0 on success, -1 if it is not built or this CPU lacks it. */
int cconv_gemm_kernels_force(const char *isa);
/* Comma-separated names of the paths compiled into this build, e.g. "scalar,avx2,avx512". */
const char *cconv_gemm_isas_built(void);

#endif
