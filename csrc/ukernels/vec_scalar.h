/* vec_scalar.h: the vector operations of winograd_simd.h on one element (VLEN 1), for the
 * portable kernels; the includer defines REAL. VMAX(0, v) keeps a NaN v, as the SIMD max does. */
#define VEC REAL
#define VLEN 1
#define VZERO() ((REAL)0)
#define VLOADU(p) (*(p))
#define VSTOREU(p, v) (*(p) = (v))
#define VBCAST(x) ((REAL)(x))
#define VFMA(a, b, acc) ((a) * (b) + (acc))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VSTORE_ZIP4(p, v0, v1, v2, v3) ((p)[0] = (v0), (p)[1] = (v1), (p)[2] = (v2), (p)[3] = (v3))
#define VSTORE_ZIP2(p, v0, v1) ((p)[0] = (v0), (p)[1] = (v1))
#define VLOAD_COLUMNS4(p, off, c0, c1, c2, c3)                                                          \
    ((c0) = (p)[(off)[0]], (c1) = (p)[(off)[0] + 1], (c2) = (p)[(off)[0] + 2], (c3) = (p)[(off)[0] + 3])
