"""cconv.layers: the building blocks of a Sequential or graph Model.

    from cconv.layers import Conv2D, MaxPool2D, Flatten, Dense, ReLU

Convolution: Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose. Pooling: MaxPool2D,
AvgPool2D, LPPool2D, GlobalAvgPool2D, GlobalMaxPool2D. Dense, Flatten. Resizing: UpSampling2D,
ZeroPadding2D. Activations: ReLU, ReLU6, LeakyReLU, ELU, Sigmoid, Tanh, SiLU (= Swish), Hardswish,
GELU, Softmax. Normalisation and regularisation: BatchNorm2D, Dropout. Residual (ResNet blocks).

The convolution, dense and pooling layers run on the C kernels (cconv.functional), as do
BatchNorm2D and the exact GELU; Dropout, the resizing layers and the other activations are
vectorised NumPy. Every layer has forward / backward, `params` / `grads` dicts of NumPy arrays,
and train() / eval() modes.
"""
from cconv.layers.activations import (ELU, GELU, Hardswish, LeakyReLU, ReLU, ReLU6, Sigmoid, SiLU, Softmax,
                                      Swish, Tanh)
from cconv.layers.base import Layer
from cconv.layers.conv import Conv2D, DepthwiseConv2D, SeparableConv2D
from cconv.layers.conv_transpose import Conv2DTranspose
from cconv.layers.dense import Dense, Flatten
from cconv.layers.merge import Add, Concatenate, Merge
from cconv.layers.pooling import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, LPPool2D, MaxPool2D
from cconv.layers.regularization import BatchNorm2D, Dropout
from cconv.layers.reshaping import UpSampling2D, ZeroPadding2D
from cconv.layers.residual import Residual

__all__ = ["Layer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "MaxPool2D", "AvgPool2D",
           "LPPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "Dense", "Flatten", "UpSampling2D", "ZeroPadding2D",
           "ReLU", "ReLU6", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "SiLU", "Swish", "Hardswish", "GELU", "Softmax",
           "Dropout", "BatchNorm2D", "Residual", "Add", "Concatenate", "Merge", "LAYER_CLASSES", "layer_to_json",
           "layer_from_json"]

# The classes a saved model may name; load_model refuses anything else.
LAYER_CLASSES = {cls.__name__: cls for cls in (
    Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, MaxPool2D, AvgPool2D, LPPool2D, GlobalAvgPool2D,
    GlobalMaxPool2D, Dense, Flatten, UpSampling2D, ZeroPadding2D, ReLU, ReLU6, LeakyReLU, ELU, Sigmoid, Tanh, SiLU,
    Hardswish, GELU, Softmax, Dropout, BatchNorm2D, Residual, Add, Concatenate)}


def layer_to_json(layer):
    """{'class': name, 'config': constructor arguments} for a built-in layer."""
    name = type(layer).__name__
    if LAYER_CLASSES.get(name) is not type(layer):
        raise TypeError(f"cannot serialise {name}: only the built-in cconv layers can be saved")
    return {"class": name, "config": layer.get_config()}


def layer_from_json(item):
    """A new (unbuilt) layer from layer_to_json's output; ValueError for anything malformed."""
    if not isinstance(item, dict) or not isinstance(item.get("class"), str) \
            or not isinstance(item.get("config"), dict):
        raise ValueError(f"a layer entry must be {{'class': str, 'config': dict}}, got {item!r:.200}")
    cls = LAYER_CLASSES.get(item["class"])
    if cls is None:
        raise ValueError(f"unknown layer class {item['class']!r:.100}; known: {', '.join(LAYER_CLASSES)}")
    try:
        return cls.from_config(item["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid configuration for layer {item['class']}: {exc}") from None
