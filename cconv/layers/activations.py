"""Activation layers (NumPy): ReLU, LeakyReLU, Sigmoid, Tanh (element-wise) and Softmax.

`get_activation(name)` makes the activation that Conv2D / Dense / Residual apply to their
own output when given `activation='relu'` etc.
"""
import numpy as np

from cconv import functional as F
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


_ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
                "softmax": Softmax}
ACTIVATION_NAMES = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "linear")


def check_activation(name):
    """The activation name normalised (None for none / 'linear'), or a ValueError."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name such as 'relu' or None, got {type(name).__name__}")
    key = name.lower()
    if key == "linear":
        return None
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)} "
                         f"or None")
    return key


def get_activation(name, inplace=False):
    """A new activation layer for `name` (already checked by check_activation), or None.
    With inplace=True a ReLU overwrites its input (for layers that apply it to a fresh array)."""
    key = check_activation(name)
    if key is None:
        return None
    activation = _ACTIVATIONS[key]()
    if inplace and key == "relu":
        activation.inplace = True
    return activation
