"""Hostile inputs to every operator: NaN and Inf (against PyTorch), a 0 in any dimension, 1x1
images, kernels as large as the (padded) input, thousands of channels on tiny images, strides
past the input, views of other arrays, and Python scalars / lists where arrays are expected.
The riskiest calls (sizes near 2**31) run in a subprocess, so that a crash fails one test
instead of killing the run.

What each operator does with a 0 in a dimension (T: the same as torch):
  conv2d    N=0  output (0, K, P, Q); grad_x empty, grad_weight and grad_bias zero (T).
            C=0  ValueError naming x (torch returns an odd empty (N, 0, P, Q)).
            K=0  output (N, 0, P, Q); grad_x zero, empty grad_weight / grad_bias (torch raises).
            H=0 or W=0  ValueError (the kernel does not fit) unless the padding makes room; then
                 the output is all padding, i.e. the bias, and grad_bias the sum of grad_out
                 (torch raises).
  pooling   N=0  output (0, C, P, Q); backward an empty grad_x (T).
            C=0  output (N, 0, P, Q); backward an empty grad_x (torch raises).
            H=0 or W=0  ValueError naming x, whatever the padding (torch raises too).
Non-finite values follow PyTorch's float64 CPU path, which counts zero padding as 0 * w (so an
infinite weight next to the padding gives NaN). PyTorch's float32 path (oneDNN) skips the padding
taps instead and can give +-Inf there; cconv gives the same answer for both dtypes.
Lists of floats are converted with np.asarray (so they become float64); anything whose dtype
is not float32 / float64 is a TypeError naming the argument; a scalar is a ValueError (not 4-D).
NumPy integers and 0-d / 1-d integer arrays are accepted wherever ints and pairs are.

These tests found (and now pin) four fixes: C=0 convolutions raise; the fused ReLU passes the
gradient where its output is NaN, as torch does; lp_pool2d_backward gives torch's NaN at an
infinite input; a 0-d array is accepted as a scalar kernel_size / stride.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cconv
from cconv import functional as F

import reference as ref
from reference import assert_close, call_unmodified

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]
CCONV_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives


# ----------------------------------------------------------------------------- NaN and Inf

def poison(a, rng, kinds=("nan", "inf", "-inf"), fraction=0.1):
    """A copy of `a` with about `fraction` of its entries replaced by the given non-finite values."""
    a = a.copy()
    spot = rng.random(a.shape)
    for i, kind in enumerate(kinds):
        chosen = (spot >= i * fraction / len(kinds)) & (spot < (i + 1) * fraction / len(kinds))
        a[chosen] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
    return a


def assert_same_nonfinite(got, want, dtype, what):
    """NaN, +Inf and -Inf in the same places as torch's result `want`; the rest close."""
    want = want.detach().numpy() if hasattr(want, "detach") else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch {want.shape}"
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        differ = np.flatnonzero(test(got) != test(want))
        assert differ.size == 0, (f"{what}: {name} at different places, first flat index {differ[0]}: "
                                  f"cconv {got.flat[differ[0]]}, torch {want.flat[differ[0]]}")
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite], dtype, what)


def torch_tensor(torch, a):
    """A float64 leaf tensor (the oracle's dtype, see the module docstring) that records its grad."""
    return torch.tensor(np.asarray(a, np.float64), requires_grad=True)


