/* test_ukernels.c: per-micro-kernel tests (plain C99, no Python), in the manner of XNNPACK's.
 *
 * Every non-NULL kernel of every built config that this CPU runs (cconv_gemm_configs_find), f32
 * and f64, is swept over tile edges, depths and layouts and compared with a naive
 * double-precision reference written here (never with another kernel):
 *   gemm       m, n at and inside the tile edges, kc in KCS, accumulate x bias x relu;
 *   gemm_boff  the same for each B-row layout the contract allows: one contiguous row (run >= NR)
 *              and runs that divide NR holding whole 64-byte vectors, with step >= run;
 *   gemm_aoff  A rows in one run (run >= kc) and in runs of 1, 3 and 14 (step >= run);
 *   gemm_pix   A(i, k) = a[aoff[k] + i], the bias per column;
 *   transpose  rows and columns off the 8 / 4 blockings, lds > cols, ldd > rows, with and without
 *              a mask (<= 0 zeroes, NaN passes), runs/periods, with and without sums (+=);
 * plus the epilogue's NaN rule (a NaN seeded into A stays NaN through relu). Panels are 64-byte
 * aligned and exactly sized, with finite garbage in the rows / columns past m / n; arrays read
 * through offsets are exactly as long as the contract says may be read, so AddressSanitizer and
 * Valgrind see any read past it; C has ldc > n and a guard row, filled with a sentinel that must
 * survive; C's tile is NaN before a store without accumulate. Results must lie within the
 * rounding bound (kc + 2) * 2 * eps * (|base| + sum_k |a| |b|) of the reference.
 * Prints a FAIL line per failing case, the cases per config, and "N passed, N failed"; exits 1 on
 * any failure. Build: see tests/c/Makefile, or compile with csrc/gemm_config.c,
 * csrc/cpu_features.c and csrc/ukernels/ *.c (the -avx2.c / -avx512.c files with their ISA flags).
 */
#if !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#endif
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_config.h"
#if defined(_WIN32)
#include "workspace.h" /* cconv_aligned_alloc: Windows has no posix_memalign */
#endif

static int passed, failed;
static const double SENTINEL = -7777.25;  /* C's and dst's guard value, exact in f32 */

/* ------------------------------------------------------------------------------ helpers */

static uint64_t rng_state = 12345;

/* Uniform in [-1, 1), from a 64-bit LCG (deterministic on every platform). */
static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static int64_t below(int64_t n) { return (int64_t)((uniform() + 1.0) * 0.5 * (double)n) % n; }

