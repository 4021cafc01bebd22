"""Dense (fully connected) and Flatten layers, in NumPy (matrix products go to BLAS).

NumPy's BLAS (OpenBLAS) keeps its own thread pool, whose threads spin for a while after
every call; interleaved with the OpenMP threads of cconv's kernels on few cores, the two
pools fight for the CPUs and a training epoch can run many times slower. Trainer.fit,
Trainer.evaluate and Sequential.predict therefore run under `single_thread_blas()`, which
limits BLAS to one thread when threadpoolctl is installed (Dense's products are small).
"""
import contextlib

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: without it BLAS keeps its default threads
    threadpool_limits = None

from cconv import initializers
from cconv._args import as_int
from cconv.layers.activations import check_activation, get_activation
from cconv.layers.base import Layer
from cconv.layers.conv import default_kernel_initializer


def single_thread_blas():
    """A context manager limiting NumPy's BLAS to one thread (a no-op without threadpoolctl).

    Use it around a hand-written training loop: `with single_thread_blas(): ...`."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), in C order."""

    def _build(self, input_shape, rng):
        return (int(np.prod(input_shape)),)

    def _forward(self, x):
        return x.reshape(x.shape[0], -1)

    def _backward(self, grad_out):
        return grad_out.reshape((grad_out.shape[0],) + self.input_shape)


class Dense(Layer):
    """Dense(units, activation=None, use_bias=True, kernel_initializer=None,
    bias_initializer='zeros', name=None)

    y = x @ weight + bias for x of shape (N, in_features); weight has shape
    (in_features, units). Put a Flatten() before it after conv / pooling layers.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer="zeros", name=None):
        super().__init__(name)
        self.units = as_int(units, "units", 1)
        self.activation = check_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer or default_kernel_initializer(self.activation)
        self.bias_initializer = bias_initializer
        initializers.get(self.kernel_initializer)
        initializers.get(self.bias_initializer)
        self._act = get_activation(self.activation, inplace=True)

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ValueError(f"{self.describe()} expects flat (features,) inputs, got input shape "
                             f"{input_shape}; add a Flatten() layer before it")
        fan_in = input_shape[0]
        self._params = {"weight": initializers.get(self.kernel_initializer)(
            (fan_in, self.units), fan_in, self.units, rng, self.dtype)}
        if self.use_bias:
            self._params["bias"] = initializers.get(self.bias_initializer)(
                (self.units,), fan_in, self.units, rng, self.dtype)
        self._grads = {}
        return (self.units,)

    def _forward(self, x):
        self._x = x
        y = x @ self._params["weight"]
        if self.use_bias:
            y += self._params["bias"]
        return y if self._act is None else self._act._forward(y)

    def _backward(self, grad_out, compute_grad_x=True):
        if self._act is not None:
            grad_out = self._act._backward(grad_out)
        self._grads["weight"] = self._x.T @ grad_out
        if self.use_bias:
            self._grads["bias"] = grad_out.sum(axis=0)
        return grad_out @ self._params["weight"].T if compute_grad_x else None

    def _backward_params(self, grad_out):
        self._backward(grad_out, compute_grad_x=False)

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}
