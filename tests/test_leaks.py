"""Memory leaks: the resident set size stays flat over 10,000 calls of every operator and over
2 epochs of training a small CNN.

RSS is read from /proc/self/statm (Linux only; the tests skip elsewhere) after a warm-up (the
OpenMP thread pool, NumPy's caches and the allocator's arenas settle in the first calls) and
again after the loop; growth beyond 5 MB fails. Before each reading the allocator gives its free
memory back to the system (glibc's malloc_trim), so that RSS is the memory in use: otherwise a
leak could hide in memory that earlier tests freed but the process kept. The shapes are small, so the loops are quick,
but every call allocates its outputs and its C workspaces (tens of KB for the convolution), so
leaking either would grow RSS by far more than the bound: the first test proves that a leak of
4 KB per call is seen.
"""
import ctypes
import ctypes.util
import gc
import os

import numpy as np
import pytest

import cconv
from cconv import functional as F
from cconv.layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, LPPool2D, MaxPool2D,
                          Residual)

CALLS = 10_000
WARMUP = 300
BOUND = 5 * 2**20

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm (Linux)")


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


def rss_bytes():
    """The resident set size after garbage collection and malloc_trim (where the C library has it)."""
    gc.collect()
    if hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_growth(function, calls=CALLS, warmup=WARMUP):
    """RSS after `calls` calls of function() minus RSS after `warmup` calls."""
    for _ in range(warmup):
        function()
    before = rss_bytes()
    for _ in range(calls):
        function()
    return rss_bytes() - before


def test_the_probe_sees_a_leak_of_4kb_per_call():
    """4 KB (a page) per call: smaller leaks can hide in free space that earlier tests left
    inside partly used heap pages, which malloc_trim cannot give back."""
    kept = []
    growth = rss_growth(lambda: kept.append(np.ones(512)))  # 4 KB of data per call, never freed
    assert growth > BOUND, f"only {growth / 2**20:.1f} MB for {CALLS * 4096 / 2**20:.1f} MB leaked"


RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 4, 16, 16))
WEIGHT = RNG.standard_normal((8, 4, 3, 3))
BIAS = RNG.standard_normal(8)
Y = F.conv2d(X, WEIGHT, BIAS, padding=1, activation="relu")
GRAD_Y = RNG.standard_normal(Y.shape)
GRAD_POOL = RNG.standard_normal((2, 4, 8, 8))
OPERATORS = {
    "conv2d": lambda: F.conv2d(X, WEIGHT, BIAS, padding=1),
    "conv2d-relu-float32": lambda: F.conv2d(X.astype(np.float32), WEIGHT.astype(np.float32), activation="relu"),
    "conv2d_backward": lambda: F.conv2d_backward(GRAD_Y, X, WEIGHT, padding=1),
    "conv2d_backward-relu": lambda: F.conv2d_backward(GRAD_Y, X, WEIGHT, padding=1, activation="relu", output=Y),
    "max_pool2d": lambda: F.max_pool2d(X, 3, 2, 1, ceil_mode=True),
    "max_pool2d_backward": lambda: F.max_pool2d_backward(GRAD_POOL, X, 2),
    "avg_pool2d": lambda: F.avg_pool2d(X, 3, 2, 1, count_include_pad=False),
    "avg_pool2d_backward": lambda: F.avg_pool2d_backward(GRAD_POOL, X, 2),
    "lp_pool2d": lambda: F.lp_pool2d(X, 3, 2),
    "lp_pool2d_backward": lambda: F.lp_pool2d_backward(GRAD_POOL, np.abs(X), 1.5, 2),
    # arguments that need a copy (Fortran order, big-endian) and calls that raise
    "conv2d-fortran-big-endian": lambda: F.conv2d(np.asfortranarray(X).astype(">f8"), WEIGHT),
    "conv2d-error": lambda: pytest.raises(ValueError, F.conv2d, X, WEIGHT, groups=3),
}


@pytest.mark.parametrize("name", list(OPERATORS))
def test_operator_calls_keep_rss_flat(name):
    growth = rss_growth(OPERATORS[name])
    assert growth < BOUND, f"{name}: RSS grew by {growth / 2**20:.1f} MB over {CALLS} calls"


def test_two_epochs_of_training_keep_rss_flat():
    """Every kind of layer; the digits data repeated to 11,496 images, 16 per batch (1,437 steps)."""
    (x, y), _ = cconv.datasets.load_digits()
    x, y = np.concatenate([x] * 8), np.concatenate([y] * 8)
    model = cconv.Sequential([
        Conv2D(8, 3, padding="same", activation="relu"), BatchNorm2D(),
        Residual([Conv2D(8, 3, padding="same", activation="relu")]), MaxPool2D(2),
        Conv2D(8, 3, padding=1, activation="tanh"), AvgPool2D(2, padding=1), LPPool2D(2, 2),
        Flatten(), Dropout(0.2), Dense(10)], input_shape=(1, 8, 8), seed=0)
    trainer = cconv.Trainer(model, optimizer="adam")
    trainer.fit(x[:1000], y[:1000], epochs=1, batch_size=16, verbose=0, seed=0)  # warm-up
    before = rss_bytes()
    history = trainer.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=1)
    growth = rss_bytes() - before
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MB over 2 epochs"
