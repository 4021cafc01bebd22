"""Dropout (NumPy) and BatchNorm2D (C kernels, csrc/batchnorm2d.c), the layers whose behaviour
differs in train / eval mode."""
import numbers

import numpy as np

from cconv.functional import norm as F
from cconv.layers.base import Layer, new_array


class Dropout(Layer):
    """Dropout(rate): in training, zero each value with probability `rate` and scale the rest by
    1 / (1 - rate) (inverted dropout); identity in eval mode. The random draws come from
    `self.rng`, which the Trainer seeds from fit(seed=...)."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"rate must be a number in [0, 1), got {type(rate).__name__}")
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.rng = np.random.default_rng()

    def _forward(self, x):
        if not self.training or self.rate == 0:
            self._scale = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.rate
        self._scale = keep * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._scale

    def _backward(self, grad_out):
        return grad_out if self._scale is None else grad_out * self._scale

    def get_config(self):
        return {"rate": self.rate, "name": self.name}


class BatchNorm2D(Layer):
    """BatchNorm2D(momentum=0.1, eps=1e-5): per-channel normalisation of (N, C, H, W) inputs,
    computed by the C kernels (csrc/batchnorm2d.c; statistics accumulated in double).

    Training mode normalises with the batch mean and (biased) variance and updates the running
    statistics as running = (1 - momentum) * running + momentum * batch (unbiased variance),
    as PyTorch does; eval mode uses the running statistics. Parameters gamma (scale) and beta
    (shift); buffers running_mean and running_var. An empty batch gives an empty output and
    leaves the running statistics as they are.
    """

    def __init__(self, momentum=0.1, eps=1e-5, name=None):
        super().__init__(name)
        for label, value in (("momentum", momentum), ("eps", eps)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{label} must be a number, got {type(value).__name__}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.momentum = float(momentum)
        self.eps = float(eps)

    def _build(self, input_shape, rng):
        c = self._image_shape(input_shape)[0]

        def filled(value):
            return new_array(rng, (c,), self.dtype, lambda: np.full(c, value, self.dtype))

        self._params = {"gamma": filled(1), "beta": filled(0)}
        self._buffers = {"running_mean": filled(0), "running_var": filled(1)}
        self._grads = {}
        return input_shape

    def _forward(self, x):
        # an empty batch has no statistics: it is normalised with the running ones, which it
        # leaves untouched (a batch mean of nothing would write NaN into them)
        self._x = x
        self._batch_stats = self.training and x.shape[0] > 0
        y, self._mean, self._invstd = F.batch_norm2d_unchecked(
            x, self._params["gamma"], self._params["beta"], self._buffers["running_mean"],
            self._buffers["running_var"], self._batch_stats, self.momentum, self.eps)
        return y

    def _backward(self, grad_out, compute_grad_x=True):
        grad_x, self._grads["gamma"], self._grads["beta"] = F.batch_norm2d_backward_unchecked(
            grad_out, self._x, self._params["gamma"], self._mean, self._invstd, self._batch_stats, compute_grad_x)
        return grad_x

    def _backward_params(self, grad_out):
        self._backward(grad_out, compute_grad_x=False)

    def folded_scale_shift(self):
        """(scale, shift), float64 arrays of shape (C,) with eval-mode output = x * scale + shift
        per channel (the running statistics), for folding into the convolution before it."""
        invstd = 1 / np.sqrt(self._buffers["running_var"].astype(np.float64) + self.eps)
        scale = self._params["gamma"] * invstd
        return scale, self._params["beta"] - self._buffers["running_mean"] * scale

    def get_config(self):
        return {"momentum": self.momentum, "eps": self.eps, "name": self.name}
