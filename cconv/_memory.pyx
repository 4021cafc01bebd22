# cython: language_level=3
"""The memory behind the arrays cconv returns: empty() hands out large arrays whose buffers come
from (and go back to) the C array buffer cache (csrc/buffer_cache.c), so a training loop reuses
warm pages instead of faulting fresh ones in on every call. release_memory() and memory_held()
also cover the kernels' scratch workspaces, which live in cconv._conv (csrc/workspace.c)."""
from cpython.buffer cimport PyBUF_FORMAT

import numpy as np


cdef extern from "buffer_cache.h" nogil:
    void *cconv_buffer_acquire(size_t nbytes, size_t *capacity)
    void cconv_buffer_release(void *p, size_t capacity)
    size_t cconv_buffer_cached()
    size_t cconv_buffer_trim()


CACHED_MIN_BYTES = 64 * 1024  # smaller arrays come from np.empty (malloc's own bins)
CACHED_MAX_BYTES = 1 << 60
cdef char *BYTE_FORMAT = "B"  # a string literal: static storage


cdef class CachedBuffer:
    """Writable bytes from the C buffer cache (csrc/buffer_cache.c). When the last array viewing
    them dies, so does this object, and the memory goes back to the cache, warm for the next call."""
    cdef void *data
    cdef size_t capacity
    cdef Py_ssize_t nbytes
    cdef Py_ssize_t itemsize

    def __getbuffer__(self, Py_buffer *view, int flags):
        view.buf = self.data
        view.obj = self
        view.len = self.nbytes
        view.readonly = 0
        view.itemsize = 1
        view.format = BYTE_FORMAT if flags & PyBUF_FORMAT else NULL
        view.ndim = 1
        view.shape = &self.nbytes
        view.strides = &self.itemsize
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        if self.data != NULL:
            cconv_buffer_release(self.data, self.capacity)


def empty(shape, dtype):
    """An uninitialised C-contiguous array like np.empty(shape, dtype), 64-byte aligned, whose
    memory comes from (and returns to) the buffer cache when it is large."""
    dtype = np.dtype(dtype)
    try:
        shape = tuple(shape)
    except TypeError:  # one extent, as np.empty takes it
        shape = (shape,)
    count = 1
    for extent in shape:
        count *= extent
    nbytes = count * dtype.itemsize
    if not CACHED_MIN_BYTES <= nbytes <= CACHED_MAX_BYTES or min(shape) < 0:
        return np.empty(shape, dtype)  # small, or np.empty's error for an impossible size
    cdef CachedBuffer buf = CachedBuffer.__new__(CachedBuffer)
    buf.itemsize = 1
    buf.nbytes = nbytes
    buf.data = cconv_buffer_acquire(<size_t>nbytes, &buf.capacity)
    if buf.data == NULL:
        raise MemoryError(f"cconv: could not allocate {nbytes} bytes for an array of shape {shape}")
    return np.frombuffer(buf, dtype, count).reshape(shape)


def release_memory():
    """Free the cached array buffers and the kernels' idle workspaces; returns the bytes freed."""
    from cconv import _conv  # imported when called: importing _memory does not load the kernels

    return cconv_buffer_trim() + _conv.workspace_trim()


def memory_held():
    """(bytes of idle cached array buffers, bytes of workspaces in the kernels' pool)."""
    from cconv import _conv

    return cconv_buffer_cached(), _conv.workspace_held()
