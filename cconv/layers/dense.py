"""Dense (fully connected) and Flatten layers. Dense runs on cconv's own C kernels
(cconv.functional.dense), with ReLU fused, not on NumPy's BLAS: one OpenMP thread pool for the
whole network, and results independent of the thread count."""
import math

from cconv import functional as F
from cconv._args import MAX_DIM, as_int
from cconv.layers.base import Layer
from cconv.layers.kernel import KernelLayer


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), in C order. The product is computed exactly and
    must be at most 2**31 - 1 values per sample (ValueError otherwise)."""

    def _build(self, input_shape, rng):
        size = math.prod(input_shape)  # a Python int: no int64 wrap-around
        if size > MAX_DIM:
            raise ValueError(f"{self.describe()}: input shape {input_shape} flattens to {size} values "
                             f"per sample, more than the {MAX_DIM} a layer can take")
        return (size,)

    def _forward(self, x):
        return x.reshape(x.shape[0], -1)

    def _backward(self, grad_out):
        return grad_out.reshape((grad_out.shape[0],) + self.input_shape)


class Dense(KernelLayer):
    """Dense(units, activation=None, use_bias=True, kernel_initializer=None,
    bias_initializer='zeros', name=None)

    y = x @ weight + bias for x of shape (N, in_features); weight has shape
    (in_features, units). Put a Flatten() before it after conv / pooling layers. `activation`
    ('relu', 'leaky_relu', 'sigmoid', 'tanh', 'softmax' or None) is applied to the output; a
    classifier's last Dense usually has none, since the cross-entropy loss takes logits.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer="zeros", name=None):
        super().__init__(name)
        self.units = as_int(units, "units", 1)
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer)

    def _build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise ValueError(f"{self.describe()} expects flat (features,) inputs, got input shape "
                             f"{input_shape}; add a Flatten() layer before it")
        fan_in = input_shape[0]
        self._init_params((fan_in, self.units), self.units, fan_in, self.units, rng)
        return (self.units,)

    def _kernel(self, x):
        return F.dense_unchecked(x, self._params["weight"], self._params.get("bias"), self._fused)

    def _kernel_backward(self, grad_out, compute_grad_x, relu_output):
        return F.dense_backward_unchecked(grad_out, self._x, self._params["weight"], compute_grad_x, relu_output)

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}
