"""Activations and the cross-entropy loss on NumPy arrays, with their backward functions, for
hand-written training loops (PyTorch's F.relu, F.softmax, F.log_softmax, F.cross_entropy).

    logits = F.dense(F.relu(F.dense(x, w1, b1)), w2, b2)
    loss = F.cross_entropy(logits, labels)
    grad_logits = F.cross_entropy_backward(logits, labels)

Each backward takes dL/d(output) and what its forward took or returned, and gives dL/d(input).
"""
import numpy as np

from cconv._args import as_float_array, as_int
from cconv.losses import CrossEntropy


def relu(x):
    """max(x, 0), element-wise (NaN stays NaN, as in PyTorch)."""
    x = as_float_array(x, "x")
    return x * ~(x <= 0)


def relu_backward(grad_out, x):
    """dL/dx of relu for grad_out = dL/d relu(x)."""
    x = as_float_array(x, "x")
    return as_float_array(grad_out, "grad_out") * (x > 0)


def _dim(x, dim):
    dim = as_int(dim, "dim", -x.ndim)
    if dim >= x.ndim:
        raise ValueError(f"dim must be in -{x.ndim}..{x.ndim - 1} for a {x.ndim}-D array, got {dim}")
    return dim


def softmax(x, dim=1):
    """exp(x) / sum(exp(x)) along `dim` (PyTorch's dim; 1 = the classes of (N, C) logits),
    computed with the maximum subtracted so it never overflows."""
    x = as_float_array(x, "x")
    dim = _dim(x, dim)
    exp = np.exp(x - x.max(axis=dim, keepdims=True))
    return exp / exp.sum(axis=dim, keepdims=True)


def softmax_backward(grad_out, y, dim=1):
    """dL/dx of softmax for grad_out = dL/dy, where y = softmax(x, dim)."""
    y = as_float_array(y, "y")
    grad_out = as_float_array(grad_out, "grad_out")
    return y * (grad_out - (grad_out * y).sum(axis=_dim(y, dim), keepdims=True))


def log_softmax(x, dim=1):
    """log(softmax(x, dim)), computed directly (accurate where softmax underflows to 0)."""
    x = as_float_array(x, "x")
    dim = _dim(x, dim)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def log_softmax_backward(grad_out, y, dim=1):
    """dL/dx of log_softmax for grad_out = dL/dy, where y = log_softmax(x, dim)."""
    y = as_float_array(y, "y")
    grad_out = as_float_array(grad_out, "grad_out")
    return grad_out - np.exp(y) * grad_out.sum(axis=_dim(y, dim), keepdims=True)


def _checked_cross_entropy(logits, target):
    logits = as_float_array(logits, "logits")
    if logits.ndim < 2:
        raise ValueError(f"logits must be (N, C) or (N, C, H, W), got shape {logits.shape}")
    target = CrossEntropy().check_targets(target, logits.shape[0], logits.shape[1:])
    return CrossEntropy()(logits, target)


def cross_entropy(logits, target):
    """The mean softmax cross-entropy of logits (N, C) against class indices (N,) or target
    probabilities (N, C), as a float (PyTorch's F.cross_entropy with reduction='mean').
    Segmentation: logits (N, C, H, W) (any trailing axes) against class indices (N, H, W) or
    probabilities (N, C, H, W), averaged over the N*H*W pixels."""
    return _checked_cross_entropy(logits, target)[0]


def cross_entropy_backward(logits, target):
    """d cross_entropy(logits, target) / d logits: (softmax(logits) - one-hot(target)) / the
    number of predictions (N, or N*H*W for maps)."""
    return _checked_cross_entropy(logits, target)[1]
