/* buffer_cache.h: the memory behind the large arrays cconv returns (cconv._memory.empty). Freed
 * arrays hand their buffers back to a bounded cache, so steady-state training reuses warm pages
 * instead of faulting fresh ones in on every call (a first-touched page costs microseconds on some
 * VMs, and more when another library has just handed the heap back to the system). The kernels'
 * scratch memory has its own pool, in workspace.h. */
#ifndef CCONV_BUFFER_CACHE_H
#define CCONV_BUFFER_CACHE_H

#include <stddef.h>

/* A 64-byte aligned buffer of at least `bytes` bytes, contents unspecified; a free cached buffer
 * when one fits (no more than a quarter larger), else a new one. *capacity receives its real
 * size, which cconv_buffer_release needs. NULL when out of memory. Thread-safe. */
void *cconv_buffer_acquire(size_t bytes, size_t *capacity);
/* Hand a buffer back; it is kept for reuse while the cache holds under CCONV_BUFFER_CACHE_MAX
 * bytes (the least recently released buffers are freed first). */
void cconv_buffer_release(void *p, size_t capacity);
#define CCONV_BUFFER_CACHE_MAX ((size_t)1 << 30)
/* Bytes of free array buffers the cache holds. */
size_t cconv_buffer_cached(void);
/* Free every cached buffer; returns the bytes freed. */
size_t cconv_buffer_trim(void);

#endif
