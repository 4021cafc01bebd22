"""Inference with each BatchNorm2D folded into the convolution before it.

In eval mode a batch norm is a per-channel affine map, y = x * scale + shift, so a Conv2D (or
DepthwiseConv2D) without activation followed by a BatchNorm2D is one convolution with the weight
scaled per filter and the bias shifted; a ReLU right after the pair rides on that convolution's
output write, as Conv2D's own fused ReLU does. Sequential.predict runs its layers through
`inference_steps`, which folds the weights once per call.
"""
import numpy as np

from cconv import functional as F
from cconv.layers.activations import ReLU
from cconv.layers.conv import Conv2D
from cconv.layers.regularization import BatchNorm2D


class FoldedConvBatchNorm:
    """conv -> batch_norm (-> ReLU when relu) in eval mode, as one call of the convolution kernel
    with the batch norm folded into its weight and bias (computed in float64, stored in the
    convolution's dtype, when the object is made)."""

    def __init__(self, conv, batch_norm, relu=False):
        self.conv = conv
        scale, shift = batch_norm.folded_scale_shift()
        weight = conv.params["weight"]
        self.weight = np.ascontiguousarray(weight * scale[:, None, None, None], dtype=weight.dtype)
        bias = conv.params.get("bias")
        folded_bias = shift if bias is None else bias * scale + shift
        self.bias = np.ascontiguousarray(folded_bias, dtype=weight.dtype)
        self.activation = "relu" if relu else None

    def forward_unchecked(self, x):
        geometry, out_shape = self.conv._geometry(x.shape)
        return F.conv2d_unchecked(x, self.weight, self.bias, geometry, out_shape, self.activation)


def _foldable(conv, batch_norm):
    return (isinstance(conv, Conv2D) and conv.activation is None and isinstance(batch_norm, BatchNorm2D)
            and not batch_norm.training)


def inference_steps(layers):
    """The layers of a built model in eval mode as a list of objects with forward_unchecked:
    the layers themselves, except that each Conv2D / DepthwiseConv2D without activation followed
    by a BatchNorm2D (and a ReLU, if one comes next) becomes one FoldedConvBatchNorm."""
    steps, i = [], 0
    while i < len(layers):
        if i + 1 < len(layers) and _foldable(layers[i], layers[i + 1]):
            relu = i + 2 < len(layers) and type(layers[i + 2]) is ReLU
            steps.append(FoldedConvBatchNorm(layers[i], layers[i + 1], relu))
            i += 3 if relu else 2
        else:
            steps.append(layers[i])
            i += 1
    return steps
