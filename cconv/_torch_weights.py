"""Copying a PyTorch state_dict into a cconv model whose layers with parameters correspond one to
one, in order, to the torch modules with parameters (Conv2d, Linear, BatchNorm2d, ...).

NumPy only: a tensor is read through its .detach().cpu().numpy(), any other value through
np.asarray. Every key and shape is checked before anything is copied.
"""
import numpy as np

from cconv import layers as L
from cconv.layers.base import walk_layers


def _spec(layer):
    """The torch modules that `layer` corresponds to: a list with one list per module of
    (torch parameter name, cconv array, whether torch stores it transposed)."""
    params, buffers = layer.params, layer.buffers
    name = type(layer).__name__
    if isinstance(layer, L.Dense):
        return [[("weight", params["weight"], True)] + ([("bias", params["bias"], False)] if "bias" in params else [])]
    if isinstance(layer, L.BatchNorm2D):
        return [[("weight", params["gamma"], False), ("bias", params["beta"], False),
                 ("running_mean", buffers["running_mean"], False), ("running_var", buffers["running_var"], False)]]
    if name == "SeparableConv2D":  # torch: a depthwise Conv2d, then a 1x1 Conv2d
        return [[("weight", params["depthwise_weight"], False)],
                [("weight", params["pointwise_weight"], False)] + ([("bias", params["bias"], False)] if "bias" in params else [])]
    if set(params) <= {"weight", "bias"} and not buffers:  # Conv2D, DepthwiseConv2D, Conv2DTranspose
        return [[(key, params[key], False) for key in ("weight", "bias") if key in params]]
    raise ValueError(f"{layer.describe()} has parameters {sorted(params)} with no PyTorch counterpart "
                     f"that load_torch_state_dict knows")


def _torch_modules(state_dict):
    """[(module prefix, {parameter name: (key, value)})] in the state dict's order; BatchNorm's
    num_batches_tracked counters are skipped (cconv keeps none)."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be a mapping such as torch_model.state_dict(), got "
                        f"{type(state_dict).__name__}")
    modules = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict keys must be strings, got {key!r}")
        prefix, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        modules.setdefault(prefix, {})[leaf] = (key, value)
    return list(modules.items())


def _as_array(value, key):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception:
        raise TypeError(f"{key!r}: expected a tensor or array, got {type(value).__name__}") from None
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{key!r}: expected real numbers, got dtype {array.dtype}")
    return array


def load_torch_state_dict(layers, state_dict, dtype):
    """Copy `state_dict` into the parameters of `layers` (see Sequential.load_torch_state_dict)."""
    targets = [(layer, module) for layer in walk_layers(layers) if not layer.sublayers()
               and (layer.params or layer.buffers) for module in _spec(layer)]
    modules = _torch_modules(state_dict)
    copies = []
    for index, (layer, expected) in enumerate(targets):
        if index >= len(modules):
            raise ValueError(f"the state dict has no more modules, but {layer.describe()} needs "
                             f"{', '.join(name for name, _, _ in expected)}")
        prefix, given = modules[index]
        dotted = f"{prefix}." if prefix else ""
        names = [name for name, _, _ in expected]
        for leaf, (key, _) in given.items():
            if leaf not in names:
                raise ValueError(f"{key!r} has no counterpart in {layer.describe()}, which takes "
                                 f"{', '.join(dotted + n for n in names)}")
        for name, target, transposed in expected:
            if name not in given:
                raise ValueError(f"the state dict lacks {dotted + name!r} for {layer.describe()} "
                                 f"(module {prefix!r} has {', '.join(k for k, _ in given.values())})")
            key, value = given[name]
            array = _as_array(value, key)
            wanted = target.shape[::-1] if transposed else target.shape
            if array.shape != wanted:
                how = " (torch's (out, in) layout, transposed into cconv's (in, out))" if transposed else ""
                raise ValueError(f"{key!r} has shape {tuple(array.shape)} but {layer.describe()} "
                                 f"needs {tuple(wanted)}{how}")
            copies.append((target, array.T if transposed else array))
    if len(modules) > len(targets):
        prefix, given = modules[len(targets)]
        first = next(iter(given.values()))[0]
        raise ValueError(f"{first!r} (and {len(modules) - len(targets) - 1} more modules) has no "
                         f"layer left in the model to go to")
    for target, array in copies:
        np.copyto(target, np.asarray(array, dtype=dtype))
