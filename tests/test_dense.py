"""Tests of cconv.functional.dense / dense_backward (the fully connected kernels on cconv's GEMM).

Against NumPy's float64 matmul, finite differences in float64, the fused ReLU, skipping grad_x,
bad arguments, and thread-count independence (each output is computed by one thread in a fixed
order, so 1 and 2 threads give bitwise-equal results).
"""
import numpy as np
import pytest

import cconv
from cconv import functional as F
from reference import assert_close, call_unmodified, numerical_gradient, rel_error

SHAPES = [(1, 1, 1), (3, 5, 7), (64, 3136, 128), (130, 257, 33), (17, 300, 10), (0, 4, 3), (5, 0, 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", [None, "relu"])
def test_matches_numpy(shape, dtype, activation, rng):
    n, features_in, features_out = shape
    x = rng.standard_normal((n, features_in)).astype(dtype)
    w = rng.standard_normal((features_in, features_out)).astype(dtype)
    b = rng.standard_normal(features_out).astype(dtype)
    y = call_unmodified(F.dense, x, w, b, activation=activation)
    expected = x.astype(np.float64) @ w + b
    if activation == "relu":
        expected = np.maximum(expected, 0)
    assert y.dtype == dtype
    assert_close(y, expected, dtype, "y")
    g = rng.standard_normal(y.shape).astype(dtype)
    grads = call_unmodified(F.dense_backward, g, x, w, activation=activation, output=y)
    gm = g.astype(np.float64) * (y > 0) if activation == "relu" else g.astype(np.float64)
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, (gm @ w.T, x.T @ gm, gm.sum(0))):
        assert got.dtype == dtype
        assert_close(got, want, dtype, name)


def test_gradients_match_finite_differences(rng):
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    g = rng.standard_normal((4, 5))
    grad_x, grad_w, grad_b = F.dense_backward(g, x, w)
    for analytic, array in ((grad_x, x), (grad_w, w)):
        numeric = numerical_gradient(lambda: np.array(np.sum(F.dense(x, w, b) * g)), array, 1.0, 1e-6)
        assert rel_error(analytic, numeric) < 1e-6
    numeric = numerical_gradient(lambda: np.array(np.sum(F.dense(x, w, b) * g)), b, 1.0, 1e-6)
    assert rel_error(grad_b, numeric) < 1e-6


def test_skipping_grad_x_keeps_the_other_gradients(rng):
    x, w, g = rng.standard_normal((9, 20)), rng.standard_normal((20, 7)), rng.standard_normal((9, 7))
    full = F.dense_backward(g, x, w)
    grad_x, grad_w, grad_b = F.dense_backward(g, x, w, compute_grad_x=False)
    assert grad_x is None
    np.testing.assert_array_equal(grad_w, full[1])
    np.testing.assert_array_equal(grad_b, full[2])


def test_thread_count_does_not_change_the_bits(rng):
    x = rng.standard_normal((96, 700)).astype(np.float32)
    w = rng.standard_normal((700, 200)).astype(np.float32)
    g = rng.standard_normal((96, 200)).astype(np.float32)
    results = []
    for threads in (1, 2):
        cconv.set_num_threads(threads)
        results.append((F.dense(x, w),) + F.dense_backward(g, x, w))
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.dense(np.ones((2, 3)), np.ones((4, 5))), ValueError, "features"),
    (lambda: F.dense(np.ones((2, 3, 1)), np.ones((3, 5))), ValueError, "2-D"),
    (lambda: F.dense(np.ones((2, 3), np.float32), np.ones((3, 5))), TypeError, "dtype"),
    (lambda: F.dense(np.ones((2, 3), int), np.ones((3, 5), int)), TypeError, "float"),
    (lambda: F.dense(np.ones((2, 3)), np.ones((3, 5)), np.ones(4)), ValueError, "bias"),
    (lambda: F.dense(np.ones((2, 3)), np.ones((3, 5)), activation="tanh"), ValueError, "activation"),
    (lambda: F.dense(None, np.ones((3, 5))), TypeError, "None"),
    (lambda: F.dense_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((3, 5))), ValueError, "grad_out"),
    (lambda: F.dense_backward(np.ones((2, 5)), np.ones((2, 3)), np.ones((3, 5)), activation="relu"),
     ValueError, "output="),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