static void *checked(void *p)
{
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

/* An exactly sized array of f32 or f64 elements, 64-byte aligned on request (the panels). */
typedef struct {
    void *p;
    int64_t n;
    int dbl, aligned;
} Arr;

static Arr arr_new(int64_t n, int dbl, int aligned)
{
    Arr a;
    const size_t bytes = (size_t)(n > 0 ? n : 1) * (dbl ? sizeof(double) : sizeof(float));
    a.n = n;
    a.dbl = dbl;
    a.aligned = aligned;
#if defined(_WIN32)
    a.p = aligned ? cconv_aligned_alloc(bytes) : malloc(bytes);
#else
    a.p = NULL;  /* posix_memalign sizes the block exactly (cconv_aligned_alloc leaves up to 64 bytes of slack) */
    if (!aligned) a.p = malloc(bytes);
    else if (posix_memalign(&a.p, 64, bytes) != 0) a.p = NULL;
#endif
    checked(a.p);
    return a;
}

static void arr_free(Arr *a)
{
#if defined(_WIN32)
    if (a->aligned) {
        cconv_aligned_free(a->p);
        return;
    }
#endif
    free(a->p);
}

static double get(const Arr *a, int64_t i)
{
    if (i < 0 || i >= a->n) {
        printf("test bug: index %lld outside an array of %lld\n", (long long)i, (long long)a->n);
        exit(2);
    }
    return a->dbl ? ((const double *)a->p)[i] : (double)((const float *)a->p)[i];
}

static void put(Arr *a, int64_t i, double v)
{
    if (a->dbl) ((double *)a->p)[i] = v;
    else ((float *)a->p)[i] = (float)v;
}

static void fill(Arr *a, double v, int random)
{
    for (int64_t i = 0; i < a->n; ++i) put(a, i, random ? v * uniform() : v);
}

/* count offsets in [0, span], one of them (at a random place) exactly span: a buffer of span +
 * (what one offset may read) then ends exactly where the contract says reads may end. */
static int64_t *random_offsets(int64_t count, int64_t span)
{
    int64_t *off = (int64_t *)checked(malloc((size_t)count * sizeof(int64_t)));
    for (int64_t i = 0; i < count; ++i) off[i] = below(span + 1);
    off[below(count)] = span;
    return off;
}

/* Tile edges worth testing for a tile dimension of size max: 1, 2, 3, around max / 2 (a vector
 * boundary for the SIMD tiles), max - 1 and max, without repeats. */
static int tile_sizes(int max, int out[8])
{
    const int want[8] = {1, 2, 3, max / 2 - 1, max / 2, max / 2 + 1, max - 1, max};
    int count = 0;
    for (int w = 0; w < 8; ++w) {
        int seen = want[w] < 1 || want[w] > max;
        for (int i = 0; i < count; ++i) seen |= out[i] == want[w];
        if (!seen) out[count++] = want[w];
    }
    return count;
}

typedef struct {
    const char *isa, *type;
    int dbl;
    const cconv_gemm_tiles *t;
    const cconv_gemm_config_f32 *f32;
    const cconv_gemm_config_f64 *f64;
} Kern;

static double eps_of(const Kern *K) { return K->dbl ? DBL_EPSILON : FLT_EPSILON; }

/* ------------------------------------------------------------------------------ GEMM kernels */

enum { GEMM, BOFF, AOFF, PIX, TRANSPOSE, KINDS };
static const char *const KIND_NAMES[KINDS] = {"gemm", "gemm_boff", "gemm_aoff", "gemm_pix", "transpose"};
static const int64_t KCS[] = {1, 2, 3, 7, 16, 384, 385};
/* The depths swept: all of KCS, or with CCONV_QUICK_SWEEP set (and not "0") only the short ones,
 * for runs under Valgrind, which the long depths would slow for little more coverage. */
static int kc_count(void)
{
    const char *quick = getenv("CCONV_QUICK_SWEEP");
    return quick && *quick && strcmp(quick, "0") ? 5 : (int)(sizeof KCS / sizeof KCS[0]);
}
static const int64_t AOFF_RUNS[] = {1, 3, 14};  /* A-offset runs shorter than kc (plus run >= kc) */
static const int64_t NAN_KCS[2] = {3, 16};      /* depths of the NaN-rule cases */

typedef struct {
    int kind;
    int64_t m, n, kc, run, step;
    int acc, bias, relu, nan;
} GemmCase;

/* A and B as one kernel kind reads them. */
typedef struct {
    int kind, mr, nr;
    int64_t run, step;
    Arr a, b;
    int64_t *off;  /* aoff (MR of them for AOFF, kc for PIX) or boff (kc), else NULL */
} Operands;

static int64_t a_at(const Operands *o, int64_t i, int64_t k)
{
    if (o->kind == AOFF) return o->off[i] + k / o->run * o->step + k % o->run;
    if (o->kind == PIX) return o->off[k] + i;
    return k * o->mr + i;
}

static int64_t boff_col(const Operands *o, int64_t j)
{
    return o->run >= o->nr ? j : j / o->run * o->step + j % o->run;
}

static int64_t b_at(const Operands *o, int64_t k, int64_t j)
{
    return o->kind == BOFF ? o->off[k] + boff_col(o, j) : k * o->nr + j;
}

/* The operands of a case: panels (garbage past m / n) or exactly sized arrays read through offsets. */
static Operands make_operands(const Kern *K, const GemmCase *gc)
{
    Operands o;
    const int pix = gc->kind == PIX;
    const int64_t kc = gc->kc;
    o.kind = gc->kind;
    o.mr = pix ? K->t->pix_mr : K->t->mr;
    o.nr = pix ? K->t->pix_nr : K->t->nr;
    o.run = gc->run;
    o.step = gc->step;
    o.off = NULL;
    if (gc->kind == AOFF) {
        const int64_t extent = (kc - 1) / o.run * o.step + (kc - 1) % o.run + 1, span = extent + 13;
        o.off = random_offsets(o.mr, span);
        o.a = arr_new(span + extent, K->dbl, 0);
        fill(&o.a, 1.0, 1);
    } else if (pix) {
        const int64_t span = 3 * o.mr + kc;
        o.off = random_offsets(kc, span);
        o.a = arr_new(span + o.mr, K->dbl, 0);
        fill(&o.a, 1.0, 1);
    } else {
        o.a = arr_new(kc * o.mr, K->dbl, 1);
        for (int64_t k = 0; k < kc; ++k)
            for (int64_t i = 0; i < o.mr; ++i) put(&o.a, k * o.mr + i, (i < gc->m ? 1.0 : 1000.0) * uniform());
    }
    if (gc->kind == BOFF) {
        const int64_t extent = boff_col(&o, o.nr - 1) + 1, span = extent + kc;
        o.off = random_offsets(kc, span);
        o.b = arr_new(span + extent, K->dbl, 0);
        fill(&o.b, 1.0, 1);
    } else {
        o.b = arr_new(kc * o.nr, K->dbl, 1);
        for (int64_t k = 0; k < kc; ++k)
            for (int64_t j = 0; j < o.nr; ++j) put(&o.b, k * o.nr + j, (j < gc->n ? 1.0 : 1000.0) * uniform());
    }
    if (gc->nan) put(&o.a, a_at(&o, gc->m - 1, kc / 2), NAN);
    return o;
}

#define CALL_GEMM(F)                                                                                         \
    switch (gc->kind) {                                                                                      \
    case GEMM: F->gemm(kc, o->a.p, o->b.p, c->p, ldc, m, n, gc->acc, bias, gc->relu); break;                \
    case BOFF:                                                                                               \
        F->gemm_boff(kc, o->a.p, o->b.p, o->off, o->run, o->step, c->p, ldc, m, n, gc->acc, bias, gc->relu); \
        break;                                                                                               \
    case AOFF:                                                                                               \
        F->gemm_aoff(kc, o->a.p, o->off, o->run, o->step, o->b.p, c->p, ldc, m, n, gc->acc, bias, gc->relu); \
        break;                                                                                               \
    default: F->gemm_pix(kc, o->a.p, o->off, o->b.p, c->p, ldc, m, n, gc->acc, bias, gc->relu); break;      \
    }

static void call_gemm(const Kern *K, const GemmCase *gc, const Operands *o, Arr *c, int64_t ldc, const void *bias)
{
    const int64_t kc = gc->kc, m = gc->m, n = gc->n;
    if (K->dbl) CALL_GEMM(K->f64) else CALL_GEMM(K->f32)
}

/* One kernel call against the reference: counts a pass, or prints why it fails. */
static void run_gemm_case(const Kern *K, const GemmCase *gc)
{
    const int64_t m = gc->m, n = gc->n, kc = gc->kc, ldc = n + 3;
    const double bound = (double)(kc + 2) * 2.0 * eps_of(K);
    Operands o = make_operands(K, gc);
    /* C: the tile, ldc - n guard columns, and a guard row plus NR more below (a full-width store of any row) */
    Arr c = arr_new((m + 1) * ldc + o.nr, K->dbl, 0), c0 = arr_new(c.n, 1, 0);
    Arr bias = arr_new(gc->kind == PIX ? n : m, K->dbl, 0);
    fill(&bias, 1.0, 1);
    fill(&c, SENTINEL, 0);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) put(&c, i * ldc + j, gc->acc ? 2.0 * uniform() : NAN);
    for (int64_t i = 0; i < c.n; ++i) put(&c0, i, get(&c, i));
    call_gemm(K, gc, &o, &c, ldc, gc->bias ? bias.p : NULL);

    char why[160] = "";
    for (int64_t i = 0; i < m && !*why; ++i)
        for (int64_t j = 0; j < n && !*why; ++j) {
            double v = gc->acc ? get(&c0, i * ldc + j) : gc->bias ? get(&bias, gc->kind == PIX ? j : i) : 0.0;
            double mag = fabs(v);
            for (int64_t k = 0; k < kc; ++k) {
                const double p = get(&o.a, a_at(&o, i, k)) * get(&o.b, b_at(&o, k, j));
                v += p;
                mag += fabs(p);
            }
            const double want = gc->relu && v < 0 ? 0.0 : v, got = get(&c, i * ldc + j), tol = bound * mag;
            const int bad = isnan(v) ? !isnan(got)
                                     : !(fabs(got - want) <= tol) || (gc->relu && (got < 0 || (v < -tol && got != 0)));
            if (bad)
                snprintf(why, sizeof why, "C(%lld,%lld) = %.9g, want %.9g (tol %.3g)", (long long)i, (long long)j,
                         got, want, tol);
        }
    for (int64_t at = 0; at < c.n && !*why; ++at)
        if ((at / ldc >= m || at % ldc >= n) && get(&c, at) != SENTINEL)
            snprintf(why, sizeof why, "wrote C(%lld,%lld) outside the %lldx%lld tile", (long long)(at / ldc),
                     (long long)(at % ldc), (long long)m, (long long)n);
    if (*why) {
        failed++;
        printf("FAIL %s %s %s m=%lld n=%lld kc=%lld accumulate=%d bias=%d relu=%d run=%lld step=%lld nan=%d: %s\n",
               K->isa, K->type, KIND_NAMES[gc->kind], (long long)m, (long long)n, (long long)kc, gc->acc, gc->bias,
               gc->relu, (long long)gc->run, (long long)gc->step, gc->nan, why);
    } else {
        passed++;
    }
    arr_free(&o.a);
    arr_free(&o.b);
    free(o.off);
    arr_free(&c);
    arr_free(&c0);
    arr_free(&bias);
}

