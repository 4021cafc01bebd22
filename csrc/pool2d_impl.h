/* pool2d_impl.h: the type-generic body of pool2d.c, included once per element type.
 * Before including it, define T (float or double), FN(name) (appends _f32 / _f64 to name),
 * POW and SQRT (the math.h functions for T). pool2d.c holds the type-independent helpers. */

/* PyTorch's running-maximum update `if (v > max || isnan(v)) max = v`: a NaN v wins and a NaN
 * maximum stays. */
static inline T FN(max_nan)(T m, T v) { return (v > m || v != v) ? v : m; }

/* v**e, with the special cases PyTorch's pow uses (exact squares, square roots, ...). */
static T FN(pow_scalar)(T v, T e)
{
    if (e == (T)1) return v;
    if (e == (T)2) return v * v;
    if (e == (T)3) return v * v * v;
    if (e == (T)0.5) return SQRT(v);
    if (e == (T)0) return (T)1;
    if (e == (T)-0.5) return (T)1 / SQRT(v);
    if (e == (T)-1) return (T)1 / v;
    if (e == (T)-2) return (T)1 / (v * v);
    return POW(v, e);
}

/* ---- one window at a time (edges of the output, and the Lp kernels) ---------------------- */

/* Max of x over input rows [h0, h1) and columns [w0, w1) of a plane of width W. */
static T FN(window_max)(const T *x, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1)
{
    T m = -(T)INFINITY;
    int64_t h, w;
    for (h = h0; h < h1; h++)
        for (w = w0; w < w1; w++) m = FN(max_nan)(m, x[h * W + w]);
    return m;
}

/* Index (h*W + w) of the element PyTorch picks as the window's maximum: the first maximum in
 * row-major order, or the last NaN. A window of -inf picks its first element. */
static int64_t FN(window_argmax)(const T *x, int64_t W, int64_t h0, int64_t h1, int64_t w0,
                                 int64_t w1)
{
    T m = -(T)INFINITY;
    int64_t best = h0 * W + w0, h, w;
    for (h = h0; h < h1; h++)
        for (w = w0; w < w1; w++) {
            const T v = x[h * W + w];
            if (v > m || v != v) {
                m = v;
                best = h * W + w;
            }
        }
    return best;
}

/* Sum over the window in row-major order, starting from 0 (PyTorch's order). */
static T FN(window_sum)(const T *x, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1)
{
    T sum = 0;
    int64_t h, w;
    for (h = h0; h < h1; h++)
        for (w = w0; w < w1; w++) sum += x[h * W + w];
    return sum;
}

/* dx[window] += g. */
static void FN(window_add)(T *dx, int64_t W, int64_t h0, int64_t h1, int64_t w0, int64_t w1, T g)
{
    int64_t h, w;
    for (h = h0; h < h1; h++)
        for (w = w0; w < w1; w++) dx[h * W + w] += g;
}

/* ---- interior loops: n consecutive outputs whose windows lie inside the input ------------- */

/* acc[i] = max(acc[i], xs[i*stride]). */
static void FN(max_accumulate)(T *POOL_RESTRICT acc, const T *POOL_RESTRICT xs, int64_t n,
                               int64_t stride)
{
    int64_t i;
    if (stride == 1)
        for (i = 0; i < n; i++) acc[i] = FN(max_nan)(acc[i], xs[i]);
    else if (stride == 2)
        for (i = 0; i < n; i++) acc[i] = FN(max_nan)(acc[i], xs[2 * i]);
    else
        for (i = 0; i < n; i++) acc[i] = FN(max_nan)(acc[i], xs[i * stride]);
}

/* acc[i] += xs[i*stride]. */
static void FN(sum_accumulate)(T *POOL_RESTRICT acc, const T *POOL_RESTRICT xs, int64_t n,
                               int64_t stride)
{
    int64_t i;
    if (stride == 1)
        for (i = 0; i < n; i++) acc[i] += xs[i];
    else if (stride == 2)
        for (i = 0; i < n; i++) acc[i] += xs[2 * i];
    else
        for (i = 0; i < n; i++) acc[i] += xs[i * stride];
}

