/* dwconv_simd.h: the depthwise row kernels (gemm_config.h: dwconv_rows, dwconv_dots,
 * dwconv_scatter) with SIMD vectors along the row, stamped out by the <type>-dwconv-<isa>.c files.
 * The includer includes a vec_*.h with the tail operations (VMASK, VMASK_FIRST, VLOADM, VSTOREM,
 * VSTORE_FIRST) and VDEINTERLEAVE, and defines REAL and the names UKERNEL_DW_ROWS, UKERNEL_DW_DOTS,
 * UKERNEL_DW_SCATTER and UKERNEL_DW_SPLIT.
 * The common tap counts (3x3 and 5x5 filters: 9 and 25 taps) run bodies whose tap count is a
 * constant, so that their loops unroll; other counts run the same bodies with a loop. Rows are
 * computed in tiles of several rows and vectors, for enough independent multiply-adds to keep the
 * FMA units busy on short rows. Stores past the end of a row keep only the row's lanes (plain
 * partial stores: the masked store is slow on some CPUs), and so do dy's loads in dots and every
 * access of scatter (dots loads a row's tail of dy whole where the rest of the vector is in the
 * next row); the loads of `in` by rows and dots may run past it as gemm_config.h allows
 * (dots zeroes those lanes, so that what lies there cannot make a NaN). */

/* act(v) with relu: max(0, v), a NaN v staying NaN. */
static inline VEC dw_act(VEC v, int relu) { return relu ? VMAX(VZERO(), v) : v; }

/* Stores v at p, only its first `left` lanes when left < VLEN (left >= 1): a macro, so that the
 * partial store stays inline in the tiles. */
#define dw_store(p, v, left)                                                                               \
    do {                                                                                                   \
        if ((left) >= VLEN) VSTOREU(p, v);                                                                 \
        else VSTORE_FIRST(p, v, left);                                                                     \
    } while (0)

/* The tiles and the strip go inline into each body, so that their tap loops see its constant
 * count (and unroll). */
#if defined(_MSC_VER)
#define DW_INLINE static __forceinline
#elif defined(__GNUC__)
#define DW_INLINE static inline __attribute__((always_inline))
#else
#define DW_INLINE static inline
#endif
#define DW_PASTE_(a, b) a##b
#define DW_PASTE(a, b) DW_PASTE_(a, b)
#define DW_N 1
#include "dwconv_tile_simd.h"
#define DW_N 2
#include "dwconv_tile_simd.h"
#define DW_N 3
#include "dwconv_tile_simd.h"
#define DW_N 4
#include "dwconv_tile_simd.h"
#define DW_N 5
#include "dwconv_tile_simd.h"
#define DW_N 6
#include "dwconv_tile_simd.h"
#define DW_N 7
#include "dwconv_tile_simd.h"
#define DW_N 8
#include "dwconv_tile_simd.h"

/* One strip of n rows (n <= 8, n <= 4 where cols > VLEN): the tile of that height. */
DW_INLINE void dw_rows_strip(int64_t n, int64_t cols, int64_t taps, const REAL *in, int64_t ldi,
                                 const int64_t *off, const REAL *w, VEC vb, int relu, REAL *out, int64_t ldo)
{
#define DW_TILE(name) name(cols, taps, in, ldi, off, w, vb, relu, out, ldo)
    if (cols > VLEN) {
        switch (n) {
        case 1: DW_TILE(dw_rows_tile2_1); break;
        case 2: DW_TILE(dw_rows_tile2_2); break;
        case 3: DW_TILE(dw_rows_tile2_3); break;
        default: DW_TILE(dw_rows_tile2_4); break;
        }
        return;
    }
    switch (n) {
    case 1: DW_TILE(dw_rows_tile1_1); break;
    case 2: DW_TILE(dw_rows_tile1_2); break;
    case 3: DW_TILE(dw_rows_tile1_3); break;
    case 4: DW_TILE(dw_rows_tile1_4); break;
    case 5: DW_TILE(dw_rows_tile1_5); break;
    case 6: DW_TILE(dw_rows_tile1_6); break;
    case 7: DW_TILE(dw_rows_tile1_7); break;
    default: DW_TILE(dw_rows_tile1_8); break;
    }
#undef DW_TILE
}

