/* workspace.c: aligned allocation, the pool of reusable workspaces and the cache of array
 * buffers (see workspace.h). Both are a few slots under one lock (pthreads, or an SRW lock on
 * Windows). A workspace call that finds every slot busy gets a plain allocation, freed on
 * release; the array cache holds only free buffers, so a buffer in use costs it nothing. */
#include "workspace.h"

#include <stdint.h>
#include <stdlib.h>

#if defined(_WIN32)
#include <windows.h>
static SRWLOCK pool_lock = SRWLOCK_INIT;
static void lock(void) { AcquireSRWLockExclusive(&pool_lock); }
static void unlock(void) { ReleaseSRWLockExclusive(&pool_lock); }
#else
#include <pthread.h>
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;
/* fork() takes the lock first and both processes release it after, so a child forked while
 * another thread was inside the pool does not inherit a lock that nobody will release. */
static void lock_for_fork(void) { pthread_mutex_lock(&pool_lock); }
static void unlock_after_fork(void) { pthread_mutex_unlock(&pool_lock); }
static void register_fork_handlers(void) { pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork); }
static void lock(void)
{
    pthread_once(&fork_handlers_once, register_fork_handlers);
    pthread_mutex_lock(&pool_lock);
}
static void unlock(void) { pthread_mutex_unlock(&pool_lock); }
#endif

#define POOL_SLOTS 16

typedef struct {
    void *buffer;  /* NULL: empty slot */
    size_t bytes;
    int busy;
} slot;

static slot pool[POOL_SLOTS];

void *cconv_aligned_alloc(size_t bytes)
{
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    unsigned char *aligned = (unsigned char *)((start + 63) & ~(uintptr_t)63);
    ((void **)aligned)[-1] = raw;
    return aligned;
}

void cconv_aligned_free(void *p)
{
    if (p) free(((void **)p)[-1]);
}

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

/* ---- array buffers ---- */

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

/* ---- both ---- */

size_t cconv_workspace_trim(void)
{
    size_t freed = 0;
    lock();
    for (int i = 0; i < CACHE_SLOTS; ++i)
        if (cache[i].buffer) {
            freed += cache[i].bytes;
            evict(i);
        }
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