/* The running argmax of the window scan, for n windows at once: where xs[i*stride] passes
 * PyTorch's `v > max || isnan(v)` test, best[i] = that value and where[i] = position. (This
 * exact form of the selects is one that GCC vectorizes.) */
static void FN(argmax_accumulate)(T *POOL_RESTRICT best, int32_t *POOL_RESTRICT where,
                                  const T *POOL_RESTRICT xs, int64_t n, int64_t stride,
                                  int32_t position)
{
    int64_t i;
    if (stride == 1) {
        for (i = 0; i < n; i++) {
            const T v = xs[i], b = best[i];
            const int32_t w = (v > b || v != v) ? position : where[i];
            best[i] = (v > b || v != v) ? v : b;
            where[i] = w;
        }
    } else if (stride == 2) {
        for (i = 0; i < n; i++) {
            const T v = xs[2 * i], b = best[i];
            const int32_t w = (v > b || v != v) ? position : where[i];
            best[i] = (v > b || v != v) ? v : b;
            where[i] = w;
        }
    } else {
        for (i = 0; i < n; i++) {
            const T v = xs[i * stride], b = best[i];
            const int32_t w = (v > b || v != v) ? position : where[i];
            best[i] = (v > b || v != v) ? v : b;
            where[i] = w;
        }
    }
}

/* dxs[i*stride] += dy[i] / divisor. */
static void FN(spread_divided)(T *POOL_RESTRICT dxs, const T *POOL_RESTRICT dy, int64_t n,
                               int64_t stride, T divisor)
{
    int64_t i;
    if (stride == 1)
        for (i = 0; i < n; i++) dxs[i] += dy[i] / divisor;
    else if (stride == 2)
        for (i = 0; i < n; i++) dxs[2 * i] += dy[i] / divisor;
    else
        for (i = 0; i < n; i++) dxs[i * stride] += dy[i] / divisor;
}

/* 2x2 windows with stride 2 over input rows r0 and r1. Ties keep the earlier element (as the
 * scan does) and a NaN anywhere gives NaN; written as plain selects so that they become
 * maxps-style vector instructions. */
static void FN(max_2x2)(T *POOL_RESTRICT y, const T *POOL_RESTRICT r0, const T *POOL_RESTRICT r1,
                        int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const T a = r0[2 * i], b = r0[2 * i + 1], c = r1[2 * i], d = r1[2 * i + 1];
        const T max_ab = b > a ? b : a, max_cd = d > c ? d : c;
        const T max_abcd = max_cd > max_ab ? max_cd : max_ab;
        y[i] = (a != a || b != b || c != c || d != d) ? (T)NAN : max_abcd;
    }
}

static void FN(avg_2x2)(T *POOL_RESTRICT y, const T *POOL_RESTRICT r0, const T *POOL_RESTRICT r1,
                        int64_t n, T divisor)
{
    int64_t i;
    for (i = 0; i < n; i++)
        y[i] = (((((T)0 + r0[2 * i]) + r0[2 * i + 1]) + r1[2 * i]) + r1[2 * i + 1]) / divisor;
}

/* The max-pool gradient of 2x2 stride-2 windows, stored (these windows tile their rows): dy[i]
 * goes to the element PyTorch picks (the last one whose `v > max || isnan(v)` test passes,
 * scanning a, b, c, d), the other three get 0. The tests are written out in every select,
 * without flags, so that GCC turns them into vector masks. */
static void FN(max_backward_2x2)(T *POOL_RESTRICT d0, T *POOL_RESTRICT d1,
                                 const T *POOL_RESTRICT r0, const T *POOL_RESTRICT r1,
                                 const T *POOL_RESTRICT dy, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const T a = r0[2 * i], b = r0[2 * i + 1], c = r1[2 * i], d = r1[2 * i + 1], g = dy[i];
        const T max_ab = (b > a || b != b) ? b : a;
        const T max_abc = (c > max_ab || c != c) ? c : max_ab;
        const T g_d = (d > max_abc || d != d) ? g : (T)0;
        const T g_abc = (d > max_abc || d != d) ? (T)0 : g;      /* g unless d took it */
        const T g_c = (c > max_ab || c != c) ? g_abc : (T)0;
        const T g_ab = (c > max_ab || c != c) ? (T)0 : g_abc;
        const T g_b = (b > a || b != b) ? g_ab : (T)0;
        const T g_a = (b > a || b != b) ? (T)0 : g_ab;
        d0[2 * i] = g_a;
        d0[2 * i + 1] = g_b;
        d1[2 * i] = g_c;
        d1[2 * i + 1] = g_d;
    }
}

