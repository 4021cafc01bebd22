"""cconv.functional: the low-level operators, NCHW, float32 or float64, PyTorch semantics.

    from cconv import functional as F
    y = F.conv2d(x, weight, bias, stride=1, padding='same')

Activations and the loss for hand-written loops: relu, softmax, log_softmax, cross_entropy, each
with its *_backward.
"""
from cconv.functional.activation import (cross_entropy, cross_entropy_backward, log_softmax,
                                         log_softmax_backward, relu, relu_backward, softmax,
                                         softmax_backward)
from cconv.functional.conv import (ALGORITHMS, conv2d, conv2d_backward, conv2d_backward_unchecked,
                                   conv2d_geometry, conv2d_grad_input_unchecked, conv2d_grad_weight_unchecked,
                                   conv2d_unchecked, conv_algorithms)
from cconv.functional.dense import dense, dense_backward, dense_backward_unchecked, dense_unchecked
from cconv.functional.pool import (avg_pool2d, avg_pool2d_backward, lp_pool2d, lp_pool2d_backward,
                                   max_pool2d, max_pool2d_backward, pool2d_backward_unchecked,
                                   pool2d_geometry, pool2d_unchecked)

__all__ = ["conv2d", "conv2d_backward", "conv_algorithms", "ALGORITHMS", "dense", "dense_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward", "lp_pool2d", "lp_pool2d_backward",
           "relu", "relu_backward", "softmax", "softmax_backward", "log_softmax",
           "log_softmax_backward", "cross_entropy", "cross_entropy_backward",
           # the unchecked entries, for callers that checked their arrays already (the layers)
           "conv2d_geometry", "conv2d_unchecked", "conv2d_backward_unchecked", "conv2d_grad_input_unchecked",
           "conv2d_grad_weight_unchecked", "dense_unchecked",
           "dense_backward_unchecked", "pool2d_geometry", "pool2d_unchecked", "pool2d_backward_unchecked"]
