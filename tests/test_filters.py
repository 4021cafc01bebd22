"""Tests of cconv.filters: the classic kernels' values, known results (Sobel on a step edge and
on ramps, the Laplacian of a paraboloid), apply() against an independent NumPy filter for
every border mode and image layout, dtypes, one F.conv2d call per apply, and bad input."""
import numpy as np
import pytest

from cconv import filters
from cconv import functional as F

from reference import assert_close

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
SCHARR_X = np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], np.float32)


def border_index(i, n, mode):
    """Where index i (possibly outside 0..n-1) reads from in an image of n pixels, or -1 for
    a zero; reflect mirrors about the edge pixel (-1 -> 1, n -> n - 2)."""
    if mode == "reflect":
        i = np.abs(i)
        return np.where(i > n - 1, 2 * (n - 1) - i, i)
    if mode == "edge":
        return np.clip(i, 0, n - 1)
    return np.where((i >= 0) & (i < n), i, -1)


def reference_filter(image, kernel, mode):
    """A single 2-D kernel over an HxW image, computed tap by tap in float64 from the formula
    out[i, j] = sum_uv kernel[u, v] * image[i + u - top, j + v - left] (cross-correlation,
    'same' size with top = (R - 1) // 2, or 'valid')."""
    image = np.asarray(image, np.float64)
    (h, w), (r, s) = image.shape, kernel.shape
    if mode == "valid":
        rows, cols, top, left = np.arange(h - r + 1), np.arange(w - s + 1), 0, 0
    else:
        rows, cols, top, left = np.arange(h), np.arange(w), (r - 1) // 2, (s - 1) // 2
    out = np.zeros((rows.size, cols.size))
    padded = np.pad(image, ((0, 1), (0, 1)))  # index -1 reads the zero in the extra row / column
    for u in range(r):
        for v in range(s):
            ri = border_index(rows + u - top, h, mode) if mode != "valid" else rows + u
            ci = border_index(cols + v - left, w, mode) if mode != "valid" else cols + v
            out += float(kernel[u, v]) * padded[np.ix_(ri, ci)]
    return out


ALL_KERNELS = {
    "sobel": filters.sobel(), "scharr": filters.scharr(), "laplacian": filters.laplacian(),
    "laplacian8": filters.laplacian(diagonals=True), "box3": filters.box_blur(3),
    "box2x4": filters.box_blur((2, 4)), "gauss": filters.gaussian_blur(1.2),
    "sharpen": filters.sharpen(), "random5x4": np.random.default_rng(5).normal(size=(3, 1, 5, 4)),
}


# ----------------------------------------------------------------------------- kernels