/* The avg-pool gradient of 2x2 stride-2 windows, stored (these windows tile their rows). */
static void FN(avg_backward_2x2)(T *POOL_RESTRICT d0, T *POOL_RESTRICT d1,
                                 const T *POOL_RESTRICT dy, int64_t n, T divisor)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const T g = dy[i] / divisor;
        d0[2 * i] = g;
        d0[2 * i + 1] = g;
        d1[2 * i] = g;
        d1[2 * i + 1] = g;
    }
}

/* ---- output rows [oh0, oh1) of one plane ------------------------------------------------- */

static void FN(max_forward_rows)(const cconv_pool2d_shape *s, const T *x, T *y, int64_t oh0,
                                 int64_t oh1)
{
    const int64_t W = s->w, Q = s->q, sw = s->stride_w, pw = s->pad_w, kw = s->kw;
    int64_t lo, hi, oh, ow, h, j;
    interior_columns(s, &lo, &hi);
    for (oh = oh0; oh < oh1; oh++) {
        const int64_t hs = oh * s->stride_h - s->pad_h;
        const int64_t h0 = max_i64(hs, 0), h1 = min_i64(hs + s->kh, s->h);
        T *yr = y + oh * Q;
        for (ow = 0; ow < Q; ow++) {
            if (ow == lo && hi > lo) {   /* interior: whole windows, vectorized */
                const int64_t n = hi - lo, first = lo * sw - pw;
                if (kw == 2 && sw == 2 && h1 - h0 == 2) {
                    FN(max_2x2)(yr + lo, x + h0 * W + first, x + (h0 + 1) * W + first, n);
                } else {
                    for (j = 0; j < n; j++) yr[lo + j] = -(T)INFINITY;
                    for (h = h0; h < h1; h++)
                        for (j = 0; j < kw; j++)
                            FN(max_accumulate)(yr + lo, x + h * W + first + j, n, sw);
                }
                ow = hi - 1;
                continue;
            }
            {
                const int64_t ws = ow * sw - pw;
                yr[ow] = FN(window_max)(x, W, h0, h1, max_i64(ws, 0), min_i64(ws + kw, W));
            }
        }
    }
}

static void FN(avg_forward_rows)(const cconv_pool2d_shape *s, const T *x, T *y, int64_t oh0,
                                 int64_t oh1, int count_include_pad)
{
    const int64_t W = s->w, Q = s->q, sw = s->stride_w, pw = s->pad_w, kw = s->kw;
    int64_t lo, hi, oh, ow, h, j;
    interior_columns(s, &lo, &hi);
    for (oh = oh0; oh < oh1; oh++) {
        const int64_t hs = oh * s->stride_h - s->pad_h;
        const int64_t h0 = max_i64(hs, 0), h1 = min_i64(hs + s->kh, s->h);
        T *yr = y + oh * Q;
        for (ow = 0; ow < Q; ow++) {
            const int64_t ws = ow * sw - pw;
            const T divisor = (T)avg_divisor(s, hs, ws, count_include_pad);
            if (ow == lo && hi > lo) {   /* interior: one divisor for the whole run */
                const int64_t n = hi - lo;
                if (kw == 2 && sw == 2 && h1 - h0 == 2) {
                    FN(avg_2x2)(yr + lo, x + h0 * W + ws, x + (h0 + 1) * W + ws, n, divisor);
                } else {
                    for (j = 0; j < n; j++) yr[lo + j] = 0;
                    for (h = h0; h < h1; h++)
                        for (j = 0; j < kw; j++)
                            FN(sum_accumulate)(yr + lo, x + h * W + ws + j, n, sw);
                    for (j = 0; j < n; j++) yr[lo + j] /= divisor;
                }
                ow = hi - 1;
                continue;
            }
            yr[ow] = FN(window_sum)(x, W, h0, h1, max_i64(ws, 0), min_i64(ws + kw, W)) / divisor;
        }
    }
}

