/* gemm_ukernel_simd.h: the body of one register-blocked SIMD micro-kernel (see gemm.h), stamped
 * out by gemm_avx2.c and gemm_avx512.c once per element type and B layout. The includer defines:
 *   UKERNEL_NAME, REAL, VEC, VLEN (lanes), MR, NR (a multiple of VLEN),
 *   VZERO(), VLOAD(p) (aligned), VLOADU(p), VSTOREU(p, v), VBCAST(x), VFMA(a, b, acc), VADD(a, b),
 * and, for the offset-table kernel (B row k at b + boff[k], unaligned), UKERNEL_B_OFFSETS.
 * The MR x NR/VLEN accumulators live in registers (the loops have constant bounds and are
 * fully unrolled); full tiles are stored straight into C, edge tiles through a small buffer. */

#ifdef UKERNEL_B_OFFSETS
#define UKERNEL_B_ARGS const REAL *b, const int64_t *boff
#define UKERNEL_B_ROW(k, j) VLOADU(b + boff[k] + (j) * VLEN)
#else
#define UKERNEL_B_ARGS const REAL *b
#define UKERNEL_B_ROW(k, j) VLOAD(b + (k) * NR + (j) * VLEN)
#endif

static void UKERNEL_NAME(int64_t kc, const REAL *a, UKERNEL_B_ARGS, REAL *c, int64_t ldc,
                         int64_t m, int64_t n, int accumulate)
{
    VEC acc[MR][NR / VLEN];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR / VLEN; ++j) acc[i][j] = VZERO();
    for (int64_t k = 0; k < kc; ++k) {
        VEC bk[NR / VLEN];
        for (int j = 0; j < NR / VLEN; ++j) bk[j] = UKERNEL_B_ROW(k, j);
        for (int i = 0; i < MR; ++i) {
            const VEC ai = VBCAST(a[k * MR + i]);
            for (int j = 0; j < NR / VLEN; ++j) acc[i][j] = VFMA(ai, bk[j], acc[i][j]);
        }
    }
    if (m == MR && n == NR) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR / VLEN; ++j) {
                REAL *p = c + i * ldc + j * VLEN;
                VSTOREU(p, accumulate ? VADD(VLOADU(p), acc[i][j]) : acc[i][j]);
            }
        return;
    }
    REAL tile[MR * NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR / VLEN; ++j) VSTOREU(tile + i * NR + j * VLEN, acc[i][j]);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
            c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0) + tile[i * NR + j];
}

#undef UKERNEL_B_ARGS
#undef UKERNEL_B_ROW