CONV_GEOMETRY = {
    "padded-stride2": (((2, 3, 7, 7), (4, 3, 3, 3)), dict(stride=2, padding=1)),
    "depthwise-dilated": (((2, 4, 8, 8), (4, 1, 3, 3)), dict(padding=2, dilation=2, groups=4)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("poisoned, activation", [("x", None), ("weight", None), ("bias", None), ("grad_out", None),
                                                  ("grad_out", "relu")])
@pytest.mark.parametrize("geometry", list(CONV_GEOMETRY))
def test_conv_nan_inf_propagate_like_torch(geometry, poisoned, activation, dtype):
    """The fused ReLU with non-finite values in x, weight or bias: see the next test."""
    torch = pytest.importorskip("torch")
    (x_shape, w_shape), kwargs = CONV_GEOMETRY[geometry]
    rng = np.random.default_rng(sum(map(ord, geometry + poisoned)))
    arrays = dict(x=rng.standard_normal(x_shape), weight=rng.standard_normal(w_shape),
                  bias=rng.standard_normal(w_shape[0]))
    if poisoned != "grad_out":
        arrays[poisoned] = poison(arrays[poisoned], rng, fraction=0.3 if poisoned == "bias" else 0.1)
    x, weight, bias = (arrays[k].astype(dtype) for k in ("x", "weight", "bias"))
    y = call_unmodified(F.conv2d, x, weight, bias, activation=activation, **kwargs)
    grad_out = rng.standard_normal(y.shape)
    if poisoned == "grad_out":
        grad_out = poison(grad_out, rng)
    grad_out = grad_out.astype(dtype)
    relu = dict(activation="relu", output=y) if activation else {}
    grads = call_unmodified(F.conv2d_backward, grad_out, x, weight, **kwargs, **relu)

    xt, wt, bt = torch_tensor(torch, x), torch_tensor(torch, weight), torch_tensor(torch, bias)
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kwargs)
    if activation:
        yt = torch.relu(yt)
    yt.backward(torch.tensor(grad_out.astype(np.float64)))
    assert_same_nonfinite(y, yt, dtype, "y")
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, (xt.grad, wt.grad, bt.grad)):
        assert_same_nonfinite(got, want, dtype, name)


def test_fused_relu_gradient_where_the_output_is_nan_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, -1.0, 2.0]).reshape(1, 3, 1, 1)
    weight = np.ones((3, 1, 1, 1))
    y = F.conv2d(x, weight, groups=3, activation="relu")
    grad_x = F.conv2d_backward(np.ones(y.shape), x, weight, groups=3, activation="relu", output=y)[0]
    xt = torch_tensor(torch, x)
    torch.relu(torch.nn.functional.conv2d(xt, torch.tensor(weight), groups=3)).backward(torch.ones(1, 3, 1, 1))
    np.testing.assert_array_equal(y.ravel(), [np.nan, 0.0, 2.0])
    np.testing.assert_array_equal(grad_x.ravel(), xt.grad.numpy().ravel())  # torch: [1, 0, 1]


# op: (cconv forward, cconv backward, torch forward, positional args after x)
POOL_OPS = {
    "max": (F.max_pool2d, F.max_pool2d_backward, "max_pool2d", (3, 2, 1), dict(ceil_mode=True)),
    "avg": (F.avg_pool2d, F.avg_pool2d_backward, "avg_pool2d", (3, 2, 1), dict(ceil_mode=True)),
    "avg-no-pad-count": (F.avg_pool2d, F.avg_pool2d_backward, "avg_pool2d", (3, 2, 1),
                         dict(ceil_mode=True, count_include_pad=False)),
    "lp2": (F.lp_pool2d, F.lp_pool2d_backward, "lp_pool2d", (2, 3, 2), dict(ceil_mode=True)),
    "lp3": (F.lp_pool2d, F.lp_pool2d_backward, "lp_pool2d", (3, (2, 3), (2, 1)), dict(ceil_mode=True)),
}
POISONS = {"nan-x": ("x", ("nan",)), "inf-x": ("x", ("inf", "-inf")), "mixed-x": ("x", ("nan", "inf", "-inf")),
           "grad_out": ("grad_out", ("nan", "inf", "-inf"))}


def pool_nonfinite_params(backward):
    params = []
    for op in POOL_OPS:
        for poison_name in POISONS:
            if poison_name == "grad_out" and not backward:
                continue
            params.append(pytest.param(op, poison_name, id=f"{op}-{poison_name}"))
    return params