/* ---- backward: output rows [oh0, oh1) of one plane, writing dx's input rows [r0, r1) ------ */

/* Zero input rows [*zeroed, upto) of dx (rows before *zeroed are already zero or written). */
static void FN(zero_rows_upto)(T *dx, int64_t W, int64_t *zeroed, int64_t upto)
{
    if (upto > *zeroed) {
        memset(dx + *zeroed * W, 0, (size_t)((upto - *zeroed) * W) * sizeof(T));
        *zeroed = upto;
    }
}

/* Get dx's input rows ready for the gradient of output row oh (window rows [h0, h1)). A row of
 * 2x2 stride-2 windows tiles its two input rows, so its interior (output columns [lo, hi)) is
 * stored by the caller and only the columns outside it are zeroed here: returns 1. Otherwise
 * the rows are zeroed for the caller to add into: returns 0. Rows before *zeroed are ready. */
static inline int FN(prepare_rows)(const cconv_pool2d_shape *s, T *dx, int64_t *zeroed,
                                   int64_t h0, int64_t h1, int64_t lo, int64_t hi)
{
    const int64_t W = s->w;
    int64_t h;
    if (s->kh == 2 && s->kw == 2 && s->stride_h == 2 && s->stride_w == 2 && h1 - h0 == 2 && hi > lo) {
        const int64_t first = lo * 2 - s->pad_w, end = hi * 2 - s->pad_w;
        FN(zero_rows_upto)(dx, W, zeroed, h0);
        for (h = h0; h < h1; h++) {
            int64_t w;
            for (w = 0; w < first; w++) dx[h * W + w] = 0;
            for (w = end; w < W; w++) dx[h * W + w] = 0;
        }
        *zeroed = h1;
        return 1;
    }
    FN(zero_rows_upto)(dx, W, zeroed, h1);
    return 0;
}

/* dx += the max-pool gradient of the interior outputs [lo, hi) of one output row (window rows
 * [h0, h1)), the windows' argmax found a chunk of outputs at a time by vector loops. */
static void FN(max_backward_interior)(const cconv_pool2d_shape *s, const T *x, T *dx, const T *dy,
                                      int64_t h0, int64_t h1, int64_t lo, int64_t hi)
{
    const int64_t W = s->w, sw = s->stride_w, kw = s->kw;
    T best[POOL_CHUNK];
    int32_t where[POOL_CHUNK];   /* (h - h0) * W + j: the pick's offset from its window's start */
    int64_t start, i, h, j;
    for (start = lo; start < hi; start += POOL_CHUNK) {
        const int64_t n = min_i64(POOL_CHUNK, hi - start), first = start * sw - s->pad_w;
        for (i = 0; i < n; i++) {
            best[i] = -(T)INFINITY;
            where[i] = 0;
        }
        for (h = h0; h < h1; h++)
            for (j = 0; j < kw; j++)
                FN(argmax_accumulate)(best, where, x + h * W + first + j, n, sw,
                                      (int32_t)((h - h0) * W + j));
        for (i = 0; i < n; i++) dx[h0 * W + first + i * sw + where[i]] += dy[start + i];
    }
}

