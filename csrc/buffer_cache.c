/* buffer_cache.c: the cache of array buffers (see buffer_cache.h). A few slots under one lock
 * (pthreads, or an SRW lock on Windows), holding only free buffers, so a buffer in use costs it
 * nothing; past its byte bound or its slots, the least recently released buffers are freed. The
 * kernels' workspace pool (workspace.c) is separate, with its own lock. */
#include "buffer_cache.h"

#include "aligned.h"

#include "file_lock.h"

#define CACHE_SLOTS 32
#define PAGE_BYTES 4096

typedef struct {
    void *buffer;  /* NULL: empty slot */
    size_t bytes;
    unsigned long long released;  /* when it was handed back, for least-recently-released eviction */
} cached;

static cached cache[CACHE_SLOTS];
static size_t cache_bytes;
static unsigned long long cache_clock;

void *cconv_buffer_acquire(size_t bytes, size_t *capacity)
{
    if (bytes == 0) bytes = 1;
    int fit = -1;
    lock();
    for (int i = 0; i < CACHE_SLOTS; ++i)
        if (cache[i].buffer && cache[i].bytes >= bytes && cache[i].bytes - bytes <= bytes / 4
            && (fit < 0 || cache[i].bytes < cache[fit].bytes))
            fit = i;
    if (fit >= 0) {
        void *p = cache[fit].buffer;
        *capacity = cache[fit].bytes;
        cache_bytes -= cache[fit].bytes;
        cache[fit].buffer = NULL;
        cache[fit].bytes = 0;
        unlock();
        return p;
    }
    unlock();
    size_t rounded = (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
    if (rounded < bytes) return NULL;  /* overflow */
    *capacity = rounded;
    return cconv_aligned_alloc(rounded);
}

/* The least recently released cached buffer's slot; -1 when the cache is empty. */
static int oldest_cached(void)
{
    int pick = -1;
    for (int i = 0; i < CACHE_SLOTS; ++i)
        if (cache[i].buffer && (pick < 0 || cache[i].released < cache[pick].released)) pick = i;
    return pick;
}

static void evict(int i)
{
    cconv_aligned_free(cache[i].buffer);
    cache_bytes -= cache[i].bytes;
    cache[i].buffer = NULL;
    cache[i].bytes = 0;
}

void cconv_buffer_release(void *p, size_t capacity)
{
    if (!p) return;
    if (capacity > CCONV_BUFFER_CACHE_MAX) {
        cconv_aligned_free(p);
        return;
    }
    lock();
    while (cache_bytes + capacity > CCONV_BUFFER_CACHE_MAX) evict(oldest_cached());
    int i = 0;
    while (i < CACHE_SLOTS && cache[i].buffer) ++i;
    if (i == CACHE_SLOTS) evict(i = oldest_cached());
    cache[i].buffer = p;
    cache[i].bytes = capacity;
    cache[i].released = ++cache_clock;
    cache_bytes += capacity;
    unlock();
}

size_t cconv_buffer_cached(void)
{
    lock();
    size_t held = cache_bytes;
    unlock();
    return held;
}

size_t cconv_buffer_trim(void)
{
    size_t freed = 0;
    lock();
    for (int i = 0; i < CACHE_SLOTS; ++i)
        if (cache[i].buffer) {
            freed += cache[i].bytes;
            evict(i);
        }
    unlock();
    return freed;
}
