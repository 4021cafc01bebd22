"""Convolution layers computed by the C kernels (cconv.functional.conv2d): Conv2D,
DepthwiseConv2D (a grouped convolution with one group per input channel) and SeparableConv2D
(depthwise, then a 1x1 convolution)."""
from cconv import functional as F
from cconv import initializers
from cconv._args import as_int, conv_out_size, conv_padding, pair
from cconv.layers.activations import check_activation, get_activation
from cconv.layers.base import Layer, new_array
from cconv.layers.kernel import KernelLayer, default_kernel_initializer


def padding_to_json(padding):
    """Padding as a JSON-friendly value (ints, lists or a word), validated lightly."""
    if isinstance(padding, str):
        return padding.lower()
    if isinstance(padding, (tuple, list)):
        return [padding_to_json(p) for p in padding]
    return as_int(padding, "padding", 0)


def set_conv_geometry(layer, filters, kernel_size, stride, padding, dilation):
    """Checks and stores a convolution layer's filters, kernel_size, stride, dilation and padding
    (the padding checked against the others), as Conv2D, SeparableConv2D and Conv2DTranspose
    take them."""
    layer.filters = as_int(filters, "filters", 1)
    layer.kernel_size = pair(kernel_size, "kernel_size")
    layer.stride = pair(stride, "stride")
    layer.dilation = pair(dilation, "dilation")
    layer.padding = padding_to_json(padding)
    conv_padding(layer.padding, (1, 1), layer.kernel_size, layer.stride, layer.dilation)  # validate


def keyword_only_message(layer_name, positional, keywords, got):
    """Why a layer called with more positional arguments than `positional` is refused."""
    return (f"{layer_name} takes {positional} positionally and the rest ({keywords}, ...) by keyword; "
            f"got {got} positional arguments")


def conv_output_hw(layer, input_shape):
    """((top, bottom), (left, right)) padding and the output (P, Q) of `layer`'s convolution
    (its kernel_size, stride, padding, dilation) on input_shape (C, H, W); ValueError naming
    the layer when the kernel does not fit."""
    c, h, w = layer._image_shape(input_shape)
    r, s = layer.kernel_size
    pads = conv_padding(layer.padding, (h, w), (r, s), layer.stride, layer.dilation)
    (top, bottom), (left, right) = pads
    try:
        p = conv_out_size(h, r, layer.stride[0], layer.dilation[0], top, bottom, "height")
        q = conv_out_size(w, s, layer.stride[1], layer.dilation[1], left, right, "width")
    except ValueError as exc:
        raise ValueError(f"{layer.describe()} on input shape {input_shape}: {exc}") from None
    return pads, (p, q)


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
        set_conv_geometry(self, filters, kernel_size, stride, padding, dilation)
        self.groups = as_int(groups, "groups", 1)
        if self.filters % self.groups:
            raise ValueError(f"groups={self.groups} must divide filters={self.filters}")
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer)

    def _build(self, input_shape, rng):
        c = self._image_shape(input_shape)[0]
        if c % self.groups:
            raise ValueError(f"{self.describe()}: groups={self.groups} must divide the input channels C={c}")
        r, s = self.kernel_size
        self._pads, (p, q) = conv_output_hw(self, input_shape)
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


class DepthwiseConv2D(Conv2D):
    """DepthwiseConv2D(kernel_size, *, stride=1, padding=0, depth_multiplier=1, dilation=1,
    use_bias=True, activation=None, kernel_initializer=None, bias_initializer='zeros', name=None)

    Each input channel convolved with its own depth_multiplier filters: input (N, C, H, W) ->
    output (N, C * depth_multiplier, P, Q), the output channels of input channel c being
    c * depth_multiplier + j (PyTorch's Conv2d(C, C * depth_multiplier, groups=C)). The weight
    has shape (C * depth_multiplier, 1, kh, kw) and the bias (C * depth_multiplier,). The other
    arguments are Conv2D's.
    """

    def __init__(self, kernel_size, *more_positional, stride=1, padding=0, depth_multiplier=1, dilation=1,
                 use_bias=True, activation=None, kernel_initializer=None, bias_initializer="zeros", name=None):
        if more_positional:
            raise TypeError(keyword_only_message("DepthwiseConv2D", "kernel_size",
                                                 "stride=, padding=, depth_multiplier=", len(more_positional) + 1))
        self.depth_multiplier = as_int(depth_multiplier, "depth_multiplier", 1)
        # filters and groups follow the input channels; set in _build
        super().__init__(self.depth_multiplier, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         use_bias=use_bias, activation=activation, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, name=name)

    def _build(self, input_shape, rng):
        c = self._image_shape(input_shape)[0]
        self.groups = c
        self.filters = c * self.depth_multiplier
        return super()._build(input_shape, rng)

    def get_config(self):
        config = super().get_config()
        del config["filters"], config["groups"]
        config["depth_multiplier"] = self.depth_multiplier
        return config


