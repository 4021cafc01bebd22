"""Classic hand-designed image filters, as weight arrays ready for `cconv.functional.conv2d`.

    from cconv import filters
    gx, gy = filters.apply(gray_photo, filters.sobel())      # (2, H, W): x and y derivatives
    edges = np.hypot(gx, gy)
    soft = filters.apply(rgb_photo, filters.gaussian_blur(2.0))   # (H, W, 3)

Every kernel function returns a float32 array of shape (K, 1, R, S): K filters of one input
channel, the weight layout of F.conv2d. As F.conv2d computes a cross-correlation, the
derivative kernels respond positively where the intensity grows to the right (x) or
downwards (y).

`apply(image, kernel)` filters an HxW, HxWxC or NCHW image (each channel on its own) with one
call to F.conv2d. With a single kernel (K = 1) the result has the image's shape; with a bank of
K > 1 kernels it has a new leading axis of length K.
"""
import math
import numbers

import numpy as np

from cconv import functional as F
from cconv._args import as_int, as_real_array, conv_padding, pair

__all__ = ["sobel", "scharr", "laplacian", "box_blur", "gaussian_blur", "sharpen", "apply",
           "gradient_magnitude", "grayscale"]

PADDINGS = ("reflect", "edge", "zeros", "valid")


def _derivative_pair(smooth, axis):
    """x (and/or y) derivative kernels: a [-1, 0, 1] difference across, `smooth` along."""
    x = np.outer(smooth, [-1.0, 0.0, 1.0])
    kernels = {"x": [x], "y": [x.T], "both": [x, x.T]}
    if axis not in kernels:
        raise ValueError(f"axis must be 'x', 'y' or 'both', got {axis!r}")
    return np.stack(kernels[axis]).astype(np.float32)[:, None]


def sobel(axis="both"):
    """Sobel derivative kernels: axis 'x' -> (1, 1, 3, 3), 'y' -> (1, 1, 3, 3),
    'both' -> (2, 1, 3, 3) with x first. x is [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], y its
    transpose (unnormalised: a ramp of slope 1 gives 8)."""
    return _derivative_pair([1.0, 2.0, 1.0], axis)


def scharr(axis="both"):
    """Scharr derivative kernels (better rotation symmetry than Sobel), shaped like sobel():
    x is [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]] (a ramp of slope 1 gives 32)."""
    return _derivative_pair([3.0, 10.0, 3.0], axis)


def laplacian(diagonals=False):
    """The discrete Laplacian, (1, 1, 3, 3): [[0, 1, 0], [1, -4, 1], [0, 1, 0]], or with
    diagonals=True [[1, 1, 1], [1, -8, 1], [1, 1, 1]]."""
    kernel = np.ones((3, 3)) if diagonals else np.array([[0.0, 1, 0], [1, 1, 1], [0, 1, 0]])
    kernel[1, 1] = 0.0
    kernel[1, 1] = -kernel.sum()  # minus the sum of the neighbours: the kernel sums to 0
    return kernel.astype(np.float32)[None, None]


def box_blur(size=3):
    """The mean over a size x size (or (h, w)) window, (1, 1, h, w); sums to 1."""
    h, w = pair(size, "size")
    return np.full((1, 1, h, w), 1.0 / (h * w), dtype=np.float32)


def gaussian_blur(sigma=1.0, size=None):
    """A normalised Gaussian of standard deviation `sigma` pixels, (1, 1, size, size); `size`
    (odd) defaults to 2 * ceil(3 * sigma) + 1, which holds 99.7% of the weight."""
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not 0 < sigma < math.inf:
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    size = 2 * math.ceil(3 * sigma) + 1 if size is None else as_int(size, "size", 1)
    if size % 2 == 0:
        raise ValueError(f"size must be odd (the kernel is centred on a pixel), got {size}")
    offsets = np.arange(size) - size // 2
    g = np.exp(-0.5 * (offsets / float(sigma)) ** 2)
    kernel = np.outer(g, g)
    return (kernel / kernel.sum()).astype(np.float32)[None, None]


