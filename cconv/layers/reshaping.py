"""Layers that change the image size without weights (vectorised NumPy): UpSampling2D and
ZeroPadding2D."""
import numpy as np

from cconv._args import as_int, pair
from cconv.layers.base import Layer


def _bilinear_taps(size, scale):
    """(i0, i1, w1) for one axis of a bilinear upsampling by `scale` with PyTorch's
    align_corners=False (half-pixel centres): output j reads (1 - w1[j]) * in[i0[j]] + w1[j] * in[i1[j]],
    from the source coordinate (j + 0.5) / scale - 0.5 clamped at 0."""
    source = np.maximum((np.arange(size * scale) + 0.5) / scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(source).astype(np.intp), size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, source - i0


def _gather(x, axis, i0, i1, w1):
    """Bilinear interpolation of x along `axis` (2 or 3) with the taps of _bilinear_taps."""
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    w1 = w1.astype(x.dtype).reshape(shape)
    return np.take(x, i0, axis=axis) * (1 - w1) + np.take(x, i1, axis=axis) * w1


def _scatter(grad, axis, size, i0, i1, w1):
    """The gradient of _gather: each output's gradient shared back to its two sources. Both index
    arrays are sorted, so each source's share is one np.add.reduceat over a run of outputs."""
    shape = list(grad.shape)
    shape[axis] = size
    out = np.zeros(shape, grad.dtype)
    view = [1, 1, 1, 1]
    view[axis] = -1
    w1 = w1.astype(grad.dtype).reshape(view)
    for index, weight in ((i0, 1 - w1), (i1, w1)):
        sources, starts = np.unique(index, return_index=True)
        sums = np.add.reduceat(grad * weight, starts, axis=axis)
        where = [slice(None)] * 4
        where[axis] = sources
        out[tuple(where)] += sums
    return out


class UpSampling2D(Layer):
    """UpSampling2D(size=2, interpolation='nearest'): (N, C, H, W) -> (N, C, H * sh, W * sw).

    'nearest' repeats each pixel sh x sw times; 'bilinear' interpolates with PyTorch's
    align_corners=False (Keras's and TensorFlow's half-pixel rule). size: an int or (sh, sw)."""

    def __init__(self, size=2, interpolation="nearest", name=None):
        super().__init__(name)
        self.size = pair(size, "size")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        self.interpolation = interpolation

    def _build(self, input_shape, rng):
        c, h, w = self._image_shape(input_shape)
        if self.interpolation == "bilinear":
            self._taps = (_bilinear_taps(h, self.size[0]), _bilinear_taps(w, self.size[1]))
        return (c, h * self.size[0], w * self.size[1])

    def _forward(self, x):
        n, c, h, w = x.shape
        sh, sw = self.size
        if self.interpolation == "bilinear":
            rows, cols = self._taps
            return np.ascontiguousarray(_gather(_gather(x, 2, *rows), 3, *cols))
        repeated = np.broadcast_to(x[:, :, :, None, :, None], (n, c, h, sh, w, sw))
        return repeated.reshape(n, c, h * sh, w * sw)  # one copy

    def _backward(self, grad_out):
        n, c, h, w = (grad_out.shape[0],) + self.input_shape
        sh, sw = self.size
        if self.interpolation == "bilinear":
            rows, cols = self._taps
            return _scatter(_scatter(grad_out, 3, w, *cols), 2, h, *rows)
        return grad_out.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5))

    def get_config(self):
        return {"size": list(self.size), "interpolation": self.interpolation, "name": self.name}


def _zero_padding(padding):
    """((top, bottom), (left, right)) from an int, (ph, pw) or ((top, bottom), (left, right))."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding):
        if any(len(p) != 2 for p in padding):
            raise ValueError(f"padding must be an int, (ph, pw) or ((top, bottom), (left, right)), got {padding!r}")
        return tuple(tuple(as_int(v, "padding", 0) for v in p) for p in padding)
    ph, pw = pair(padding, "padding", minimum=0)
    return ((ph, ph), (pw, pw))


class ZeroPadding2D(Layer):
    """ZeroPadding2D(padding=1): zeros around each image, (N, C, H, W) -> (N, C, H + top + bottom,
    W + left + right). padding: an int, (ph, pw) (each on both sides) or ((top, bottom), (left, right))."""

    def __init__(self, padding=1, name=None):
        super().__init__(name)
        self.padding = _zero_padding(padding)

    def _build(self, input_shape, rng):
        c, h, w = self._image_shape(input_shape)
        (top, bottom), (left, right) = self.padding
        return (c, h + top + bottom, w + left + right)

    def _inside(self):
        (top, _), (left, _) = self.padding
        h, w = self.input_shape[1:]
        return (slice(None), slice(None), slice(top, top + h), slice(left, left + w))

    def _forward(self, x):
        y = np.zeros((x.shape[0],) + self.output_shape, x.dtype)
        y[self._inside()] = x
        return y

    def _backward(self, grad_out):
        return np.ascontiguousarray(grad_out[self._inside()])

    def get_config(self):
        return {"padding": [list(p) for p in self.padding], "name": self.name}