def _pool_inputs(op, poison_name, dtype, shape=(2, 3, 9, 10)):
    rng = np.random.default_rng(sum(map(ord, op + poison_name)))
    x = rng.standard_normal(shape)
    if op.startswith("lp"):  # torch's lp formula gives NaN for negative power sums: keep x > 0
        x = np.abs(x) + 0.1
    where, kinds = POISONS[poison_name]
    if where == "x":
        x = poison(x, rng, kinds)
    return x.astype(dtype), rng, where, kinds


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op, poison_name", pool_nonfinite_params(backward=False))
def test_pool_forward_nan_inf_like_torch(op, poison_name, dtype):
    torch = pytest.importorskip("torch")
    forward, _, torch_name, args, kwargs = POOL_OPS[op]
    x, _, _, _ = _pool_inputs(op, poison_name, dtype)
    y = call_unmodified(forward, x, *args, **kwargs)
    want = getattr(torch.nn.functional, torch_name)(torch_tensor(torch, x), *args, **kwargs)
    assert_same_nonfinite(y, want, dtype, "y")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op, poison_name", pool_nonfinite_params(backward=True))
def test_pool_backward_nan_inf_like_torch(op, poison_name, dtype):
    """lp pooling with p = 1 is left out: torch's formula routes the gradient through
    relu(abs(.)), whose derivative at NaN is 0, so torch zeroes a NaN window's gradient where the
    derivative of the sum (which cconv and the reference give) is 1."""
    torch = pytest.importorskip("torch")
    forward, backward, torch_name, args, kwargs = POOL_OPS[op]
    x, rng, where, kinds = _pool_inputs(op, poison_name, dtype)
    y = forward(x, *args, **kwargs)
    grad_out = rng.standard_normal(y.shape)
    if where == "grad_out":
        grad_out = poison(grad_out, rng, kinds)
    grad_out = grad_out.astype(dtype)
    grad_x = call_unmodified(backward, grad_out, x, *args, **kwargs)
    xt = torch_tensor(torch, x)
    getattr(torch.nn.functional, torch_name)(xt, *args, **kwargs).backward(torch.tensor(grad_out.astype(np.float64)))
    assert_same_nonfinite(grad_x, xt.grad, dtype, "grad_x")


# ----------------------------------------------------------------------------- a 0 in a dimension

