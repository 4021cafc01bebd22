"""Residual: y = activation(inner(x) + shortcut(x)), so ResNet blocks fit in a Sequential."""
from cconv.layers.activations import check_activation, get_activation
from cconv.layers.base import Layer, check_distinct


def _as_layer_list(layers, name):
    if isinstance(layers, Layer):
        return [layers]
    try:
        layers = list(layers)
    except TypeError:
        raise TypeError(f"{name} must be a Layer or a list of Layers, got {type(layers).__name__}") from None
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"{name} must hold Layers, got {type(layer).__name__}")
    return layers


class Residual(Layer):
    """Residual(layers, shortcut=None, activation=None)

    Adds the input (shortcut=None) or a projection of it (a layer or list of layers, e.g.
    Conv2D(64, 1, stride=2)) to the output of the inner layers; both paths must produce the
    same shape. `activation` (e.g. 'relu') is applied after the sum, as in ResNet.
    The inner layers' parameters appear in `params` as 'layers.<i>.<name>' and
    'shortcut.<i>.<name>'.
    """

    def __init__(self, layers, shortcut=None, activation=None, name=None):
        super().__init__(name)
        self.layers = _as_layer_list(layers, "layers")
        if not self.layers:
            raise ValueError("Residual needs at least one inner layer")
        self.shortcut = [] if shortcut is None else _as_layer_list(shortcut, "shortcut")
        check_distinct(self.sublayers(), "Residual")
        self.activation = check_activation(activation)
        self._act = get_activation(self.activation, inplace=True)

    def _paths(self):
        return (("layers", self.layers), ("shortcut", self.shortcut))

    def sublayers(self):
        return self.layers + self.shortcut

    def _merged(self, attribute):
        merged = {}
        for prefix, layers in self._paths():
            for i, layer in enumerate(layers):
                for key, value in getattr(layer, attribute).items():
                    merged[f"{prefix}.{i}.{key}"] = value
        return merged

    @property
    def params(self):
        return self._merged("params")

    @property
    def grads(self):
        return self._merged("grads")

    @property
    def buffers(self):
        return self._merged("buffers")

    def train(self, mode=True):
        super().train(mode)
        for layer in self.sublayers():
            layer.train(mode)
        return self

    def _build(self, input_shape, rng):
        shapes = {}
        for prefix, layers in self._paths():
            shape = input_shape
            for layer in layers:
                shape = layer.build(shape, self.dtype, rng)
            shapes[prefix] = shape
        if shapes["layers"] != shapes["shortcut"]:
            what = "the input" if not self.shortcut else "the shortcut"
            raise ValueError(f"{self.describe()}: the inner layers give shape {shapes['layers']} but "
                             f"{what} has shape {shapes['shortcut']}; they must match to be added")
        return shapes["layers"]

    def _forward(self, x):
        y = x
        for layer in self.layers:
            y = layer.forward_unchecked(y)
        s = x
        for layer in self.shortcut:
            s = layer.forward_unchecked(s)
        y = y + s
        return y if self._act is None else self._act._forward(y)

    def _backward(self, grad_out):
        if self._act is not None:
            grad_out = self._act._backward(grad_out)
        g = grad_out
        for layer in reversed(self.layers):
            g = layer.backward_unchecked(g)
        s = grad_out
        for layer in reversed(self.shortcut):
            s = layer.backward_unchecked(s)
        return g + s

    def get_config(self):
        from cconv.layers import layer_to_json  # the registry lives in the package __init__
        return {"layers": [layer_to_json(layer) for layer in self.layers],
                "shortcut": [layer_to_json(layer) for layer in self.shortcut] or None,
                "activation": self.activation, "name": self.name}

    @classmethod
    def from_config(cls, config):
        from cconv.layers import layer_from_json
        config = dict(config)
        config["layers"] = [layer_from_json(item) for item in config.get("layers") or []]
        if config.get("shortcut") is not None:
            config["shortcut"] = [layer_from_json(item) for item in config["shortcut"]]
        return cls(**config)

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        short = ", ".join(repr(layer) for layer in self.shortcut)
        return f"Residual([{inner}], shortcut={'[' + short + ']' if short else None}, activation={self.activation!r})"
