"""2-D convolution on NCHW NumPy arrays, forward and backward, with PyTorch's semantics.

The arguments are checked and normalised here; the C kernels (csrc/conv2d.c) do every loop.

conv2d and conv2d_backward check everything they are given, then call conv2d_unchecked /
conv2d_backward_unchecked, which only allocate the outputs and call the kernels. The layers call
the unchecked entries directly, with a geometry from conv2d_geometry that they compute once per
input shape: their input was checked where it entered the layer or the model.
"""
import numpy as np

from cconv import _conv, _memory
from cconv._args import (as_bool, as_float_array, as_int, check_activation, check_grad_out, check_same_dtype,
                         conv_out_size, conv_padding, pair)
from cconv._threads import get_num_threads


def _prepare(x, weight, stride, padding, dilation, groups):
    """Validate the arguments shared by forward and backward; return (x, weight, geometry, out_shape)."""
    x = as_float_array(x, "x", ndim=4)
    weight = as_float_array(weight, "weight", ndim=4)
    check_same_dtype(x, "x", weight=weight)
    geometry, out_shape = conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    return x, weight, geometry, out_shape


def conv2d_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """(the kernels' ConvGeometry, the output shape (N, K, P, Q)) of a convolution of an x of
    shape x_shape by a weight of shape w_shape (tuples of 4 ints >= 0), the other arguments as
    conv2d takes them; ValueError / TypeError when they do not describe a convolution."""
    n, c, h, w = x_shape
    k, c_per_group, r, s = w_shape
    groups = as_int(groups, "groups", 1)
    if c == 0:
        raise ValueError(f"x has no channels (shape {tuple(x_shape)}); a convolution needs C >= 1")
    if c % groups:
        raise ValueError(f"groups={groups} must divide the input channels C={c}")
    if k % groups:
        raise ValueError(f"groups={groups} must divide the number of filters K={k} (weight.shape[0])")
    if c_per_group != c // groups:
        raise ValueError(f"channel mismatch: x has C={c} channels, so weight.shape[1] must be "
                         f"C/groups={c // groups}, got weight of shape {tuple(w_shape)}")
    if r == 0 or s == 0:
        raise ValueError(f"kernel size must be at least 1x1, got weight of shape {tuple(w_shape)}")
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    (top, bottom), (left, right) = conv_padding(padding, (h, w), (r, s), stride, dilation)
    p = conv_out_size(h, r, stride[0], dilation[0], top, bottom, "height")
    q = conv_out_size(w, s, stride[1], dilation[1], left, right, "width")
    geometry = _conv.ConvGeometry(n=n, c=c, h=h, w=w, k=k, r=r, s=s, groups=groups, stride=stride,
                                  dilation=dilation, pad_top=top, pad_left=left, p=p, q=q)
    return geometry, (n, k, p, q)


ALGORITHMS = _conv.ALGORITHMS  # the convolution algorithms built, besides 'auto'
PASSES = ("forward", "grad_input", "grad_weight")


def _algorithms(algorithm, geometry, passes):
    """`algorithm` (a name, or a dict of names by pass) as {pass: name} for `passes`, each name
    known and able to run its pass of this geometry."""
    if isinstance(algorithm, dict):
        unknown = set(algorithm) - set(passes)
        if unknown:
            raise ValueError(f"algorithm keys must be among {passes}, got {sorted(unknown)}")
        chosen = {p: algorithm.get(p, "auto") for p in passes}
    else:
        chosen = {p: algorithm for p in passes}
    for pass_name, name in chosen.items():
        if not isinstance(name, str) or (name != "auto" and name not in ALGORITHMS):
            raise ValueError(f"unknown convolution algorithm {name!r}; expected 'auto' or one of {list(ALGORITHMS)}")
        why = geometry.unsupported(pass_name, name)
        if why is not None:
            raise ValueError(f"algorithm {name!r} cannot run the {pass_name.replace('_', ' ')} pass of this "
                             f"convolution: {why}")
    return chosen


def conv_algorithms(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, dtype=np.float32):
    """The algorithms that can run each pass of a convolution of these shapes and arguments (those of
    conv2d), and the one 'auto' picks for `dtype` on this CPU.

    Returns:
        {pass: {"applicable": [names], "auto": name}} for the passes 'forward', 'grad_input' and
        'grad_weight'.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    for name, shape in (("x_shape", x_shape), ("w_shape", w_shape)):
        if len(shape) != 4:
            raise ValueError(f"{name} must have 4 entries, got {shape}")
    x_shape = tuple(as_int(v, "x_shape", 0) for v in x_shape)
    w_shape = tuple(as_int(v, "w_shape", 0) for v in w_shape)
    geometry, _ = conv2d_geometry(x_shape, w_shape, stride, padding, dilation, groups)
    return {p: {"applicable": [a for a in ALGORITHMS if geometry.unsupported(p, a) is None],
                "auto": geometry.auto(p, dtype)} for p in PASSES}


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None, algorithm="auto"):
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
        algorithm: 'auto' (chosen per shape), or one of ALGORITHMS that can run this geometry:
                  'gemm' (im2col packed into GEMM panels; any geometry), 'implicit_gemm' (stride 1:
                  the input read in place from a zero-padded copy), 'pointwise' (1x1, stride 1, no
                  padding), 'depthwise' (groups = C: plane by plane from a zero-padded copy).
                  conv_algorithms() lists those that apply to a shape.
    Returns:
        y: (N, K, P, Q) with P = floor((H + top + bottom - dh*(R-1) - 1) / sh) + 1, Q likewise.
    """
    check_activation(activation)
    x, weight, geometry, out_shape = _prepare(x, weight, stride, padding, dilation, groups)
    algorithms = _algorithms(algorithm, geometry, ("forward",))
    if bias is not None:
        bias = as_float_array(bias, "bias", ndim=1)
        check_same_dtype(x, "x", bias=bias)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have K={weight.shape[0]} entries (one per filter), got {bias.shape[0]}")
    return conv2d_unchecked(x, weight, bias, geometry, out_shape, activation, algorithms)