typedef struct {
    int64_t run, step;
} Layout;

/* The operand layouts of one kind at depth kc that its contract allows. */
static int layouts_for(const Kern *K, int kind, int64_t kc, Layout out[12])
{
    int count = 0;
    if (kind == BOFF) {  /* one row (run >= NR), or runs dividing NR made of whole 64-byte vectors */
        const int64_t nr = K->t->nr, vec = 64 / (K->dbl ? 8 : 4);
        out[count++] = (Layout){nr, nr};
        out[count++] = (Layout){nr + 3, nr + 40};
        for (int64_t r = vec; r < nr; r += vec)
            if (nr % r == 0) {
                out[count++] = (Layout){r, r};
                out[count++] = (Layout){r, r + 1};
                out[count++] = (Layout){r, 2 * r + 5};
            }
    } else if (kind == AOFF) {  /* one run (run >= kc), or shorter runs, step >= run */
        out[count++] = (Layout){kc, kc};
        out[count++] = (Layout){kc + 4, kc + 9};
        for (int r = 0; r < (int)(sizeof AOFF_RUNS / sizeof AOFF_RUNS[0]); ++r)
            if (AOFF_RUNS[r] < kc) {
                out[count++] = (Layout){AOFF_RUNS[r], AOFF_RUNS[r]};
                out[count++] = (Layout){AOFF_RUNS[r], AOFF_RUNS[r] + 2};
            }
    } else {
        out[count++] = (Layout){0, 0};
    }
    return count;
}

