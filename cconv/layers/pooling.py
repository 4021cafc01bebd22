"""Pooling layers computed by the C kernels: MaxPool2D, AvgPool2D, LPPool2D, GlobalAvgPool2D,
GlobalMaxPool2D."""
import numbers

import numpy as np

from cconv import functional as F
from cconv._args import pair, pool_out_size
from cconv.layers.base import Layer


class _Pool2D(Layer):
    """Shared shape logic: kernel_size, stride (default = kernel_size), padding, ceil_mode.
    Subclasses name their kernels' operation in `_op` and set its option in `_option`
    (count_include_pad for 'avg', norm_type for 'lp'), as cconv.functional.pool2d_unchecked
    takes them."""

    _op = None
    _option = 0.0

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, name=None):
        super().__init__(name)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        self.ceil_mode = bool(ceil_mode)
        for k, p in zip(self.kernel_size, self.padding):
            if 2 * p > k:
                raise ValueError(f"padding {self.padding} must be at most half of kernel_size "
                                 f"{self.kernel_size}")

    def _build(self, input_shape, rng):
        c, h, w = self._image_shape(input_shape)
        try:
            p = pool_out_size(h, self.kernel_size[0], self.stride[0], self.padding[0], self.ceil_mode, "height")
            q = pool_out_size(w, self.kernel_size[1], self.stride[1], self.padding[1], self.ceil_mode, "width")
        except ValueError as exc:
            raise ValueError(f"{self.describe()} on input shape {input_shape}: {exc}") from None
        return (c, p, q)

    def _make_geometry(self, x_shape):
        return F.pool2d_geometry(x_shape, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def _forward(self, x):
        self._x = x
        return F.pool2d_unchecked(self._op, x, self._geometry(x.shape), self._option)

    def _backward(self, grad_out):
        return F.pool2d_backward_unchecked(self._op, grad_out, self._x, self._geometry(self._x.shape),
                                           self._option)

    def get_config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "ceil_mode": self.ceil_mode, "name": self.name}


class MaxPool2D(_Pool2D):
    """MaxPool2D(kernel_size, stride=None, padding=0, ceil_mode=False): the window maximum."""

    _op = "max"


class AvgPool2D(_Pool2D):
    """AvgPool2D(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)."""

    _op = "avg"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 name=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, name)
        self.count_include_pad = bool(count_include_pad)
        self._option = float(self.count_include_pad)

    def get_config(self):
        return dict(super().get_config(), count_include_pad=self.count_include_pad)


class LPPool2D(_Pool2D):
    """LPPool2D(norm_type, kernel_size, stride=None, ceil_mode=False): (sum x^p)^(1/p) per window."""

    _op = "lp"

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, name=None):
        super().__init__(kernel_size, stride, 0, ceil_mode, name)
        if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
            raise TypeError(f"norm_type must be a positive number, got {type(norm_type).__name__}")
        if not (np.isfinite(norm_type) and norm_type > 0):
            raise ValueError(f"norm_type must be a positive finite number, got {norm_type}")
        self.norm_type = float(norm_type)
        self._option = self.norm_type

    def get_config(self):
        return {"norm_type": self.norm_type, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "ceil_mode": self.ceil_mode, "name": self.name}


class _GlobalPool2D(Layer):
    """One window over the whole image, (N, C, H, W) -> (N, C); `_op` names the pooling."""

    _op = None

    def _build(self, input_shape, rng):
        self._window = self._image_shape(input_shape)[1:]
        return (input_shape[0],)

    def _make_geometry(self, x_shape):
        return F.pool2d_geometry(x_shape, self._window)

    def _forward(self, x):
        self._x = x
        y = F.pool2d_unchecked(self._op, x, self._geometry(x.shape), 1.0)  # 1.0: avg's count_include_pad
        return y.reshape(x.shape[0], x.shape[1])

    def _backward(self, grad_out):
        n, c = grad_out.shape
        return F.pool2d_backward_unchecked(self._op, np.ascontiguousarray(grad_out).reshape(n, c, 1, 1), self._x,
                                           self._geometry(self._x.shape), 1.0)


class GlobalAvgPool2D(_GlobalPool2D):
    """The mean of each channel over the whole image: (N, C, H, W) -> (N, C)."""

    _op = "avg"


class GlobalMaxPool2D(_GlobalPool2D):
    """The maximum of each channel over the whole image: (N, C, H, W) -> (N, C). The gradient goes
    to the first maximum (row-major), as in PyTorch's max pooling; a NaN is the maximum."""

    _op = "max"