def test_conv_zero_batch_matches_torch():
    torch = pytest.importorskip("torch")
    x, weight, bias = np.ones((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.arange(3.0)
    y = F.conv2d(x, weight, bias, padding=1)
    grads = F.conv2d_backward(np.ones(y.shape), x, weight, padding=1)
    xt, wt, bt = torch_tensor(torch, x), torch_tensor(torch, weight), torch_tensor(torch, bias)
    yt = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
    yt.backward(torch.ones_like(yt))
    assert y.shape == tuple(yt.shape) == (0, 3, 5, 5)
    for got, want in zip(grads, (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_array_equal(got, want.numpy())


def test_conv_zero_channels_matches_torch_or_raises():
    torch = pytest.importorskip("torch")
    x, weight, bias = np.ones((2, 0, 5, 5)), np.ones((3, 0, 3, 3)), np.arange(3.0)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), padding=1)
    try:
        y = F.conv2d(x, weight, bias, padding=1)
    except ValueError as exc:
        assert "x" in str(exc) or "channel" in str(exc)
        return
    np.testing.assert_array_equal(y, want.numpy())


def test_conv_zero_filters_gives_empty_output_and_zero_grad_x():
    """torch rejects K = 0; cconv returns the empty results the shapes imply."""
    x, weight = np.ones((2, 3, 5, 5)), np.ones((0, 3, 3, 3))
    y = F.conv2d(x, weight, np.ones(0), padding=1)
    assert y.shape == (2, 0, 5, 5)
    grad_x, grad_weight, grad_bias = F.conv2d_backward(np.ones(y.shape), x, weight, padding=1)
    np.testing.assert_array_equal(grad_x, np.zeros(x.shape))
    assert grad_weight.shape == (0, 3, 3, 3) and grad_bias.shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("x_shape", [(2, 3, 0, 4), (2, 3, 4, 0), (2, 3, 0, 0)], ids=["H=0", "W=0", "H=W=0"])
def test_conv_empty_image_is_all_padding(x_shape, dtype):
    """torch rejects an empty image; cconv gives the output of convolving the zero padding."""
    rng = np.random.default_rng(0)
    x, bias = np.ones(x_shape, dtype), np.arange(5, dtype=dtype)
    weight = rng.standard_normal((5, 3, 2, 3)).astype(dtype)
    with pytest.raises(ValueError, match="kernel.*larger"):
        F.conv2d(x, weight, bias)
    y = call_unmodified(F.conv2d, x, weight, bias, padding=2)
    assert y.shape == (2, 5) + tuple(size + 4 - k + 1 for size, k in zip(x_shape[2:], (2, 3)))
    np.testing.assert_array_equal(y, np.broadcast_to(bias[None, :, None, None], y.shape))
    grad_out = rng.standard_normal(y.shape).astype(dtype)
    grad_x, grad_weight, grad_bias = call_unmodified(F.conv2d_backward, grad_out, x, weight, padding=2)
    assert grad_x.shape == x_shape and grad_x.dtype == dtype
    np.testing.assert_array_equal(grad_weight, np.zeros_like(weight))
    assert_close(grad_bias, grad_out.astype(np.float64).sum(axis=(0, 2, 3)), dtype, "grad_bias")


POOL_CALLS = {  # op: (forward(x), backward(grad_out, x), torch call on a tensor)
    "max": (lambda x: F.max_pool2d(x, 2, padding=1), lambda g, x: F.max_pool2d_backward(g, x, 2, padding=1),
            lambda tf, t: tf.max_pool2d(t, 2, padding=1)),
    "avg": (lambda x: F.avg_pool2d(x, 3, 2, 1, True), lambda g, x: F.avg_pool2d_backward(g, x, 3, 2, 1, True),
            lambda tf, t: tf.avg_pool2d(t, 3, 2, 1, True)),
    "lp": (lambda x: F.lp_pool2d(x, 2, 2), lambda g, x: F.lp_pool2d_backward(g, x, 2, 2),
           lambda tf, t: tf.lp_pool2d(t, 2, 2)),
}


@pytest.mark.parametrize("op", list(POOL_CALLS))
def test_pool_zero_batch_matches_torch(op):
    torch = pytest.importorskip("torch")
    forward, backward, torch_call = POOL_CALLS[op]
    x = np.ones((0, 3, 5, 6))
    y = forward(x)
    xt = torch_tensor(torch, x)
    yt = torch_call(torch.nn.functional, xt)
    yt.backward(torch.ones_like(yt))
    assert y.shape == tuple(yt.shape) and y.shape[0] == 0
    assert backward(np.ones(y.shape), x).shape == tuple(xt.grad.shape) == x.shape


@pytest.mark.parametrize("op", list(POOL_CALLS))
def test_pool_zero_channels_gives_empty_results(op):
    """torch rejects C = 0 for pooling; cconv returns the empty results the shapes imply."""
    forward, backward, _ = POOL_CALLS[op]
    x = np.ones((2, 0, 5, 6))
    y = forward(x)
    assert y.shape[:2] == (2, 0) and y.size == 0
    assert backward(np.ones(y.shape), x).shape == x.shape


@pytest.mark.parametrize("op", list(POOL_CALLS))
@pytest.mark.parametrize("x_shape", [(2, 3, 0, 4), (2, 3, 4, 0)], ids=["H=0", "W=0"])
def test_pool_empty_image_raises_naming_x(op, x_shape):
    forward, backward, _ = POOL_CALLS[op]
    x = np.ones(x_shape)
    with pytest.raises(ValueError, match=r"\bx\b"):
        forward(x)
    with pytest.raises(ValueError, match=r"\bx\b"):
        backward(np.ones((2, 3, 1, 1)), x)


# ----------------------------------------------------------------------------- odd geometries

BIG = 2**31 - 1  # the largest size cconv accepts
CONV_EDGES = {  # id: (x shape, weight shape, kwargs)
    "1x1-image": ((2, 3, 1, 1), (4, 3, 1, 1), {}),
    "1x1-image-3x3-kernel-padded": ((2, 3, 1, 1), (4, 3, 3, 3), dict(padding=1)),
    "1x1-image-same-stride3": ((1, 2, 1, 1), (2, 2, 3, 3), dict(padding="same", stride=3)),
    "1x1-image-asymmetric-padding": ((1, 2, 1, 1), (3, 2, 3, 3), dict(padding=((2, 0), (0, 2)))),
    "kernel-equals-input": ((2, 3, 5, 7), (4, 3, 5, 7), {}),
    "dilated-kernel-equals-input": ((2, 3, 7, 7), (4, 3, 3, 4), dict(dilation=(3, 2))),
    "kernel-equals-padded-input": ((2, 3, 3, 3), (4, 3, 5, 5), dict(padding=1)),
    "4096-channels-1x1": ((2, 4096, 1, 1), (8, 4096, 1, 1), {}),
    "4096-channels-2x2": ((2, 4096, 2, 2), (8, 4096, 2, 2), dict(padding=1)),
    "4096-filters-2x2": ((2, 8, 2, 2), (4096, 8, 2, 2), dict(padding=1)),
    "4096-depthwise-2x2": ((1, 4096, 2, 2), (4096, 1, 3, 3), dict(padding=1, groups=4096)),
    "2048-groups-1x1": ((1, 4096, 1, 1), (2048, 2, 1, 1), dict(groups=2048)),
    "stride-past-input": ((2, 3, 5, 5), (4, 3, 2, 2), dict(stride=7)),
    "stride-past-padded-input-same": ((2, 3, 5, 4), (4, 3, 3, 3), dict(stride=9, padding="same")),
    "stride-max": ((1, 2, 5, 5), (3, 2, 2, 2), dict(stride=(BIG, 1), padding=1)),
    "dilation-max-1x1-kernel": ((1, 2, 4, 4), (3, 2, 1, 1), dict(dilation=BIG)),
}
POOL_EDGES = {  # id: (x shape, kernel_size, kwargs for max / avg (lp drops the padding))
    "1x1-image": ((2, 3, 1, 1), 1, {}),
    "1x1-image-padded-ceil": ((2, 3, 1, 1), 2, dict(padding=1, ceil_mode=True)),
    "kernel-equals-input": ((2, 3, 5, 7), (5, 7), {}),
    "kernel-equals-padded-input": ((2, 3, 1, 3), (3, 5), dict(padding=(1, 1))),
    "4096-channels-2x2": ((2, 4096, 2, 2), 2, {}),
    "4096-channels-1x1-padded": ((1, 4096, 1, 1), 3, dict(padding=1, stride=1)),
    "stride-past-input": ((2, 3, 5, 5), 2, dict(stride=7)),
    "stride-past-input-ceil": ((2, 3, 5, 5), 2, dict(stride=4, ceil_mode=True)),
    "stride-max": ((1, 2, 5, 6), (2, 3), dict(stride=(BIG, 1), ceil_mode=True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(CONV_EDGES))
def test_conv_edge_geometries_match_reference(case, dtype):
    x_shape, w_shape, kwargs = CONV_EDGES[case]
    rng = np.random.default_rng(len(case))
    x, weight = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    y = call_unmodified(F.conv2d, x, weight, bias, **kwargs)
    assert_close(y, ref.conv2d(x, weight, bias, **kwargs), dtype, "y")
    grad_out = rng.standard_normal(y.shape).astype(dtype)
    grads = call_unmodified(F.conv2d_backward, grad_out, x, weight, **kwargs)
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                               ref.conv2d_backward(grad_out, x, weight, **kwargs)):
        assert_close(got, want, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case, op", [
    (case, op) for case in POOL_EDGES for op in ("max", "avg", "avg-no-pad-count", "lp")
    if not (op == "lp" and "padding" in POOL_EDGES[case][2])])  # lp_pool2d has no padding
def test_pool_edge_geometries_match_reference(case, op, dtype):
    x_shape, kernel, kwargs = POOL_EDGES[case]
    kwargs, args = dict(kwargs), (kernel,)
    name = op.split("-")[0]
    if op == "avg-no-pad-count":
        kwargs["count_include_pad"] = False
    if name == "lp":  # lp_pool2d(x, norm_type, kernel_size, ...), and no padding
        args = (2, kernel)
    rng = np.random.default_rng(len(case))
    x = rng.standard_normal(x_shape).astype(dtype)
    forward, backward = getattr(F, name + "_pool2d"), getattr(F, name + "_pool2d_backward")
    y = call_unmodified(forward, x, *args, **kwargs)
    assert_close(y, getattr(ref, name + "_pool2d")(x, *args, **kwargs), dtype, "y")
    grad_out = rng.standard_normal(y.shape).astype(dtype)
    grad_x = call_unmodified(backward, grad_out, x, *args, **kwargs)
    assert_close(grad_x, getattr(ref, name + "_pool2d_backward")(grad_out, x, *args, **kwargs), dtype, "grad_x")


# ----------------------------------------------------------------------------- sizes near 2**31

RISKY_SCRIPT = textwrap.dedent("""
    import numpy as np
    from cconv import functional as F

    BIG = 2**31 - 1
    HALF = 2**30 - 1
    def case(name):
        print("start", name, flush=True)

    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    g = np.ones((1, 1, 1, 1))
    case("max-pool kernel 2**31-1, padding 2**30-1: one window, the whole plane")
    assert F.max_pool2d(x, BIG, padding=HALF).tolist() == [[[[9.0]]]]
    grad = F.max_pool2d_backward(g, x, BIG, padding=HALF)
    assert grad.sum() == 1.0 and grad[0, 0, 2, 2] == 1.0
    case("avg-pool kernel 2**31-1 without padding in the divisor: the mean")
    assert F.avg_pool2d(x, BIG, padding=HALF, count_include_pad=False).tolist() == [[[[5.0]]]]
    assert np.all(F.avg_pool2d_backward(g, x, BIG, padding=HALF, count_include_pad=False) == 1 / 9)
    case("avg-pool kernel 2**31-1 with padding in the divisor: (2**31-1)**2 (int64 arithmetic)")
    divisor = float(BIG) ** 2  # the window lies inside the padded input (3 + 2 * HALF = 2**31 + 1)
    np.testing.assert_allclose(F.avg_pool2d(x, BIG, padding=HALF), [[[[45.0 / divisor]]]], rtol=1e-12)
    np.testing.assert_allclose(F.avg_pool2d_backward(g, x, BIG, padding=HALF), 1 / divisor, rtol=1e-12)
    case("avg-pool ceil_mode with stride 1 and the huge kernel: three windows per axis")
    assert F.avg_pool2d(x, BIG, 1, HALF, True, False).shape == (1, 1, 3, 3)
    case("conv stride 2**31-1 with padding 2**31-1: a 3x3 output whose centre reads x[0, 0]")
    y = F.conv2d(x, np.ones((1, 1, 1, 1)), stride=BIG, padding=BIG)
    assert y.tolist() == [[[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]]
    grads = F.conv2d_backward(np.ones(y.shape), x, np.ones((1, 1, 1, 1)), stride=BIG, padding=BIG)
    assert grads[0][0, 0, 0, 0] == 1.0 and grads[0].sum() == 1.0
    assert grads[1].tolist() == [[[[1.0]]]] and grads[2].tolist() == [9.0]
    case("conv padding 2**31-1 on one side only, stride 2**31-1")
    y = F.conv2d(x, np.ones((1, 1, 2, 2)), stride=BIG, padding=((0, BIG), (BIG, 0)))
    assert y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(y, [[[[0.0, 12.0], [0.0, 0.0]]]])
    case("pool stride 2**31-1 with ceil_mode: the second window would start past the input")
    assert F.max_pool2d(x, 2, BIG, 1, True).tolist() == [[[[1.0]]]]
    case("an absurd conv output: MemoryError or ValueError, not a crash")
    for padding in (BIG, ((BIG, BIG), (0, 0))):
        try:
            F.conv2d(np.ones((4, 1, 1, 1)), np.ones((64, 1, 1, 1)), padding=padding)
        except (MemoryError, ValueError):
            pass
        else:
            raise AssertionError("an output of 2**60 elements was allocated")
    case("sizes past 2**31-1: ValueError")
    for call in (lambda: F.max_pool2d(x, 2**31), lambda: F.conv2d(x, np.ones((1, 1, 1, 1)), stride=2**31),
                 lambda: F.conv2d(x, np.ones((1, 1, 1, 1)), padding=2**63)):
        try:
            call()
        except ValueError:
            pass
        else:
            raise AssertionError("accepted a size past 2**31-1")
    print("all passed", flush=True)
""")


def test_sizes_near_2_to_the_31_in_a_subprocess(tmp_path):
    """Kernel sizes, paddings and strides near the accepted maximum: right answers or clean
    errors, and never a crash (a crash ends the subprocess, not this test run). It runs outside
    the source tree, whose cconv may be unbuilt."""
    env = dict(os.environ, PYTHONPATH=CCONV_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", RISKY_SCRIPT], capture_output=True, text=True, timeout=120,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, (f"exit status {result.returncode} (negative: killed by that signal)\n"
                                    f"{result.stdout}\n{result.stderr}")
    assert result.stdout.rstrip().endswith("all passed")


# ----------------------------------------------------------------------------- views

def _all_ops(x, grad_source):
    """Every operator forward and backward on x (a float64 view); grad_outs are sliced views of
    `grad_source` so that they too are non-contiguous. Returns the results in a list."""
    def grad_for(shape):
        return grad_source[tuple(slice(0, 2 * s, 2) for s in shape)]
    weight = np.linspace(-1, 1, 5 * x.shape[1] * 9).reshape(5, x.shape[1], 3, 3)
    results = [F.conv2d(x, weight, padding=1, stride=2)]
    results += F.conv2d_backward(grad_for(results[0].shape), x, weight, padding=1, stride=2)
    for name, args, kwargs in (("max", (3,), dict(stride=2, padding=1)), ("avg", (2,), {}),
                               ("lp", (2, 2), {})):
        y = getattr(F, name + "_pool2d")(x, *args, **kwargs)
        results += [y, getattr(F, name + "_pool2d_backward")(grad_for(y.shape), x, *args, **kwargs)]
    return results


@pytest.mark.parametrize("make_base", [
    lambda a: a,
    lambda a: a.astype(">f8"),
    lambda a: np.asfortranarray(a),
], ids=["native", "big-endian", "fortran"])
def test_views_leave_their_base_unchanged(make_base):
    """Views with offsets, steps and negative strides of read-only bases: every result equals
    the one for contiguous copies, shares no memory with the base, and the base is unchanged."""
    rng = np.random.default_rng(3)
    base = make_base(rng.standard_normal((3, 7, 21, 22)))
    grad_base = make_base(rng.standard_normal((4, 12, 30, 30)))
    saved, grad_saved = base.copy(), grad_base.copy()
    base.setflags(write=False)
    grad_base.setflags(write=False)
    x = base[1:, 1:6, 2:-3:2, ::-1]
    results = _all_ops(x, grad_base[:, :, ::-1])
    expected = _all_ops(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(grad_base[:, :, ::-1], np.float64))
    np.testing.assert_array_equal(base, saved)
    np.testing.assert_array_equal(grad_base, grad_saved)
    assert not base.flags.writeable and not grad_base.flags.writeable and base.dtype == saved.dtype
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)
        assert got.flags.c_contiguous and got.flags.writeable
        assert not np.shares_memory(got, base) and not np.shares_memory(got, grad_base)


# ----------------------------------------------------------------------------- scalars and lists

def test_lists_of_floats_are_converted_with_asarray():
    x = [[[[1.0, 2.0, 0.5], [3.0, 4.0, -1.0]]]]
    weight = [[[[1.0, -1.0]]]]
    y = F.conv2d(x, weight, [0.5])
    np.testing.assert_array_equal(y, F.conv2d(np.asarray(x), np.asarray(weight), np.asarray([0.5])))
    assert y.dtype == np.float64
    grads = F.conv2d_backward(y.tolist(), x, weight)
    for got, want in zip(grads, F.conv2d_backward(y, np.asarray(x), np.asarray(weight))):
        np.testing.assert_array_equal(got, want)
    for name, args in (("max", (2,)), ("avg", (2,)), ("lp", (2, 2))):
        forward, backward = getattr(F, name + "_pool2d"), getattr(F, name + "_pool2d_backward")
        y = forward(x, *args)
        np.testing.assert_array_equal(y, forward(np.asarray(x), *args))
        np.testing.assert_array_equal(backward(y.tolist(), x, *args), backward(y, np.asarray(x), *args))


X = np.ones((1, 1, 4, 4))
W = np.ones((1, 1, 1, 1))
NOT_ARRAYS = [  # id, call, exception, message regex
    ("conv-x-float", lambda: F.conv2d(1.0, W), ValueError, r"\bx\b.*4-D"),
    ("conv-weight-int", lambda: F.conv2d(X, 1), TypeError, "weight"),
    ("conv-bias-float", lambda: F.conv2d(X, W, 0.5), ValueError, "bias.*1-D"),
    ("conv-x-list-of-ints", lambda: F.conv2d([[[[1, 2], [3, 4]]]], W), TypeError, r"\bx\b.*int"),
    ("conv-x-ragged-list", lambda: F.conv2d([[[[1.0, 2.0], [3.0]]]], W), TypeError, r"\bx\b"),
    ("conv-x-string", lambda: F.conv2d("x", W), TypeError, r"\bx\b"),
    ("conv-x-dict", lambda: F.conv2d({}, W), TypeError, r"\bx\b"),
    ("conv-weight-list-with-float32-x", lambda: F.conv2d(X.astype(np.float32), [[[[1.0]]]]), TypeError,
     "dtype"),
    ("conv-grad_out-float", lambda: F.conv2d_backward(1.0, X, W), ValueError, "grad_out"),
    ("max-x-float", lambda: F.max_pool2d(2.0, 2), ValueError, r"\bx\b.*4-D"),
    ("avg-x-list-of-ints", lambda: F.avg_pool2d([[[[1, 2], [3, 4]]]], 2), TypeError, r"\bx\b"),
    ("lp-x-string", lambda: F.lp_pool2d("x", 2, 2), TypeError, r"\bx\b"),
    ("lp-norm-type-array", lambda: F.lp_pool2d(X, np.array(2.0), 2), TypeError, "norm_type"),
    ("max-grad_out-list-of-ints", lambda: F.max_pool2d_backward([[[[1, 1], [1, 1]]]], X, 2), TypeError,
     "grad_out"),
]


@pytest.mark.parametrize("call, error, match", [
    pytest.param(call, error, match, id=name)
    for name, call, error, match in NOT_ARRAYS])
def test_scalars_and_bad_sequences_raise_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_integer_arguments_are_accepted():
    np.testing.assert_array_equal(F.max_pool2d(X, np.int64(2), stride=(np.int32(2), 2)), F.max_pool2d(X, 2))
    np.testing.assert_array_equal(F.conv2d(X, W, stride=np.array([2, 1]), groups=np.int64(1)),
                                  F.conv2d(X, W, stride=(2, 1)))
    np.testing.assert_array_equal(F.lp_pool2d(X, np.float32(2.0), 2), F.lp_pool2d(X, 2, 2))
    np.testing.assert_array_equal(F.max_pool2d(X, np.array(2)), F.max_pool2d(X, 2))  # 0-d arrays
    np.testing.assert_array_equal(F.conv2d(X, W, stride=np.array(2)), F.conv2d(X, W, stride=2))
