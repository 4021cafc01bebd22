"""cconv.layers: the building blocks of a Sequential or graph Model.

    from cconv.layers import Conv2D, MaxPool2D, Flatten, Dense, ReLU

Conv2D, Dense and the pooling layers run on the C kernels (cconv.functional); BatchNorm2D,
Dropout and the activations are vectorised NumPy. Every layer has forward / backward,
`params` / `grads` dicts of NumPy arrays, and train() / eval() modes.
"""
from cconv.layers.activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from cconv.layers.base import Layer
from cconv.layers.conv import Conv2D
from cconv.layers.dense import Dense, Flatten
from cconv.layers.merge import Add, Concatenate, Merge
from cconv.layers.pooling import AvgPool2D, GlobalAvgPool2D, LPPool2D, MaxPool2D
from cconv.layers.regularization import BatchNorm2D, Dropout
from cconv.layers.residual import Residual

__all__ = ["Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "LPPool2D", "GlobalAvgPool2D", "Dense",
           "Flatten", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Dropout", "BatchNorm2D", "Residual",
           "Add", "Concatenate", "Merge",
           "LAYER_CLASSES", "layer_to_json", "layer_from_json"]

# The classes a saved model may name; load_model refuses anything else.
LAYER_CLASSES = {cls.__name__: cls for cls in (
    Conv2D, MaxPool2D, AvgPool2D, LPPool2D, GlobalAvgPool2D, Dense, Flatten, ReLU, LeakyReLU,
    Sigmoid, Tanh, Softmax, Dropout, BatchNorm2D, Residual, Add, Concatenate)}


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
