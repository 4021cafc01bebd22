/* workspace.h: the kernels' scratch memory. Workspaces come from a pool of buffers that outlive
 * the call, so steady-state training reuses warm pages instead of faulting fresh ones in on every
 * call (a first-touched page costs microseconds on some VMs, and more when another library has
 * just handed the heap back to the system). The memory behind the arrays cconv returns has its
 * own cache, in buffer_cache.h. */
#ifndef CCONV_WORKSPACE_H
#define CCONV_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "aligned.h" /* cconv_aligned_alloc / cconv_aligned_free */

/* A 64-byte aligned buffer of at least `bytes` bytes, contents unspecified, from the pool when
 * one is free (thread-safe); NULL when out of memory. Give it back with cconv_workspace_release. */
void *cconv_workspace_acquire(size_t bytes);
/* cconv_workspace_acquire for `count` elements of elem_size bytes, a size from checked_math.h:
 * NULL, as when out of memory, for a count that is negative, CCONV_SIZE_OVERFLOW or too large for
 * the address space. */
void *cconv_workspace_acquire_elems(int64_t count, size_t elem_size);
void cconv_workspace_release(void *p);
/* Free every pooled workspace not in use; returns the bytes freed. */
size_t cconv_workspace_trim(void);
/* Bytes held by the pool (in use or not). */
size_t cconv_workspace_held(void);

#endif