def test_kernel_values():
    for kernel in (filters.sobel(), filters.scharr(), filters.laplacian(), filters.box_blur(),
                   filters.gaussian_blur(), filters.sharpen()):
        assert kernel.dtype == np.float32 and kernel.ndim == 4 and kernel.shape[1] == 1
    assert filters.sobel().shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(filters.sobel()[:, 0], [SOBEL_X, SOBEL_X.T])
    np.testing.assert_array_equal(filters.sobel("x"), SOBEL_X[None, None])
    np.testing.assert_array_equal(filters.sobel("y"), SOBEL_X.T[None, None])
    np.testing.assert_array_equal(filters.scharr()[:, 0], [SCHARR_X, SCHARR_X.T])
    np.testing.assert_array_equal(filters.laplacian()[0, 0], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(filters.laplacian(True)[0, 0], [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    np.testing.assert_array_equal(filters.sharpen()[0, 0], [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_allclose(filters.sharpen(0.5)[0, 0], [[0, -.5, 0], [-.5, 3, -.5], [0, -.5, 0]])
    np.testing.assert_allclose(filters.box_blur(3), np.full((1, 1, 3, 3), 1 / 9), rtol=1e-7)
    np.testing.assert_allclose(filters.box_blur((2, 4)), np.full((1, 1, 2, 4), 1 / 8), rtol=1e-7)


@pytest.mark.parametrize("sigma, size, expected_size", [(1.0, None, 7), (0.5, None, 5),
                                                         (2.0, None, 13), (1.5, 3, 3)])
def test_gaussian_blur(sigma, size, expected_size):
    kernel = filters.gaussian_blur(sigma, size)[0, 0].astype(np.float64)
    assert kernel.shape == (expected_size, expected_size)
    assert abs(kernel.sum() - 1) < 1e-6
    d = np.arange(expected_size) - expected_size // 2
    expected = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma ** 2))
    np.testing.assert_allclose(kernel, expected / expected.sum(), rtol=1e-6)


# ----------------------------------------------------------------------------- known results

def test_sobel_on_a_step_edge():
    image = np.zeros((6, 8), np.float32)
    image[:, 4:] = 1.0  # dark left half, bright right half: a vertical edge between columns 3 and 4
    gx, gy = filters.apply(image, filters.sobel())
    expected_gx = np.zeros((6, 8))
    expected_gx[:, 3:5] = 4.0  # (1 + 2 + 1) * (1 - 0) on both columns beside the edge
    np.testing.assert_array_equal(gx, expected_gx)
    np.testing.assert_array_equal(gy, 0)  # reflect padding: no false edge at the border
    gy_t, = filters.apply(image.T, filters.sobel("y"))[None]
    np.testing.assert_array_equal(gy_t, expected_gx.T)  # a horizontal edge, seen by Sobel y
    magnitude = filters.gradient_magnitude(image)
    np.testing.assert_array_equal(magnitude, expected_gx)


def test_zero_padding_makes_false_border_edges_that_reflect_does_not():
    image = np.full((5, 5), 2.0)
    zeros = filters.apply(image, filters.sobel("x"), padding="zeros")
    np.testing.assert_array_equal(zeros[:, 0], [6, 8, 8, 8, 6])    # 2 * (1 + 2 + 1), corners 2 * 3
    np.testing.assert_array_equal(zeros[:, -1], [-6, -8, -8, -8, -6])
    np.testing.assert_array_equal(zeros[:, 1:-1], 0)
    for padding in ("reflect", "edge"):
        np.testing.assert_array_equal(filters.apply(image, filters.sobel(), padding), 0)
        for kernel in (filters.box_blur(4), filters.gaussian_blur(1.0), filters.sharpen(3.0)):
            np.testing.assert_allclose(filters.apply(image, kernel, padding), 2.0, rtol=1e-6)


def test_derivatives_of_ramps_and_the_laplacian_of_a_paraboloid():
    y, x = np.mgrid[0:9, 0:11].astype(np.float64)
    ramp = 0.5 * x - 3.0 * y
    gx, gy = filters.apply(ramp, filters.sobel(), padding="valid")
    np.testing.assert_allclose(gx, 8 * 0.5)
    np.testing.assert_allclose(gy, 8 * -3.0)
    sx, sy = filters.apply(ramp, filters.scharr(), padding="valid")
    np.testing.assert_allclose(sx, 32 * 0.5)
    np.testing.assert_allclose(sy, 32 * -3.0)
    bowl = x ** 2 + y ** 2  # the 5-point Laplacian of x^2 + y^2 is exactly 4; the 9-point one 12
    np.testing.assert_allclose(filters.apply(bowl, filters.laplacian(), "valid"), 4.0)
    np.testing.assert_allclose(filters.apply(bowl, filters.laplacian(True), "valid"), 12.0)
    np.testing.assert_allclose(filters.apply(ramp, filters.laplacian(), "valid"), 0.0, atol=1e-12)
    # a sharpened ramp is the ramp (the Laplacian of a linear function is 0)
    np.testing.assert_allclose(filters.apply(ramp, filters.sharpen(), "valid"), ramp[1:-1, 1:-1])


# ----------------------------------------------------------------------------- apply

@pytest.mark.parametrize("padding", ["reflect", "edge", "zeros", "valid"])
@pytest.mark.parametrize("name", list(ALL_KERNELS))
def test_apply_matches_the_reference(name, padding, rng):
    kernel = ALL_KERNELS[name]
    image = rng.normal(size=(9, 12)).astype(np.float32)
    got = filters.apply(image, kernel, padding)
    bank = np.asarray(kernel).reshape(-1, *np.shape(kernel)[-2:])
    expected = np.stack([reference_filter(image, k, padding) for k in bank])
    assert_close(got, expected[0] if len(bank) == 1 else expected, np.float32)


@pytest.mark.parametrize("padding", ["reflect", "zeros", "valid"])
@pytest.mark.parametrize("kernel", [filters.sobel(), filters.gaussian_blur(0.8)], ids=["bank", "single"])
def test_image_layouts(kernel, padding, rng):
    """Every channel is filtered on its own; a bank of K > 1 kernels adds a leading K axis."""
    def filtered(image2d):  # (K, H', W')
        return np.stack([reference_filter(image2d, k, padding) for k in kernel[:, 0]])

    def squeeze(expected):  # one kernel: no K axis
        return expected[0] if len(kernel) == 1 else expected

    hwc = rng.normal(size=(7, 10, 3))
    expected = np.stack([filtered(hwc[..., c]) for c in range(3)], axis=-1)  # (K, H', W', C)
    assert_close(filters.apply(hwc, kernel, padding), squeeze(expected), np.float64)
    nchw = rng.normal(size=(2, 3, 10, 7))
    expected = np.moveaxis(np.array([[filtered(nchw[n, c]) for c in range(3)] for n in range(2)]), 2, 0)
    assert_close(filters.apply(nchw, kernel, padding), squeeze(expected), np.float64)  # (K, N, C, H', W')
    hw = nchw[1, 2]
    assert_close(filters.apply(hw, kernel, padding), squeeze(filtered(hw)), np.float64)


def test_kernel_forms_are_equivalent(rng):
    image = rng.random((6, 6)).astype(np.float32)
    bank = filters.sobel()
    for form in (bank, bank[:, 0], bank[:, 0].tolist()):
        np.testing.assert_array_equal(filters.apply(image, form), filters.apply(image, bank))
    np.testing.assert_array_equal(filters.apply(image, SOBEL_X), filters.apply(image, bank)[0])


def test_dtypes_and_unusual_arrays(rng):
    photo = rng.integers(0, 256, size=(8, 9, 3), dtype=np.uint8)
    got = filters.apply(photo, filters.box_blur(3))
    assert got.dtype == np.float32
    expected = np.stack([reference_filter(photo[..., c], np.full((3, 3), 1 / 9), "reflect")
                         for c in range(3)], axis=-1)
    assert_close(got, expected, np.float32)
    assert filters.apply(photo > 128, filters.laplacian()).dtype == np.float32
    image64 = rng.normal(size=(16, 14))
    got = filters.apply(image64[::2, ::-1], filters.scharr("x"))  # strided, reversed view
    assert_close(got, reference_filter(image64[::2, ::-1], SCHARR_X, "reflect"), np.float64)
    big_endian = image64.astype(">f4")
    assert_close(filters.apply(big_endian, filters.sharpen()),
                 reference_filter(image64.astype(np.float32), filters.sharpen()[0, 0], "reflect"),
                 np.float32)
    untouched = image64.copy()
    filters.apply(image64, filters.sobel())
    np.testing.assert_array_equal(image64, untouched)


def test_apply_makes_one_conv2d_call(monkeypatch, rng):
    calls = []
    real = F.conv2d

    def counting(x, weight, *args, **kwargs):
        calls.append((x.shape, weight.shape))
        return real(x, weight, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting)
    out = filters.apply(rng.random((4, 3, 12, 10)), filters.sobel())
    assert out.shape == (2, 4, 3, 12, 10)
    assert calls == [((12, 1, 14, 12), (2, 1, 3, 3))]  # every channel of every image in one batch


def test_grayscale():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]]], np.uint8)
    np.testing.assert_allclose(filters.grayscale(rgb), [[0.299 * 255, 0.587 * 255, 0.114 * 255, 10]],
                               rtol=1e-6)
    assert filters.grayscale(rgb).dtype == np.float32
    rgba = np.concatenate([rgb / 255.0, np.zeros((1, 4, 1))], axis=-1)
    np.testing.assert_allclose(filters.grayscale(rgba), [[0.299, 0.587, 0.114, 10 / 255]])
    assert filters.grayscale(rgba).dtype == np.float64


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, error, word", [
    (lambda: filters.apply(np.zeros(5), filters.sobel()), ValueError, "image"),
    (lambda: filters.apply(np.zeros((1, 2, 3, 4, 5)), filters.sobel()), ValueError, "image"),
    (lambda: filters.apply(np.zeros((0, 4)), filters.sobel()), ValueError, "image"),
    (lambda: filters.apply(np.array([["a"]]), filters.sobel()), TypeError, "image"),
    (lambda: filters.apply(np.zeros((4, 4)), np.zeros((2, 3, 3, 3))), ValueError, "kernel"),
    (lambda: filters.apply(np.zeros((4, 4)), np.zeros(3)), ValueError, "kernel"),
    (lambda: filters.apply(np.zeros((4, 4)), np.zeros((0, 3))), ValueError, "kernel"),
    (lambda: filters.apply(np.zeros((4, 4)), np.full((3, 3), np.nan)), ValueError, "kernel"),
    (lambda: filters.apply(np.zeros((4, 4)), "sobel"), TypeError, "kernel"),
    (lambda: filters.apply(np.zeros((4, 4)), filters.sobel(), "wrap"), ValueError, "padding"),
    (lambda: filters.apply(np.zeros((2, 2)), filters.box_blur(3), "valid"), ValueError, "kernel"),
    (lambda: filters.sobel("z"), ValueError, "axis"),
    (lambda: filters.gaussian_blur(0), ValueError, "sigma"),
    (lambda: filters.gaussian_blur(float("nan")), ValueError, "sigma"),
    (lambda: filters.gaussian_blur(True), ValueError, "sigma"),
    (lambda: filters.gaussian_blur(1.0, 4), ValueError, "size"),
    (lambda: filters.box_blur(0), ValueError, "size"),
    (lambda: filters.sharpen(float("inf")), ValueError, "amount"),
    (lambda: filters.gradient_magnitude(np.zeros((4, 4)), "prewitt"), ValueError, "operator"),
    (lambda: filters.grayscale(np.zeros((4, 4))), ValueError, "image"),
])
def test_bad_input(call, error, word):
    with pytest.raises(error, match=word):
        call()
