"""Naive NumPy reference implementations and shared test helpers (independent of cconv).

Convolution is computed by im2col: every kernel tap is one strided slice of the padded
input, the taps are stacked into columns, and a batched matrix product does the rest;
the backward pass scatters the column gradients back tap by tap. Pooling stacks the
kernel-window taps the same way. Everything is computed in float64 whatever the input
dtype, so the references are accurate enough to judge float32 and float64 results.
Argument normalisation ('same' padding, PyTorch's pooling output size) is re-derived
here from the documented rules rather than imported from cconv.
"""
import numpy as np


# ----------------------------------------------------------------------------- arguments

def as_pair(value):
    """An int or an (h, w) pair as an (h, w) tuple."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def resolve_conv_padding(padding, in_hw, kernel_hw, stride, dilation):
    """Any accepted conv `padding` form as ((top, bottom), (left, right)).

    'same' uses the Keras/TensorFlow rule for any stride: out = ceil(in / stride), total
    padding = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0), top = total // 2.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        assert padding == "same"
        sides = []
        for size, k, s, d in zip(in_hw, kernel_hw, stride, dilation):
            out = (size + s - 1) // s
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            sides.append((total // 2, total - total // 2))
        return tuple(sides)
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        (top, bottom), (left, right) = padding
        return (int(top), int(bottom)), (int(left), int(right))
    ph, pw = as_pair(padding)
    return (ph, ph), (pw, pw)


def conv_output_hw(in_hw, kernel_hw, stride, padding, dilation):
    """(P, Q) of a convolution with `padding` already resolved to ((t, b), (l, r))."""
    return tuple((size + before + after - d * (k - 1) - 1) // s + 1
                 for size, k, s, d, (before, after) in zip(in_hw, kernel_hw, stride, dilation, padding))


def pool_output_size(size, kernel, stride, pad, ceil_mode):
    """PyTorch's pooling output size: with ceil_mode the last window must start inside the
    input or the left padding."""
    numerator = size + 2 * pad - kernel
    out = (numerator + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


# ----------------------------------------------------------------------------- convolution

def _tap_slices(r, s, dilation, stride, out_hw):
    """Index of the padded input that kernel tap (r, s) reads for every output pixel."""
    (dh, dw), (sh, sw), (p, q) = dilation, stride, out_hw
    return (slice(r * dh, r * dh + (p - 1) * sh + 1, sh),
            slice(s * dw, s * dw + (q - 1) * sw + 1, sw))


def _conv_geometry(x, weight, stride, padding, dilation):
    stride, dilation = as_pair(stride), as_pair(dilation)
    kernel_hw = weight.shape[2:]
    pads = resolve_conv_padding(padding, x.shape[2:], kernel_hw, stride, dilation)
    out_hw = conv_output_hw(x.shape[2:], kernel_hw, stride, pads, dilation)
    return stride, dilation, pads, out_hw


def im2col(x, kernel_hw, stride, pads, dilation, out_hw, groups):
    """Columns of shape (N, groups, C/groups * R * S, P * Q), in float64."""
    n, c = x.shape[:2]
    r_size, s_size = kernel_hw
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0)) + tuple(pads))
    cols = np.empty((n, c, r_size, s_size) + tuple(out_hw))
    for r in range(r_size):
        for s in range(s_size):
            rows, columns = _tap_slices(r, s, dilation, stride, out_hw)
            cols[:, :, r, s] = xp[:, :, rows, columns]
    return cols.reshape(n, groups, (c // groups) * r_size * s_size, out_hw[0] * out_hw[1])


def col2im(cols, x_shape, kernel_hw, stride, pads, dilation, out_hw):
    """Scatter-add columns (N, groups, C/groups * R * S, P * Q) back to an (N, C, H, W) image."""
    n, c, h, w = x_shape
    r_size, s_size = kernel_hw
    (top, bottom), (left, right) = pads
    cols = cols.reshape((n, c, r_size, s_size) + tuple(out_hw))
    grad_padded = np.zeros((n, c, h + top + bottom, w + left + right))
    for r in range(r_size):
        for s in range(s_size):
            rows, columns = _tap_slices(r, s, dilation, stride, out_hw)
            grad_padded[:, :, rows, columns] += cols[:, :, r, s]
    return grad_padded[:, :, top:top + h, left:left + w]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Reference cross-correlation (PyTorch's conv2d), returned in float64."""
    n = x.shape[0]
    k = weight.shape[0]
    stride, dilation, pads, out_hw = _conv_geometry(x, weight, stride, padding, dilation)
    cols = im2col(x, weight.shape[2:], stride, pads, dilation, out_hw, groups)
    w = np.asarray(weight, np.float64).reshape(groups, k // groups, -1)
    y = np.matmul(w[None], cols).reshape((n, k) + tuple(out_hw))
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[None, :, None, None]
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """Reference (grad_x, grad_weight, grad_bias) for y = conv2d(x, weight, bias), float64."""
    n = x.shape[0]
    k = weight.shape[0]
    stride, dilation, pads, out_hw = _conv_geometry(x, weight, stride, padding, dilation)
    cols = im2col(x, weight.shape[2:], stride, pads, dilation, out_hw, groups)
    w = np.asarray(weight, np.float64).reshape(groups, k // groups, -1)
    g = np.asarray(grad_out, np.float64).reshape(n, groups, k // groups, -1)
    grad_weight = np.matmul(g, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(weight.shape)
    grad_cols = np.matmul(w.transpose(0, 2, 1)[None], g)
    grad_x = col2im(grad_cols, x.shape, weight.shape[2:], stride, pads, dilation, out_hw)
    grad_bias = np.asarray(grad_out, np.float64).sum(axis=(0, 2, 3))
    return grad_x, grad_weight, grad_bias


def _tap_columns(x, kernel_hw, stride, pads, dilation, out_hw, groups):
    """im2col's columns (N, groups, C/groups, R, S, P, Q) gathered tap by tap from x itself, with
    the indices of the pixels read and where they are real, so that padding of any size costs
    nothing (no padded copy)."""
    n, c, h, w = x.shape
    (r_size, s_size), (sh, sw), (dh, dw), (p, q) = kernel_hw, stride, dilation, out_hw
    (top, _), (left, _) = pads
    rows = np.arange(p)[:, None] * sh + np.arange(r_size)[None, :] * dh - top  # (P, R), int64
    columns = np.arange(q)[:, None] * sw + np.arange(s_size)[None, :] * dw - left  # (Q, S)
    row_ok, column_ok = (rows >= 0) & (rows < h), (columns >= 0) & (columns < w)
    rows, columns = np.where(row_ok, rows, 0), np.where(column_ok, columns, 0)
    taps = np.asarray(x, np.float64)[:, :, rows[:, :, None, None], columns[None, None, :, :]]  # (N, C, P, R, Q, S)
    taps = taps * (row_ok[:, :, None, None] & column_ok[None, None, :, :])
    cols = taps.transpose(0, 1, 3, 5, 2, 4).reshape(n, groups, c // groups, r_size, s_size, p, q)
    return cols, rows, columns, row_ok, column_ok


def conv2d_taps(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d, reading only the taps that meet the image: for paddings, dilations and strides of
    any size (up to 2**31 and past) whose output is small. float64."""
    k = weight.shape[0]
    stride, dilation, pads, out_hw = _conv_geometry(x, weight, stride, padding, dilation)
    cols = _tap_columns(x, weight.shape[2:], stride, pads, dilation, out_hw, groups)[0]
    w = np.asarray(weight, np.float64).reshape((groups, k // groups) + weight.shape[1:])
    y = np.einsum("ngcrspq,gkcrs->ngkpq", cols, w).reshape((x.shape[0], k) + tuple(out_hw))
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[None, :, None, None]
    return y


def conv2d_backward_taps(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """conv2d_backward as conv2d_taps computes the forward: (grad_x, grad_weight, grad_bias), float64."""
    n, c = x.shape[:2]
    k = weight.shape[0]
    stride, dilation, pads, out_hw = _conv_geometry(x, weight, stride, padding, dilation)
    cols, rows, columns, row_ok, column_ok = _tap_columns(x, weight.shape[2:], stride, pads, dilation, out_hw, groups)
    w = np.asarray(weight, np.float64).reshape((groups, k // groups) + weight.shape[1:])
    g = np.asarray(grad_out, np.float64).reshape((n, groups, k // groups) + tuple(out_hw))
    grad_weight = np.einsum("ngkpq,ngcrspq->gkcrs", g, cols).reshape(weight.shape)
    grad_taps = np.einsum("ngkpq,gkcrs->ngcprqs", g, w).reshape((n, c) + rows.shape + columns.shape)
    grad_taps = grad_taps * (row_ok[:, :, None, None] & column_ok[None, None, :, :])
    grad_x = np.zeros(x.shape)
    np.add.at(grad_x, (slice(None), slice(None), rows[:, :, None, None], columns[None, None, :, :]), grad_taps)
    return grad_x, grad_weight, np.asarray(grad_out, np.float64).sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------- pooling

def _pool_geometry(x, kernel_size, stride, padding, ceil_mode):
    kernel = as_pair(kernel_size)
    stride = kernel if stride is None else as_pair(stride)
    pad = as_pair(padding)
    out_hw = tuple(pool_output_size(size, k, s, p, ceil_mode)
                   for size, k, s, p in zip(x.shape[2:], kernel, stride, pad))
    return kernel, stride, pad, out_hw


def _pool_padding(x_hw, kernel, stride, pad, out_hw):
    """((top, bottom), (left, right)) so that every window, ceil-mode overhang included, fits."""
    sides = []
    for size, k, s, p, o in zip(x_hw, kernel, stride, pad, out_hw):
        sides.append((p, max(p, (o - 1) * s + k - size - p)))
    return tuple(sides)


def _pool_windows(x, kernel, stride, pad, out_hw, fill):
    """Windows of shape (N, C, kh * kw, P, Q) in float64, row-major within the window."""
    pads = _pool_padding(x.shape[2:], kernel, stride, pad, out_hw)
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0)) + pads, constant_values=fill)
    n, c = x.shape[:2]
    windows = np.empty((n, c, kernel[0], kernel[1]) + tuple(out_hw))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, columns = _tap_slices(i, j, (1, 1), stride, out_hw)
            windows[:, :, i, j] = xp[:, :, rows, columns]
    return windows.reshape((n, c, kernel[0] * kernel[1]) + tuple(out_hw)), pads


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Reference max pooling (padding counts as -inf), float64."""
    kernel, stride, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    windows, _ = _pool_windows(x, kernel, stride, pad, out_hw, -np.inf)
    return windows.max(axis=2)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Reference max-pool gradient: each output's gradient goes to the first maximum of its
    window in row-major order."""
    kernel, stride, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    windows, pads = _pool_windows(x, kernel, stride, pad, out_hw, -np.inf)
    first_max = windows.argmax(axis=2)  # np.argmax returns the first occurrence
    n, c, h, w = x.shape
    oh = np.arange(out_hw[0])[:, None] * stride[0] + first_max // kernel[1]
    ow = np.arange(out_hw[1])[None, :] * stride[1] + first_max % kernel[1]
    grad_padded = np.zeros((n, c, h + sum(pads[0]), w + sum(pads[1])))
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    np.add.at(grad_padded, (nn[:, :, None, None], cc[:, :, None, None], oh, ow),
              np.asarray(grad_out, np.float64))
    return grad_padded[:, :, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]


def avg_pool_divisor(x_hw, kernel, stride, pad, out_hw, count_include_pad):
    """PyTorch's per-output divisor (P, Q): with count_include_pad the window clipped to the
    padded input, otherwise the number of real input pixels in the window."""
    counts = []
    for size, k, s, p, o in zip(x_hw, kernel, stride, pad, out_hw):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, size + p)
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(np.minimum(end, size) - np.maximum(start, 0))
    return counts[0][:, None] * counts[1][None, :]


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Reference average pooling, float64."""
    kernel, stride, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    windows, _ = _pool_windows(x, kernel, stride, pad, out_hw, 0.0)
    divisor = avg_pool_divisor(x.shape[2:], kernel, stride, pad, out_hw, count_include_pad)
    return windows.sum(axis=2) / divisor


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Reference average-pool gradient: each output's gradient / divisor to every window pixel."""
    kernel, stride, pad, out_hw = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    divisor = avg_pool_divisor(x.shape[2:], kernel, stride, pad, out_hw, count_include_pad)
    share = np.asarray(grad_out, np.float64) / divisor
    pads = _pool_padding(x.shape[2:], kernel, stride, pad, out_hw)
    n, c, h, w = x.shape
    grad_padded = np.zeros((n, c, h + sum(pads[0]), w + sum(pads[1])))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, columns = _tap_slices(i, j, (1, 1), stride, out_hw)
            grad_padded[:, :, rows, columns] += share
    return grad_padded[:, :, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Reference power-average pooling with torch's definition:
    (avg_pool2d(x ** p, k, stride, 0, ceil_mode) * kh * kw) ** (1 / p)."""
    kh, kw = as_pair(kernel_size)
    x = np.asarray(x, np.float64)
    pooled = avg_pool2d(x ** norm_type, kernel_size, stride, 0, ceil_mode) * (kh * kw)
    return pooled ** (1.0 / norm_type)


def lp_pool2d_backward(grad_out, x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Reference lp-pool gradient. With c = kh * kw / divisor and y = (c * sum x^p)^(1/p),
    dy/dx_i = c * x_i^(p-1) * y^(1-p); defined as 0 where the pooled sum is 0."""
    kh, kw = as_pair(kernel_size)
    x = np.asarray(x, np.float64)
    y = lp_pool2d(x, norm_type, kernel_size, stride, ceil_mode)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(y == 0, 0.0, np.asarray(grad_out, np.float64) * y ** (1.0 - norm_type))
    # avg_pool2d_backward of `factor` spreads factor / divisor over the window; times kh * kw.
    spread = avg_pool2d_backward(factor, x, kernel_size, stride, 0, ceil_mode) * (kh * kw)
    return spread * x ** (norm_type - 1)


# ----------------------------------------------------------------------------- helpers

def rel_error(a, b):
    """CS231n's elementwise relative error, maximised over the arrays."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}


def assert_close(got, expected, dtype, what="result", tol=None):
    """`got` has `dtype` and the shape of `expected`, and max |got - expected| is within the
    dtype's tolerance relative to the scale of `expected` (max |expected|, at least 1)."""
    dtype = np.dtype(dtype).type
    assert isinstance(got, np.ndarray), f"{what}: expected an ndarray, got {type(got).__name__}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    if expected.size == 0:
        return
    scale = max(float(np.max(np.abs(expected))), 1.0)
    error = float(np.max(np.abs(got.astype(np.float64) - expected))) / scale
    tol = TOLERANCE[dtype] if tol is None else tol
    assert error <= tol, f"{what}: max error {error:.3g} relative to scale {scale:.3g} exceeds {tol:g}"


def numerical_gradient(f, array, g, h):
    """Central-difference gradient of sum(f() * g) with respect to `array` (changed in place
    and restored)."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        plus = float(np.sum(f() * g))
        flat[i] = saved - h
        minus = float(np.sum(f() * g))
        flat[i] = saved
        grad.reshape(-1)[i] = (plus - minus) / (2 * h)
    return grad


def read_only(a):
    """A read-only copy of `a`."""
    a = a.copy()
    a.setflags(write=False)
    return a


def call_unmodified(function, *args, **kwargs):
    """Call `function` and assert that no ndarray argument was modified."""
    saved = [(a, a.copy()) for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)]
    result = function(*args, **kwargs)
    for original, copy in saved:
        assert np.array_equal(original, copy, equal_nan=True), f"{function.__name__} modified an input"
    return result
