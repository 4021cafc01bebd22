"""KernelLayer: what Conv2D and Dense share. A weight, an optional bias and an activation, with
the output computed by one C kernel call; ReLU is fused into that call (applied as the output is
written, its derivative as the gradient is read), other activations run as a layer after it.

The kernels run through cconv.functional's unchecked entries: the input was checked where it
entered the layer or the model, and the parameters keep the shapes and dtype they were built with
(optimizers and load_state_dict update them in place)."""
from cconv import initializers
from cconv.layers.activations import check_activation, get_activation
from cconv.layers.base import Layer, new_array


def default_kernel_initializer(activation):
    """He for ReLU-family (and linear) outputs, Glorot for sigmoid / tanh."""
    return "glorot_uniform" if activation in ("sigmoid", "tanh") else "he_uniform"


class KernelLayer(Layer):
    """Subclasses set the layer's own arguments, then call _init_kernel_layer, create their
    parameters with _init_params in _build, and implement _kernel and _kernel_backward."""

    def _init_kernel_layer(self, activation, use_bias, kernel_initializer, bias_initializer):
        self.use_bias = bool(use_bias)
        self.activation = check_activation(activation)
        self.kernel_initializer = kernel_initializer or default_kernel_initializer(self.activation)
        self.bias_initializer = bias_initializer
        initializers.get(self.kernel_initializer)  # validate the names now
        initializers.get(self.bias_initializer)
        self._fused = "relu" if self.activation == "relu" else None
        self._act = None if self._fused else get_activation(self.activation, inplace=True)

    def _init_params(self, weight_shape, bias_size, fan_in, fan_out, rng):
        def initialised(name, shape):
            return new_array(rng, shape, self.dtype, lambda: initializers.get(name)(
                shape, fan_in, fan_out, rng, self.dtype))

        self._params = {"weight": initialised(self.kernel_initializer, weight_shape)}
        if self.use_bias:
            self._params["bias"] = initialised(self.bias_initializer, (bias_size,))
        self._grads = {}

    def _kernel(self, x):
        """The layer's output for x, with self._fused applied (one C kernel call)."""
        raise NotImplementedError

    def _kernel_backward(self, grad_out, compute_grad_x, relu_output):
        """(grad_x or None, grad_weight, grad_bias) for grad_out = dL/d(self._y); relu_output is
        self._y when the ReLU is fused (its derivative masks grad_out), else None."""
        raise NotImplementedError

    def _forward(self, x):
        self._x = x
        self._y = self._kernel(x)  # the fused ReLU's backward reads it (no copy is made)
        return self._y if self._act is None else self._act._forward(self._y)

    def _backward(self, grad_out, compute_grad_x=True):
        if self._act is not None:
            grad_out = self._act._backward(grad_out)
        relu_output = self._y if self._fused else None
        grad_x, self._grads["weight"], grad_bias = self._kernel_backward(grad_out, compute_grad_x, relu_output)
        if self.use_bias:
            self._grads["bias"] = grad_bias
        return grad_x

    def _backward_params(self, grad_out):
        self._backward(grad_out, compute_grad_x=False)
