"""The Winograd algorithm (csrc/conv2d_winograd.h): F(4x4, 3x3) and F(2x2, 3x3) minimal filtering
for 3x3 stride-1 convolutions, forward and gradient of the input. Checked against the float64
NumPy reference (tests/reference.py) on random geometries, for its accuracy in float32 at realistic
weight scales, for non-finite values (it hands those to the GEMM), and for what 'auto' picks.
test_algorithms.py also runs it forced by name on its shared cases, on every SIMD path."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cconv import functional as F

import reference as ref
from hypothesis_profiles import examples
from test_conv_paths import assert_non_finite_like_torch
from test_properties import SIMD_PATHS, running

GRAD_INPUT = {"grad_input": "winograd", "grad_weight": "gemm"}


@settings(max_examples=examples(80), deadline=None)
@given(data=st.data())
def test_winograd_matches_reference(data):
    """Random 3x3 stride-1 geometries (any padding and dilation, maps down to one pixel, so both
    tile sizes), forced onto Winograd for the forward and the gradient of the input, with and
    without ReLU."""
    n, c, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    pad = ((data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))),
           (data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))))
    dilation = (data.draw(st.sampled_from([1, 1, 2, 3])), data.draw(st.sampled_from([1, 1, 2, 3])))
    h, w = data.draw(st.integers(1, 21)), data.draw(st.integers(1, 21))
    relu = data.draw(st.booleans())
    if h + sum(pad[0]) < 2 * dilation[0] + 1 or w + sum(pad[1]) < 2 * dilation[1] + 1:
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x, weight = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))
    bias = rng.standard_normal(k)
    activation = "relu" if relu else None
    y = F.conv2d(x, weight, bias, padding=pad, dilation=dilation, activation=activation, algorithm="winograd")
    plain = ref.conv2d(x, weight, bias, padding=pad, dilation=dilation)
    ref.assert_close(y, np.maximum(plain, 0) if relu else plain, np.float64, "y")
    grad_out = rng.standard_normal(y.shape)
    grads = F.conv2d_backward(grad_out, x, weight, padding=pad, dilation=dilation, activation=activation,
                              output=y if relu else None, algorithm=GRAD_INPUT)
    expected = ref.conv2d_backward(grad_out * (plain > 0) if relu else grad_out, x, weight, padding=pad,
                                   dilation=dilation)
    ref.assert_close(grads[0], expected[0], np.float64, "grad_x")


# (x shape, filters): the 3x3 layers of the benchmarks with fewer images, and small maps (2x2 tiles)
ACCURACY_SHAPES = [((2, 64, 32, 32), 64), ((2, 128, 16, 16), 128), ((1, 256, 14, 14), 256), ((4, 512, 2, 2), 64)]


@pytest.mark.parametrize("isa", SIMD_PATHS)
@pytest.mark.parametrize("x_shape,k", ACCURACY_SHAPES)
def test_winograd_float32_accuracy(x_shape, k, isa):
    """He-initialised weights on ReLU-like inputs (non-negative, as after a ReLU): the float32
    error, normalised by the largest output of the float64 reference, stays within 1e-4."""
    rng = np.random.default_rng(7)
    c = x_shape[1]
    x = np.maximum(rng.standard_normal(x_shape), 0).astype(np.float32)
    weight = (rng.standard_normal((k, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
    with running(2, isa):
        y = F.conv2d(x, weight, padding=1, algorithm="winograd")
        grad_out = rng.standard_normal(y.shape).astype(np.float32)
        dx = F.conv2d_backward(grad_out, x, weight, padding=1, algorithm=GRAD_INPUT)[0]
    want_y = ref.conv2d(x.astype(np.float64), weight.astype(np.float64), padding=1)
    want_dx = ref.conv2d_backward(grad_out.astype(np.float64), x.astype(np.float64), weight.astype(np.float64),
                                  padding=1)[0]
    for what, got, want in (("y", y, want_y), ("grad_x", dx, want_dx)):
        error = np.max(np.abs(got - want)) / np.max(np.abs(want))
        assert error <= 1e-4, f"{what}: normalised error {error:.2e}"


@pytest.mark.parametrize("poisoned", ["x", "weight", "grad_out"])
def test_winograd_non_finite_values_stay_where_torch_puts_them(poisoned):
    """A transform mixes a whole tile: an infinity would spread NaN over its tile, so such calls run
    the GEMM, and infinities and NaN land exactly where torch puts them."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x, weight, bias = rng.standard_normal((2, 6, 11, 13)), rng.standard_normal((8, 6, 3, 3)), rng.standard_normal(8)
    kwargs = dict(padding=1)
    grad_out = rng.standard_normal((2, 8, 11, 13))
    target = {"x": x, "weight": weight, "grad_out": grad_out}[poisoned]
    target.flat[rng.choice(target.size, 3, replace=False)] = np.inf
    y = F.conv2d(x, weight, bias, algorithm="winograd", **kwargs)
    grads = F.conv2d_backward(grad_out, x, weight, algorithm=GRAD_INPUT, **kwargs)
    assert_non_finite_like_torch(torch, x, weight, bias, kwargs, y, grad_out, grads)