static void FN(max_backward_rows)(const cconv_pool2d_shape *s, const T *dy, const T *x, T *dx,
                                  int64_t oh0, int64_t oh1)
{
    const int64_t W = s->w, Q = s->q, sw = s->stride_w, pw = s->pad_w, kw = s->kw;
    int64_t lo, hi, oh, ow, r0, r1, zeroed;
    interior_columns(s, &lo, &hi);
    band_input_rows(s, oh0, oh1, &r0, &r1);
    zeroed = r0;
    for (oh = oh0; oh < oh1; oh++) {
        const int64_t hs = oh * s->stride_h - s->pad_h;
        const int64_t h0 = max_i64(hs, 0), h1 = min_i64(hs + s->kh, s->h);
        const T *dyr = dy + oh * Q;
        const int tiled = FN(prepare_rows)(s, dx, &zeroed, h0, h1, lo, hi);
        for (ow = 0; ow < Q; ow++) {
            const int64_t ws = ow * sw - pw;
            if (ow == lo && tiled) {
                const int64_t top = h0 * W + ws, bottom = top + W;
                FN(max_backward_2x2)(dx + top, dx + bottom, x + top, x + bottom, dyr + lo, hi - lo);
                ow = hi - 1;
                continue;
            }
            if (ow == lo && hi > lo && (s->kh - 1) * W + kw <= INT32_MAX) {
                FN(max_backward_interior)(s, x, dx, dyr, h0, h1, lo, hi);
                ow = hi - 1;
                continue;
            }
            dx[FN(window_argmax)(x, W, h0, h1, max_i64(ws, 0), min_i64(ws + kw, W))] += dyr[ow];
        }
    }
    FN(zero_rows_upto)(dx, W, &zeroed, r1);
}

/* Contributions reach each dx element in PyTorch's order (outputs in row-major order), so the
 * sums match PyTorch's rounding: the interior walks the window's columns right to left. */
static void FN(avg_backward_rows)(const cconv_pool2d_shape *s, const T *dy, T *dx, int64_t oh0,
                                  int64_t oh1, int count_include_pad)
{
    const int64_t W = s->w, Q = s->q, sw = s->stride_w, pw = s->pad_w, kw = s->kw;
    int64_t lo, hi, oh, ow, h, j, r0, r1, zeroed;
    interior_columns(s, &lo, &hi);
    band_input_rows(s, oh0, oh1, &r0, &r1);
    zeroed = r0;
    for (oh = oh0; oh < oh1; oh++) {
        const int64_t hs = oh * s->stride_h - s->pad_h;
        const int64_t h0 = max_i64(hs, 0), h1 = min_i64(hs + s->kh, s->h);
        const T *dyr = dy + oh * Q;
        const int tiled = FN(prepare_rows)(s, dx, &zeroed, h0, h1, lo, hi);
        for (ow = 0; ow < Q; ow++) {
            const int64_t ws = ow * sw - pw;
            const T divisor = (T)avg_divisor(s, hs, ws, count_include_pad);
            if (ow == lo && hi > lo) {
                const int64_t n = hi - lo;
                if (tiled) {
                    FN(avg_backward_2x2)(dx + h0 * W + ws, dx + (h0 + 1) * W + ws, dyr + lo, n,
                                         divisor);
                } else {
                    for (h = h0; h < h1; h++)
                        for (j = kw - 1; j >= 0; j--)
                            FN(spread_divided)(dx + h * W + ws + j, dyr + lo, n, sw, divisor);
                }
                ow = hi - 1;
                continue;
            }
            FN(window_add)(dx, W, h0, h1, max_i64(ws, 0), min_i64(ws + kw, W), dyr[ow] / divisor);
        }
    }
    FN(zero_rows_upto)(dx, W, &zeroed, r1);
}

/* ---- Lp pooling: torch's formula, with the avg-pool kernels doing the pooling ------------ */

/* dst[i] = src[i]**e for n elements. */
static void FN(power)(T *POOL_RESTRICT dst, const T *POOL_RESTRICT src, int64_t n, T e)
{
    int64_t i;
    if (e == (T)2)
        for (i = 0; i < n; i++) dst[i] = src[i] * src[i];
    else
        for (i = 0; i < n; i++) dst[i] = FN(pow_scalar)(src[i], e);
}

/* The last steps of torch's lp_pool2d on pooled averages a: (sign(a) * relu(|a|) * K)**(1/p),
 * K = kh*kw; sign(a) * relu(|a|) is a itself, except that -0 becomes +0. */
static void FN(lp_root)(T *y, int64_t n, T window_size, T inv_p)
{
    int64_t i;
    if (inv_p == (T)0.5)
        for (i = 0; i < n; i++) y[i] = SQRT((y[i] == 0 ? (T)0 : y[i]) * window_size);
    else
        for (i = 0; i < n; i++) y[i] = FN(pow_scalar)((y[i] == 0 ? (T)0 : y[i]) * window_size, inv_p);
}

