"""2-D batch normalisation on NCHW arrays (csrc/batchnorm2d.c), for cconv.layers.BatchNorm2D.

Unchecked entries, as the layers call them: C-contiguous arrays of one float dtype, x of shape
(N, C, H, W), gamma / beta / running_mean / running_var of shape (C,).
"""
import numpy as np

from cconv import _batchnorm, _memory
from cconv._threads import get_num_threads


def batch_norm2d_unchecked(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps):
    """(y, mean, invstd): y = (x - mean) * invstd * gamma + beta per channel, with the batch's
    statistics when use_batch_stats and the batch is not empty (the running statistics are then
    updated in place, PyTorch's rule with the unbiased variance), the running ones otherwise.
    mean and invstd (float64, (C,)) are what batch_norm2d_backward_unchecked takes back."""
    n, c, h, w = x.shape
    y = _memory.empty(x.shape, dtype=x.dtype)
    mean = np.empty(c, np.float64)
    invstd = np.empty(c, np.float64)
    _batchnorm.forward(n, c, h * w, x.reshape(-1), gamma, beta, eps, use_batch_stats, momentum, running_mean,
                       running_var, mean, invstd, y.reshape(-1), get_num_threads())
    return y, mean, invstd


def batch_norm2d_backward_unchecked(grad_out, x, gamma, mean, invstd, batch_stats, compute_grad_x=True):
    """(grad_x or None, grad_gamma, grad_beta) of batch_norm2d_unchecked; batch_stats says whether
    the forward used the batch's statistics (whose dependence on x then enters grad_x)."""
    n, c, h, w = x.shape
    grad_x = _memory.empty(x.shape, dtype=x.dtype) if compute_grad_x else None
    grad_gamma = np.empty(c, x.dtype)
    grad_beta = np.empty(c, x.dtype)
    _batchnorm.backward(n, c, h * w, grad_out.reshape(-1), x.reshape(-1), gamma, mean, invstd, batch_stats,
                        None if grad_x is None else grad_x.reshape(-1), grad_gamma, grad_beta, get_num_threads())
    return grad_x, grad_gamma, grad_beta