def sharpen(amount=1.0):
    """identity - amount * Laplacian, (1, 1, 3, 3): amount 1 gives the classic
    [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]. Sums to 1, so flat regions are unchanged."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not math.isfinite(amount):
        raise ValueError(f"amount must be a finite number, got {amount!r}")
    identity = np.zeros((3, 3))
    identity[1, 1] = 1.0
    kernel = identity - float(amount) * laplacian()[0, 0]
    return kernel.astype(np.float32)[None, None]


def _as_kernel(kernel, dtype):
    """A kernel (R, S), a bank (K, R, S) or F.conv2d weights (K, 1, R, S) as (K, 1, R, S)."""
    kernel = as_real_array(kernel, "kernel")
    if kernel.ndim == 2:
        kernel = kernel[None, None]
    elif kernel.ndim == 3:
        kernel = kernel[:, None]
    elif kernel.ndim != 4 or kernel.shape[1] != 1:
        raise ValueError(f"kernel must be (R, S), (K, R, S) or (K, 1, R, S) (one input channel: "
                         f"apply filters every channel on its own), got shape {kernel.shape}")
    if 0 in kernel.shape:
        raise ValueError(f"kernel must not be empty, got shape {kernel.shape}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("kernel contains NaN or infinite values")
    return np.ascontiguousarray(kernel, dtype=dtype)


def apply(image, kernel, padding="reflect"):
    """Filter `image` with `kernel` (each channel on its own), with one call to F.conv2d.

    image:   HxW (grey), HxWxC (e.g. an RGB photo) or NCHW (a batch, as for F.conv2d).
             float32 / float64 keep their dtype; integer and bool images become float32
             (values unchanged, e.g. 0..255).
    kernel:  one kernel (R, S), a bank (K, R, S), or F.conv2d weights (K, 1, R, S), such as
             those this module returns.
    padding: how the border is extended so the output keeps the image's size: 'reflect'
             (mirror about the edge pixel, the default: no false edges at the border), 'edge'
             (repeat the edge pixel), 'zeros' (F.conv2d's padding='same'), or 'valid' (no
             padding: the output shrinks by R - 1 rows and S - 1 columns). For even kernel
             sizes the extra row / column of padding goes bottom / right.
    Returns: with one kernel, an array shaped like the image (height and width smaller for
             'valid'); with K > 1 kernels, a new leading axis: (K, H, W), (K, H, W, C) or
             (K, N, C, H, W).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(map(repr, PADDINGS))}, got {padding!r}")
    image = as_real_array(image, "image")
    if image.ndim not in (2, 3, 4):
        raise ValueError(f"image must be HxW, HxWxC or NCHW, got shape {image.shape} ({image.ndim}-D)")
    dtype = image.dtype if image.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    kernel = _as_kernel(kernel, dtype)

    # Every channel of every image becomes one single-channel image of an (M, 1, H, W) batch.
    if image.ndim == 2:
        batch = image[None, None]
    elif image.ndim == 3:
        batch = np.moveaxis(image, 2, 0)[:, None]
    else:
        batch = image.reshape((-1, 1) + image.shape[2:])
    batch = np.ascontiguousarray(batch, dtype=dtype)
    if batch.shape[0] == 0 or batch.shape[2] == 0 or batch.shape[3] == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")

    kernel_hw = kernel.shape[2:]
    if padding in ("reflect", "edge"):
        pads = conv_padding("same", batch.shape[2:], kernel_hw, (1, 1), (1, 1))
        batch = np.pad(batch, ((0, 0), (0, 0)) + pads, mode=padding)
        out = F.conv2d(batch, kernel)
    else:
        out = F.conv2d(batch, kernel, padding="same" if padding == "zeros" else "valid")

    # out is (M, K, H', W'): put the channels back where the image had them, filters first.
    k, (h, w) = kernel.shape[0], out.shape[2:]
    if image.ndim == 2:
        out = out[0]                                            # (K, H, W)
    elif image.ndim == 3:
        out = np.moveaxis(out, 0, -1)                           # (K, H, W, C)
    else:
        out = np.moveaxis(out, 1, 0).reshape((k,) + image.shape[:2] + (h, w))  # (K, N, C, H, W)
    return np.ascontiguousarray(out[0] if k == 1 else out)


def gradient_magnitude(image, operator="sobel", padding="reflect"):
    """sqrt(gx^2 + gy^2) of the Sobel (or operator='scharr') derivatives: the edge strength,
    shaped like `image` (see apply)."""
    kernels = {"sobel": sobel, "scharr": scharr}
    if operator not in kernels:
        raise ValueError(f"operator must be 'sobel' or 'scharr', got {operator!r}")
    gx, gy = apply(image, kernels[operator](), padding)
    return np.hypot(gx, gy)


def grayscale(image):
    """The luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) of an HxWx3 or HxWx4 (alpha
    ignored) image, as HxW float32 (float64 stays float64), on the image's value scale."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype.kind not in "fiub":
        raise ValueError(f"image must be an HxWx3 (RGB) or HxWx4 (RGBA) array of numbers, got "
                         f"shape {image.shape}, dtype {image.dtype}")
    dtype = image.dtype if image.dtype == np.float64 else np.dtype(np.float32)
    weights = np.array([0.299, 0.587, 0.114], dtype=dtype)
    return image[..., :3].astype(dtype, copy=False) @ weights