/* In `(keep || v == 0) ? v : 0` the `v == 0` changes nothing (both arms are then zero), but it
 * makes GCC compute v before the select instead of branching on `keep`, so loops vectorize. */

/* g[i] = dy[i] * ((1/p) * (a*K)**(1/p - 1)) * K for the pooled average a = g[i], or 0 where
 * a == 0 (torch's relu mask; a NaN passes). e = 1/p - 1. */
static void FN(lp_output_grad)(T *POOL_RESTRICT g, const T *POOL_RESTRICT dy, int64_t n,
                               T window_size, T inv_p, T e)
{
    int64_t i;
    if (e == (T)-0.5) {   /* p = 2: (a*K)**-0.5 is 1/sqrt(a*K) */
        for (i = 0; i < n; i++) {
            const T a = g[i], grad = dy[i] * (inv_p * ((T)1 / SQRT(a * window_size))) * window_size;
            g[i] = (a != 0 || grad == 0) ? grad : (T)0;
        }
    } else {
        for (i = 0; i < n; i++) {
            const T a = g[i];
            const T grad = dy[i] * (inv_p * FN(pow_scalar)(a * window_size, e)) * window_size;
            g[i] = (a != 0 || grad == 0) ? grad : (T)0;
        }
    }
}

/* dx[i] *= p * x[i]**e (e = p - 1); as in torch, an infinite factor makes a zero dx[i] NaN. */
static void FN(lp_input_grad)(T *POOL_RESTRICT dx, const T *POOL_RESTRICT x, int64_t n, T p, T e)
{
    int64_t i;
    if (e == (T)1)   /* p = 2 */
        for (i = 0; i < n; i++) dx[i] *= p * x[i];
    else
        for (i = 0; i < n; i++) dx[i] *= p * FN(pow_scalar)(x[i], e);
}

/* p = 2 on 2x2 stride-2 windows that tile the plane: the passes below fused into one, with
 * their roundings (powers, the average's order of additions, then the root; the gradient's
 * chain likewise), so that no scratch rows are written and read back. */
static int FN(lp2_tiles)(const cconv_pool2d_shape *s, double norm_type)
{
    return norm_type == 2.0 && s->kh == 2 && s->kw == 2 && s->stride_h == 2 && s->stride_w == 2 &&
           s->h == 2 * s->p && s->w == 2 * s->q;
}

static void FN(lp2_2x2)(T *POOL_RESTRICT y, const T *POOL_RESTRICT r0, const T *POOL_RESTRICT r1, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const T a = r0[2 * i], b = r0[2 * i + 1], c = r1[2 * i], d = r1[2 * i + 1];
        const T avg = (((((T)0 + a * a) + b * b) + c * c) + d * d) / (T)4;
        y[i] = SQRT(avg * (T)4);
    }
}

/* v where keep is 1, else +0, by a bit mask: a select GCC vectorizes even where computing v may
 * raise a floating-point exception (as a branch it would not, under -ftrapping-math). */
static inline T FN(keep_if)(T v, int keep)
{
    UT bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= (UT)0 - (UT)keep;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void FN(lp2_backward_2x2)(T *POOL_RESTRICT d0, T *POOL_RESTRICT d1, const T *POOL_RESTRICT r0,
                                 const T *POOL_RESTRICT r1, const T *POOL_RESTRICT dy, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        const T a = r0[2 * i], b = r0[2 * i + 1], c = r1[2 * i], d = r1[2 * i + 1];
        const T avg = (((((T)0 + a * a) + b * b) + c * c) + d * d) / (T)4;
        const T grad = dy[i] * ((T)0.5 * ((T)1 / SQRT(avg * (T)4))) * (T)4;
        /* lp_output_grad's mask; with avg == 0, grad is dy times an infinity, never 0 */
        const T g = FN(keep_if)(grad, avg != 0) / (T)4;
        d0[2 * i] = g * ((T)2 * a);
        d0[2 * i + 1] = g * ((T)2 * b);
        d1[2 * i] = g * ((T)2 * c);
        d1[2 * i + 1] = g * ((T)2 * d);
    }
}

