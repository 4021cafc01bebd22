/* aligned.h: 64-byte aligned allocation, portable (malloc with room to align, the raw pointer
 * stored just below the aligned one). Header-only, so that the workspace pool (workspace.c, in
 * cconv._conv) and the array buffer cache (buffer_cache.c, in cconv._memory) each carry a copy
 * and neither extension needs the other's objects. */
#ifndef CCONV_ALIGNED_H
#define CCONV_ALIGNED_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* At least `bytes` bytes at a 64-byte boundary; NULL on failure. Pair with cconv_aligned_free. */
static inline void *cconv_aligned_alloc(size_t bytes)
{
    if (bytes > SIZE_MAX - 64 - sizeof(void *)) return NULL;
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t start = (uintptr_t)(raw + sizeof(void *));
    unsigned char *aligned = (unsigned char *)((start + 63) & ~(uintptr_t)63);
    ((void **)aligned)[-1] = raw;
    return aligned;
}

static inline void cconv_aligned_free(void *p)
{
    if (p) free(((void **)p)[-1]);
}

#endif
