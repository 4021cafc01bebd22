"""Dropout and BatchNorm2D (NumPy), the layers whose behaviour differs in train / eval mode."""
import numbers

import numpy as np

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
    """BatchNorm2D(momentum=0.1, eps=1e-5): per-channel normalisation of (N, C, H, W) inputs.

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
        gamma, beta = self._params["gamma"], self._params["beta"]
        # an empty batch has no statistics: it is normalised with the running ones, which it
        # leaves untouched (a batch mean of nothing would write NaN into them)
        batch_stats = self.training and x.shape[0] > 0
        if batch_stats:
            count = x.shape[0] * x.shape[2] * x.shape[3]
            mean = x.mean(axis=(0, 2, 3))
            centered = x - mean[:, None, None]
            var = np.mean(centered * centered, axis=(0, 2, 3))
            m = self.momentum
            self._buffers["running_mean"] *= 1 - m
            self._buffers["running_mean"] += m * mean
            unbiased = var * (count / max(count - 1, 1))
            self._buffers["running_var"] *= 1 - m
            self._buffers["running_var"] += m * unbiased
        else:
            centered = x - self._buffers["running_mean"][:, None, None]
            var = self._buffers["running_var"]
        self._inv_std = (1 / np.sqrt(var + self.eps)).astype(x.dtype)
        self._xhat = centered * self._inv_std[:, None, None]
        self._batch_stats = batch_stats
        return self._xhat * gamma[:, None, None] + beta[:, None, None]

    def _backward(self, grad_out):
        gamma = self._params["gamma"]
        self._grads["beta"] = grad_out.sum(axis=(0, 2, 3))
        self._grads["gamma"] = np.sum(grad_out * self._xhat, axis=(0, 2, 3))
        scale = (gamma * self._inv_std)[:, None, None]
        if not self._batch_stats:
            return grad_out * scale
        count = grad_out.shape[0] * grad_out.shape[2] * grad_out.shape[3]
        mean_grad = self._grads["beta"] / count
        mean_grad_xhat = self._grads["gamma"] / count
        return scale * (grad_out - mean_grad[:, None, None] - self._xhat * mean_grad_xhat[:, None, None])

    def get_config(self):
        return {"momentum": self.momentum, "eps": self.eps, "name": self.name}