/* y rows [oh0, oh1) = lp_pool2d(x). Returns CCONV_ENOMEM when the scratch rows for x**p could
 * not be allocated. */
static int FN(lp_forward_rows)(const cconv_pool2d_shape *s, const T *x, T *y, int64_t oh0,
                               int64_t oh1, double norm_type)
{
    if (FN(lp2_tiles)(s, norm_type)) {
        int64_t oh;
        for (oh = oh0; oh < oh1; oh++) FN(lp2_2x2)(y + oh * s->q, x + 2 * oh * s->w, x + (2 * oh + 1) * s->w, s->q);
        return CCONV_OK;
    }
    const T p = (T)norm_type;
    const int64_t first_row = oh0 * s->stride_h;
    const int64_t rows = min_i64(s->h, (oh1 - 1) * s->stride_h + s->kh) - first_row;
    const cconv_pool2d_shape band = band_shape(s, oh0, oh1, rows);
    const T *xb = x + first_row * s->w;
    T *powered = NULL;
    if (p != (T)1) {   /* x**1 is x */
        const int64_t count = size_mul(rows, s->w);
        powered = size_fits(count, sizeof(T)) ? (T *)malloc((size_t)count * sizeof(T)) : NULL;
        if (!powered) return CCONV_ENOMEM;
        FN(power)(powered, xb, rows * s->w, p);
        xb = powered;
    }
    FN(avg_forward_rows)(&band, xb, y + oh0 * s->q, 0, band.p, 1);
    FN(lp_root)(y + oh0 * s->q, band.p * s->q, (T)(s->kh * s->kw), (T)(1.0 / norm_type));
    free(powered);
    return CCONV_OK;
}

/* dx rows of the band of output rows [oh0, oh1), by the autograd chain of torch's formula with
 * its rounding: g_avg = dy * ((1/p) * (avg*K)**(1/p - 1)) * K (zero where avg == 0, the
 * relu's mask), dx = avg_pool2d_backward(g_avg) * (p * x**(p-1)) (zero where that is zero). */
static int FN(lp_backward_rows)(const cconv_pool2d_shape *s, const T *dy, const T *x, T *dx,
                                int64_t oh0, int64_t oh1, double norm_type)
{
    const T p = (T)norm_type, p_minus_1 = (T)(norm_type - 1.0), inv_p = (T)(1.0 / norm_type);
    const T inv_p_minus_1 = (T)(1.0 / norm_type - 1.0), window_size = (T)(s->kh * s->kw);
    int64_t first_row, end_row, n;
    cconv_pool2d_shape band;
    const T *xb, *dyb = dy + oh0 * s->q;
    T *dxb, *scratch, *g_avg, *powered;
    if (FN(lp2_tiles)(s, norm_type)) {
        int64_t oh;
        for (oh = oh0; oh < oh1; oh++) {
            const int64_t top = 2 * oh * s->w, bottom = top + s->w;
            FN(lp2_backward_2x2)(dx + top, dx + bottom, x + top, x + bottom, dy + oh * s->q, s->q);
        }
        return CCONV_OK;
    }
    band_input_rows(s, oh0, oh1, &first_row, &end_row);
    band = band_shape(s, oh0, oh1, end_row - first_row);
    xb = x + first_row * s->w;
    dxb = dx + first_row * s->w;
    n = band.h * s->w;
    const int64_t count = size_add(size_mul(band.p, s->q), p != (T)1 ? n : 0);
    scratch = size_fits(count, sizeof(T)) ? (T *)malloc((size_t)count * sizeof(T)) : NULL;
    if (!scratch) return CCONV_ENOMEM;
    g_avg = scratch;
    powered = scratch + band.p * s->q;
    if (p != (T)1) FN(power)(powered, xb, n, p);
    FN(avg_forward_rows)(&band, p != (T)1 ? powered : xb, g_avg, 0, band.p, 1);
    FN(lp_output_grad)(g_avg, dyb, band.p * s->q, window_size, inv_p, inv_p_minus_1);
    FN(avg_backward_rows)(&band, g_avg, dxb, 0, band.p, 1);
    FN(lp_input_grad)(dxb, xb, n, p, p_minus_1);
    free(scratch);
    return CCONV_OK;
}