class SeparableConv2D(Layer):
    """SeparableConv2D(filters, kernel_size, *, stride=1, padding=0, depth_multiplier=1,
    dilation=1, use_bias=True, activation=None, name=None)

    A DepthwiseConv2D without bias (kernel_size, stride, padding, dilation, depth_multiplier)
    followed by a 1x1 convolution to `filters` channels with the bias, then the activation
    (Keras's SeparableConv2D). Parameters: depthwise_weight (C * depth_multiplier, 1, kh, kw),
    pointwise_weight (filters, C * depth_multiplier, 1, 1), bias (filters,).
    """

    def __init__(self, filters, kernel_size, *more_positional, stride=1, padding=0, depth_multiplier=1,
                 dilation=1, use_bias=True, activation=None, name=None):
        if more_positional:
            raise TypeError(keyword_only_message("SeparableConv2D", "(filters, kernel_size)", "stride=, padding=",
                                                 len(more_positional) + 2))
        super().__init__(name)
        set_conv_geometry(self, filters, kernel_size, stride, padding, dilation)
        self.depth_multiplier = as_int(depth_multiplier, "depth_multiplier", 1)
        self.use_bias = bool(use_bias)
        self.activation = check_activation(activation)
        self._fused = "relu" if self.activation == "relu" else None
        self._act = None if self._fused else get_activation(self.activation, inplace=True)

    def _build(self, input_shape, rng):
        c = self._image_shape(input_shape)[0]
        self._pads, (p, q) = conv_output_hw(self, input_shape)
        middle = c * self.depth_multiplier
        r, s = self.kernel_size
        init = initializers.get(default_kernel_initializer(self.activation))

        def initialised(shape, fan_in, fan_out, function=init):
            return new_array(rng, shape, self.dtype, lambda: function(shape, fan_in, fan_out, rng, self.dtype))

        self._params = {"depthwise_weight": initialised((middle, 1, r, s), r * s, self.depth_multiplier * r * s),
                        "pointwise_weight": initialised((self.filters, middle, 1, 1), middle, self.filters)}
        if self.use_bias:
            self._params["bias"] = initialised((self.filters,), middle, self.filters, initializers.zeros)
        self._grads = {}
        return (self.filters, p, q)

    def _make_geometry(self, x_shape):
        n, c = x_shape[:2]
        depthwise = F.conv2d_geometry(x_shape, self._params["depthwise_weight"].shape, self.stride, self._pads,
                                      self.dilation, c)
        _, middle, p, q = depthwise[1]
        pointwise = F.conv2d_geometry((n, middle, p, q), self._params["pointwise_weight"].shape)
        return depthwise, pointwise

    def _forward(self, x):
        (g1, shape1), (g2, shape2) = self._geometry(x.shape)
        self._x = x
        self._middle = F.conv2d_unchecked(x, self._params["depthwise_weight"], None, g1, shape1)
        self._y = F.conv2d_unchecked(self._middle, self._params["pointwise_weight"], self._params.get("bias"), g2,
                                     shape2, self._fused)
        return self._y if self._act is None else self._act._forward(self._y)

    def _backward(self, grad_out, compute_grad_x=True):
        (g1, _), (g2, _) = self._geometry(self._x.shape)
        if self._act is not None:
            grad_out = self._act._backward(grad_out)
        grad_middle, self._grads["pointwise_weight"], grad_bias = F.conv2d_backward_unchecked(
            grad_out, self._middle, self._params["pointwise_weight"], g2, True, self._y if self._fused else None)
        if self.use_bias:
            self._grads["bias"] = grad_bias
        grad_x, self._grads["depthwise_weight"], _ = F.conv2d_backward_unchecked(
            grad_middle, self._x, self._params["depthwise_weight"], g1, compute_grad_x)
        return grad_x

    def _backward_params(self, grad_out):
        self._backward(grad_out, compute_grad_x=False)

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "dilation": list(self.dilation), "use_bias": self.use_bias, "activation": self.activation,
                "name": self.name}
