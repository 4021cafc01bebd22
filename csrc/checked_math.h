/* checked_math.h: int64 arithmetic that reports overflow, for every size, workspace size and
 * extent computed from a caller's geometry. A geometry whose sizes do not fit is refused
 * (CCONV_ENOMEM: Python's MemoryError) instead of wrapping round to a small allocation that the
 * kernels then write far past.
 *
 *   ckd_add64, ckd_mul64   store the exact result and return 0, or return 1 when it does not fit
 *                          an int64 (C23's ckd_add / ckd_mul for int64_t): the compilers'
 *                          overflow builtins where they exist, a division-based check elsewhere
 *                          (MSVC).
 *   size_add, size_mul,    the same for sizes (values >= 0) that saturate: once any step
 *   size_round_up,         overflows (or is handed a negative value) the result is
 *   size_product           CCONV_SIZE_OVERFLOW and stays so through every later step, so that a
 *                          long expression needs one check at its end; the workspace pool refuses
 *                          that size (cconv_workspace_acquire_elems), and so does size_fits.
 * Indices inside a size checked here need no check of their own. */
#ifndef CCONV_CHECKED_MATH_H
#define CCONV_CHECKED_MATH_H

#include <stddef.h>
#include <stdint.h>

#if defined(__has_builtin)
#if __has_builtin(__builtin_add_overflow) && __has_builtin(__builtin_mul_overflow)
#define CCONV_OVERFLOW_BUILTINS 1
#endif
#elif defined(__GNUC__) && __GNUC__ >= 5
#define CCONV_OVERFLOW_BUILTINS 1
#endif

/* The portable checks, also the test oracle of the builtins (tests/c/test_kernels.c). */
static inline int ckd_add64_portable(int64_t *result, int64_t a, int64_t b)
{
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b)) return 1;
    *result = a + b;
    return 0;
}

static inline int ckd_mul64_portable(int64_t *result, int64_t a, int64_t b)
{
    const int overflow = a > 0 ? (b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a)
                               : (b > 0 ? a < INT64_MIN / b : a != 0 && b < INT64_MAX / a);
    if (overflow) return 1;
    *result = a * b;
    return 0;
}

static inline int ckd_add64(int64_t *result, int64_t a, int64_t b)
{
#ifdef CCONV_OVERFLOW_BUILTINS
    return __builtin_add_overflow(a, b, result);
#else
    return ckd_add64_portable(result, a, b);
#endif
}

static inline int ckd_mul64(int64_t *result, int64_t a, int64_t b)
{
#ifdef CCONV_OVERFLOW_BUILTINS
    return __builtin_mul_overflow(a, b, result);
#else
    return ckd_mul64_portable(result, a, b);
#endif
}

#define CCONV_SIZE_OVERFLOW INT64_MAX

static inline int64_t size_add(int64_t a, int64_t b)
{
    int64_t sum;
    if (a < 0 || b < 0 || a == CCONV_SIZE_OVERFLOW || b == CCONV_SIZE_OVERFLOW || ckd_add64(&sum, a, b))
        return CCONV_SIZE_OVERFLOW;
    return sum;
}

static inline int64_t size_mul(int64_t a, int64_t b)
{
    int64_t product;
    if (a < 0 || b < 0 || a == CCONV_SIZE_OVERFLOW || b == CCONV_SIZE_OVERFLOW || ckd_mul64(&product, a, b))
        return CCONV_SIZE_OVERFLOW;
    return product;
}

/* a rounded up to a multiple of b (b >= 1). */
static inline int64_t size_round_up(int64_t a, int64_t b)
{
    const int64_t blocks = size_add(a, b - 1);
    return blocks == CCONV_SIZE_OVERFLOW ? blocks : size_mul(blocks / b, b);
}

/* a*b*c*d, which is 0 whenever a factor is 0 (the elements of an array with an empty axis, however
 * large the others). */
static inline int64_t size_product(int64_t a, int64_t b, int64_t c, int64_t d)
{
    if (a == 0 || b == 0 || c == 0 || d == 0) return a < 0 || b < 0 || c < 0 || d < 0 ? CCONV_SIZE_OVERFLOW : 0;
    return size_mul(size_mul(size_mul(a, b), c), d);
}

/* Whether `count` elements of elem_size bytes are a size that an allocation could hold. */
static inline int size_fits(int64_t count, size_t elem_size)
{
    return count >= 0 && count != CCONV_SIZE_OVERFLOW && (uint64_t)count <= (uint64_t)(SIZE_MAX / elem_size)
           && (uint64_t)count <= (uint64_t)(PTRDIFF_MAX / elem_size);
}

#endif
