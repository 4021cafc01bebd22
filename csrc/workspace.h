/* workspace.h: the kernels' scratch memory. Workspaces are taken from a small pool of buffers
 * that outlive the call, so steady-state training reuses warm pages instead of faulting fresh
 * ones in on every call (a first-touched page costs microseconds on some VMs). */
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
/* Free every pooled buffer not in use; returns the bytes freed. */
size_t cconv_workspace_trim(void);
/* Bytes held by the pool (in use or not). */
size_t cconv_workspace_held(void);

#endif
