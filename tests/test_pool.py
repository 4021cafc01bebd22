"""Tests of cconv's pooling: max_pool2d, avg_pool2d, lp_pool2d and their backward passes.

1. Against the naive NumPy reference (tests/reference.py) over hand-picked and seeded random
   kernels, strides (default = kernel), paddings, ceil_mode, count_include_pad and norm types,
   both dtypes, forward and backward.
2. Float64 central-difference checks of every backward (max pool on distinct values, so that
   no window has a tie).
3. Against PyTorch when installed: forward and autograd backward, ceil_mode,
   count_include_pad, max-pool ties, and NaN / Inf propagation in max pooling.
4. Edge cases (zero-size batch, windows whose lp sum is 0) and memory layouts (Fortran order,
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


class PoolCase:
    """One pooling configuration on x of shape (n, c, h, w)."""

    def __init__(self, n, c, h, w, kernel, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, norm_type=2):
        self.shape = (n, c, h, w)
        self.kernel, self.stride, self.padding, self.ceil_mode = kernel, stride, padding, ceil_mode
        self.count_include_pad, self.norm_type = count_include_pad, norm_type

    @property
    def id(self):
        text = (f"x{'x'.join(map(str, self.shape))}-k{self.kernel}-st{self.stride}-pad{self.padding}"
                + ("-ceil" if self.ceil_mode else "") + ("" if self.count_include_pad else "-nopadcount")
                + f"-p{self.norm_type}")
        return text.replace(" ", "")

    def x(self, dtype, positive=False):
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        x = rng.standard_normal(self.shape)
        return (np.abs(x) + 0.1 if positive else x).astype(dtype)

    def lp_fits(self):
        """lp_pool2d has no padding: the kernel must fit the bare input."""
        kh, kw = ref.as_pair(self.kernel)
        return kh <= self.shape[2] and kw <= self.shape[3]


# op name -> (cconv forward, cconv backward, reference forward, reference backward, kwargs of a case)
OPS = {
    "max": (F.max_pool2d, F.max_pool2d_backward, ref.max_pool2d, ref.max_pool2d_backward,
            lambda c: dict(kernel_size=c.kernel, stride=c.stride, padding=c.padding, ceil_mode=c.ceil_mode)),
    "avg": (F.avg_pool2d, F.avg_pool2d_backward, ref.avg_pool2d, ref.avg_pool2d_backward,
            lambda c: dict(kernel_size=c.kernel, stride=c.stride, padding=c.padding, ceil_mode=c.ceil_mode,
                           count_include_pad=c.count_include_pad)),
    "lp": (F.lp_pool2d, F.lp_pool2d_backward, ref.lp_pool2d, ref.lp_pool2d_backward,
           lambda c: dict(norm_type=c.norm_type, kernel_size=c.kernel, stride=c.stride, ceil_mode=c.ceil_mode)),
}


HAND_PICKED = [
    PoolCase(2, 3, 8, 8, 2),                                          # stride defaults to kernel
    PoolCase(2, 3, 9, 9, 3, stride=2, padding=1),
    PoolCase(2, 3, 9, 9, 3, stride=2, padding=1, count_include_pad=False),
    PoolCase(1, 2, 7, 10, (3, 2), stride=(2, 1), padding=(1, 0), norm_type=1),
    PoolCase(2, 3, 7, 7, 2, ceil_mode=True),                          # ceil adds a partial window
    PoolCase(2, 3, 8, 8, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    PoolCase(1, 2, 5, 5, 2, stride=2, padding=1, ceil_mode=True),     # ceil window would start in padding
    PoolCase(2, 2, 11, 6, (4, 3), stride=(3, 2), padding=(2, 1), ceil_mode=True, norm_type=3),
    PoolCase(2, 3, 5, 4, (5, 4)),                                     # kernel == input size
    PoolCase(1, 2, 6, 7, 1, stride=2),                                # 1x1 kernel: subsampling
    PoolCase(2, 2, 10, 11, 2, stride=3, norm_type=1.5),               # stride > kernel
    PoolCase(1, 1, 1, 9, (1, 3), stride=(1, 2), ceil_mode=True),      # a single row
    PoolCase(2, 16, 40, 36, 3, stride=2, padding=1),                  # larger images
    PoolCase(1, 32, 33, 33, 2, ceil_mode=True, count_include_pad=False),
    PoolCase(3, 8, 31, 37, (3, 5), stride=(1, 2), padding=(1, 2), ceil_mode=True, norm_type=3),
]


def random_cases(count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        kernel = kh if rng.random() < 0.4 else (kh, kw)
        kh, kw = ref.as_pair(kernel)
        stride = None if rng.random() < 0.25 else (
            int(rng.integers(1, 4)) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 4, 2)))
        padding = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)))
        h, w = (int(v) for v in rng.integers(1, 13, 2))
        if kh > h + 2 * padding[0] or kw > w + 2 * padding[1]:
            continue
        cases.append(PoolCase(int(rng.integers(1, 4)), int(rng.integers(1, 5)), h, w, kernel, stride, padding,
                              bool(rng.random() < 0.5), bool(rng.random() < 0.5),
                              [2, 2, 1, 3, 1.5][int(rng.integers(0, 5))]))
    return cases


CASES = HAND_PICKED + random_cases(40, seed=11)


def op_params():
    """(op, case) pairs: lp pooling has no padding, so it gets the cases with padding 0 or
    whose padding can be dropped while the kernel still fits."""
    params = []
    for case in CASES:
        params.append(pytest.param("max", case, id="max-" + case.id))
        params.append(pytest.param("avg", case, id="avg-" + case.id))
        if case.lp_fits():
            lp_case = PoolCase(*case.shape, case.kernel, case.stride, 0, case.ceil_mode, True, case.norm_type)
            params.append(pytest.param("lp", lp_case, id="lp-" + lp_case.id))
    return params


def _input(op, case, dtype):
    """Inputs are standard normal; lp pooling with p other than 1 or 2 gets positive inputs
    (torch's definition gives NaN for a negative power sum)."""
    return case.x(dtype, positive=(op == "lp" and case.norm_type not in (1, 2)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("op, case", op_params())
def test_forward_matches_reference(op, case, dtype):
    forward, _, ref_forward, _, kwargs = OPS[op]
    x = _input(op, case, dtype)
    y = call_unmodified(forward, x, **kwargs(case))
    assert_close(y, ref_forward(x, **kwargs(case)), dtype, f"{op} y")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("op, case", op_params())
def test_backward_matches_reference(op, case, dtype):
    _, backward, ref_forward, ref_backward, kwargs = OPS[op]
    x = _input(op, case, dtype)
    out_shape = ref_forward(x, **kwargs(case)).shape
    grad_out = np.random.default_rng(1).standard_normal(out_shape).astype(dtype)
    grad_x = call_unmodified(backward, grad_out, x, **kwargs(case))
    assert_close(grad_x, ref_backward(grad_out, x, **kwargs(case)), dtype, f"{op} grad_x")


def test_max_pool_gradient_goes_to_first_maximum():
    """With ties, the whole gradient goes to the first maximum of the window in row-major order."""
    x = np.array([[[[1.0, 3.0, 2.0, 4.0],
                    [3.0, 2.0, 4.0, 4.0],
                    [5.0, 5.0, 1.0, 1.0],
                    [5.0, 5.0, 1.0, 1.0]]]])
    grad_out = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    expected = np.array([[[[0.0, 10.0, 0.0, 20.0],
                           [0.0, 0.0, 0.0, 0.0],
                           [30.0, 0.0, 40.0, 0.0],
                           [0.0, 0.0, 0.0, 0.0]]]])
    for dtype in DTYPES:
        got = F.max_pool2d_backward(grad_out.astype(dtype), x.astype(dtype), 2)
        np.testing.assert_array_equal(got, expected.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", [PoolCase(2, 3, 9, 8, 3, stride=2, padding=1),
                                  PoolCase(1, 2, 7, 7, 3, stride=1, padding=1, ceil_mode=True),
                                  PoolCase(2, 2, 8, 9, (2, 3), stride=(2, 1), ceil_mode=True)],
                         ids=lambda c: c.id)
def test_max_pool_ties_match_reference(case, dtype):
    """Small-integer data has many ties; overlapping windows share maxima and accumulate."""
    x = np.random.default_rng(2).integers(0, 3, case.shape).astype(dtype)
    kwargs = OPS["max"][4](case)
    grad_out = np.random.default_rng(3).standard_normal(ref.max_pool2d(x, **kwargs).shape).astype(dtype)
    assert_close(F.max_pool2d_backward(grad_out, x, **kwargs), ref.max_pool2d_backward(grad_out, x, **kwargs),
                 dtype, "grad_x")


def test_lp_pool_gradient_is_zero_where_the_sum_is_zero():
    x = np.zeros((1, 2, 4, 4))
    x[0, 0, 0, 0] = 3.0
    x[0, 1, 2:, 2:] = -1.0
    for p in (2, 1.5):
        xp = x if p == 2 else np.abs(x)
        y = F.lp_pool2d(xp, p, 2)
        assert_close(y, ref.lp_pool2d(xp, p, 2), np.float64)
        grad_x = F.lp_pool2d_backward(np.ones_like(y), xp, p, 2)
        assert np.all(np.isfinite(grad_x))
        assert_close(grad_x, ref.lp_pool2d_backward(np.ones_like(y), xp, p, 2), np.float64)
        assert not grad_x[0, 0, 2:, :].any() and not grad_x[0, 0, :, 2:].any()


# ----------------------------------------------------------------------------- finite differences

GRADCHECK_CASES = [
    pytest.param("max", PoolCase(2, 2, 5, 6, 2), id="max-k2"),
    pytest.param("max", PoolCase(1, 2, 7, 6, 3, stride=2, padding=1, ceil_mode=True), id="max-k3s2p1-ceil"),
    pytest.param("max", PoolCase(1, 2, 6, 7, (2, 3), stride=(1, 2), padding=(1, 1)), id="max-k2x3-overlap"),
    pytest.param("avg", PoolCase(2, 2, 5, 6, 2), id="avg-k2"),
    pytest.param("avg", PoolCase(1, 2, 7, 6, 3, stride=2, padding=1, ceil_mode=True), id="avg-k3s2p1-ceil"),
    pytest.param("avg", PoolCase(1, 2, 6, 7, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                 id="avg-k3s2p1-ceil-nopadcount"),
    pytest.param("lp", PoolCase(2, 2, 5, 6, 2), id="lp2-k2"),
    pytest.param("lp", PoolCase(2, 3, 6, 8, 2), id="lp2-k2-tiling"),  # the fused 2x2 kernels
    pytest.param("lp", PoolCase(1, 2, 7, 6, 3, stride=2, ceil_mode=True), id="lp2-k3s2-ceil"),
    pytest.param("lp", PoolCase(1, 2, 6, 7, (2, 3), stride=1, norm_type=3), id="lp3-overlap"),
    pytest.param("lp", PoolCase(1, 2, 6, 5, 2, stride=(1, 2), ceil_mode=True, norm_type=1.5), id="lp1.5-ceil"),
]


@pytest.mark.parametrize("op, case", GRADCHECK_CASES)
def test_gradient_matches_finite_differences(op, case):
    """The backward against central differences of sum(pool(x) * g) in float64."""
    forward, backward, _, _, kwargs = OPS[op]
    rng = np.random.default_rng(4)
    if op == "max":  # distinct values 0.01 apart: no ties, and a step of 1e-5 keeps every argmax
        x = (rng.permutation(np.prod(case.shape)) * 0.01 - 1.0).reshape(case.shape)
    else:
        x = _input(op, case, np.float64)
    g = rng.standard_normal(forward(x, **kwargs(case)).shape)
    grad_x = backward(g, x, **kwargs(case))
    numeric = numerical_gradient(lambda: forward(x, **kwargs(case)), x, g, 1e-5)
    assert rel_error(grad_x, numeric) < 1e-6


# ----------------------------------------------------------------------------- edge cases and layouts

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("op", list(OPS))
def test_zero_size_batch(op, dtype):
    forward, backward, _, _, kwargs = OPS[op]
    case = PoolCase(0, 3, 7, 6, 3, stride=2, padding=0, ceil_mode=True)
    x = np.zeros(case.shape, dtype)
    y = forward(x, **kwargs(case))
    assert y.shape == (0, 3, 3, 3) and y.dtype == dtype
    grad_x = backward(y, x, **kwargs(case))
    assert grad_x.shape == x.shape and grad_x.dtype == dtype


LAYOUTS = {
    "fortran": np.asfortranarray,
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "read-only": ref.read_only,
    "strided-slice": lambda a: np.repeat(np.repeat(a, 2, axis=2), 2, axis=3)[:, :, ::2, ::2],
    "negative-strides": lambda a: a[:, ::-1].copy()[:, ::-1],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("op", list(OPS))
def test_layouts_give_the_contiguous_result(op, layout, dtype):
    forward, backward, _, _, kwargs = OPS[op]
    case = PoolCase(2, 3, 9, 8, 3, stride=2, padding=0 if op == "lp" else 1, ceil_mode=True)
    x = _input(op, case, dtype)
    y = forward(x, **kwargs(case))
    grad_out = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    grad_x = backward(grad_out, x, **kwargs(case))
    convert = LAYOUTS[layout]
    x2, g2 = convert(x), convert(grad_out)
    assert np.array_equal(x2, x)
    np.testing.assert_array_equal(call_unmodified(forward, x2, **kwargs(case)), y)
    got = call_unmodified(backward, g2, x2, **kwargs(case))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, grad_x)


# ----------------------------------------------------------------------------- PyTorch

TORCH_CASES = [
    PoolCase(2, 3, 8, 8, 2),
    PoolCase(2, 3, 9, 9, 3, stride=2, padding=1),
    PoolCase(2, 3, 9, 9, 3, stride=2, padding=1, count_include_pad=False),
    PoolCase(2, 3, 8, 8, 3, stride=2, padding=1, ceil_mode=True),
    PoolCase(2, 3, 8, 8, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    PoolCase(1, 2, 5, 5, 2, stride=2, padding=1, ceil_mode=True),
    PoolCase(1, 4, 11, 10, (4, 3), stride=(3, 2), padding=(2, 1), ceil_mode=True, norm_type=3),
    PoolCase(2, 8, 33, 35, (3, 2), stride=(2, 1), padding=(1, 0), norm_type=1.5),
]


def _torch_pool(torch, op, xt, case):
    tf = torch.nn.functional
    if op == "max":
        return tf.max_pool2d(xt, case.kernel, case.stride, case.padding, 1, case.ceil_mode)
    if op == "avg":
        return tf.avg_pool2d(xt, case.kernel, case.stride, case.padding, case.ceil_mode, case.count_include_pad)
    return tf.lp_pool2d(xt, case.norm_type, case.kernel, case.stride, case.ceil_mode)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("op", list(OPS))
def test_matches_torch(op, case, dtype):
    torch = pytest.importorskip("torch")
    forward, backward, _, _, kwargs = OPS[op]
    if op == "lp":
        case = PoolCase(*case.shape, case.kernel, case.stride, 0, case.ceil_mode, True, case.norm_type)
    x = _input(op, case, dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_pool(torch, op, xt, case)
    y = forward(x, **kwargs(case))
    assert_close(y, yt.detach().numpy().astype(np.float64), dtype, f"{op} y")
    grad_out = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.tensor(grad_out))
    assert_close(backward(grad_out, x, **kwargs(case)), xt.grad.numpy().astype(np.float64), dtype,
                 f"{op} grad_x")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_pool_ties_match_torch(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).integers(0, 3, (2, 3, 9, 8)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, 3, 2, 1, ceil_mode=True)
    grad_out = np.random.default_rng(8).standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(grad_out))
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 2, 1, ceil_mode=True), yt.detach().numpy())
    assert_close(F.max_pool2d_backward(grad_out, x, 3, 2, 1, ceil_mode=True), xt.grad.numpy().astype(np.float64),
                 dtype, "grad_x")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_pool_propagates_nan_and_inf_like_torch(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(9).standard_normal((1, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, 0] = np.nan      # a NaN amid ordinary values
    x[0, 0, 2, 3] = np.inf
    x[0, 0, 4, 4] = np.nan      # NaN and +inf in one window
    x[0, 0, 5, 5] = np.inf
    x[0, 1, 0:2, 0:2] = -np.inf  # a window of only -inf
    x[0, 1, 3, 3] = -np.inf
    x[0, 1, 4, 1] = np.inf
    x[0, 1, 5, 0] = np.nan       # NaN after +inf in the window
    for kernel, stride, padding, ceil_mode in [(2, None, 0, False), (3, 2, 1, True), (2, 1, 1, False)]:
        expected = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride, padding, 1, ceil_mode).numpy()
        got = call_unmodified(F.max_pool2d, x, kernel, stride, padding, ceil_mode)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)  # NaNs compare equal here


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_max_pool_backward_with_nan_matches_torch(dtype):
    """A window holding NaN sends its gradient to a NaN (PyTorch: the last one), not elsewhere."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(10).standard_normal((1, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 3, 2] = np.nan
    x[0, 0, 3, 3] = np.nan      # two NaNs in one window
    x[0, 1, 4, 4] = np.inf
    x[0, 1, 5, 5] = np.nan
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, 3, 2, 1, 1, True)
    grad_out = np.random.default_rng(11).standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(grad_out))
    got = F.max_pool2d_backward(grad_out, x, 3, 2, 1, True)
    assert_close(got, xt.grad.numpy().astype(np.float64), dtype, "grad_x")