/* ---- entry points ------------------------------------------------------------------------ */

/* Run one operation over every (plane, band of output rows) task in parallel. */
static int FN(run_pool)(const cconv_pool2d_shape *s, int op, const T *x, const T *dy, T *out,
                        int count_include_pad, double norm_type, int threads)
{
    if (!pool_shape_valid(s)) return CCONV_EINVAL;
    /* the planes' sizes fit when there are planes (the arrays exist) */
    const int64_t planes = s->n * s->c, in_plane = size_mul(s->h, s->w), out_plane = size_mul(s->p, s->q);
    const int forward = op == POOL_MAX_FORWARD || op == POOL_AVG_FORWARD || op == POOL_LP_FORWARD;
    const int nt = pool_threads(s, threads);
    const int64_t bands = bands_per_plane(planes, s->p, nt, forward || s->stride_h >= s->kh);
    const int64_t tasks = planes * bands;
    int64_t t;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) reduction(|:failed)
#endif
    for (t = 0; t < tasks; t++) {
        const int64_t plane = t / bands, band = t % bands;
        const int64_t oh0 = band_start(band, bands, s->p), oh1 = band_start(band + 1, bands, s->p);
        const T *xp = x ? x + plane * in_plane : NULL;
        if (oh0 == oh1) continue;
        if (forward) {
            T *yp = out + plane * out_plane;
            if (op == POOL_MAX_FORWARD) FN(max_forward_rows)(s, xp, yp, oh0, oh1);
            else if (op == POOL_AVG_FORWARD) FN(avg_forward_rows)(s, xp, yp, oh0, oh1, count_include_pad);
            else failed |= FN(lp_forward_rows)(s, xp, yp, oh0, oh1, norm_type) != CCONV_OK;
        } else {
            const T *dyp = dy + plane * out_plane;
            T *dxp = out + plane * in_plane;
            if (op == POOL_MAX_BACKWARD) FN(max_backward_rows)(s, dyp, xp, dxp, oh0, oh1);
            else if (op == POOL_AVG_BACKWARD) FN(avg_backward_rows)(s, dyp, dxp, oh0, oh1, count_include_pad);
            else failed |= FN(lp_backward_rows)(s, dyp, xp, dxp, oh0, oh1, norm_type) != CCONV_OK;
        }
    }
    return failed ? CCONV_ENOMEM : CCONV_OK;
}

int FN(cconv_max_pool2d_forward)(const cconv_pool2d_shape *shape, const T *x, T *y, int threads)
{
    return FN(run_pool)(shape, POOL_MAX_FORWARD, x, NULL, y, 0, 0.0, threads);
}

int FN(cconv_max_pool2d_backward)(const cconv_pool2d_shape *shape, const T *dy, const T *x, T *dx,
                                  int threads)
{
    return FN(run_pool)(shape, POOL_MAX_BACKWARD, x, dy, dx, 0, 0.0, threads);
}

int FN(cconv_avg_pool2d_forward)(const cconv_pool2d_shape *shape, const T *x, T *y,
                                 int count_include_pad, int threads)
{
    return FN(run_pool)(shape, POOL_AVG_FORWARD, x, NULL, y, count_include_pad, 0.0, threads);
}

int FN(cconv_avg_pool2d_backward)(const cconv_pool2d_shape *shape, const T *dy, T *dx,
                                  int count_include_pad, int threads)
{
    return FN(run_pool)(shape, POOL_AVG_BACKWARD, NULL, dy, dx, count_include_pad, 0.0, threads);
}

int FN(cconv_lp_pool2d_forward)(const cconv_pool2d_shape *shape, const T *x, T *y,
                                double norm_type, int threads)
{
    return FN(run_pool)(shape, POOL_LP_FORWARD, x, NULL, y, 0, norm_type, threads);
}

int FN(cconv_lp_pool2d_backward)(const cconv_pool2d_shape *shape, const T *dy, const T *x, T *dx,
                                 double norm_type, int threads)
{
    return FN(run_pool)(shape, POOL_LP_BACKWARD, x, dy, dx, 0, norm_type, threads);
}