def test_winograd_results_do_not_depend_on_the_thread_count():
    """Each output is computed by one work item whatever the items are: bit-identical results."""
    rng = np.random.default_rng(2)
    x, weight = rng.standard_normal((3, 16, 30, 17)).astype(np.float32), rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        with running(threads, SIMD_PATHS[-1]):
            y = F.conv2d(x, weight, padding=1, algorithm="winograd")
            results.append((y, F.conv2d_backward(y, x, weight, padding=1, algorithm=GRAD_INPUT)[0]))
    for y, dx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def test_winograd_weight_pass_is_refused_by_name():
    x, w = np.ones((1, 4, 6, 6), np.float32), np.ones((4, 4, 3, 3), np.float32)
    listed = F.conv_algorithms(x.shape, w.shape, padding=1)
    assert "winograd" in listed["forward"]["applicable"] and "winograd" in listed["grad_input"]["applicable"]
    assert "winograd" not in listed["grad_weight"]["applicable"]
    with pytest.raises(ValueError, match=r"grad weight pass.*\{'grad_input': 'winograd'\}"):
        F.conv2d_backward(np.ones((1, 4, 6, 6), np.float32), x, w, padding=1, algorithm="winograd")
    for kwargs in (dict(stride=2), dict(groups=2)):
        wg = np.ones((4, 4 // kwargs.get("groups", 1), 3, 3), np.float32)
        assert all("winograd" not in entry["applicable"]
                   for entry in F.conv_algorithms(x.shape, wg.shape, **kwargs).values())


def test_auto_runs_winograd_where_both_channel_counts_are_large():
    """The products repay the transforms only with many input and output channels."""
    # also maps smaller than one tile row of a dilated phase: 7x7, 4x4 and 2x2, batched
    for x_shape, w_shape in (((8, 64, 32, 32), (64, 64, 3, 3)), ((4, 256, 14, 14), (256, 256, 3, 3)),
                             ((1, 64, 56, 56), (64, 64, 3, 3)), ((16, 512, 7, 7), (512, 512, 3, 3)),
                             ((32, 512, 4, 4), (512, 512, 3, 3)), ((64, 256, 2, 2), (256, 256, 3, 3))):
        listed = F.conv_algorithms(x_shape, w_shape, padding=1)
        assert listed["forward"]["auto"] == "winograd" and listed["grad_input"]["auto"] == "winograd"
        assert listed["grad_weight"]["auto"] != "winograd"
    for x_shape, w_shape in (((8, 3, 32, 32), (64, 3, 3, 3)), ((8, 64, 32, 32), (8, 64, 3, 3)),
                             ((8, 64, 32, 32), (64, 64, 5, 5))):
        listed = F.conv_algorithms(x_shape, w_shape, padding=1)
        assert listed["forward"]["auto"] != "winograd"