/* dwconv_rows for `taps` taps: rows of at most one vector in blocks of eight rows (a block of
 * seven for a 7-wide plane: one accumulator per row), wider rows in blocks of four rows, each in
 * strips of two vectors (one for a last narrow strip of a row). */
DW_INLINE void dw_rows_body(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi,
                                const int64_t *off, const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    const VEC vb = VBCAST(bias);
    const int64_t block = q <= VLEN ? 8 : 4;
    for (int64_t i = 0; i < rows; i += block) {
        const int64_t n = rows - i < block ? rows - i : block;
        for (int64_t j = 0; j < q; j += 2 * VLEN) {
            const int64_t cols = q - j < 2 * VLEN ? q - j : 2 * VLEN;
            dw_rows_strip(n, cols, taps, in + i * ldi + j, ldi, off, w, vb, relu,
                          out + i * ldo + j, ldo);
        }
    }
}

void UKERNEL_DW_ROWS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *w, REAL bias, int relu, REAL *out, int64_t ldo)
{
    if (taps == 9) dw_rows_body(rows, q, 9, in, ldi, off, w, bias, relu, out, ldo);
    else if (taps == 25) dw_rows_body(rows, q, 25, in, ldi, off, w, bias, relu, out, ldo);
    else dw_rows_body(rows, q, taps, in, ldi, off, w, bias, relu, out, ldo);
}

