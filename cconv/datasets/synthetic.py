"""make_shapes: a CIFAR-like synthetic set of small colour images of ten shape classes, made on
the spot (no download), for examples, benchmarks and tests of image classifiers."""
import numpy as np

from cconv._args import as_int

SHAPE_CLASSES = ("disk", "square", "diamond", "ring", "plus", "horizontal stripes",
                 "vertical stripes", "triangle", "x", "checkerboard")


def _masks(kind, dx, dy, r):
    """Boolean (n, H, W) masks of shape class `kind` for offsets dx, dy from each image's centre
    and radii r (n, 1, 1)."""
    ax, ay = np.abs(dx), np.abs(dy)
    box = np.maximum(ax, ay) < r
    period = r / 2
    if kind == 0:
        return dx * dx + dy * dy < r * r
    if kind == 1:
        return box
    if kind == 2:
        return ax + ay < r
    if kind == 3:
        d2 = dx * dx + dy * dy
        return (d2 < r * r) & (d2 > 0.3 * r * r)
    if kind == 4:
        return ((ax < r / 4) | (ay < r / 4)) & box
    if kind == 5:
        return box & (np.floor(dy / period) % 2 == 0)
    if kind == 6:
        return box & (np.floor(dx / period) % 2 == 0)
    if kind == 7:
        return (dy < r) & (ax < (dy + r) / 2)
    if kind == 8:
        return (np.abs(ax - ay) < r / 4) & box
    return box & ((np.floor(dx / period) + np.floor(dy / period)) % 2 == 0)


def make_shapes(n, size=32, seed=None, noise=0.08):
    """(x, y): n colour images (n, 3, size, size) float32 in [0, 1] and their labels (n,) int64
    in 0..9, one of the ten shapes of SHAPE_CLASSES (disk, square, ..., checkerboard) drawn at a
    random place and size in a random colour on a random background, with Gaussian noise of
    standard deviation `noise`. A stand-in for CIFAR-10 (3x32x32, ten classes) that a ResNet
    learns to well above chance in an epoch or two; the same seed gives the same images."""
    n = as_int(n, "n", 0)
    size = as_int(size, "size", 8)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= 1:
        raise ValueError(f"noise must be a number from 0 to 1, got {noise!r}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(SHAPE_CLASSES), n)
    r = rng.uniform(0.22, 0.4, (n, 1, 1)) * size
    cx = rng.uniform(0.35, 0.65, (n, 1, 1)) * size
    cy = rng.uniform(0.35, 0.65, (n, 1, 1)) * size
    coords = np.arange(size) + 0.5
    dx, dy = coords[None, None, :] - cx, coords[None, :, None] - cy
    mask = np.zeros((n, size, size), bool)
    for kind in range(len(SHAPE_CLASSES)):
        chosen = y == kind
        mask[chosen] = _masks(kind, dx[chosen], dy[chosen], r[chosen])
    foreground = rng.uniform(0, 1, (n, 3, 1, 1))
    # a background that differs from the shape's colour by at least 0.3 in some channel
    background = rng.uniform(0, 1, (n, 3, 1, 1))
    close = np.abs(foreground - background).max(axis=1, keepdims=True) < 0.3
    background = np.where(close, 1 - foreground, background)
    x = np.where(mask[:, None], foreground, background)
    x += rng.normal(0, noise, x.shape)
    return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int64)