static void sweep_gemm(const Kern *K, int kind)
{
    const int pix = kind == PIX, mr = pix ? K->t->pix_mr : K->t->mr, nr = pix ? K->t->pix_nr : K->t->nr;
    int ms[8], ns[8];
    const int nm = tile_sizes(mr, ms), nn = tile_sizes(nr, ns);
    Layout lay[12];
    for (int d = 0; d < kc_count(); ++d) {
        const int nl = layouts_for(K, kind, KCS[d], lay);
        for (int l = 0; l < nl; ++l)
            for (int a = 0; a < nm; ++a)
                for (int b = 0; b < nn; ++b)
                    for (int opt = 0; opt < 8; ++opt) {
                        const GemmCase gc = {kind, ms[a], ns[b], KCS[d], lay[l].run, lay[l].step,
                                             opt & 1, (opt >> 1) & 1, (opt >> 2) & 1, 0};
                        run_gemm_case(K, &gc);
                    }
    }
    /* The epilogue's NaN rule: a NaN in A's last valid row, on full and edge tiles, every layout. */
    for (int d = 0; d < 2; ++d) {
        const int nl = layouts_for(K, kind, NAN_KCS[d], lay);
        for (int l = 0; l < nl; ++l)
            for (int edge = 0; edge < 4; ++edge)
                for (int opt = 0; opt < 8; ++opt) {
                    const int64_t m = mr - ((edge & 1) && mr > 1), n = nr - ((edge & 2) && nr > 1);
                    const GemmCase gc = {kind, m, n, NAN_KCS[d], lay[l].run, lay[l].step, opt & 1, (opt >> 1) & 1,
                                         (opt >> 2) & 1, 1};
                    run_gemm_case(K, &gc);
                }
    }
}

