"""Dense (fully connected) and Flatten layers. Dense runs on cconv's own C kernels
(cconv.functional.dense), with ReLU fused, not on NumPy's BLAS: one OpenMP thread pool for the
whole network, and results independent of the thread count."""
import numpy as np

from cconv import functional as F
from cconv import initializers
from cconv._args import as_int
from cconv.layers.activations import check_activation, get_activation
from cconv.layers.base import Layer
from cconv.layers.conv import default_kernel_initializer


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
        # ReLU is fused into the C kernels; other activations run as a layer on the output.
        self._fused = "relu" if self.activation == "relu" else None
        self._act = None if self._fused else get_activation(self.activation, inplace=True)

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
        y = F.dense(x, self._params["weight"], self._params.get("bias"), activation=self._fused)
        self._y = y  # the fused ReLU's backward reads it
        return y if self._act is None else self._act._forward(y)

    def _backward(self, grad_out, compute_grad_x=True):
        if self._act is not None:
            grad_out = self._act._backward(grad_out)
        grad_x, grad_w, grad_b = F.dense_backward(grad_out, self._x, self._params["weight"],
                                                  compute_grad_x=compute_grad_x,
                                                  activation=self._fused, output=self._y)
        self._grads["weight"] = grad_w
        if self.use_bias:
            self._grads["bias"] = grad_b
        return grad_x

    def _backward_params(self, grad_out):
        self._backward(grad_out, compute_grad_x=False)

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}
