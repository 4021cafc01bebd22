"""Activation layers: ReLU, ReLU6, LeakyReLU, ELU, Sigmoid, Tanh, SiLU (Swish), Hardswish, GELU
(element-wise; vectorised NumPy, the exact GELU's erf in C) and Softmax.

`get_activation(name)` makes the activation that Conv2D / Dense / Residual apply to their
own output when given `activation='relu'` etc.
"""
import numpy as np

from cconv import _activation
from cconv import functional as F
from cconv._threads import get_num_threads
from cconv.layers.base import Layer


class ReLU(Layer):
    """max(x, 0) (NaN stays NaN)."""

    inplace = False  # set by Conv2D / Dense, whose fused activation owns its input

    def _forward(self, x):
        self._mask = ~(x <= 0)  # NaN passes, in both directions, as in torch
        if self.inplace:
            return np.multiply(x, self._mask, out=x)
        return x * self._mask

    def _backward(self, grad_out):
        return grad_out * self._mask


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise (PyTorch's default slope 0.01)."""

    def __init__(self, negative_slope=0.01, name=None):
        super().__init__(name)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating)):
            raise TypeError(f"negative_slope must be a number, got {type(negative_slope).__name__}")
        if not np.isfinite(negative_slope):
            raise ValueError(f"negative_slope must be finite, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def _forward(self, x):
        self._mask = x > 0
        return np.where(self._mask, x, x * x.dtype.type(self.negative_slope))

    def _backward(self, grad_out):
        return np.where(self._mask, grad_out, grad_out * grad_out.dtype.type(self.negative_slope))

    def get_config(self):
        return {"negative_slope": self.negative_slope, "name": self.name}


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed without overflow."""

    def _forward(self, x):
        e = np.exp(-np.abs(x))
        self._y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._y

    def _backward(self, grad_out):
        return grad_out * self._y * (1 - self._y)


class Tanh(Layer):
    """tanh(x)."""

    def _forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def _backward(self, grad_out):
        return grad_out * (1 - self._y * self._y)


class Softmax(Layer):
    """exp(x) / sum(exp(x)) over axis 1 (the classes of a Dense output, the channels of an image),
    computed with the maximum subtracted so it never overflows.

    The cross-entropy loss takes logits by default and applies the softmax itself (more
    accurately): end a classifier in Softmax only for probabilities, and train it with
    CrossEntropy(from_logits=False)."""

    def _forward(self, x):
        self._y = F.softmax(x, 1)
        return self._y

    def _backward(self, grad_out):
        return F.softmax_backward(grad_out, self._y, 1)


class ReLU6(Layer):
    """min(max(x, 0), 6) (PyTorch's ReLU6; NaN stays NaN)."""

    inplace = False  # set when a Conv2D / Dense applies it to its own fresh output

    def _forward(self, x):
        self._mask = ~((x <= 0) | (x >= 6))  # the gradient passes strictly inside (0, 6)
        return np.clip(x, 0, 6, out=x if self.inplace else None)

    def _backward(self, grad_out):
        return grad_out * self._mask


class ELU(Layer):
    """ELU(alpha=1.0): x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha=1.0, name=None):
        super().__init__(name)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
            raise TypeError(f"alpha must be a number, got {type(alpha).__name__}")
        if not np.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {alpha}")
        self.alpha = float(alpha)

    def _forward(self, x):
        self._positive = x > 0
        alpha = x.dtype.type(self.alpha)
        self._y = np.where(self._positive, x, alpha * np.expm1(np.minimum(x, 0)))
        return self._y

    def _backward(self, grad_out):
        # alpha * exp(x) = y + alpha where x <= 0
        return grad_out * np.where(self._positive, 1, self._y + self._y.dtype.type(self.alpha))

    def get_config(self):
        return {"alpha": self.alpha, "name": self.name}


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow, in x's dtype."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class SiLU(Layer):
    """x * sigmoid(x) (SiLU, also called Swish)."""

    inplace = False  # set when a Conv2D / Dense applies it to its own fresh output

    def _forward(self, x):
        self._s = _sigmoid(x)
        self._y = np.multiply(x, self._s, out=x if self.inplace else None)
        return self._y

    def _backward(self, grad_out):
        # d(x s)/dx = s + x s (1 - s) = s + y (1 - s)
        return grad_out * (self._s + self._y * (1 - self._s))


Swish = SiLU


class Hardswish(Layer):
    """x * min(max(x + 3, 0), 6) / 6 (PyTorch's Hardswish, as in MobileNetV3)."""

    def _forward(self, x):
        self._x = x
        return x * np.clip(x + 3, 0, 6) / 6

    def _backward(self, grad_out):
        x = self._x
        # PyTorch's derivative: 0 below -3, x / 3 + 1 / 2 on [-3, 3], 1 above
        slope = np.where(x < -3, 0, np.where(x <= 3, x / 3 + x.dtype.type(0.5), 1)).astype(x.dtype, copy=False)
        return grad_out * slope


_SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))


class GELU(Layer):
    """GELU(approximate='none'): x * Phi(x), Phi the standard normal distribution function
    (computed with the C library's erf); approximate='tanh' uses PyTorch's tanh formula
    0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""

    def __init__(self, approximate="none", name=None):
        super().__init__(name)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _forward(self, x):
        self._x = x = np.ascontiguousarray(x)
        if self.approximate == "tanh":
            c = x.dtype.type(_SQRT_2_OVER_PI)
            self._t = np.tanh(c * (x + x.dtype.type(0.044715) * x * x * x))
            return x * (1 + self._t) * x.dtype.type(0.5)
        y = np.empty_like(x)
        _activation.gelu_forward(x.reshape(-1), y.reshape(-1), get_num_threads())
        return y

    def _backward(self, grad_out):
        x = self._x
        if self.approximate == "tanh":
            half, t = x.dtype.type(0.5), self._t
            c = x.dtype.type(_SQRT_2_OVER_PI)
            inner_slope = c * (1 + x.dtype.type(3 * 0.044715) * x * x)
            return grad_out * (half * (1 + t) + half * x * (1 - t * t) * inner_slope)
        grad_x = np.empty_like(x)
        _activation.gelu_backward(np.ascontiguousarray(grad_out).reshape(-1), x.reshape(-1), grad_x.reshape(-1),
                                  get_num_threads())
        return grad_x

    def get_config(self):
        return {"approximate": self.approximate, "name": self.name}


_ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
                "softmax": Softmax, "relu6": ReLU6, "silu": SiLU, "hardswish": Hardswish, "gelu": GELU,
                "elu": ELU}
_ALIASES = {"swish": "silu"}  # Keras's other name
ACTIVATION_NAMES = ("relu", "relu6", "leaky_relu", "elu", "sigmoid", "tanh", "silu", "swish", "hardswish",
                    "gelu", "softmax", "linear")


def check_activation(name):
    """The activation name normalised (None for none / 'linear'), or a ValueError."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name such as 'relu' or None, got {type(name).__name__}")
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key == "linear":
        return None
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)} "
                         f"or None")
    return key


def get_activation(name, inplace=False):
    """A new activation layer for `name` (already checked by check_activation), or None.
    With inplace=True an activation that can (ReLU, ReLU6, SiLU) overwrites its input (for layers
    that apply it to a fresh array)."""
    key = check_activation(name)
    if key is None:
        return None
    activation = _ACTIVATIONS[key]()
    if inplace and hasattr(activation, "inplace"):
        activation.inplace = True
    return activation