/* ------------------------------------------------------------------------------ transpose */

static const int64_t T_ROWS[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17};
static const int64_t T_COLS[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33};
static const Layout T_RUNS[] = {{1, 1}, {1, 3}, {3, 5}, {4, 4}, {8, 11}};  /* {run, period} (as step), run < cols */

typedef struct {
    int64_t rows, cols, lds, ldd, run, period;
    int mask, sums;
} TransCase;

static int64_t t_col(const TransCase *tc, int64_t j)
{
    return tc->run >= tc->cols ? j : j / tc->run * tc->period + j % tc->run;
}

static void run_transpose_case(const Kern *K, const TransCase *tc)
{
    const int64_t rows = tc->rows, cols = tc->cols, ns = (rows - 1) * tc->lds + cols;
    const int64_t nd = t_col(tc, cols - 1) * tc->ldd + rows;
    Arr src = arr_new(ns, K->dbl, 0), mask = arr_new(ns, K->dbl, 0), dst = arr_new(nd, K->dbl, 0);
    Arr sums = arr_new(rows, K->dbl, 0);
    char *written = (char *)checked(calloc((size_t)nd, 1));
    fill(&src, 1.0, 1);
    fill(&dst, SENTINEL, 0);
    fill(&sums, 1.0, 1);
    double *sums0 = (double *)checked(malloc((size_t)rows * sizeof(double)));
    for (int64_t i = 0; i < rows; ++i) sums0[i] = get(&sums, i);
    for (int64_t at = 0; at < ns; ++at) {  /* mask: NaN, 0, -0, and uniform; src NaN in half the masked-out places */
        const double r = uniform();
        put(&mask, at, r < -0.7 ? NAN : r < -0.55 ? 0.0 : r < -0.4 ? -0.0 : r);
        if (tc->mask && !(get(&mask, at) > 0) && !isnan(get(&mask, at)) && uniform() < 0) put(&src, at, NAN);
    }
    const void *mp = tc->mask ? mask.p : NULL;
    void *sp = tc->sums ? sums.p : NULL;
    if (K->dbl) K->f64->transpose(src.p, mp, tc->lds, rows, cols, tc->run, tc->period, dst.p, tc->ldd, sp);
    else K->f32->transpose(src.p, mp, tc->lds, rows, cols, tc->run, tc->period, dst.p, tc->ldd, sp);

    char why[160] = "";
    for (int64_t i = 0; i < rows && !*why; ++i) {
        double sum = sums0[i], mag = fabs(sums0[i]);
        for (int64_t j = 0; j < cols && !*why; ++j) {
            const int64_t s = i * tc->lds + j, d = t_col(tc, j) * tc->ldd + i;
            const double m = get(&mask, s), want = tc->mask && m <= 0 ? 0.0 : get(&src, s), got = get(&dst, d);
            written[d] = 1;
            sum += want;
            mag += fabs(want);
            if (!(got == want))
                snprintf(why, sizeof why, "dst of (%lld,%lld) = %.9g, want %.9g", (long long)i, (long long)j, got,
                         want);
        }
        const double got = get(&sums, i), tol = (double)(cols + 2) * 2.0 * eps_of(K) * mag;
        if (!*why && tc->sums && !(fabs(got - sum) <= tol))
            snprintf(why, sizeof why, "sums[%lld] = %.9g, want %.9g (tol %.3g)", (long long)i, got, sum, tol);
    }
    for (int64_t d = 0; d < nd && !*why; ++d)
        if (!written[d] && get(&dst, d) != SENTINEL)
            snprintf(why, sizeof why, "wrote dst[%lld], not a destination", (long long)d);
    if (*why) {
        failed++;
        printf("FAIL %s %s transpose rows=%lld cols=%lld lds=%lld ldd=%lld run=%lld period=%lld mask=%d sums=%d: %s\n",
               K->isa, K->type, (long long)rows, (long long)cols, (long long)tc->lds, (long long)tc->ldd,
               (long long)tc->run, (long long)tc->period, tc->mask, tc->sums, why);
    } else {
        passed++;
    }
    arr_free(&src);
    arr_free(&mask);
    arr_free(&dst);
    arr_free(&sums);
    free(written);
    free(sums0);
}

