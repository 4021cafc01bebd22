"""The thread count that cconv's kernels use (scikit-learn's conventions).

None (the default) means OpenMP's own default, which honours OMP_NUM_THREADS and
threadpoolctl; -1 means every core; a positive int is that many threads; 0 is an error.

Whatever is asked for (set_num_threads(20000), OMP_NUM_THREADS=100000), the kernels use at
most max_threads() = THREADS_PER_CPU x the CPUs this process may run on: more threads only
compete for the same cores, and GNU libgomp ends the whole process (exit(1), no exception)
when the system refuses it a thread, so it is never asked for thousands.
"""
import numbers
import os
import threading

from cconv import _conv

_lock = threading.Lock()
_requested = None

THREADS_PER_CPU = 4  # the most threads get_num_threads grants per CPU this process may use


def max_threads():
    """The most threads a kernel call uses: THREADS_PER_CPU x the CPUs OpenMP may use (1 in a
    build without OpenMP)."""
    if not _conv.openmp_version():
        return 1
    return THREADS_PER_CPU * max(1, _conv.openmp_num_procs())


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
    """Use `n` threads in every kernel: None = OpenMP's default, -1 = all cores, n >= 1.

    A count above max_threads() (THREADS_PER_CPU x the CPUs this process may use) is clamped
    to it: get_num_threads() reports the count the kernels will really use."""
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
    """The number of threads the next kernel call will use, at most max_threads()."""
    n = _requested
    if n is None:
        n = _conv.openmp_max_threads()  # OMP_NUM_THREADS, threadpoolctl
    elif n == -1:
        n = _conv.openmp_num_procs()
    return max(1, min(n, max_threads()))
