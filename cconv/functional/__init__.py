"""cconv.functional: the low-level operators, NCHW, float32 or float64, PyTorch semantics.

    from cconv import functional as F
    y = F.conv2d(x, weight, bias, stride=1, padding='same')
"""
from cconv.functional.conv import conv2d, conv2d_backward
from cconv.functional.dense import dense, dense_backward
from cconv.functional.pool import (avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward,
                                   max_pool2d, max_pool2d_backward)

__all__ = ["conv2d", "conv2d_backward", "dense", "dense_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward", "lp_pool2d", "lp_pool2d_backward"]