static void sweep_transpose(const Kern *K)
{
    const int n_runs = (int)(sizeof T_RUNS / sizeof T_RUNS[0]);
    for (int r = 0; r < (int)(sizeof T_ROWS / sizeof T_ROWS[0]); ++r)
        for (int c = 0; c < (int)(sizeof T_COLS / sizeof T_COLS[0]); ++c)
            for (int l = -2; l < n_runs; ++l) {  /* -2: run == cols; -1: run > cols; else T_RUNS[l] */
                const int64_t rows = T_ROWS[r], cols = T_COLS[c];
                const Layout lay = l == -2 ? (Layout){cols, cols} : l == -1 ? (Layout){cols + 2, cols + 5} : T_RUNS[l];
                if (l >= 0 && lay.run >= cols) continue;
                for (int opt = 0; opt < 8; ++opt) {  /* strides tight or loose, mask, sums */
                    const int loose = opt & 1;
                    const TransCase tc = {rows, cols, cols + 3 * loose, rows + 5 * loose, lay.run, lay.step,
                                          (opt >> 1) & 1, (opt >> 2) & 1};
                    run_transpose_case(K, &tc);
                }
            }
}

/* ------------------------------------------------------------------------------ depthwise rows */

enum { DW_ROWS, DW_DOTS, DW_SCATTER, DW_KINDS };
static const char *const DW_NAMES[DW_KINDS] = {"dwconv_rows", "dwconv_dots", "dwconv_scatter"};
static const int64_t DW_ROW_COUNTS[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17};
static const int64_t DW_QS[] = {1, 3, 7, 8, 9, 14, 15, 16, 17, 31, 33};
static const int64_t DW_TAPS[] = {1, 3, 9, 10, 25, 27};

/* One call of a depthwise row kernel against a double-precision loop over exactly the elements
 * gemm_config.h names: in holds what the taps read plus the 15 elements of slack that rows may
 * read; out (rows, scatter) is sentinel-filled, and what the kernel must not write must stay so. */
