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

#endif
