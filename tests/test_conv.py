"""Tests of cconv.functional.conv2d and conv2d_backward.

1. Against the naive NumPy reference (tests/reference.py) over hand-picked and seeded random
   shapes, strides, paddings (int, pair, asymmetric, 'valid', 'same' with strides 1-3),
   dilations and groups (1, 2, depthwise), both dtypes, bias None or given: the output and
   all three gradients.
2. Float64 central-difference checks of grad_x, grad_weight and grad_bias on tiny shapes.
3. Against PyTorch's conv2d and autograd when torch is installed.
4. Edge cases (zero-size batch, 'same' padding placement) and memory layouts (Fortran order,
   strided views, big-endian, read-only), which must give exactly the contiguous result.
Every call also checks that cconv leaves its input arrays unmodified.
"""
import zlib

import numpy as np
import pytest

from cconv import functional as F

import reference as ref
from reference import assert_close, call_unmodified, numerical_gradient, rel_error

DTYPES = [np.float32, np.float64]


class ConvCase:
    """One convolution configuration: x (n, c, h, w), weight (k, c / groups, r, s)."""

    def __init__(self, n, c, h, w, k, r, s, stride=1, padding=0, dilation=1, groups=1, bias=True):
        self.n, self.c, self.h, self.w, self.k, self.r, self.s = n, c, h, w, k, r, s
        self.stride, self.padding, self.dilation, self.groups, self.bias = (
            stride, padding, dilation, groups, bias)

    @property
    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def arrays(self, dtype):
        """(x, weight, bias or None) in `dtype`, seeded by the case's id."""
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        x = rng.standard_normal((self.n, self.c, self.h, self.w)).astype(dtype)
        weight = rng.standard_normal((self.k, self.c // self.groups, self.r, self.s)).astype(dtype)
        bias = rng.standard_normal(self.k).astype(dtype) if self.bias else None
        return x, weight, bias

    @property
    def id(self):
        pad = str(self.padding).replace(" ", "")
        return (f"x{self.n}x{self.c}x{self.h}x{self.w}-w{self.k}x{self.r}x{self.s}-st{self.stride}"
                f"-pad{pad}-dil{self.dilation}-g{self.groups}" + ("-bias" if self.bias else "")
                ).replace(" ", "")


HAND_PICKED = [
    ConvCase(3, 1, 12, 12, 32, 3, 3, padding=1),                     # first layer: transposed grad_weight
    ConvCase(2, 2, 10, 10, 64, 3, 3, padding=1, groups=2),           # ... per group
    ConvCase(2, 3, 8, 8, 4, 3, 3, padding=1),
    ConvCase(2, 3, 8, 8, 4, 3, 3, padding=1, bias=False),
    ConvCase(2, 8, 5, 7, 6, 1, 1),                                   # 1x1
    ConvCase(1, 4, 7, 7, 5, 1, 1, stride=2, bias=False),             # 1x1 strided, batch 1
    ConvCase(1, 3, 7, 9, 5, 3, 3),                                   # batch 1, odd sizes
    ConvCase(2, 2, 9, 11, 3, 2, 5, stride=(1, 2), padding=(1, 2)),   # R != S
    ConvCase(2, 3, 5, 4, 6, 5, 4),                                   # kernel == input size
    ConvCase(1, 2, 3, 3, 2, 3, 3, padding="valid", bias=False),      # kernel == input, 'valid'
    ConvCase(2, 3, 6, 1, 2, 3, 1, padding=(1, 0)),                   # width-1 image
    ConvCase(2, 3, 10, 9, 4, 3, 3, padding=2, dilation=2),
    ConvCase(1, 2, 12, 11, 3, 3, 2, stride=(2, 1), dilation=(2, 3)),
    ConvCase(2, 3, 6, 6, 2, 3, 3, padding=3),                        # padding wider than kernel
    ConvCase(2, 3, 7, 8, 4, 3, 3, padding=((0, 2), (1, 0))),         # asymmetric
    ConvCase(1, 2, 9, 10, 3, 2, 3, stride=2, padding=((2, 1), (0, 3)), bias=False),
    ConvCase(2, 3, 8, 7, 4, 3, 3, padding="same"),
    ConvCase(2, 3, 8, 7, 4, 4, 2, padding="same", bias=False),       # even kernel, odd pixel
    ConvCase(2, 3, 9, 8, 4, 3, 3, stride=2, padding="same"),
    ConvCase(2, 3, 10, 11, 4, 4, 3, stride=2, padding="same"),
    ConvCase(1, 2, 10, 11, 3, 3, 3, stride=3, padding="same"),
    ConvCase(1, 2, 9, 13, 3, 5, 2, stride=(3, 2), padding="same", bias=False),
    ConvCase(2, 2, 10, 9, 3, 3, 3, stride=2, padding="same", dilation=2),
    ConvCase(1, 2, 12, 10, 3, 3, 2, stride=3, padding="same", dilation=(3, 2)),
    ConvCase(2, 4, 8, 8, 6, 3, 3, padding=1, groups=2),              # grouped
    ConvCase(2, 6, 7, 9, 9, 1, 1, groups=3, bias=False),             # grouped 1x1
    ConvCase(2, 6, 9, 9, 6, 3, 3, padding=1, groups=6),              # depthwise
    ConvCase(2, 6, 9, 9, 12, 3, 3, padding=1, groups=6, bias=False), # depthwise, multiplier 2
    ConvCase(1, 4, 11, 10, 4, 3, 3, stride=2, padding="same", groups=4),
    # Large enough for the blocked paths: C*R*S > 300, K > 20, H*W > 1000.
    ConvCase(2, 36, 34, 34, 24, 3, 3, padding=1),
    ConvCase(1, 320, 33, 33, 32, 1, 1, bias=False),
    ConvCase(1, 16, 40, 37, 33, 5, 5, stride=2, padding=2),
    ConvCase(1, 72, 32, 32, 48, 3, 3, padding="same", groups=2),
    ConvCase(2, 32, 40, 40, 32, 3, 3, padding=1, groups=32),
    ConvCase(1, 24, 35, 31, 25, 3, 5, stride=(1, 2), padding=((2, 0), (1, 3)), dilation=(1, 2)),
]


def random_cases(count, seed):
    """Seeded random configurations covering every padding form, stride, dilation and groups."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        depthwise = rng.random() < 0.2
        c = groups * int(rng.integers(1, 4))
        if depthwise:
            groups = c
        k = groups * int(rng.integers(1, 4))
        r, s = (int(v) for v in rng.integers(1, 5, 2))
        h, w = (int(v) for v in rng.integers(1, 13, 2))
        stride = int(rng.integers(1, 4)) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 4, 2))
        dilation = int(rng.integers(1, 3)) if rng.random() < 0.6 else tuple(int(v) for v in rng.integers(1, 4, 2))
        form = rng.integers(0, 5)
        if form == 0:
            padding = int(rng.integers(0, 4))
        elif form == 1:
            padding = tuple(int(v) for v in rng.integers(0, 4, 2))
        elif form == 2:
            padding = tuple(tuple(int(v) for v in rng.integers(0, 4, 2)) for _ in range(2))
        else:
            padding = "same" if form == 3 else "valid"
        pads = ref.resolve_conv_padding(padding, (h, w), (r, s), ref.as_pair(stride), ref.as_pair(dilation))
        dh, dw = ref.as_pair(dilation)
        if (r - 1) * dh + 1 > h + sum(pads[0]) or (s - 1) * dw + 1 > w + sum(pads[1]):
            continue
        n = int(rng.integers(1, 4))
        cases.append(ConvCase(n, c, h, w, k, r, s, stride, padding, dilation, groups, bool(rng.random() < 0.6)))
    return cases


CASES = HAND_PICKED + random_cases(40, seed=7)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_matches_reference(case, dtype):
    x, weight, bias = case.arrays(dtype)
    y = call_unmodified(F.conv2d, x, weight, bias, **case.kwargs)
    assert_close(y, ref.conv2d(x, weight, bias, **case.kwargs), dtype, "y")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_backward_matches_reference(case, dtype):
    x, weight, _ = case.arrays(dtype)
    out_shape = ref.conv2d(x[:1], weight, **case.kwargs).shape[1:]
    grad_out = np.random.default_rng(1).standard_normal((case.n,) + out_shape).astype(dtype)
    grads = call_unmodified(F.conv2d_backward, grad_out, x, weight, **case.kwargs)
    assert isinstance(grads, tuple) and len(grads) == 3
    expected = ref.conv2d_backward(grad_out, x, weight, **case.kwargs)
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        assert_close(got, want, dtype, name)


@pytest.mark.parametrize("case", [
    ConvCase(2, 2, 5, 4, 3, 3, 2),
    ConvCase(1, 2, 6, 7, 2, 2, 3, stride=2, padding=((1, 0), (2, 1))),
    ConvCase(2, 3, 7, 6, 2, 3, 3, stride=(2, 3), padding=(1, 2), dilation=(2, 1)),
    ConvCase(1, 4, 5, 5, 4, 3, 3, padding=1, groups=2),
    ConvCase(2, 3, 5, 6, 3, 3, 3, stride=2, padding="same", groups=3),
    ConvCase(1, 2, 7, 5, 2, 2, 2, stride=3, padding="same", dilation=2),
], ids=lambda c: c.id)
def test_gradients_match_finite_differences(case):
    """grad_x, grad_weight, grad_bias against central differences of sum(conv2d(x, w, b) * g)."""
    x, weight, _ = case.arrays(np.float64)
    bias = np.random.default_rng(2).standard_normal(case.k)
    g = np.random.default_rng(3).standard_normal(F.conv2d(x, weight, bias, **case.kwargs).shape)

    def forward():
        return F.conv2d(x, weight, bias, **case.kwargs)

    grad_x, grad_weight, grad_bias = F.conv2d_backward(g, x, weight, **case.kwargs)
    assert rel_error(grad_x, numerical_gradient(forward, x, g, 1e-5)) < 1e-6
    assert rel_error(grad_weight, numerical_gradient(forward, weight, g, 1e-5)) < 1e-6
    assert rel_error(grad_bias, numerical_gradient(forward, bias, g, 1e-5)) < 1e-6


@pytest.mark.parametrize("size, kernel, stride, dilation, expected_pads", [
    (7, 3, 1, 1, (1, 1)),
    (7, 4, 1, 1, (1, 2)),   # the odd pixel goes to the bottom / right
    (7, 3, 2, 1, (1, 1)),   # out 4: total 3*2 + 3 - 7 = 2
    (8, 3, 2, 1, (0, 1)),   # out 4: total 6 + 3 - 8 = 1
    (8, 3, 3, 1, (0, 1)),   # out 3: total 6 + 3 - 8 = 1
    (9, 3, 3, 1, (0, 0)),   # out 3: total 6 + 3 - 9 = 0
    (7, 5, 3, 1, (2, 2)),   # out 3: total 6 + 5 - 7 = 4
    (10, 3, 2, 2, (1, 2)),  # out 5: total 8 + 5 - 10 = 3
    (4, 1, 3, 1, (0, 0)),   # out 2: total 3 + 1 - 4 = 0
])
def test_same_padding_follows_tensorflow_rule(size, kernel, stride, dilation, expected_pads):
    """'same' equals the explicit padding worked out by hand, with output ceil(size / stride)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, size, size + 1))
    weight = rng.standard_normal((3, 2, kernel, 1))
    y = F.conv2d(x, weight, stride=stride, padding="same", dilation=dilation)
    assert y.shape == (1, 3, -(-size // stride), -(-(size + 1) // stride))
    explicit = F.conv2d(x, weight, stride=stride, padding=(expected_pads, (0, 0)), dilation=dilation)
    np.testing.assert_array_equal(y, explicit)


def test_padding_forms_agree():
    """An int, an (h, w) pair, a list, and the nested form describe the same padding."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6))
    weight = rng.standard_normal((4, 3, 3, 3))
    as_int = F.conv2d(x, weight, padding=1, stride=np.int64(2))
    np.testing.assert_array_equal(as_int, F.conv2d(x, weight, padding=(1, 1), stride=(2, 2)))
    np.testing.assert_array_equal(as_int, F.conv2d(x, weight, padding=[1, 1], stride=2))
    np.testing.assert_array_equal(as_int, F.conv2d(x, weight, padding=((1, 1), (1, 1)), stride=2))
    np.testing.assert_array_equal(F.conv2d(x, weight, padding="valid"), F.conv2d(x, weight, padding=0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_zero_size_batch(dtype):
    x = np.zeros((0, 4, 6, 5), dtype)
    weight = np.ones((6, 2, 3, 3), dtype)
    bias = np.ones(6, dtype)
    y = F.conv2d(x, weight, bias, stride=2, padding=1, groups=2)
    assert y.shape == (0, 6, 3, 3) and y.dtype == dtype
    grad_x, grad_weight, grad_bias = F.conv2d_backward(y, x, weight, stride=2, padding=1, groups=2)
    assert grad_x.shape == x.shape and grad_x.dtype == dtype
    assert grad_weight.shape == weight.shape and grad_weight.dtype == dtype and not grad_weight.any()
    assert grad_bias.shape == (6,) and grad_bias.dtype == dtype and not grad_bias.any()


# ----------------------------------------------------------------------------- layouts

def _layout_case(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 14, 12)).astype(dtype)
    weight = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    bias = rng.standard_normal(6).astype(dtype)
    kwargs = dict(stride=(2, 1), padding=((1, 0), (0, 1)), dilation=1, groups=2)
    return x, weight, bias, kwargs


LAYOUTS = {
    "fortran": np.asfortranarray,
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "read-only": ref.read_only,
    "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    "negative-strides": lambda a: a[..., ::-1].copy()[..., ::-1],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts_give_the_contiguous_result(layout, dtype):
    x, weight, bias, kwargs = _layout_case(dtype)
    convert = LAYOUTS[layout]
    y = F.conv2d(x, weight, bias, **kwargs)
    grad_out = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
    grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    x2, w2, b2, g2 = convert(x), convert(weight), convert(bias), convert(grad_out)
    assert np.array_equal(x2, x) and w2.dtype.type == weight.dtype.type
    np.testing.assert_array_equal(call_unmodified(F.conv2d, x2, w2, b2, **kwargs), y)
    for got, want in zip(call_unmodified(F.conv2d_backward, g2, x2, w2, **kwargs), grads):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_strided_slice_of_input():
    """x[:, :, ::2, ::2] (a non-contiguous view) gives the result of its contiguous copy."""
    rng = np.random.default_rng(8)
    big = rng.standard_normal((2, 6, 18, 16)).astype(np.float32)
    view = big[:, 1:5, ::2, ::2]
    weight = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    y = call_unmodified(F.conv2d, view, weight, None, padding=1)
    np.testing.assert_array_equal(y, F.conv2d(np.ascontiguousarray(view), weight, None, padding=1))
    assert_close(y, ref.conv2d(view, weight, None, padding=1), np.float32)
    grad_out_big = rng.standard_normal((2, 10) + y.shape[2:]).astype(np.float32)
    grad_out = grad_out_big[:, ::2]
    got = call_unmodified(F.conv2d_backward, grad_out, view, weight, padding=1)
    want = F.conv2d_backward(np.ascontiguousarray(grad_out), np.ascontiguousarray(view), weight, padding=1)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ----------------------------------------------------------------------------- PyTorch

TORCH_CASES = [
    ConvCase(2, 3, 9, 8, 4, 3, 3, padding=1),
    ConvCase(2, 4, 10, 11, 6, 3, 2, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
    ConvCase(1, 6, 9, 9, 12, 3, 3, stride=2, padding=2, dilation=2, groups=6, bias=False),
    ConvCase(2, 3, 8, 9, 5, 2, 3, stride=(1, 3), padding=((0, 2), (3, 1))),
    ConvCase(1, 32, 36, 36, 24, 3, 3, padding=1),
    ConvCase(2, 3, 8, 9, 4, 3, 3, padding="same"),
    ConvCase(2, 4, 8, 9, 4, 4, 2, padding="same", groups=2),           # even kernel
    ConvCase(1, 3, 9, 10, 2, 2, 3, padding="same", dilation=(3, 2)),   # even kernel, dilated
]


def _torch_conv(torch, x, weight, bias, case):
    tf = torch.nn.functional
    if case.padding == "same":
        return tf.conv2d(x, weight, bias, 1, "same", case.dilation, case.groups)
    (top, bottom), (left, right) = ref.resolve_conv_padding(case.padding, (case.h, case.w), (case.r, case.s),
                                                            ref.as_pair(case.stride), ref.as_pair(case.dilation))
    if isinstance(case.padding, tuple) and isinstance(case.padding[0], tuple):
        return tf.conv2d(tf.pad(x, (left, right, top, bottom)), weight, bias, case.stride, 0,
                         case.dilation, case.groups)
    return tf.conv2d(x, weight, bias, case.stride, case.padding, case.dilation, case.groups)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
def test_matches_torch(case, dtype):
    torch = pytest.importorskip("torch")
    x, weight, bias = case.arrays(dtype)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    bt = None if bias is None else torch.tensor(bias, requires_grad=True)
    yt = _torch_conv(torch, xt, wt, bt, case)
    y = F.conv2d(x, weight, bias, **case.kwargs)
    assert_close(y, yt.detach().numpy().astype(np.float64), dtype, "y")
    grad_out = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(grad_out))
    torch_grad_bias = torch.tensor(grad_out).sum(dim=(0, 2, 3)) if bt is None else bt.grad
    grads = F.conv2d_backward(grad_out, x, weight, **case.kwargs)
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, (xt.grad, wt.grad, torch_grad_bias)):
        assert_close(got, want.numpy().astype(np.float64), dtype, name)


def test_backward_can_skip_grad_x(rng):
    """compute_grad_x=False returns None for grad_x and the very same weight and bias gradients."""
    x = rng.standard_normal((3, 4, 9, 9))
    w = rng.standard_normal((6, 2, 3, 3))
    g = rng.standard_normal((3, 6, 5, 5))
    full = F.conv2d_backward(g, x, w, stride=2, padding=1, groups=2)
    grad_x, grad_w, grad_b = F.conv2d_backward(g, x, w, stride=2, padding=1, groups=2, compute_grad_x=False)
    assert grad_x is None
    np.testing.assert_array_equal(grad_w, full[1])
    np.testing.assert_array_equal(grad_b, full[2])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES[::3], ids=lambda c: c.id)
def test_fused_relu_matches_reference(case, dtype):
    """activation='relu': y = max(conv, 0); the backward masks grad_out where y <= 0."""
    x, weight, bias = case.arrays(dtype)
    y = call_unmodified(F.conv2d, x, weight, bias, activation="relu", **case.kwargs)
    assert_close(y, np.maximum(ref.conv2d(x, weight, bias, **case.kwargs), 0), dtype, "y")
    grad_out = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    grads = call_unmodified(F.conv2d_backward, grad_out, x, weight, activation="relu", output=y, **case.kwargs)
    expected = ref.conv2d_backward(grad_out * (y > 0), x, weight, **case.kwargs)
    for name, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        assert_close(got, want, dtype, name)


def test_fused_relu_keeps_nan_and_checks_its_arguments(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    y = F.conv2d(x, np.ones((1, 1, 1, 1)), activation="relu")
    assert np.isnan(y[0, 0, 1, 1]) and (np.nan_to_num(y) >= 0).all()
    w = np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match="activation"):
        F.conv2d(x, w, activation="sigmoid")
    g = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match="output="):
        F.conv2d_backward(g, x, w, activation="relu")
    with pytest.raises(ValueError, match="output"):
        F.conv2d_backward(g, x, w, activation="relu", output=np.ones((1, 1, 3, 3)))