static void run_dw_case(const Kern *K, int kind, int64_t rows, int64_t q, int64_t taps, int relu)
{
    const int64_t span = 2 * q + 5, ldi = span + q + 3, ldo = q + 4 + (kind == DW_SCATTER ? span : 0), ldd = q + 2;
    int64_t *off = random_offsets(taps, span);
    const int64_t n_in = (rows - 1) * ldi + span + q + 15;
    Arr in = arr_new(n_in, K->dbl, 0), w = arr_new(taps, K->dbl, 0), dy = arr_new((rows - 1) * ldd + q, K->dbl, 0);
    Arr out = arr_new(rows * ldo, K->dbl, 0), sums = arr_new(taps, K->dbl, 0);
    const double bias = uniform();
    char why[200] = "";
    fill(&in, 1.0, 1);
    fill(&w, 1.0, 1);
    fill(&dy, 1.0, 1);
    fill(&sums, 1.0, 1);
    if (kind == DW_SCATTER) fill(&out, 1.0, 1);
    else fill(&out, SENTINEL, 0);
    double *want = (double *)checked(malloc((size_t)(rows * ldo + taps) * sizeof(double)));
    for (int64_t i = 0; i < rows * ldo; ++i) want[i] = get(&out, i);
    for (int64_t t = 0; t < taps; ++t) want[rows * ldo + t] = get(&sums, t);
    double tol_scale = 0;
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < q; ++j) {
            if (kind == DW_ROWS) {
                double v = bias;
                for (int64_t t = 0; t < taps; ++t) v += get(&w, t) * get(&in, i * ldi + off[t] + j);
                want[i * ldo + j] = relu && v < 0 ? 0 : v;
            } else if (kind == DW_DOTS) {
                for (int64_t t = 0; t < taps; ++t)
                    want[rows * ldo + t] += get(&dy, i * ldd + j) * get(&in, i * ldi + off[t] + j);
            } else {
                for (int64_t t = 0; t < taps; ++t) want[i * ldo + off[t] + j] += get(&w, t) * get(&dy, i * ldd + j);
            }
        }
    tol_scale = (double)(kind == DW_DOTS ? rows * q : taps * rows) + 2.0;
    if (K->dbl) {
        const cconv_gemm_config_f64 *f = K->f64;
        double *x = (double *)in.p, *wt = (double *)w.p, *g = (double *)dy.p, *o = (double *)out.p;
        if (kind == DW_ROWS) f->dwconv_rows(rows, q, taps, x, ldi, off, wt, bias, relu, o, ldo);
        else if (kind == DW_DOTS) f->dwconv_dots(rows, q, taps, x, ldi, off, g, ldd, (double *)sums.p);
        else f->dwconv_scatter(rows, q, taps, g, ldd, off, wt, o, ldo);
    } else {
        const cconv_gemm_config_f32 *f = K->f32;
        float *x = (float *)in.p, *wt = (float *)w.p, *g = (float *)dy.p, *o = (float *)out.p;
        if (kind == DW_ROWS) f->dwconv_rows(rows, q, taps, x, ldi, off, wt, (float)bias, relu, o, ldo);
        else if (kind == DW_DOTS) f->dwconv_dots(rows, q, taps, x, ldi, off, g, ldd, (float *)sums.p);
        else f->dwconv_scatter(rows, q, taps, g, ldd, off, wt, o, ldo);
    }
    const double tol = 4.0 * eps_of(K) * tol_scale;
    for (int64_t i = 0; i < rows * ldo && !*why; ++i) {
        const double got = get(&out, i);
        if (fabs(got - want[i]) > tol * (1.0 + fabs(want[i])))
            snprintf(why, sizeof why, "out[%lld] = %.9g, want %.9g", (long long)i, got, want[i]);
    }
    for (int64_t t = 0; t < taps && !*why; ++t) {
        const double got = get(&sums, t);
        if (fabs(got - want[rows * ldo + t]) > tol * (1.0 + fabs(want[rows * ldo + t])))
            snprintf(why, sizeof why, "sums[%lld] = %.9g, want %.9g", (long long)t, got, want[rows * ldo + t]);
    }
    if (*why) {
        failed++;
        printf("FAIL %s %s %s rows=%lld q=%lld taps=%lld relu=%d: %s\n", K->isa, K->type, DW_NAMES[kind],
               (long long)rows, (long long)q, (long long)taps, relu, why);
    } else {
        passed++;
    }
    free(want);
    free(off);
    arr_free(&in);
    arr_free(&w);
    arr_free(&dy);
    arr_free(&out);
    arr_free(&sums);
}

/* Every depthwise row kernel of the config over row counts (tiles of up to four rows), widths
 * around the vector lengths (masked tails) and tap counts (the 3x3 and 5x5 bodies, others). */