def conv2d_unchecked(x, weight, bias, geometry, out_shape, activation=None, algorithms=None):
    """conv2d without the checks, for C-contiguous arrays of one float dtype whose shapes match
    `geometry` and `out_shape` (as conv2d_geometry returned them), activation None or 'relu' and
    `algorithms` None ('auto') or a dict that _algorithms returned. The kernels trust the sizes
    in `geometry`: arrays that do not match them would be read out of bounds."""
    y = _memory.empty(out_shape, dtype=x.dtype)
    _conv.conv2d_forward(geometry, x.reshape(-1), weight.reshape(-1),
                         None if bias is None else bias.reshape(-1), y.reshape(-1), activation == "relu",
                         algorithms or {}, get_num_threads())
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, compute_grad_x=True,
                    activation=None, output=None, algorithm="auto"):
    """Gradients of conv2d with respect to x, weight and bias.

    Arguments are those of conv2d, plus
        grad_out:       dL/dy, shaped like conv2d's output (N, K, P, Q);
        compute_grad_x: False skips grad_x (returned as None), e.g. for a network's first layer;
        activation, output: with activation='relu', grad_out is the gradient of the activated
                        output y = conv2d(..., activation='relu'), which must be passed as `output`;
                        it is masked where y <= 0 as it is read;
        algorithm:      as conv2d's, for both gradients, or a dict {'grad_input': name,
                        'grad_weight': name} (a pass left out is 'auto').
    Returns:
        (grad_x (N, C, H, W), grad_weight (K, C / groups, R, S), grad_bias (K,)), in x's dtype.
    """
    check_activation(activation)
    compute_grad_x = as_bool(compute_grad_x, "compute_grad_x")
    x, weight, geometry, out_shape = _prepare(x, weight, stride, padding, dilation, groups)
    algorithms = _algorithms(algorithm, geometry, ("grad_input", "grad_weight"))
    grad_out = check_grad_out(grad_out, out_shape, x.dtype)
    relu_y = None
    if activation == "relu":
        if output is None:
            raise ValueError("activation='relu' needs output=, the forward pass's activated output")
        relu_y = check_grad_out(output, out_shape, x.dtype, name="output")
    return conv2d_backward_unchecked(grad_out, x, weight, geometry, compute_grad_x, relu_y, algorithms)


def conv2d_backward_unchecked(grad_out, x, weight, geometry, compute_grad_x=True, relu_output=None,
                              algorithms=None):
    """conv2d_backward without the checks, for arrays as conv2d_unchecked takes them and a
    grad_out of its output's shape; relu_output is None, or the output of a forward pass with
    activation='relu' (whose derivative then masks grad_out)."""
    grad_x = _memory.empty(x.shape, dtype=x.dtype) if compute_grad_x else None
    grad_weight = _memory.empty(weight.shape, dtype=x.dtype)
    grad_bias = _memory.empty(weight.shape[0], dtype=x.dtype)
    _conv.conv2d_backward(geometry, grad_out.reshape(-1), None if relu_output is None else relu_output.reshape(-1),
                          x.reshape(-1), weight.reshape(-1), None if grad_x is None else grad_x.reshape(-1),
                          grad_weight.reshape(-1), grad_bias.reshape(-1), algorithms or {}, get_num_threads())
    return grad_x, grad_weight, grad_bias


def conv2d_grad_input_unchecked(grad_out, weight, geometry, x_shape, algorithms=None):
    """The gradient of conv2d_unchecked's input alone, of shape x_shape, for grad_out of its output's
    shape: the transposed convolution of grad_out by weight (Conv2DTranspose's forward). The
    arrays as conv2d_backward_unchecked takes them."""
    grad_x = _memory.empty(x_shape, dtype=grad_out.dtype)
    nothing = grad_out.reshape(-1)[:0]  # the input itself is not read for its own gradient
    _conv.conv2d_backward(geometry, grad_out.reshape(-1), None, nothing, weight.reshape(-1), grad_x.reshape(-1),
                          None, None, algorithms or {}, get_num_threads())
    return grad_x


def conv2d_grad_weight_unchecked(grad_out, x, geometry, w_shape, algorithms=None):
    """The gradient of conv2d_unchecked's weight alone, of shape w_shape (the weight is not read),
    for the input x and grad_out of its output's shape."""
    grad_weight = _memory.empty(w_shape, dtype=x.dtype)
    nothing = x.reshape(-1)[:0]
    _conv.conv2d_backward(geometry, grad_out.reshape(-1), None, x.reshape(-1), nothing, None,
                          grad_weight.reshape(-1), None, algorithms or {}, get_num_threads())
    return grad_weight
