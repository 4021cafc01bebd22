"""2-D convolution on NCHW NumPy arrays, forward and backward, with PyTorch's semantics.

The arguments are checked and normalised here; the C kernels (csrc/conv2d.c) do every loop.
"""
import numpy as np

from cconv import _conv
from cconv._args import (as_float_array, as_int, check_grad_out, check_same_dtype, conv_out_size,
                         conv_padding, pair)
from cconv._threads import get_num_threads


def _prepare(x, weight, stride, padding, dilation, groups):
    """Validate the arguments shared by forward and backward; return (x, weight, dims, out_shape)."""
    x = as_float_array(x, "x", ndim=4)
    weight = as_float_array(weight, "weight", ndim=4)
    check_same_dtype(x, "x", weight=weight)
    n, c, h, w = x.shape
    k, c_per_group, r, s = weight.shape
    groups = as_int(groups, "groups", 1)
    if c == 0:
        raise ValueError(f"x has no channels (shape {x.shape}); a convolution needs C >= 1")
    if c % groups:
        raise ValueError(f"groups={groups} must divide the input channels C={c}")
    if k % groups:
        raise ValueError(f"groups={groups} must divide the number of filters K={k} (weight.shape[0])")
    if c_per_group != c // groups:
        raise ValueError(f"channel mismatch: x has C={c} channels, so weight.shape[1] must be "
                         f"C/groups={c // groups}, got weight of shape {weight.shape}")
    if r == 0 or s == 0:
        raise ValueError(f"kernel size must be at least 1x1, got weight of shape {weight.shape}")
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    (top, bottom), (left, right) = conv_padding(padding, (h, w), (r, s), stride, dilation)
    p = conv_out_size(h, r, stride[0], dilation[0], top, bottom, "height")
    q = conv_out_size(w, s, stride[1], dilation[1], left, right, "width")
    dims = (n, c, h, w, k, r, s, groups, stride[0], stride[1], dilation[0], dilation[1], top, left, p, q)
    return x, weight, dims, (n, k, p, q)


ACTIVATIONS = (None, "relu")  # fused into the kernels


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None or 'relu' (fused into the convolution), got {activation!r}")
    return activation


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
    """2-D convolution (cross-correlation, like torch.nn.functional.conv2d).

    Arguments:
        x:        (N, C, H, W) float32 or float64 array.
        weight:   (K, C / groups, R, S) filters, same dtype; each spans the full depth of its group.
        bias:     (K,) or None.
        stride:   int or (sh, sw), >= 1.
        padding:  int, (ph, pw), ((top, bottom), (left, right)), 'valid', or 'same' (Keras rule for
                  any stride: P = ceil(H / sh), the odd pixel of padding at the bottom / right).
        dilation: int or (dh, dw), >= 1.
        groups:   divides C and K; groups = C is a depthwise convolution.
        activation: None, or 'relu' to return max(y, 0) computed as the output is written.
    Returns:
        y: (N, K, P, Q) with P = floor((H + top + bottom - dh*(R-1) - 1) / sh) + 1, Q likewise.
    """
    _check_activation(activation)
    x, weight, dims, out_shape = _prepare(x, weight, stride, padding, dilation, groups)
    if bias is not None:
        bias = as_float_array(bias, "bias", ndim=1)
        check_same_dtype(x, "x", bias=bias)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have K={weight.shape[0]} entries (one per filter), got {bias.shape[0]}")
    y = _conv.empty(out_shape, dtype=x.dtype)
    _conv.conv2d_forward(dims, x.reshape(-1), weight.reshape(-1),
                         None if bias is None else bias.reshape(-1), y.reshape(-1), activation == "relu",
                         get_num_threads())
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, compute_grad_x=True,
                    activation=None, output=None):
    """Gradients of conv2d with respect to x, weight and bias.

    Arguments are those of conv2d, plus
        grad_out:       dL/dy, shaped like conv2d's output (N, K, P, Q);
        compute_grad_x: False skips grad_x (returned as None), e.g. for a network's first layer;
        activation, output: with activation='relu', grad_out is the gradient of the activated
                        output y = conv2d(..., activation='relu'), which must be passed as `output`;
                        it is masked where y <= 0 as it is read.
    Returns:
        (grad_x (N, C, H, W), grad_weight (K, C / groups, R, S), grad_bias (K,)), in x's dtype.
    """
    _check_activation(activation)
    x, weight, dims, out_shape = _prepare(x, weight, stride, padding, dilation, groups)
    grad_out = check_grad_out(grad_out, out_shape, x.dtype)
    relu_y = None
    if activation == "relu":
        if output is None:
            raise ValueError("activation='relu' needs output=, the forward pass's activated output")
        relu_y = check_grad_out(output, out_shape, x.dtype, name="output").reshape(-1)
    grad_x = _conv.empty(x.shape, dtype=x.dtype) if compute_grad_x else None
    grad_weight = _conv.empty(weight.shape, dtype=x.dtype)
    grad_bias = _conv.empty(weight.shape[0], dtype=x.dtype)
    _conv.conv2d_backward(dims, grad_out.reshape(-1), relu_y, x.reshape(-1), weight.reshape(-1),
                          None if grad_x is None else grad_x.reshape(-1), grad_weight.reshape(-1), grad_bias.reshape(-1),
                          get_num_threads())
    return grad_x, grad_weight, grad_bias
