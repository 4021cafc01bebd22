/* workspace.c: the pool of reusable scratch workspaces of the conv and dense kernels (see
 * workspace.h). A few slots under one lock (pthreads, or an SRW lock on Windows); a call that
 * finds every slot busy gets a plain allocation, freed on release. The array buffer cache
 * (buffer_cache.c) is separate, with its own lock. */
#include "workspace.h"

#include "checked_math.h"
#include "file_lock.h"

#define POOL_SLOTS 16

typedef struct {
    void *buffer;  /* NULL: empty slot */
    size_t bytes;
    int busy;
} slot;

static slot pool[POOL_SLOTS];

void *cconv_workspace_acquire(size_t bytes)
{
    if (bytes == 0) bytes = 1;
    lock();
    /* The smallest free buffer that is big enough; else grow the largest free one (or fill
     * an empty slot), so the pool converges on the sizes the calls need. */
    int fit = -1, spare = -1;
    for (int i = 0; i < POOL_SLOTS; ++i) {
        if (pool[i].busy) continue;
        if (pool[i].buffer && pool[i].bytes >= bytes) {
            if (fit < 0 || pool[i].bytes < pool[fit].bytes) fit = i;
        } else if (spare < 0 || !pool[i].buffer || (pool[spare].buffer && pool[i].bytes > pool[spare].bytes)) {
            spare = i;
        }
    }
    if (fit >= 0) {
        pool[fit].busy = 1;
        unlock();
        return pool[fit].buffer;
    }
    if (spare >= 0) pool[spare].busy = 1;
    unlock();
    if (spare < 0) return cconv_aligned_alloc(bytes);  /* every slot busy */
    /* Allocate outside the lock; the slot is ours while busy. */
    cconv_aligned_free(pool[spare].buffer);
    void *p = cconv_aligned_alloc(bytes);
    lock();
    pool[spare].buffer = p;
    pool[spare].bytes = p ? bytes : 0;
    pool[spare].busy = p != NULL;
    unlock();
    return p;
}

void *cconv_workspace_acquire_elems(int64_t count, size_t elem_size)
{
    return size_fits(count, elem_size) ? cconv_workspace_acquire((size_t)count * elem_size) : NULL;
}

void cconv_workspace_release(void *p)
{
    if (!p) return;
    lock();
    for (int i = 0; i < POOL_SLOTS; ++i)
        if (pool[i].buffer == p) {
            pool[i].busy = 0;
            unlock();
            return;
        }
    unlock();
    cconv_aligned_free(p);  /* a plain allocation */
}

size_t cconv_workspace_trim(void)
{
    size_t freed = 0;
    lock();
    for (int i = 0; i < POOL_SLOTS; ++i)
        if (pool[i].buffer && !pool[i].busy) {
            cconv_aligned_free(pool[i].buffer);
            freed += pool[i].bytes;
            pool[i].buffer = NULL;
            pool[i].bytes = 0;
        }
    unlock();
    return freed;
}

size_t cconv_workspace_held(void)
{
    size_t held = 0;
    lock();
    for (int i = 0; i < POOL_SLOTS; ++i) held += pool[i].bytes;
    unlock();
    return held;
}
