/* winograd_simd.h: the Winograd F(m x m, 3 x 3) input and output transforms (gemm_config.h:
 * winograd_input, winograd_output) for m = 4 and m = 2, with SIMD lanes across
 * tiles, stamped out by the <type>-winograd-<isa>.c files. The includer includes a vec_*.h with
 * the arithmetic, the column loads (VLOAD_COLUMNS4) and the interleaving stores (VSTORE_ZIP4,
 * VSTORE_ZIP2), or vec_scalar.h, and defines REAL, UKERNEL_WINO_INPUT and UKERNEL_WINO_OUTPUT.
 *
 * The matrices are Lavin and Gray's, on the points 0, 1, -1, 2, -2 (m = 4) and 0, 1, -1 (m = 2):
 * each 1-D transform below is one row-by-row product written out, with the shared sums taken
 * once. The 2-D transforms apply it along the tile's columns, then along its rows. */

/* o = B^T d for F(4, 3): rows (4 0 -5 0 1 0), (0 -4 -4 1 1 0), (0 4 -4 -1 1 0), (0 -2 -1 2 1 0),
 * (0 2 -1 -2 1 0), (0 4 0 -5 0 1). */
static inline void wino_bt4(const VEC d[6], VEC o[6])
{
    const VEC four = VBCAST(4), five = VBCAST(5), two = VBCAST(2);
    const VEC s12 = VADD(d[1], d[2]), s34 = VADD(d[3], d[4]), d12 = VSUB(d[1], d[2]), d43 = VSUB(d[4], d[3]);
    const VEC d13 = VSUB(d[1], d[3]), d42 = VSUB(d[4], d[2]);
    o[0] = VFMA(four, d[0], VSUB(d[4], VMUL(five, d[2])));
    o[1] = VSUB(s34, VMUL(four, s12));
    o[2] = VFMA(four, d12, d43);
    o[3] = VSUB(d42, VMUL(two, d13));
    o[4] = VFMA(two, d13, d42);
    o[5] = VFMA(four, d[1], VSUB(d[5], VMUL(five, d[3])));
}

/* o = A^T m for F(4, 3): rows (1 1 1 1 1 0), (0 1 -1 2 -2 0), (0 1 1 4 4 0), (0 1 -1 8 -8 1). */
static inline void wino_at4(const VEC m[6], VEC o[4])
{
    const VEC s12 = VADD(m[1], m[2]), d12 = VSUB(m[1], m[2]), s34 = VADD(m[3], m[4]), d34 = VSUB(m[3], m[4]);
    o[0] = VADD(VADD(m[0], s12), s34);
    o[1] = VFMA(VBCAST(2), d34, d12);
    o[2] = VFMA(VBCAST(4), s34, s12);
    o[3] = VADD(VFMA(VBCAST(8), d34, d12), m[5]);
}

/* o = B^T d for F(2, 3): rows (1 0 -1 0), (0 1 1 0), (0 -1 1 0), (0 1 0 -1). */
static inline void wino_bt2(const VEC d[4], VEC o[4])
{
    o[0] = VSUB(d[0], d[2]);
    o[1] = VADD(d[1], d[2]);
    o[2] = VSUB(d[2], d[1]);
    o[3] = VSUB(d[1], d[3]);
}

/* o = A^T m for F(2, 3): rows (1 1 1 0), (0 1 -1 -1). */
static inline void wino_at2(const VEC m[4], VEC o[2])
{
    o[0] = VADD(VADD(m[0], m[1]), m[2]);
    o[1] = VSUB(VSUB(m[1], m[2]), m[3]);
}

/* The input transform of the tiles t .. t + VLEN - 1 (in one panel of nr), into dst: tile element (i, j) at
 * in + toff[t] + i*ldi + j, its rows' elements loaded four at a time and turned into columns. */
#define WINO_INPUT_BODY(A, BT)                                                                      \
    do {                                                                                            \
        VEC c[A][A], d[8], o[A];                                                                    \
        for (int i = 0; i < A; ++i) {                                                               \
            VLOAD_COLUMNS4(in + i * ldi, toff + t, d[0], d[1], d[2], d[3]);                         \
            if (A > 4) VLOAD_COLUMNS4(in + i * ldi + 4, toff + t, d[4], d[5], d[6], d[7]);          \
            BT(d, c[i]);                                                                            \
        }                                                                                           \
        for (int j = 0; j < A; ++j) {                                                               \
            for (int i = 0; i < A; ++i) d[i] = c[i][j];                                             \
            BT(d, o);                                                                               \
            for (int i = 0; i < A; ++i) VSTOREU(dst + (i * A + j) * ldv, o[i]);                    \
        }                                                                                           \
    } while (0)

void UKERNEL_WINO_INPUT(int m, int64_t n, const REAL *in, int64_t ldi, const int32_t *toff, REAL *v, int64_t ldv,
                       int64_t nr, int64_t pstride)
{
    for (int64_t t = 0; t < n; t += VLEN) {
        REAL *dst = v + t / nr * pstride + t % nr;
        if (m == 4) WINO_INPUT_BODY(6, wino_bt4);
        else WINO_INPUT_BODY(4, wino_bt2);
    }
}

/* The output transform of the tiles u .. u + VLEN - 1: row i of their outputs, interleaved, at
 * out + i*ldo + u*M. */
#define WINO_OUTPUT_BODY(M, A, AT)                                                                  \
    do {                                                                                            \
        VEC z[A][M], d[A], o[M][M];                                                                 \
        for (int i = 0; i < A; ++i) {                                                               \
            for (int j = 0; j < A; ++j) d[j] = VLOADU(mt + (i * A + j) * ldm + u);                 \
            AT(d, z[i]);                                                                            \
        }                                                                                           \
        for (int j = 0; j < M; ++j) {                                                               \
            VEC col[M];                                                                             \
            for (int i = 0; i < A; ++i) d[i] = z[i][j];                                             \
            AT(d, col);                                                                             \
            for (int i = 0; i < M; ++i) {                                                           \
                const VEC r = VADD(col[i], vb);                                                     \
                o[i][j] = relu ? VMAX(VZERO(), r) : r;                                              \
            }                                                                                       \
        }                                                                                           \
        for (int i = 0; i < M; ++i) WINO_STORE_ROW_##M(out + i * ldo + u * M, o[i]);              \
    } while (0)
#define WINO_STORE_ROW_4(p, v) VSTORE_ZIP4(p, v[0], v[1], v[2], v[3])
#define WINO_STORE_ROW_2(p, v) VSTORE_ZIP2(p, v[0], v[1])

void UKERNEL_WINO_OUTPUT(int m, int64_t n, const REAL *mt, int64_t ldm, REAL bias, int relu, REAL *out, int64_t ldo)
{
    const VEC vb = VBCAST(bias);
    for (int64_t u = 0; u < n; u += VLEN) {
        if (m == 4) WINO_OUTPUT_BODY(4, 6, wino_at4);
        else WINO_OUTPUT_BODY(2, 4, wino_at2);
    }
}
