/* gemm_config.h: the micro-kernel configs, one per element type and ISA, and their selection.
 *
 * Every product the convolution and dense kernels compute is C (m x n) += A (m x kc) . B (kc x n),
 * one MR x NR tile at a time, by a micro-kernel (csrc/ukernels/). A micro-kernel reads A from an
 * "A panel" (MR rows stored k-major: a[k*MR + i]) and B from a "B panel" (NR columns stored
 * k-major: b[k*NR + j]), or reads one operand in place through an offset table. A config holds
 * one ISA's micro-kernels for one element type, their tile sizes and the cache blocking that
 * goes with them. The widest ISA this CPU runs is chosen once, at start-up (or the one CCONV_ISA
 * names); each operation takes the current configs once, when it starts, and passes them down,
 * so forcing another ISA never changes the kernels of an operation that is already running.
 */
#ifndef CCONV_GEMM_CONFIG_H
#define CCONV_GEMM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Every micro-kernel ends with (c, ldc, m, n, accumulate, bias, relu):
 * c[i*ldc + j] (i < m <= MR, j < n <= NR) = act(base + sum_k A(i, k) * B(k, j)), where base is c
 * itself with accumulate, else bias[i] (bias not NULL) or 0, and act is max(., 0) with relu
 * (keeping NaN) or nothing: a convolution's bias and ReLU ride on its first and last depth
 * blocks' stores. Panels are 64-byte aligned; full tiles (m == MR, n == NR) are the fast case. */
typedef void cconv_gemm_ukernel_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t m,
                                       int64_t n, int accumulate, const float *bias, int relu);
typedef void cconv_gemm_ukernel_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc,
                                       int64_t m, int64_t n, int accumulate, const double *bias, int relu);

/* B read in place: row k of B is NR elements at b + boff[k] (any alignment; all NR must be
 * readable, also for n < NR), in runs of `run`: column j at b + boff[k] + (j / run) * step + j % run,
 * while C's column j stays at c + i*ldc + j (C holds the runs side by side). run is NR or more (one
 * contiguous row), or a divisor of NR holding whole 64-byte vectors, so that no SIMD vector
 * straddles two runs. The stride-1 convolution points these rows into a zero-padded copy of its
 * input (the slab), so it packs nothing. */
typedef void cconv_gemm_boff_ukernel_f32(int64_t kc, const float *a, const float *b, const int64_t *boff,
                                            int64_t run, int64_t step, float *c, int64_t ldc, int64_t m, int64_t n,
                                            int accumulate, const float *bias, int relu);
typedef void cconv_gemm_boff_ukernel_f64(int64_t kc, const double *a, const double *b, const int64_t *boff,
                                            int64_t run, int64_t step, double *c, int64_t ldc, int64_t m,
                                            int64_t n, int accumulate, const double *bias, int relu);

/* A's rows read in place: row i of A (i < MR; all MR must be readable, also for m < MR) is kc
 * elements at a + aoff[i], in runs of `run` that start `step` apart: element k at
 * a + aoff[i] + (k / run) * step + k % run (run >= kc: one contiguous run). The stride-1 weight
 * gradient reads its slab this way, one run per image row, skipping the padding gaps. */
typedef void cconv_gemm_aoff_ukernel_f32(int64_t kc, const float *a, const int64_t *aoff, int64_t run,
                                            int64_t step, const float *b, float *c, int64_t ldc, int64_t m,
                                            int64_t n, int accumulate, const float *bias, int relu);
typedef void cconv_gemm_aoff_ukernel_f64(int64_t kc, const double *a, const int64_t *aoff, int64_t run,
                                            int64_t step, const double *b, double *c, int64_t ldc, int64_t m,
                                            int64_t n, int accumulate, const double *bias, int relu);

/* A's columns read in place: A(i, k) = a[aoff[k] + i] (all MR_PIX rows readable, also for
 * m < MR_PIX), B from a panel of NR_PIX columns; the bias is per column: bias[j]. The stride-1
 * convolution runs it with A = pixels of its slab and B = the filters, so a tile is MR_PIX
 * pixels x NR_PIX filters: pixels broadcast from any row geometry, filters loaded aligned. */
typedef void cconv_gemm_pix_ukernel_f32(int64_t kc, const float *a, const int64_t *aoff, const float *b,
                                           float *c, int64_t ldc, int64_t m, int64_t n, int accumulate,
                                           const float *bias, int relu);
typedef void cconv_gemm_pix_ukernel_f64(int64_t kc, const double *a, const int64_t *aoff, const double *b,
                                           double *c, int64_t ldc, int64_t m, int64_t n, int accumulate,
                                           const double *bias, int relu);

