/* column_walk.h: the destination columns of the packing transposes (gemm_config.h): column j
 * of the source lands at (j / run) * period + j % run. */
#include <stdint.h>

/* Walks destination columns: column j lands at (j / run) * period + j % run. */
typedef struct {
    int64_t run, period, base, within;
} column_walk;

static inline int64_t next_column(column_walk *w)
{
    const int64_t at = w->base + w->within;
    if (++w->within == w->run) {
        w->within = 0;
        w->base += w->period;
    }
    return at;
}