/* The sum of v's lanes, in a fixed order. */
static inline REAL dw_lane_sum(VEC v)
{
    REAL lanes[VLEN];
    VSTOREU(lanes, v);
    for (int width = VLEN / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
    return lanes[0];
}

/* dwconv_dots for a block of n <= 4 taps: two named accumulators per tap (even and odd vectors
 * of a row), so that the multiply-adds overlap and stay in registers. */
static inline void dw_dots_block4(int64_t rows, int64_t q, int n, const REAL *in, int64_t ldi, const int64_t *off,
                                  const REAL *dy, int64_t ldd, REAL *sums)
{
    const VEC z = VZERO();
    VEC a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    const int64_t o0 = off[0], o1 = n > 1 ? off[1] : 0, o2 = n > 2 ? off[2] : 0, o3 = n > 3 ? off[3] : 0;
    const int64_t tail = q % VLEN, full = q - tail;  /* columns [full, q): the masked tail */
    const VMASK m = VMASK_FIRST(tail);
    /* a tail of dy's row may be loaded whole when what the vector covers past it lies in the next
     * row (read by this call too): cheaper than the masked load */
    const int whole = ldd + tail >= VLEN;
    for (int64_t i = 0; i < rows; ++i) {
        const REAL *x = in + i * ldi, *d = dy + i * ldd;
        int64_t j = 0;
        for (; j + 2 * VLEN <= q; j += 2 * VLEN) {
            const VEC d0 = VLOADU(d + j), d1 = VLOADU(d + j + VLEN);
            a0 = VFMA(d0, VLOADU(x + o0 + j), a0);
            b0 = VFMA(d1, VLOADU(x + o0 + j + VLEN), b0);
            if (n > 1) {
                a1 = VFMA(d0, VLOADU(x + o1 + j), a1);
                b1 = VFMA(d1, VLOADU(x + o1 + j + VLEN), b1);
            }
            if (n > 2) {
                a2 = VFMA(d0, VLOADU(x + o2 + j), a2);
                b2 = VFMA(d1, VLOADU(x + o2 + j + VLEN), b2);
            }
            if (n > 3) {
                a3 = VFMA(d0, VLOADU(x + o3 + j), a3);
                b3 = VFMA(d1, VLOADU(x + o3 + j + VLEN), b3);
            }
        }
        if (j < full) {
            const VEC d0 = VLOADU(d + j);
            a0 = VFMA(d0, VLOADU(x + o0 + j), a0);
            if (n > 1) a1 = VFMA(d0, VLOADU(x + o1 + j), a1);
            if (n > 2) a2 = VFMA(d0, VLOADU(x + o2 + j), a2);
            if (n > 3) a3 = VFMA(d0, VLOADU(x + o3 + j), a3);
        }
        if (!tail) continue;
        /* both operands zero past q, so that those lanes add exact zeros */
        const VEC d0 = whole && i + 1 < rows ? VLOADU_ZERO(d + full, m) : VLOADM(d + full, m);
        if (q < VLEN && (i & 1)) {  /* rows shorter than a vector: odd rows here, even ones below */
            a0 = VFMA(d0, VLOADU_ZERO(x + o0 + full, m), a0);
            if (n > 1) a1 = VFMA(d0, VLOADU_ZERO(x + o1 + full, m), a1);
            if (n > 2) a2 = VFMA(d0, VLOADU_ZERO(x + o2 + full, m), a2);
            if (n > 3) a3 = VFMA(d0, VLOADU_ZERO(x + o3 + full, m), a3);
        } else {
            b0 = VFMA(d0, VLOADU_ZERO(x + o0 + full, m), b0);
            if (n > 1) b1 = VFMA(d0, VLOADU_ZERO(x + o1 + full, m), b1);
            if (n > 2) b2 = VFMA(d0, VLOADU_ZERO(x + o2 + full, m), b2);
            if (n > 3) b3 = VFMA(d0, VLOADU_ZERO(x + o3 + full, m), b3);
        }
    }
    sums[0] += dw_lane_sum(VADD(a0, b0));
    if (n > 1) sums[1] += dw_lane_sum(VADD(a1, b1));
    if (n > 2) sums[2] += dw_lane_sum(VADD(a2, b2));
    if (n > 3) sums[3] += dw_lane_sum(VADD(a3, b3));
}

void UKERNEL_DW_DOTS(int64_t rows, int64_t q, int64_t taps, const REAL *in, int64_t ldi, const int64_t *off,
                     const REAL *dy, int64_t ldd, REAL *sums)
{
    /* as few blocks of at most 4 taps as possible, of nearly equal size: 3x3 as 3 + 3 + 3 */
    const int64_t blocks = (taps + 3) / 4, size = (taps + blocks - 1) / blocks;
    for (int64_t t0 = 0; t0 < taps; t0 += size) {
        const int n = (int)(taps - t0 < size ? taps - t0 : size);
        dw_dots_block4(rows, q, n, in, ldi, off + t0, dy, ldd, sums + t0);
    }
}

void UKERNEL_DW_SCATTER(int64_t rows, int64_t q, int64_t taps, const REAL *dy, int64_t ldd, const int64_t *off,
                        const REAL *w, REAL *out, int64_t ldo)
{
    for (int64_t i = 0; i < rows; ++i) {
        const REAL *d = dy + i * ldd;
        for (int64_t t = 0; t < taps; ++t) {
            const VEC wt = VBCAST(w[t]);
            REAL *dst = out + i * ldo + off[t];
            int64_t j = 0;
            for (; j + VLEN <= q; j += VLEN) VSTOREU(dst + j, VFMA(wt, VLOADU(d + j), VLOADU(dst + j)));
            if (j < q) {
                const VMASK m = VMASK_FIRST(q - j);
                VSTOREM(dst + j, m, VFMA(wt, VLOADM(d + j, m), VLOADM(dst + j, m)));
            }
        }
    }
}

void UKERNEL_DW_SPLIT(int64_t n, const REAL *s, REAL *d0, REAL *d1)
{
    int64_t e = 0;
    for (; e + VLEN <= n; e += VLEN) {
        VEC even, odd;
        VDEINTERLEAVE(VLOADU(s + 2 * e), VLOADU(s + 2 * e + VLEN), even, odd);
        VSTOREU(d0 + e, even);
        VSTOREU(d1 + e, odd);
    }
    for (; e < n; ++e) {
        d0[e] = s[2 * e];
        d1[e] = s[2 * e + 1];
    }
}

#undef dw_store
#undef DW_INLINE
#undef DW_PASTE
#undef DW_PASTE_
#undef UKERNEL_DW_ROWS
#undef UKERNEL_DW_SPLIT
#undef UKERNEL_DW_DOTS
#undef UKERNEL_DW_SCATTER
