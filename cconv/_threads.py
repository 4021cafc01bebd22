"""The thread count that cconv's kernels use (scikit-learn's conventions).

None (the default) means OpenMP's own default, which honours OMP_NUM_THREADS and
threadpoolctl; -1 means every core; a positive int is that many threads; 0 is an error.
"""
import numbers
import os
import threading

from cconv import _conv

_lock = threading.Lock()
_requested = None


def _single_thread_after_fork():
    """GNU libgomp is not fork-safe: a child forked after the parent ran a parallel region
    deadlocks in its own first one. So a forked child (multiprocessing's 'fork', joblib's
    multiprocessing backend) runs cconv single-threaded unless it calls set_num_threads itself."""
    global _requested, _lock
    _lock = threading.Lock()
    _requested = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_thread_after_fork)


def set_num_threads(n):
    """Use `n` threads in every kernel: None = OpenMP's default, -1 = all cores, n >= 1."""
    global _requested
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):  # NumPy ints too
            raise TypeError(f"set_num_threads takes None or an int, got {type(n).__name__}")
        n = int(n)
        if n == 0 or n < -1:
            raise ValueError(f"set_num_threads takes None, -1 (all cores) or n >= 1, got {n}")
    with _lock:
        _requested = n


def get_num_threads():
    """The number of threads the next kernel call will use."""
    n = _requested
    if n is None:
        return _conv.openmp_max_threads()
    if n == -1:
        return _conv.openmp_num_procs() if _conv.openmp_version() else 1
    return n if _conv.openmp_version() else 1
