"""2-D max, average and Lp-norm pooling, forward and backward, NCHW, with PyTorch's semantics.

The C kernels live in csrc/pool2d.c; this module checks the arguments, computes the output
size and allocates the outputs (from cconv._memory's buffer cache). Output size along each axis
(PyTorch's rule):

    out = floor((H + 2*pad - kernel) / stride) + 1                          (ceil_mode=False)
    out = ceil((H + 2*pad - kernel) / stride) + 1, minus 1 when that last
          window would start at or beyond H + pad                           (ceil_mode=True)

Windows that run off the input are clipped; padding is at most half the kernel.

The public operators check their arguments, then call pool2d_unchecked / pool2d_backward_unchecked
with a geometry from pool2d_geometry; the layers call these directly, with a geometry they compute
once per input shape.
"""
import numbers

import numpy as np

from cconv import _memory, _pool
from cconv._args import as_bool, as_float_array, check_grad_out, pair, pool_out_size
from cconv._threads import get_num_threads

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "lp_pool2d",
           "lp_pool2d_backward", "pool2d_geometry", "pool2d_unchecked", "pool2d_backward_unchecked"]


def _check_norm_type(norm_type):
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a positive finite number, got "
                        f"{type(norm_type).__name__} {norm_type!r}")
    value = float(norm_type)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"norm_type must be a positive finite number, got {norm_type!r}")
    return value


def pool2d_geometry(x_shape, kernel_size, stride=None, padding=0, ceil_mode=False):
    """The kernels' PoolGeometry for an x of shape x_shape (4 ints), every argument checked."""
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    ph, pw = pair(padding, "padding", minimum=0)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    n, c, h, w = x_shape
    if h == 0 or w == 0:
        raise ValueError(f"x must have a non-empty height and width, got shape {tuple(x_shape)}")
    p = pool_out_size(h, kh, sh, ph, ceil_mode, "height")
    q = pool_out_size(w, kw, sw, pw, ceil_mode, "width")
    return _pool.PoolGeometry(n=n, c=c, h=h, w=w, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), p=p, q=q)


def pool2d_unchecked(op, x, geometry, option=0.0):
    """Pooling `op` ('max', 'avg' or 'lp') of a C-contiguous float array x of the shape that
    `geometry` describes, without the checks; option: count_include_pad (avg, 0 or 1) or
    norm_type (lp)."""
    y = _memory.empty(geometry.output_shape, dtype=x.dtype)
    if y.size:
        _pool.forward(op, geometry, x.reshape(-1), y.reshape(-1), option, get_num_threads())
    return y


def pool2d_backward_unchecked(op, grad_out, x, geometry, option=0.0):
    """The gradient of pool2d_unchecked with respect to x, for a grad_out of its output's shape
    and dtype, without the checks."""
    grad_x = _memory.empty(x.shape, dtype=x.dtype)
    if grad_x.size:
        _pool.backward(op, geometry, grad_out.reshape(-1), x.reshape(-1), grad_x.reshape(-1), option,
                       get_num_threads())
    return grad_x


def _forward(op, x, kernel_size, stride, padding, ceil_mode, option=0.0):
    x = as_float_array(x, "x", ndim=4)
    geometry = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    return pool2d_unchecked(op, x, geometry, float(option))


