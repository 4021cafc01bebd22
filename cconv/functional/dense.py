"""Fully connected layers on NumPy arrays, forward and backward, computed by the C kernels
(csrc/dense.c) rather than NumPy's BLAS: the same OpenMP threads as the convolutions, no second
thread pool competing for the cores, and results that do not depend on the thread count.

The weight has Keras's (in_features, out_features) layout: y = x @ weight + bias.

dense and dense_backward check their arguments, then call dense_unchecked /
dense_backward_unchecked, which the layers call directly with arrays checked upstream.
"""
import numpy as np

from cconv import _conv, _memory
from cconv._args import as_bool, as_float_array, check_activation, check_same_dtype
from cconv._threads import get_num_threads


def _prepare(x, weight):
    x = as_float_array(x, "x", ndim=2)
    weight = as_float_array(weight, "weight", ndim=2)
    check_same_dtype(x, "x", weight=weight)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features but weight has shape {weight.shape}; "
                         f"expected weight of shape ({x.shape[1]}, out_features)")
    return x, weight


def _check_2d(array, shape, dtype, name):
    array = as_float_array(array, name, ndim=2)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape} but the forward output has shape {shape}")
    if array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but x has dtype {dtype}")
    return array


def dense(x, weight, bias=None, activation=None):
    """y = x @ weight + bias, then ReLU when activation='relu'.

    Arguments:
        x:      (N, in_features) float32 or float64.
        weight: (in_features, out_features), same dtype.
        bias:   (out_features,) or None.
    Returns:
        y: (N, out_features).
    """
    check_activation(activation)
    x, weight = _prepare(x, weight)
    if bias is not None:
        bias = as_float_array(bias, "bias", ndim=1)
        check_same_dtype(x, "x", bias=bias)
        if bias.shape[0] != weight.shape[1]:
            raise ValueError(f"bias must have out_features={weight.shape[1]} entries, got {bias.shape[0]}")
    return dense_unchecked(x, weight, bias, activation)


def dense_unchecked(x, weight, bias=None, activation=None):
    """dense without the checks, for C-contiguous arrays of one float dtype with matching shapes
    and activation None or 'relu'."""
    n, (features_in, features_out) = x.shape[0], weight.shape
    y = _memory.empty((n, features_out), dtype=x.dtype)
    _conv.dense_forward(n, features_in, features_out, x.reshape(-1), weight.reshape(-1), bias,
                        y.reshape(-1), activation == "relu", get_num_threads())
    return y


def dense_backward(grad_out, x, weight, compute_grad_x=True, activation=None, output=None):
    """Gradients of dense with respect to x, weight and bias.

    Arguments are those of dense, plus grad_out (N, out_features) = dL/dy, compute_grad_x
    (False returns None for grad_x), and with activation='relu' the forward's output y as
    `output` (grad_out is masked where y <= 0).
    Returns:
        (grad_x (N, in_features), grad_weight (in_features, out_features), grad_bias (out_features,)).
    """
    check_activation(activation)
    compute_grad_x = as_bool(compute_grad_x, "compute_grad_x")
    x, weight = _prepare(x, weight)
    n, (features_in, features_out) = x.shape[0], weight.shape
    grad_out = _check_2d(grad_out, (n, features_out), x.dtype, "grad_out")
    relu_y = None
    if activation == "relu":
        if output is None:
            raise ValueError("activation='relu' needs output=, the forward pass's activated output")
        relu_y = _check_2d(output, (n, features_out), x.dtype, "output")
    return dense_backward_unchecked(grad_out, x, weight, compute_grad_x, relu_y)


def dense_backward_unchecked(grad_out, x, weight, compute_grad_x=True, relu_output=None):
    """dense_backward without the checks, for arrays as dense_unchecked takes them and a grad_out
    of its output's shape; relu_output is None, or the output of a forward pass with
    activation='relu' (whose derivative then masks grad_out)."""
    n, (features_in, features_out) = x.shape[0], weight.shape
    grad_x = _memory.empty(x.shape, dtype=x.dtype) if compute_grad_x else None
    grad_weight = _memory.empty(weight.shape, dtype=x.dtype)
    grad_bias = _memory.empty(features_out, dtype=x.dtype)
    _conv.dense_backward(n, features_in, features_out, grad_out.reshape(-1),
                         None if relu_output is None else relu_output.reshape(-1), x.reshape(-1),
                         weight.reshape(-1), None if grad_x is None else grad_x.reshape(-1),
                         grad_weight.reshape(-1), grad_bias, get_num_threads())
    return grad_x, grad_weight, grad_bias
