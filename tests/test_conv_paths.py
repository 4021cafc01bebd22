"""The convolution's implicit GEMM (csrc/conv2d_implicit_gemm.h) and where 'auto' hands over to the GEMM.

Stride-1 layers with enough filters read the input in place from a zero-padded slab whose rows
share their padding gap; rows of output are cut into blocks, and the gradient of the input runs
the same code with flipped filters. Each case here is built to reach one corner of that: many
row blocks in one image (and the rounding of blocks to threads at batch 1), asymmetric and
dilated padding, padding wider than the filter (a row period set by Q, and the gradient of the
input cropping, which falls back to packing), groups, tiles that span whole rows, the pixel
micro-kernel's tilings, and the fused ReLU's masked gradient; and
the two packed weight gradients (dw and dw^T), which also sum the bias gradient.
Every case is checked against the NumPy reference for the output and all three gradients, on
every SIMD path this CPU runs and with 1 and 2 threads; and non-finite values against torch where
it is installed (a non-finite weight sends the gradient of the input to the packed path; the
weight gradient multiplies only real products, so an infinite input stays on the slab).
"""
import numpy as np
import pytest

from cconv import functional as F

import reference as ref
from test_properties import SIMD_PATHS, running

CASES = {  # name: (x shape, weight shape, conv2d keyword arguments)
    "row_blocks_batch1": ((1, 8, 23, 150), (24, 8, 3, 3), dict(padding=((1, 0), (2, 1)), dilation=(1, 2))),
    "many_images": ((9, 12, 10, 11), (32, 12, 3, 3), dict(padding=1)),
    "pad_wider_than_filter": ((2, 16, 12, 13), (32, 16, 3, 3), dict(padding=3)),
    "valid_5x5": ((3, 6, 14, 14), (16, 6, 5, 5), dict()),
    "same_even_kernel": ((2, 10, 11, 9), (24, 10, 4, 2), dict(padding="same")),
    "grouped": ((2, 24, 9, 10), (48, 12, 3, 3), dict(padding=1, groups=2)),
    "deep": ((2, 70, 7, 8), (33, 70, 3, 3), dict(padding=1, bias=True)),
    # Tiles that cover whole rows and skip the gaps (Q a multiple of NR or a divisor of it in
    # whole vectors, depending on the SIMD path); an odd row count leaves a half tile:
    "rows_of_16": ((2, 5, 9, 16), (32, 5, 3, 3), dict(padding=1)),
    "rows_of_8": ((3, 4, 7, 8), (16, 4, 3, 3), dict(padding=1)),
    "rows_of_32_valid": ((2, 6, 12, 34), (24, 6, 3, 3), dict()),
    # The pixel micro-kernel (AVX-512: 14 pixels x 32 filters, broadcasting pixels): rows of
    # whole tiles (Q a multiple of 14), tiles running over the gaps (Q = 10, with groups), a
    # partial last panel of filters (60 = 32 + 28), and depth blocks that accumulate (C*R*S > 384);
    # dx runs it too where C/groups fills its panels:
    "pixel_rows_of_14": ((2, 32, 9, 14), (32, 32, 3, 3), dict(padding=1)),
    "pixel_deep_rows_of_28": ((1, 60, 6, 28), (60, 60, 3, 3), dict(padding=1)),
    "pixel_gaps_grouped": ((2, 64, 8, 10), (64, 32, 3, 3), dict(padding=1, groups=2)),
    "pixel_rows_under_8": ((3, 40, 5, 5), (64, 40, 3, 3), dict(padding=1)),  # narrower than a transpose
    # The packed paths, whose weight gradient also sums the bias gradient from its packed dy:
    "packed_transposed": ((5, 1, 20, 21), (32, 1, 3, 3), dict(stride=2, padding=1)),  # dw^T (CRS = 9)
    "packed_pointwise": ((3, 24, 7, 9), (40, 24, 1, 1), dict()),  # dw directly
}