def _backward(op, grad_out, x, kernel_size, stride, padding, ceil_mode, option=0.0):
    x = as_float_array(x, "x", ndim=4)
    geometry = pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    grad_out = check_grad_out(grad_out, geometry.output_shape, x.dtype)
    return pool2d_backward_unchecked(op, grad_out, x, geometry, float(option))


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """2-D max pooling, as torch.nn.functional.max_pool2d.

    x: (N, C, H, W) float32 or float64 array (any layout; it is never modified).
    kernel_size, stride, padding: an int or an (h, w) pair; stride defaults to kernel_size;
        0 <= padding <= kernel_size / 2. Padding counts as -inf.
    ceil_mode: use ceil instead of floor in the output-size formula (see the module docstring).
    Returns y: (N, C, H', W') of x's dtype, H' = floor((H + 2*pad_h - kh) / stride_h) + 1 and
        W' likewise. A NaN in a window makes that output NaN.
    """
    return _forward("max", x, kernel_size, stride, padding, ceil_mode)


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Gradient of max_pool2d with respect to x.

    grad_out: (N, C, H', W'), dL/dy for y = max_pool2d(x, ...), of x's dtype.
    x and the other arguments: as given to max_pool2d.
    Returns grad_x: (N, C, H, W). Each window passes its gradient to its first maximum in
        row-major order (to its last NaN when it holds NaN), like PyTorch; overlapping windows
        add up.
    """
    return _backward("max", grad_out, x, kernel_size, stride, padding, ceil_mode)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-D average pooling, as torch.nn.functional.avg_pool2d.

    x: (N, C, H, W) float32 or float64 array (any layout; it is never modified).
    kernel_size, stride, padding: an int or an (h, w) pair; stride defaults to kernel_size;
        0 <= padding <= kernel_size / 2. Padding counts as zeros.
    ceil_mode: use ceil instead of floor in the output-size formula (see the module docstring).
    count_include_pad: divide by the window size including padding (clipped at H + pad_h and
        W + pad_w, which only matters with ceil_mode) when True, by the number of real input
        elements in the window when False.
    Returns y: (N, C, H', W') of x's dtype, H' = floor((H + 2*pad_h - kh) / stride_h) + 1 and
        W' likewise.
    """
    return _forward("avg", x, kernel_size, stride, padding, ceil_mode,
                    as_bool(count_include_pad, "count_include_pad"))


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of avg_pool2d with respect to x.

    grad_out: (N, C, H', W'), dL/dy for y = avg_pool2d(x, ...), of x's dtype.
    x: the forward input (only its shape and dtype are used); other arguments as for avg_pool2d.
    Returns grad_x: (N, C, H, W): each input element gets grad_out / divisor from every window
        that contains it.
    """
    return _backward("avg", grad_out, x, kernel_size, stride, padding, ceil_mode,
                     as_bool(count_include_pad, "count_include_pad"))


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2-D power-average pooling, exactly as torch.nn.functional.lp_pool2d.

    y = (sum over the window of x**p) ** (1/p), p = norm_type (p=2: L2-norm pooling). As in
    torch, this is computed as (avg_pool2d(x**p, kernel_size, stride, 0, ceil_mode) * kh*kw)
    ** (1/p), so with ceil_mode a window clipped at the input's edge is scaled up to the full
    window size. x**p and the root follow IEEE pow: negative inputs with a non-integer p give NaN.

    x: (N, C, H, W) float32 or float64 array (any layout; it is never modified).
    norm_type: p, a positive finite number.
    kernel_size, stride: an int or an (h, w) pair; stride defaults to kernel_size. No padding.
    ceil_mode: use ceil instead of floor in the output-size formula (see the module docstring).
    Returns y: (N, C, H', W') of x's dtype, H' = floor((H - kh) / stride_h) + 1, W' likewise.
    """
    return _forward("lp", x, kernel_size, stride, 0, ceil_mode,
                    _check_norm_type(norm_type))


def lp_pool2d_backward(grad_out, x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Gradient of lp_pool2d with respect to x (torch's autograd of the same formula).

    grad_out: (N, C, H', W'), dL/dy for y = lp_pool2d(x, ...), of x's dtype.
    x and the other arguments: as given to lp_pool2d.
    Returns grad_x: (N, C, H, W). Where a window's pooled sum of x**p is zero its gradient is
        defined as zero, not NaN (torch documents this rule but its autograd can still give NaN
        there). Elsewhere the values are torch's: x**(p-1) times the gradient reaching x, so an
        infinite x (or a zero x when p < 1) gives NaN or Inf as in torch.
    """
    return _backward("lp", grad_out, x, kernel_size, stride, 0, ceil_mode,
                     _check_norm_type(norm_type))