/* The packing transpose: dst[col(j)*ldd + i] = src[i*lds + j] for i < rows, j < cols, where
 * destination column col(j) = (j / run) * period + j % run (run >= cols: col(j) = j). With a
 * mask laid out like src (a ReLU's output), entries whose mask is <= 0 are written as exactly 0
 * (a NaN mask passes its entry, as in torch). When sums is not NULL, sums[i] += the sum of the
 * values written for row i (a bias gradient, taken while the values are in registers). */
typedef void cconv_transpose_ukernel_f32(const float *src, const float *mask, int64_t lds, int64_t rows,
                                            int64_t cols, int64_t run, int64_t period, float *dst, int64_t ldd,
                                            float *sums);
typedef void cconv_transpose_ukernel_f64(const double *src, const double *mask, int64_t lds, int64_t rows,
                                            int64_t cols, int64_t run, int64_t period, double *dst, int64_t ldd,
                                            double *sums);

/* The depthwise convolution's row kernels (conv2d_depthwise.h), vectorised along a row of q
 * outputs; rows i < rows of ldi (input), ldo (output) and ldd (dy) elements apart, taps t < taps
 * at offsets off[t] into a zero-padded input row. Each reads and writes only the elements named,
 * except that rows and dots may read up to 15 elements past the last of `in` they use (in the
 * caller's slack; the values there do not matter):
 *   rows     out[i*ldo + j] = act(bias + sum over t of w[t] * in[i*ldi + off[t] + j]), act = max(., 0)
 *            with relu (keeping NaN): the forward, and the gradient of the input as a gather
 *   dots     sums[t] += sum over i, j of dy[i*ldd + j] * in[i*ldi + off[t] + j]: the weight gradient
 *   scatter  out[i*ldo + off[t] + j] += w[t] * dy[i*ldd + j], rows in order and taps in order within
 *            a row (their targets overlap): the gradient of the input with non-finite weights
 *   split    d0[e] = s[2e], d1[e] = s[2e + 1] for e < n: a row into its two column phases (stride 2) */
typedef void cconv_dwconv_rows_ukernel_f32(int64_t rows, int64_t q, int64_t taps, const float *in, int64_t ldi,
                                           const int64_t *off, const float *w, float bias, int relu, float *out,
                                           int64_t ldo);
typedef void cconv_dwconv_rows_ukernel_f64(int64_t rows, int64_t q, int64_t taps, const double *in, int64_t ldi,
                                           const int64_t *off, const double *w, double bias, int relu, double *out,
                                           int64_t ldo);
typedef void cconv_dwconv_dots_ukernel_f32(int64_t rows, int64_t q, int64_t taps, const float *in, int64_t ldi,
                                           const int64_t *off, const float *dy, int64_t ldd, float *sums);
typedef void cconv_dwconv_dots_ukernel_f64(int64_t rows, int64_t q, int64_t taps, const double *in, int64_t ldi,
                                           const int64_t *off, const double *dy, int64_t ldd, double *sums);
typedef void cconv_dwconv_scatter_ukernel_f32(int64_t rows, int64_t q, int64_t taps, const float *dy, int64_t ldd,
                                              const int64_t *off, const float *w, float *out, int64_t ldo);
typedef void cconv_dwconv_scatter_ukernel_f64(int64_t rows, int64_t q, int64_t taps, const double *dy, int64_t ldd,
                                              const int64_t *off, const double *w, double *out, int64_t ldo);
typedef void cconv_dwconv_split_ukernel_f32(int64_t n, const float *s, float *d0, float *d1);
typedef void cconv_dwconv_split_ukernel_f64(int64_t n, const double *s, double *d0, double *d1);

/* The Winograd F(m x m, 3 x 3) transforms (conv2d_winograd.h), m = 4 or 2 (alpha = m + 2):
 *   input   v[xi*ldv + (t / nr)*pstride + t % nr] (xi < alpha^2, t < n) = element xi of B^T d_t B,
 *           where tile d_t's element (i, j) (i, j < alpha) is in[toff[t] + i*ldi + j]: rows of
 *           tiles in panels of nr (a multiple of 16) pstride apart, as the products' B operands
 *   output  out[i*ldo + u*m + j] (i, j < m, u < n) = act(bias + element (i, j) of A^T M_u A), where
 *           element xi of M_u is mt[xi*ldm + u], act = max(., 0) with relu (keeping NaN): the
 *           output rows of n tiles side by side
 * Both run whole SIMD vectors of tiles: they may write up to 15 entries past the last named in a
 * panel of v (past entry m*n - 1 of a row of out: up to 15*m), read as far past the last entry of
 * each row of mt, and read toff[t] for t < n + 15 (the caller's slack; toff's extra entries must
 * be valid offsets, the values they lead to do not matter). */
