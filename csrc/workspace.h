/* workspace.h: the kernels' scratch memory, and the memory behind the arrays cconv returns.
 * Both come from caches of buffers that outlive the call, so steady-state training reuses warm
 * pages instead of faulting fresh ones in on every call (a first-touched page costs microseconds
 * on some VMs, and more when another library has just handed the heap back to the system). */
#ifndef CCONV_WORKSPACE_H
#define CCONV_WORKSPACE_H

#include <stddef.h>

/* 64-byte aligned allocation (portable; pair with cconv_aligned_free). NULL on failure. */
void *cconv_aligned_alloc(size_t bytes);
void cconv_aligned_free(void *p);

/* A 64-byte aligned buffer of at least `bytes` bytes, contents unspecified, from the pool when
 * one is free (thread-safe); NULL when out of memory. Give it back with cconv_workspace_release. */
void *cconv_workspace_acquire(size_t bytes);
void cconv_workspace_release(void *p);
/* Free every pooled workspace not in use and every cached array buffer; returns the bytes freed. */
size_t cconv_workspace_trim(void);
/* Bytes held by the pool (in use or not). */
size_t cconv_workspace_held(void);

/* Array buffers: a 64-byte aligned buffer of at least `bytes` bytes, contents unspecified; a
 * free cached buffer when one fits (no more than a quarter larger), else a new one. *capacity
 * receives its real size, which cconv_buffer_release needs. NULL when out of memory. */
void *cconv_buffer_acquire(size_t bytes, size_t *capacity);
/* Hand a buffer back; it is kept for reuse while the cache holds under CCONV_BUFFER_CACHE_MAX
 * bytes (the least recently released buffers are freed first). */
void cconv_buffer_release(void *p, size_t capacity);
#define CCONV_BUFFER_CACHE_MAX ((size_t)1 << 30)
/* Bytes of free array buffers the cache holds. */
size_t cconv_buffer_cached(void);

#endif
