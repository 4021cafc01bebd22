/* gemm_simd.h: the body of one register-blocked SIMD micro-kernel (gemm_config.h), stamped out
 * by the f32-/f64-gemm-*-avx2.c and -avx512.c files once per operand layout. The includer includes
 * a vec_*.h (VEC, VLEN, VZERO, VLOAD (aligned), VLOADU, VSTOREU, VBCAST, VFMA, VADD, VMAX (b where
 * either is NaN, as maxps)) and defines REAL, MR, NR (a multiple of VLEN), UKERNEL_NAME and one of
 *   UKERNEL_B_OFFSETS  B row k at b + boff[k], unaligned, in runs (the B-offset kernel),
 *   UKERNEL_A_OFFSETS  A row i at a + aoff[i], in runs (the A-offset kernel),
 *   UKERNEL_A_COLUMNS  A column k at a + aoff[k], element i at + i (the pixel kernel),
 * or none of them (both operands from packed panels).
 * The MR x NR/VLEN accumulators live in registers (the loops have constant bounds and are fully
 * unrolled); full tiles are stored straight into C, edge tiles through a small buffer. */

#if defined(UKERNEL_B_OFFSETS)
#define UKERNEL_AB_ARGS const REAL *a, const REAL *b, const int64_t *boff, int64_t run, int64_t step
#define UKERNEL_A_ELEM(k, i) a[(k) * MR + (i)]
#define UKERNEL_B_ROW(k, j) VLOADU(b + boff[k] + col[j])
#define UKERNEL_C_COL(j) ((j) * VLEN)
#define UKERNEL_BIAS(i, j) VBCAST(bias[i])
#define UKERNEL_BIAS_ELEM(i, j) bias[i]
#elif defined(UKERNEL_A_OFFSETS)
#define UKERNEL_AB_ARGS const REAL *a, const int64_t *aoff, int64_t run, int64_t step, const REAL *b
#define UKERNEL_A_ELEM(k, i) arow[i][k]
#define UKERNEL_B_ROW(k, j) VLOAD(b + (k) * NR + (j) * VLEN)
#define UKERNEL_C_COL(j) ((j) * VLEN)
#define UKERNEL_BIAS(i, j) VBCAST(bias[i])
#define UKERNEL_BIAS_ELEM(i, j) bias[i]
#elif defined(UKERNEL_A_COLUMNS)  /* rows are pixels, columns filters: the bias is per column */
#define UKERNEL_AB_ARGS const REAL *a, const int64_t *aoff, const REAL *b
#define UKERNEL_A_ELEM(k, i) a[aoff[k] + (i)]
#define UKERNEL_B_ROW(k, j) VLOAD(b + (k) * NR + (j) * VLEN)
#define UKERNEL_C_COL(j) ((j) * VLEN)
#define UKERNEL_BIAS(i, j) VLOADU(bias + (j) * VLEN)
#define UKERNEL_BIAS_ELEM(i, j) bias[j]
#else
#define UKERNEL_AB_ARGS const REAL *a, const REAL *b
#define UKERNEL_A_ELEM(k, i) a[(k) * MR + (i)]
#define UKERNEL_B_ROW(k, j) VLOAD(b + (k) * NR + (j) * VLEN)
#define UKERNEL_C_COL(j) ((j) * VLEN)
#define UKERNEL_BIAS(i, j) VBCAST(bias[i])
#define UKERNEL_BIAS_ELEM(i, j) bias[i]
#endif

void UKERNEL_NAME(int64_t kc, UKERNEL_AB_ARGS, REAL *c, int64_t ldc, int64_t m, int64_t n, int accumulate,
                         const REAL *bias, int relu)
{
    VEC acc[MR][NR / VLEN];
#if defined(UKERNEL_B_OFFSETS)
    int64_t col[NR / VLEN];  /* where vector j of a row starts */
    for (int j = 0; j < NR / VLEN; ++j) col[j] = run >= NR ? j * VLEN : j * VLEN / run * step + j * VLEN % run;
#endif
#if defined(UKERNEL_A_OFFSETS)
    const REAL *arow[MR];
    for (int i = 0; i < MR; ++i) arow[i] = a + aoff[i];
#endif
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR / VLEN; ++j) acc[i][j] = VZERO();
#if defined(UKERNEL_A_OFFSETS)
    const int64_t a_run = run, skip = step - run;  /* from the end of one run of A's row to the next */
#else
    const int64_t a_run = kc, skip = 0;
#endif
    for (int64_t k = 0; k < kc;) {
        for (const int64_t end = k + a_run < kc ? k + a_run : kc; k < end; ++k) {
            VEC bk[NR / VLEN];
            for (int j = 0; j < NR / VLEN; ++j) bk[j] = UKERNEL_B_ROW(k, j);
            for (int i = 0; i < MR; ++i) {
                const VEC ai = VBCAST(UKERNEL_A_ELEM(k, i));
                for (int j = 0; j < NR / VLEN; ++j) acc[i][j] = VFMA(ai, bk[j], acc[i][j]);
            }
        }
#if defined(UKERNEL_A_OFFSETS)
        for (int i = 0; i < MR; ++i) arow[i] += skip;
#else
        (void)skip;
#endif
    }
    if (m == MR && n == NR) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR / VLEN; ++j) {
                REAL *p = c + i * ldc + UKERNEL_C_COL(j);
                VEC v = acc[i][j];
                if (accumulate) v = VADD(VLOADU(p), v);
                else if (bias) v = VADD(UKERNEL_BIAS(i, j), v);
                VSTOREU(p, relu ? VMAX(VZERO(), v) : v);  /* a NaN v stays NaN */
            }
        return;
    }
    REAL tile[MR * NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR / VLEN; ++j) VSTOREU(tile + i * NR + j * VLEN, acc[i][j]);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            const REAL t = tile[i * NR + j];
            const REAL v = accumulate ? c[i * ldc + j] + t : bias ? UKERNEL_BIAS_ELEM(i, j) + t : t;
            c[i * ldc + j] = relu && v < 0 ? 0 : v;
        }
}

#undef UKERNEL_AB_ARGS
#undef UKERNEL_A_ELEM
#undef UKERNEL_B_ROW
#undef UKERNEL_C_COL
#undef UKERNEL_BIAS
#undef UKERNEL_BIAS_ELEM
#undef UKERNEL_NAME
#undef UKERNEL_B_OFFSETS
#undef UKERNEL_A_OFFSETS
#undef UKERNEL_A_COLUMNS