typedef void cconv_winograd_input_ukernel_f32(int m, int64_t n, const float *in, int64_t ldi, const int32_t *toff,
                                              float *v, int64_t ldv, int64_t nr, int64_t pstride);
typedef void cconv_winograd_input_ukernel_f64(int m, int64_t n, const double *in, int64_t ldi, const int32_t *toff,
                                              double *v, int64_t ldv, int64_t nr, int64_t pstride);
typedef void cconv_winograd_output_ukernel_f32(int m, int64_t n, const float *mt, int64_t ldm, float bias, int relu,
                                               float *out, int64_t ldo);
typedef void cconv_winograd_output_ukernel_f64(int m, int64_t n, const double *mt, int64_t ldm, double bias,
                                               int relu, double *out, int64_t ldo);

/* Tile sizes and cache blocking of one config: what the algorithm selection needs to know. */
typedef struct {
    int mr, nr;          /* the packed, B-offset and A-offset kernels' tile */
    int pix_mr, pix_nr;  /* the pixel kernel's tile (pixels x filters); 0 without one */
    int64_t kc;          /* reduction depth of one packed block */
    int64_t nc;          /* columns of one packed B block */
    int64_t mc;          /* rows of C per work item of a plain matrix product */
} cconv_gemm_tiles;

typedef struct {
    const char *isa;
    cconv_gemm_tiles tiles;
    cconv_gemm_ukernel_f32 *gemm;
    cconv_gemm_boff_ukernel_f32 *gemm_boff;
    cconv_gemm_aoff_ukernel_f32 *gemm_aoff;
    cconv_gemm_pix_ukernel_f32 *gemm_pix;  /* NULL where the registers are too few for it */
    cconv_transpose_ukernel_f32 *transpose;
    cconv_dwconv_rows_ukernel_f32 *dwconv_rows;
    cconv_dwconv_dots_ukernel_f32 *dwconv_dots;
    cconv_dwconv_scatter_ukernel_f32 *dwconv_scatter;
    cconv_dwconv_split_ukernel_f32 *dwconv_split;
    cconv_winograd_input_ukernel_f32 *winograd_input;
    cconv_winograd_output_ukernel_f32 *winograd_output;
} cconv_gemm_config_f32;

typedef struct {
    const char *isa;
    cconv_gemm_tiles tiles;
    cconv_gemm_ukernel_f64 *gemm;
    cconv_gemm_boff_ukernel_f64 *gemm_boff;
    cconv_gemm_aoff_ukernel_f64 *gemm_aoff;
    cconv_gemm_pix_ukernel_f64 *gemm_pix;
    cconv_transpose_ukernel_f64 *transpose;
    cconv_dwconv_rows_ukernel_f64 *dwconv_rows;
    cconv_dwconv_dots_ukernel_f64 *dwconv_dots;
    cconv_dwconv_scatter_ukernel_f64 *dwconv_scatter;
    cconv_dwconv_split_ukernel_f64 *dwconv_split;
    cconv_winograd_input_ukernel_f64 *winograd_input;
    cconv_winograd_output_ukernel_f64 *winograd_output;
} cconv_gemm_config_f64;

/* One ISA's configs for both element types. */
typedef struct {
    const char *isa;  /* "scalar", "avx2" or "avx512" */
    const cconv_gemm_config_f32 *f32;
    const cconv_gemm_config_f64 *f64;
} cconv_gemm_configs;

/* The i-th configs compiled into this build, narrowest first (0 is "scalar"); NULL past the last. */
const cconv_gemm_configs *cconv_gemm_configs_built(int i);
/* The named configs if they are built and this CPU runs them, else NULL. */
const cconv_gemm_configs *cconv_gemm_configs_find(const char *isa);
/* Choose the configs for this CPU: the widest ISA it runs, unless the environment variable
 * CCONV_ISA names another one that it runs. Called at start-up; later calls choose again. */
void cconv_gemm_configs_select(void);
/* The configs chosen. An operation calls this once, when it starts, and passes them down. */
const cconv_gemm_configs *cconv_gemm_configs_current(void);
/* Choose the named configs from now on; 0 on success, -1 if they are not built or this CPU lacks
 * them. Operations already running keep the configs they started with. */
int cconv_gemm_configs_force(const char *isa);

#endif
