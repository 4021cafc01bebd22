"""The buffer cache behind the arrays that cconv returns (cconv._memory.empty, csrc/buffer_cache.c).

Large outputs come from a cache of warm buffers, so a training loop does not fault fresh pages in
on every call. These tests check that such arrays behave like np.empty's, that a buffer is
reused only once no array views it any more, that the cache stays bounded and empties on
request, that cconv.release_memory() also frees the kernels' idle scratch workspaces
(csrc/workspace.c, in cconv._conv), and that threads allocating at once never share a buffer.
"""
import threading

import numpy as np
import pytest

import cconv
from cconv import _memory
from cconv import functional as F

BIG = (64, 64, 32, 32)  # 16 MiB of float32: from the cache
SMALL = (2, 3, 4, 5)  # from np.empty


def address(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("shape", [BIG, SMALL, 100_000, np.int64(100_000), (np.int32(4), 70_000), (0,), (3, 0, 70_000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_behave_like_np_empty(shape, dtype):
    a = _memory.empty(shape, dtype)
    expected = np.empty(shape, dtype)
    assert a.shape == expected.shape and a.dtype == np.dtype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    if a.nbytes >= 64 * 1024:
        assert address(a) % 64 == 0
    a[...] = 7
    assert np.all(a == 7)
    b = a.reshape(-1).copy()  # a copy is an ordinary array
    assert b.flags.owndata and np.all(b == 7)


def test_a_freed_buffer_is_reused_and_a_viewed_one_is_not():
    cconv.release_memory()
    a = _memory.empty(BIG, np.float32)
    first = address(a)
    del a
    b = _memory.empty(BIG, np.float32)
    assert address(b) == first  # warm memory, no fresh pages
    b[...] = 3
    view = b[5, 7]  # keeps b's buffer alive after b is gone
    del b
    c = _memory.empty(BIG, np.float32)
    assert address(c) != first
    c[...] = -1
    assert np.all(view == 3)
    del view, c


def test_a_much_larger_buffer_is_not_handed_out_for_a_small_array():
    cconv.release_memory()
    del_me = _memory.empty((1 << 22,), np.float32)  # 16 MiB
    big = address(del_me)
    del del_me
    small = _memory.empty((1 << 16,), np.float32)  # 256 KiB: would waste the 16 MiB buffer
    assert address(small) != big
    assert _memory.memory_held()[0] >= 16 << 20


def test_release_memory_empties_the_cache():
    arrays = [_memory.empty((1 << 18,), np.float64) for _ in range(4)]
    del arrays
    assert _memory.memory_held()[0] >= 4 * (2 << 20)
    freed = cconv.release_memory()
    assert freed >= 4 * (2 << 20)
    assert _memory.memory_held()[0] == 0


def test_release_memory_frees_the_kernels_workspaces_too():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w, padding=1)
    del y
    arrays, workspaces = _memory.memory_held()
    assert arrays > 0 and workspaces > 0  # the output's buffer, the kernel's scratch memory
    assert cconv.release_memory() == arrays + workspaces
    assert _memory.memory_held() == (0, 0)


def test_the_cache_is_bounded():
    cconv.release_memory()
    # 40 distinct sizes of 40-80 MiB: more buffers than slots and more bytes than the 1 GiB bound.
    sizes = [(40 << 20) + i * (1 << 20) for i in range(40)]
    arrays = [_memory.empty((s,), np.uint8) for s in sizes]
    del arrays
    held = _memory.memory_held()[0]
    assert 0 < held <= 1 << 30
    cconv.release_memory()


def test_outputs_of_the_operators_come_from_the_cache_and_are_right():
    cconv.release_memory()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w, padding=1)
    ref = F.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    first = address(y)
    del y
    y = F.conv2d(x, w, padding=1)  # into the buffer the first output left
    assert address(y) == first
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    p = F.max_pool2d(y, 2)
    np.testing.assert_array_equal(p, y.reshape(8, 32, 16, 2, 16, 2).max(axis=(3, 5)))


def test_threads_never_share_a_buffer():
    errors = []

    def worker(value):
        try:
            for _ in range(200):
                a = _memory.empty((1 << 16,), np.float64)  # 512 KiB
                a[...] = value
                if not np.all(a == value):
                    errors.append(value)
                del a
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(v,)) for v in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_buffer_that_cannot_be_allocated_raises_memory_error():
    with pytest.raises(MemoryError, match="could not allocate"):
        _memory.empty((1 << 48,), np.float32)  # 1 PiB: inside the cache's range, beyond any machine


def test_impossible_sizes_raise_numpy_errors():
    with pytest.raises((ValueError, MemoryError)):
        _memory.empty((1 << 40, 1 << 40), np.float32)
    with pytest.raises(ValueError):
        _memory.empty((-1, 100_000), np.float32)