static int sweep_dwconv(const Kern *K)
{
    const int before = passed + failed;
    for (int kind = 0; kind < DW_KINDS; ++kind)
        for (size_t r = 0; r < sizeof DW_ROW_COUNTS / sizeof DW_ROW_COUNTS[0]; ++r)
            for (size_t qi = 0; qi < sizeof DW_QS / sizeof DW_QS[0]; ++qi)
                for (size_t t = 0; t < sizeof DW_TAPS / sizeof DW_TAPS[0]; ++t)
                    for (int relu = 0; relu <= (kind == DW_ROWS); ++relu)
                        run_dw_case(K, kind, DW_ROW_COUNTS[r], DW_QS[qi], DW_TAPS[t], relu);
    for (int64_t n = 0; n <= 40; ++n) {  /* the split: whole vectors and tails */
        Arr src = arr_new(2 * n, K->dbl, 0), d0 = arr_new(n + 1, K->dbl, 0), d1 = arr_new(n + 1, K->dbl, 0);
        int bad = 0;
        fill(&src, 1.0, 1);
        fill(&d0, SENTINEL, 0);
        fill(&d1, SENTINEL, 0);
        if (K->dbl) K->f64->dwconv_split(n, (double *)src.p, (double *)d0.p, (double *)d1.p);
        else K->f32->dwconv_split(n, (float *)src.p, (float *)d0.p, (float *)d1.p);
        for (int64_t e = 0; e < n; ++e) bad |= get(&d0, e) != get(&src, 2 * e) || get(&d1, e) != get(&src, 2 * e + 1);
        bad |= get(&d0, n) != SENTINEL || get(&d1, n) != SENTINEL;
        if (bad) {
            failed++;
            printf("FAIL %s %s dwconv_split n=%lld\n", K->isa, K->type, (long long)n);
        } else {
            passed++;
        }
        arr_free(&src);
        arr_free(&d0);
        arr_free(&d1);
    }
    return passed + failed - before;
}

/* ------------------------------------------------------------------------------ main */

static void test_config(const Kern *K)
{
    int present[KINDS], cases[KINDS] = {0};
    if (K->dbl) {
        const cconv_gemm_config_f64 *f = K->f64;
        present[GEMM] = f->gemm != NULL; present[BOFF] = f->gemm_boff != NULL; present[AOFF] = f->gemm_aoff != NULL;
        present[PIX] = f->gemm_pix != NULL; present[TRANSPOSE] = f->transpose != NULL;
    } else {
        const cconv_gemm_config_f32 *f = K->f32;
        present[GEMM] = f->gemm != NULL; present[BOFF] = f->gemm_boff != NULL; present[AOFF] = f->gemm_aoff != NULL;
        present[PIX] = f->gemm_pix != NULL; present[TRANSPOSE] = f->transpose != NULL;
    }
    for (int kind = 0; kind < KINDS; ++kind) {
        const int before = passed + failed;
        if (!present[kind]) continue;
        if (kind == TRANSPOSE) sweep_transpose(K);
        else sweep_gemm(K, kind);
        cases[kind] = passed + failed - before;
    }
    const int dw_cases = sweep_dwconv(K);
    printf("%s %s (tile %dx%d, pixel tile %dx%d) cases:", K->isa, K->type, K->t->mr, K->t->nr, K->t->pix_mr,
           K->t->pix_nr);
    for (int kind = 0; kind < KINDS; ++kind)
        if (present[kind]) printf(" %s %d", KIND_NAMES[kind], cases[kind]);
        else printf(" %s (none)", KIND_NAMES[kind]);
    printf(" dwconv %d\n", dw_cases);
    fflush(stdout);
}

int main(void)
{
    const cconv_gemm_configs *built;
    setvbuf(stdout, NULL, _IOLBF, 0);  /* FAIL lines out before any crash */
    for (int i = 0; (built = cconv_gemm_configs_built(i)) != NULL; ++i) {
        if (!cconv_gemm_configs_find(built->isa)) {
            printf("skipping %s: built, but this CPU (or the emulator running it) lacks it\n", built->isa);
            continue;
        }
        const Kern f32 = {built->isa, "f32", 0, &built->f32->tiles, built->f32, NULL};
        const Kern f64 = {built->isa, "f64", 1, &built->f64->tiles, NULL, built->f64};
        test_config(&f32);
        test_config(&f64);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
