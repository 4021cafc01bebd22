/* index_math.h: small int64 helpers for block and tile arithmetic, shared by the kernel files. */
#ifndef CCONV_INDEX_MATH_H
#define CCONV_INDEX_MATH_H

#include <stdint.h>

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
/* The size of the blocks when n is cut into as few blocks of at most `most` as possible, all of
 * nearly equal size (so no short last block). */
static inline int64_t balanced_block(int64_t n, int64_t most) { return n <= most ? n : ceil_div(n, ceil_div(n, most)); }
static inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* The output columns [lo, hi) whose input column ow*stride + off lies inside [0, width). */
static inline void valid_outputs(int64_t off, int64_t stride, int64_t width, int64_t outputs, int64_t *lo, int64_t *hi)
{
    const int64_t first = off >= 0 ? 0 : ceil_div(-off, stride);
    const int64_t end = width - 1 - off < 0 ? 0 : (width - 1 - off) / stride + 1;
    *lo = clamp64(first, 0, outputs);
    *hi = clamp64(end, *lo, outputs);
}

#endif
