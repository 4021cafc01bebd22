"""Conv2DTranspose: the transposed ("fractionally strided") convolution, PyTorch's ConvTranspose2d.

It is the gradient of a convolution with respect to that convolution's input, so it runs on the
convolution's own C kernels: its forward is the convolution's grad-input pass, the gradient of its
input is the convolution's forward pass, and the gradient of its weight is the convolution's
weight-gradient pass with the roles of input and output swapped.
"""
from cconv import functional as F
from cconv._args import conv_padding, pair
from cconv.layers.activations import get_activation
from cconv.layers.conv import keyword_only_message, set_conv_geometry
from cconv.layers.kernel import KernelLayer


class Conv2DTranspose(KernelLayer):
    """Conv2DTranspose(filters, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1,
    use_bias=True, activation=None, kernel_initializer=None, bias_initializer='zeros', name=None)

    Input (N, C, H, W) -> output (N, filters, Ho, Wo) with
        Ho = (H - 1) * stride - pad_top - pad_bottom + dilation * (kh - 1) + output_padding + 1
    (Wo likewise): each input pixel adds its weight[c] (filters, kh, kw), scaled, into the output
    at stride spacing, and the padding crops the result. The weight has shape
    (C, filters, kh, kw) and the bias (filters,), as in PyTorch. `padding` takes what Conv2D's
    takes; 'same' gives Ho = H * stride (the gradient of a Conv2D with padding='same') and needs
    output_padding=0. output_padding (an int or a pair) must be smaller than the stride.
    """

    def __init__(self, filters, kernel_size, *more_positional, stride=1, padding=0, output_padding=0, dilation=1,
                 use_bias=True, activation=None, kernel_initializer=None, bias_initializer="zeros", name=None):
        if more_positional:
            raise TypeError(keyword_only_message("Conv2DTranspose", "(filters, kernel_size)",
                                                 "stride=, padding=, output_padding=", len(more_positional) + 2))
        super().__init__(name)
        set_conv_geometry(self, filters, kernel_size, stride, padding, dilation)
        self.output_padding = pair(output_padding, "output_padding", minimum=0)
        for axis, (extra, step) in enumerate(zip(self.output_padding, self.stride)):
            if extra >= step:
                raise ValueError(f"output_padding {self.output_padding} must be smaller than the stride "
                                 f"{self.stride} along each axis (got {extra} >= {step} along "
                                 f"{('height', 'width')[axis]})")
        if self.padding == "same" and self.output_padding != (0, 0):
            raise ValueError(f"padding='same' sets the output size to input * stride; it takes no "
                             f"output_padding (got {self.output_padding})")
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer)
        # the activation runs after the bias, which is added in NumPy: nothing is fused
        self._fused = None
        self._act = get_activation(self.activation, inplace=True)

    def _build(self, input_shape, rng):
        c, h, w = self._image_shape(input_shape)
        kh, kw = self.kernel_size
        if self.padding == "same":
            out_hw = (h * self.stride[0], w * self.stride[1])
            self._pads = conv_padding("same", out_hw, self.kernel_size, self.stride, self.dilation)
        else:
            self._pads = conv_padding(self.padding, (h, w), self.kernel_size, self.stride, self.dilation)
            out_hw = tuple((size - 1) * step - before - after + dil * (k - 1) + extra + 1
                           for size, step, (before, after), dil, k, extra in zip(
                               (h, w), self.stride, self._pads, self.dilation, self.kernel_size,
                               self.output_padding))
            if min(out_hw) < 1:
                raise ValueError(f"{self.describe()} on input shape {input_shape}: the padding "
                                 f"{self._pads} crops the whole output (output size {out_hw})")
        self._out_hw = out_hw
        fan_in, fan_out = self.filters * kh * kw, c * kh * kw  # PyTorch's and Keras's fans
        self._init_params((c, self.filters, kh, kw), self.filters, fan_in, fan_out, rng)
        return (self.filters,) + out_hw

    def _make_geometry(self, x_shape):
        """The convolution whose input gradient this layer computes: from the output (N, filters,
        Ho, Wo) back to an image of x's shape."""
        conv_input = (x_shape[0], self.filters) + self._out_hw
        geometry, conv_output = F.conv2d_geometry(conv_input, self._params["weight"].shape, self.stride,
                                                  self._pads, self.dilation)
        assert conv_output == tuple(x_shape), (conv_output, x_shape)  # output_padding < stride ensures it
        return geometry, conv_input

    def _kernel(self, x):
        geometry, out_shape = self._geometry(x.shape)
        y = F.conv2d_grad_input_unchecked(x, self._params["weight"], geometry, out_shape)
        if self.use_bias:
            y += self._params["bias"][:, None, None]
        return y

    def _kernel_backward(self, grad_out, compute_grad_x, relu_output):
        geometry, _ = self._geometry(self._x.shape)
        weight = self._params["weight"]
        grad_x = F.conv2d_unchecked(grad_out, weight, None, geometry, self._x.shape) if compute_grad_x else None
        grad_weight = F.conv2d_grad_weight_unchecked(self._x, grad_out, geometry, weight.shape)
        grad_bias = grad_out.sum(axis=(0, 2, 3)) if self.use_bias else None
        return grad_x, grad_weight, grad_bias

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding, "output_padding": list(self.output_padding),
                "dilation": list(self.dilation), "use_bias": self.use_bias, "activation": self.activation,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "name": self.name}
