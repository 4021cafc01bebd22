"""Argument checking shared by the functional operators.

Everything here turns user input into plain Python ints and native C-ordered float arrays,
or raises a ValueError / TypeError that names the argument and says what was expected.
No array data is looped over in Python.
"""
import math
import numbers

import numpy as np

FLOAT_TYPES = (np.float32, np.float64)
MAX_DIM = 2**31 - 1  # any single size beyond this is certainly a mistake


ACTIVATIONS = (None, "relu")  # the activations the kernels fuse into their output


def check_activation(activation):
    """`activation` if the kernels can fuse it (None or 'relu'), else ValueError."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None or 'relu' (fused into the convolution), got {activation!r}")
    return activation


def as_float_array(x, name, ndim=None):
    """`x` as a native-byte-order, C-contiguous float32/float64 ndarray (copied only if needed)."""
    if x is None:
        raise TypeError(f"{name} must be a float32 or float64 array, got None")
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{name} must be a float32 or float64 array, got {type(x).__name__}") from exc
    if x.dtype.type not in FLOAT_TYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {x.shape} ({x.ndim}-D)")
    if x.dtype.byteorder not in ("=", "|"):
        x = x.astype(x.dtype.newbyteorder("="))
    return np.ascontiguousarray(x)


def as_real_array(x, name):
    """`x` as an ndarray of real numbers (float, int, unsigned or bool), unconverted; TypeError
    naming `name` otherwise."""
    try:
        x = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}") from exc
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return x


def check_same_dtype(reference, reference_name, **others):
    """Raise TypeError when any array in `others` has a dtype other than `reference`'s."""
    for name, arr in others.items():
        if arr is not None and arr.dtype != reference.dtype:
            raise TypeError(f"{name} has dtype {arr.dtype} but {reference_name} has dtype "
                            f"{reference.dtype}; all arrays must share one float dtype")


def as_int(value, name, minimum):
    """`value` as a Python int >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > MAX_DIM:
        raise ValueError(f"{name} = {value} is too large (at most {MAX_DIM})")
    return value


def pair(value, name, minimum=1):
    """An int or an (h, w) pair of ints, as an (h, w) tuple of ints >= minimum."""
    if value is None:
        raise TypeError(f"{name} must be an int or an (h, w) pair of ints, got None")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]  # a 0-d array is a scalar
    if isinstance(value, (tuple, list, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return (as_int(value[0], name, minimum), as_int(value[1], name, minimum))
    return (as_int(value, name, minimum), as_int(value, name, minimum))


def conv_padding(padding, in_hw, kernel_hw, stride, dilation):
    """Normalise conv `padding` to ((top, bottom), (left, right)).

    Accepts an int, an (h, w) pair, ((top, bottom), (left, right)), 'valid', or 'same'.
    'same' follows Keras/TensorFlow for any stride: output = ceil(input / stride), and the
    odd pixel of padding goes to the bottom / right.
    """
    if isinstance(padding, str):
        word = padding.lower()
        if word == "valid":
            return ((0, 0), (0, 0))
        if word == "same":
            result = []
            for size, k, s, d in zip(in_hw, kernel_hw, stride, dilation):
                out = -(-size // s)
                total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
                result.append((total // 2, total - total // 2))
            return tuple(result)
        raise ValueError(f"padding must be an int, a pair, ((top, bottom), (left, right)), "
                         f"'valid' or 'same'; got the unknown word {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding):
        (top, bottom), (left, right) = padding  # raises ValueError on wrong lengths
        return ((as_int(top, "padding", 0), as_int(bottom, "padding", 0)),
                (as_int(left, "padding", 0), as_int(right, "padding", 0)))
    ph, pw = pair(padding, "padding", minimum=0)
    return ((ph, ph), (pw, pw))


def conv_out_size(size, kernel, stride, dilation, pad_before, pad_after, axis):
    """floor((N + P_total - D*(F-1) - 1) / S) + 1, checking that the kernel fits."""
    span = dilation * (kernel - 1) + 1
    padded = size + pad_before + pad_after
    if span > padded:
        raise ValueError(f"kernel {axis} extent {span} (kernel {kernel}, dilation {dilation}) is "
                         f"larger than the padded input {axis} {padded}")
    return (padded - span) // stride + 1


def pool_out_size(size, kernel, stride, pad, ceil_mode, axis):
    """PyTorch's pooling output size; with ceil_mode the last window must start inside the input."""
    if 2 * pad > kernel:
        raise ValueError(f"pool padding {pad} along {axis} must be at most half the kernel size {kernel}")
    padded = size + 2 * pad
    if kernel > padded:
        raise ValueError(f"pool kernel {axis} {kernel} is larger than the padded input {axis} {padded}")
    out = (padded - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def check_grad_out(grad_out, expected_shape, dtype, name="grad_out"):
    """grad_out (or another array named `name`) must be a float array of exactly the forward
    output's shape and dtype."""
    grad_out = as_float_array(grad_out, name, ndim=4)
    if grad_out.shape != tuple(expected_shape):
        raise ValueError(f"{name} has shape {grad_out.shape} but the forward output has shape "
                         f"{tuple(expected_shape)}")
    if grad_out.dtype != dtype:
        raise TypeError(f"{name} has dtype {grad_out.dtype} but the input has dtype {dtype}")
    return grad_out


def as_finite_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """`value` (a finite real number, not a bool) as a Python float within [low, high]; the
    bounds are optional and low_open / high_open exclude them."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def as_bool(value, name):
    """`value` (True or False, NumPy's bools included) as a Python bool; TypeError for anything
    else, so that a truthy string such as 'no' is never taken for True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def as_count(value, name, minimum):
    """`value` (an int, not a bool) as a Python int >= minimum; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


DATA_FORMATS = ("channels_first", "channels_last")


def as_data_format(data_format):
    """'channels_first' (N, C, H, W) or 'channels_last' (N, H, W, C, as Keras feeds images)."""
    if not isinstance(data_format, str) or data_format.lower() not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'channels_first' (N, C, H, W images) or "
                         f"'channels_last' (N, H, W, C), got {data_format!r}")
    return data_format.lower()


def channels_first_shape(shape, data_format):
    """A sample shape given in `data_format` as the layers' (C, H, W) order (flat shapes as they are)."""
    shape = tuple(shape)
    if data_format == "channels_last" and len(shape) > 1:
        return shape[-1:] + shape[:-1]
    return shape


def channels_last_shape(shape, data_format):
    """The layers' (C, H, W) sample shape as `data_format` shows it."""
    shape = tuple(shape)
    if data_format == "channels_last" and len(shape) > 1:
        return shape[1:] + shape[:1]
    return shape