def arrays(name, dtype, seed=0):
    x_shape, w_shape, kwargs = CASES[name]
    rng = np.random.default_rng(seed)
    kwargs = dict(kwargs)
    bias = rng.standard_normal(w_shape[0]).astype(dtype) if kwargs.pop("bias", True) else None
    return (rng.standard_normal(x_shape).astype(dtype), (rng.standard_normal(w_shape) * 0.3).astype(dtype),
            bias, kwargs)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa", SIMD_PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", CASES)
def test_matches_reference(name, dtype, isa, threads):
    x, weight, bias, kwargs = arrays(name, dtype)
    with running(threads, isa):
        y = F.conv2d(x, weight, bias, **kwargs)
        grad_out = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    ref.assert_close(y, ref.conv2d(x, weight, bias, **kwargs), dtype, "y")
    expected = ref.conv2d_backward(grad_out, x, weight, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        ref.assert_close(got, want, dtype, what)


@pytest.mark.parametrize("isa", SIMD_PATHS)
@pytest.mark.parametrize("name", ["row_blocks_batch1", "many_images", "grouped", "rows_of_16", "pixel_rows_of_14",
                                  "pixel_gaps_grouped", "packed_transposed", "packed_pointwise"])
def test_fused_relu_masks_the_gradient(name, isa):
    x, weight, bias, kwargs = arrays(name, np.float64)
    with running(2, isa):
        y = F.conv2d(x, weight, bias, activation="relu", **kwargs)
        grad_out = np.random.default_rng(2).standard_normal(y.shape)
        grads = F.conv2d_backward(grad_out, x, weight, activation="relu", output=y, **kwargs)
    plain = ref.conv2d(x, weight, bias, **kwargs)
    np.testing.assert_allclose(y, np.maximum(plain, 0), rtol=1e-10, atol=1e-10)
    expected = ref.conv2d_backward(grad_out * (plain > 0), x, weight, **kwargs)
    for what, got, want in zip(("grad_x", "grad_weight", "grad_bias"), grads, expected):
        ref.assert_close(got, want, np.float64, what)


@pytest.mark.parametrize("isa", SIMD_PATHS)
@pytest.mark.parametrize("name", ["many_images", "rows_of_16", "pixel_rows_of_14", "packed_transposed",
                                  "packed_pointwise"])
def test_fused_relu_keeps_nan(name, isa):
    """The ReLU rides on the micro-kernels' stores (max against zero): a NaN stays NaN there."""
    x, weight, bias, kwargs = arrays(name, np.float32)
    x[0, 0, x.shape[2] // 2, x.shape[3] // 2] = np.nan
    with running(2, isa):
        y = F.conv2d(x, weight, bias, activation="relu", **kwargs)
    want = np.maximum(ref.conv2d(x, weight, bias, **kwargs), 0)
    assert np.isnan(want).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    ref.assert_close(np.nan_to_num(y), np.nan_to_num(want), np.float32, "y")


@pytest.mark.parametrize("poisoned", ["x", "weight"])
def test_non_finite_values_stay_where_torch_puts_them(poisoned):
    """The slab's dropped columns and padding meet every weight and real pixels with a zero
    gradient: with an infinity in x or the weights, the backward must not spread NaN there."""
    torch = pytest.importorskip("torch")
    x, weight, bias, kwargs = arrays("many_images", np.float64)
    target = x if poisoned == "x" else weight
    target.flat[np.random.default_rng(3).choice(target.size, 3, replace=False)] = np.inf
    y = F.conv2d(x, weight, bias, **kwargs)
    grad_out = np.random.default_rng(4).standard_normal(y.shape)
    grads = F.conv2d_backward(grad_out, x, weight, **kwargs)
    assert_non_finite_like_torch(torch, x, weight, bias, kwargs, y, grad_out, grads)


def assert_non_finite_like_torch(torch, x, weight, bias, kwargs, y, grad_out, grads):
    """y and the x and weight gradients have NaN and infinities exactly where torch's have them,
    and torch's finite values elsewhere."""
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(weight, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, torch.tensor(bias), **kwargs)
    yt.backward(torch.tensor(grad_out))
    for what, got, want in (("y", y, yt.detach()), ("grad_x", grads[0], xt.grad), ("grad_weight", grads[1], wt.grad)):
        want = want.numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN placement")
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{what}: infinity placement")
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-9, atol=1e-9, err_msg=what)
