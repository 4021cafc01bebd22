"""Conv2D: a 2-D convolution layer computed by the C kernels (cconv.functional.conv2d)."""
from cconv import functional as F
from cconv._args import as_int, conv_out_size, conv_padding, pair
from cconv.layers.kernel import KernelLayer


def padding_to_json(padding):
    """Padding as a JSON-friendly value (ints, lists or a word), validated lightly."""
    if isinstance(padding, str):
        return padding.lower()
    if isinstance(padding, (tuple, list)):
        return [padding_to_json(p) for p in padding]
    return as_int(padding, "padding", 0)


def _positional_message(filters, kernel_size, more):
    """Why Conv2D(a, b, c, ...) is refused: PyTorch's Conv2d(in_channels, out_channels,
    kernel_size) would silently read here as filters=a, kernel_size=b, stride=c."""
    call = ", ".join(map(repr, (filters, kernel_size) + more))
    return (f"Conv2D({call}): Conv2D takes (filters, kernel_size) positionally and the rest "
            f"(stride=, padding=, ...) by keyword. If this is PyTorch's Conv2d(in_channels, "
            f"out_channels, kernel_size), write Conv2D({kernel_size!r}, {more[0]!r}): cconv takes "
            f"the input channels from the layer's input")


class Conv2D(KernelLayer):
    """Conv2D(filters, kernel_size, *, stride=1, padding=0, dilation=1, groups=1, use_bias=True,
    activation=None, kernel_initializer=None, bias_initializer='zeros', name=None)

    Input (N, C, H, W) -> output (N, filters, P, Q); the weight has shape
    (filters, C / groups, kh, kw) and the bias (filters,). `padding` takes an int, (ph, pw),
    ((top, bottom), (left, right)), 'valid' or 'same' (Keras rule). `activation` ('relu',
    'leaky_relu', 'sigmoid', 'tanh' or None) is applied to the output. The kernel initializer
    defaults to He uniform (Glorot uniform for sigmoid / tanh).
    """

    def __init__(self, filters, kernel_size, *more_positional, stride=1, padding=0, dilation=1,
                 groups=1, use_bias=True, activation=None, kernel_initializer=None,
                 bias_initializer="zeros", name=None):
        if more_positional:
            raise TypeError(_positional_message(filters, kernel_size, more_positional))
        super().__init__(name)
        self.filters = as_int(filters, "filters", 1)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.groups = as_int(groups, "groups", 1)
        if self.filters % self.groups:
            raise ValueError(f"groups={self.groups} must divide filters={self.filters}")
        self.padding = padding_to_json(padding)
        conv_padding(self.padding, (1, 1), self.kernel_size, self.stride, self.dilation)  # validate
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer)

    def _build(self, input_shape, rng):
        c, h, w = self._image_shape(input_shape)
        if c % self.groups:
            raise ValueError(f"{self.describe()}: groups={self.groups} must divide the input channels C={c}")
        r, s = self.kernel_size
        self._pads = conv_padding(self.padding, (h, w), (r, s), self.stride, self.dilation)
        (top, bottom), (left, right) = self._pads
        try:
            p = conv_out_size(h, r, self.stride[0], self.dilation[0], top, bottom, "height")
            q = conv_out_size(w, s, self.stride[1], self.dilation[1], left, right, "width")
        except ValueError as exc:
            raise ValueError(f"{self.describe()} on input shape {input_shape}: {exc}") from None
        shape = (self.filters, c // self.groups, r, s)
        fan_in = (c // self.groups) * r * s
        fan_out = (self.filters // self.groups) * r * s
        self._init_params(shape, self.filters, fan_in, fan_out, rng)
        return (self.filters, p, q)

    def _make_geometry(self, x_shape):
        return F.conv2d_geometry(x_shape, self._params["weight"].shape, self.stride, self._pads,
                                 self.dilation, self.groups)

    def _kernel(self, x):
        geometry, out_shape = self._geometry(x.shape)
        return F.conv2d_unchecked(x, self._params["weight"], self._params.get("bias"), geometry, out_shape,
                                  self._fused)

    def _kernel_backward(self, grad_out, compute_grad_x, relu_output):
        geometry, _ = self._geometry(self._x.shape)
        return F.conv2d_backward_unchecked(grad_out, self._x, self._params["weight"], geometry, compute_grad_x,
                                           relu_output)

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": self.padding,
                "dilation": list(self.dilation), "groups": self.groups, "use_bias": self.use_bias,
                "activation": self.activation, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}
