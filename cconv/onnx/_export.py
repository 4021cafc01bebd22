"""Export of cconv models to ONNX: a table of converters, one per layer class (EXPORTERS).

A converter takes the graph being written, a built layer and the name of its input tensor, adds
the layer's nodes and initializers, and returns the name of its output tensor. Fused activations
become separate nodes. Where an ONNX op's semantics differ from cconv's (pooling windows that
ceil_mode clips at the input's edge, for one) the converter writes ops that compute exactly what
cconv computes, or refuses with a ValueError: an exported model never computes something else.
Weights are written as float32 initializers; the batch axis is dynamic ("N").
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import cconv
from cconv import layers as L
from cconv._args import as_int, conv_padding, pool_out_size
from cconv._io import write_atomically
from cconv._paths import naming_path
from cconv.layers.activations import get_activation

DEFAULT_OPSET = 18
MIN_OPSET = 13  # Softmax over one axis, Clip's bounds as inputs, Dropout's ratio as an input
MAX_MODEL_BYTES = 2**31 - 1  # protobuf's limit for one message


class GraphBuilder:
    """The nodes and initializers of the graph being written, with unique tensor names."""

    def __init__(self, opset):
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self._taken = set()

    def fresh(self, base):
        """`base`, or `base_<n>` when that is taken, reserved for one tensor."""
        name, count = base, 1
        while name in self._taken:
            count += 1
            name = f"{base}_{count}"
        self._taken.add(name)
        return name

    def constant(self, base, array, dtype=np.float32):
        """An initializer holding `array` (as `dtype`); returns its name."""
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.array(array, dtype=dtype, order="C"), name))
        return name

    def node(self, op, inputs, base, **attributes):
        """A node of op type `op` reading `inputs`; returns the name of its one output."""
        output = self.fresh(base)
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    def rename_output(self, tensor, new_name):
        """Give the tensor that the last node writes the name `new_name` (the graph's output)."""
        node = self.nodes[-1]
        if node.output[0] != tensor:
            raise AssertionError("the graph output must be the last node's output")
        node.output[0] = new_name
        node.name = new_name
        self._taken.add(new_name)


# -- activations ---------------------------------------------------------------------------------

def _export_relu(g, layer, x, base):
    return g.node("Relu", [x], base)


def _export_leaky_relu(g, layer, x, base):
    return g.node("LeakyRelu", [x], base, alpha=float(layer.negative_slope))


def _export_sigmoid(g, layer, x, base):
    return g.node("Sigmoid", [x], base)


def _export_tanh(g, layer, x, base):
    return g.node("Tanh", [x], base)


def _export_softmax(g, layer, x, base):
    return g.node("Softmax", [x], base, axis=1)  # cconv's softmax runs over axis 1


def _export_relu6(g, layer, x, base):
    low = g.constant(f"{base}.min", np.float32(0))
    high = g.constant(f"{base}.max", np.float32(6))
    return g.node("Clip", [x, low, high], base)


def _export_silu(g, layer, x, base):
    gate = g.node("Sigmoid", [x], f"{base}/sigmoid")
    return g.node("Mul", [x, gate], base)


def _export_hardswish(g, layer, x, base):
    _require_opset(g, 14, "HardSwish", layer)
    return g.node("HardSwish", [x], base)


def _export_gelu(g, layer, x, base):
    _require_opset(g, 20, "Gelu", layer)
    approximate = layer.get_config().get("approximate", "none")
    return g.node("Gelu", [x], base, approximate=approximate)


def _export_elu(g, layer, x, base):
    return g.node("Elu", [x], base, alpha=float(layer.get_config().get("alpha", 1.0)))


def _require_opset(g, opset, op, layer):
    if g.opset < opset:
        raise ValueError(f"{layer.describe()}: the ONNX op {op} needs opset >= {opset}, exporting "
                         f"at opset {g.opset}; pass opset={opset} (or newer) to cconv.onnx.export")


def _activation(g, name, x, base):
    """The nodes of the activation `name` ('relu', ...; None: none) applied to x."""
    if name is None:
        return x
    return export_layer(g, get_activation(name), x, f"{base}/{name}")


# -- kernels ---------------------------------------------------------------------------------------

def _conv_pads(layer, padding):
    """ONNX's pads [top, left, bottom, right] of a conv-like layer for its built input shape."""
    _, h, w = layer.input_shape
    (top, bottom), (left, right) = conv_padding(padding, (h, w), tuple(layer.kernel_size),
                                                tuple(layer.stride), tuple(layer.dilation))
    return [top, left, bottom, right]


def _export_conv2d(g, layer, x, base):
    inputs = [x, g.constant(f"{base}.weight", layer.params["weight"])]
    if layer.use_bias:
        inputs.append(g.constant(f"{base}.bias", layer.params["bias"]))
    y = g.node("Conv", inputs, base, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
               pads=_conv_pads(layer, layer.padding), dilations=list(layer.dilation), group=layer.groups)
    return _activation(g, layer.activation, y, base)


def _export_depthwise_conv2d(g, layer, x, base):
    inputs = [x, g.constant(f"{base}.weight", layer.params["weight"])]
    if layer.use_bias:
        inputs.append(g.constant(f"{base}.bias", layer.params["bias"]))
    y = g.node("Conv", inputs, base, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
               pads=_conv_pads(layer, layer.padding), dilations=list(layer.dilation),
               group=layer.input_shape[0])
    return _activation(g, layer.activation, y, base)


def _export_separable_conv2d(g, layer, x, base):
    depthwise = g.node("Conv", [x, g.constant(f"{base}.depthwise_weight", layer.params["depthwise_weight"])],
                       f"{base}/depthwise", kernel_shape=list(layer.kernel_size),
                       strides=list(layer.stride), pads=_conv_pads(layer, layer.padding),
                       dilations=list(layer.dilation), group=layer.input_shape[0])
    inputs = [depthwise, g.constant(f"{base}.pointwise_weight", layer.params["pointwise_weight"])]
    if layer.use_bias:
        inputs.append(g.constant(f"{base}.bias", layer.params["bias"]))
    y = g.node("Conv", inputs, base, dilations=[1, 1], group=1, kernel_shape=[1, 1], pads=[0, 0, 0, 0],
               strides=[1, 1])  # as Conv2D's export writes it, so that a round trip gives the same graph
    return _activation(g, layer.activation, y, base)


def _export_conv2d_transpose(g, layer, x, base):
    padding = layer.get_config().get("padding", 0)
    if isinstance(padding, str) and padding.lower() != "valid":
        raise ValueError(f"{layer.describe()}: padding={padding!r} has no exact ONNX ConvTranspose "
                         f"form here; give the padding as numbers")
    (top, bottom), (left, right) = conv_padding(padding if not isinstance(padding, str) else 0,
                                                (1, 1), (1, 1), (1, 1), (1, 1))
    output_padding = layer.get_config().get("output_padding", 0)
    output_padding = [output_padding] * 2 if isinstance(output_padding, int) else list(output_padding)
    k, s, d = tuple(layer.kernel_size), tuple(layer.stride), tuple(layer.dilation)
    _, h, w = layer.input_shape
    expected = tuple((size - 1) * s[i] - pads[0] - pads[1] + d[i] * (k[i] - 1) + output_padding[i] + 1
                     for i, (size, pads) in enumerate(((h, (top, bottom)), (w, (left, right)))))
    if expected != tuple(layer.output_shape[1:]):
        raise ValueError(f"{layer.describe()}: its output {layer.output_shape} is not what ONNX's "
                         f"ConvTranspose computes for these arguments {expected}; cannot export exactly")
    inputs = [x, g.constant(f"{base}.weight", layer.params["weight"])]
    if layer.use_bias:
        inputs.append(g.constant(f"{base}.bias", layer.params["bias"]))
    y = g.node("ConvTranspose", inputs, base, kernel_shape=list(k), strides=list(s),
               pads=[top, left, bottom, right], dilations=list(d), output_padding=output_padding)
    return _activation(g, layer.activation, y, base)


def _export_dense(g, layer, x, base):
    inputs = [x, g.constant(f"{base}.weight", layer.params["weight"])]  # (in, out): no transpose
    if layer.use_bias:
        inputs.append(g.constant(f"{base}.bias", layer.params["bias"]))
    y = g.node("Gemm", inputs, base)
    return _activation(g, layer.activation, y, base)


# -- pooling ---------------------------------------------------------------------------------------

def _pool_axis(size, kernel, stride, pad, ceil_mode):
    """(output size, pad after the input) for one axis: the ONNX pads that give cconv's (and
    PyTorch's) output size with ceil_mode=0, where every window is what cconv's is. The pad after
    is `pad` unless ceil_mode adds windows that run past the padded input; then it is just large
    enough for the last of those (always less than the kernel)."""
    out = pool_out_size(size, kernel, stride, pad, ceil_mode, "axis")
    if (size + 2 * pad - kernel) // stride + 1 == out:
        return out, pad
    return out, (out - 1) * stride + kernel - size - pad


def _pool_geometry(layer, padding):
    """(pads after [bottom, right], whether the windows match a symmetric ceil_mode=0 pooling)."""
    _, h, w = layer.input_shape
    after = [_pool_axis(size, k, s, p, layer.ceil_mode)[1]
             for size, k, s, p in zip((h, w), layer.kernel_size, layer.stride, padding)]
    return after, after == list(padding)


def _export_max_pool(g, layer, x, base):
    after, _ = _pool_geometry(layer, layer.padding)
    return g.node("MaxPool", [x], base, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                  pads=list(layer.padding) + after)


def _export_avg_pool(g, layer, x, base):
    after, symmetric = _pool_geometry(layer, layer.padding)
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride))
    padded = any(layer.padding)
    if not layer.count_include_pad or not padded:
        # without padding, cconv divides a clipped window by its real elements, as cip=0 does
        return g.node("AveragePool", [x], base, pads=list(layer.padding) + after,
                      count_include_pad=0, **attrs)
    if symmetric:
        return g.node("AveragePool", [x], base, pads=list(layer.padding) * 2, count_include_pad=1, **attrs)
    # ceil_mode windows that run past the padding: cconv counts the padding but not the overhang,
    # which ONNX's count_include_pad cannot say; zero-pad explicitly and count real elements
    ph, pw = layer.padding
    pads = g.constant(f"{base}.pads", [0, 0, ph, pw, 0, 0, ph, pw], np.int64)
    padded_x = g.node("Pad", [x, pads], f"{base}/pad", mode="constant")
    return g.node("AveragePool", [padded_x], base, pads=[0, 0, after[0] - ph, after[1] - pw],
                  count_include_pad=0, **attrs)


def _export_lp_pool(g, layer, x, base):
    after, symmetric = _pool_geometry(layer, (0, 0))
    p = layer.norm_type
    attrs = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride))
    if symmetric and p == int(p):
        return g.node("LpPool", [x], base, p=int(p), pads=[0, 0, 0, 0], **attrs)
    # a window clipped by ceil_mode is scaled up to the full window (cconv and PyTorch), which
    # LpPool does not do; a non-integer p is no LpPool attribute: compute the formula itself
    powered = g.node("Pow", [x, g.constant(f"{base}.p", np.float32(p))], f"{base}/pow")
    mean = g.node("AveragePool", [powered], f"{base}/mean", pads=[0, 0] + after, count_include_pad=0, **attrs)
    window = layer.kernel_size[0] * layer.kernel_size[1]
    total = g.node("Mul", [mean, g.constant(f"{base}.window", np.float32(window))], f"{base}/sum")
    return g.node("Pow", [total, g.constant(f"{base}.inverse_p", np.float32(1.0 / p))], base)


def _export_global_avg_pool(g, layer, x, base):
    pooled = g.node("GlobalAveragePool", [x], f"{base}/pool")
    return g.node("Flatten", [pooled], base, axis=1)


def _export_global_max_pool(g, layer, x, base):
    pooled = g.node("GlobalMaxPool", [x], f"{base}/pool")
    return g.node("Flatten", [pooled], base, axis=1)


# -- shape and regularisation ----------------------------------------------------------------------

def _export_flatten(g, layer, x, base):
    return g.node("Flatten", [x], base, axis=1)


def _export_dropout(g, layer, x, base):
    return g.node("Dropout", [x, g.constant(f"{base}.ratio", np.float32(layer.rate))], base)


def _export_batch_norm(g, layer, x, base):
    inputs = [x] + [g.constant(f"{base}.{key}", value) for key, value in
                    (("gamma", layer.params["gamma"]), ("beta", layer.params["beta"]),
                     ("running_mean", layer.buffers["running_mean"]),
                     ("running_var", layer.buffers["running_var"]))]
    # ONNX's momentum weighs the running statistic, cconv's (PyTorch's) the batch statistic
    return g.node("BatchNormalization", inputs, base, epsilon=layer.eps, momentum=1.0 - layer.momentum)


def _export_zero_padding(g, layer, x, base):
    (top, bottom), (left, right) = conv_padding(layer.get_config()["padding"], (1, 1), (1, 1), (1, 1), (1, 1))
    c, h, w = layer.input_shape
    if tuple(layer.output_shape) != (c, h + top + bottom, w + left + right):
        raise ValueError(f"{layer.describe()}: cannot read its padding for an exact export")
    pads = g.constant(f"{base}.pads", [0, 0, top, left, 0, 0, bottom, right], np.int64)
    return g.node("Pad", [x, pads], base, mode="constant")


def _export_upsampling(g, layer, x, base):
    c, h, w = layer.input_shape
    _, out_h, out_w = layer.output_shape
    if out_h % h or out_w % w:
        raise ValueError(f"{layer.describe()}: output {layer.output_shape} is no integer scaling of "
                         f"{layer.input_shape}")
    scales = g.constant(f"{base}.scales", [1, 1, out_h // h, out_w // w], np.float32)
    interpolation = layer.get_config().get("interpolation", "nearest")
    if interpolation == "nearest":  # output pixel i reads input pixel floor(i / scale), as PyTorch
        return g.node("Resize", [x, "", scales], base, mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    if interpolation == "bilinear":  # PyTorch's align_corners=False
        return g.node("Resize", [x, "", scales], base, mode="linear",
                      coordinate_transformation_mode="pytorch_half_pixel")
    raise ValueError(f"{layer.describe()}: no exact ONNX Resize for interpolation={interpolation!r}")


def _export_residual(g, layer, x, base):
    inner = x
    for item in layer.layers:
        inner = export_layer(g, item, inner)
    shortcut = x
    for item in layer.shortcut:
        shortcut = export_layer(g, item, shortcut)
    total = g.node("Add", [inner, shortcut], f"{base}/add" if layer.activation else base)
    return _activation(g, layer.activation, total, base)


EXPORTERS = {
    L.Conv2D: _export_conv2d, L.Dense: _export_dense, L.Flatten: _export_flatten,
    L.MaxPool2D: _export_max_pool, L.AvgPool2D: _export_avg_pool, L.LPPool2D: _export_lp_pool,
    L.GlobalAvgPool2D: _export_global_avg_pool, L.ReLU: _export_relu,
    L.LeakyReLU: _export_leaky_relu, L.Sigmoid: _export_sigmoid, L.Tanh: _export_tanh,
    L.Softmax: _export_softmax, L.Dropout: _export_dropout, L.BatchNorm2D: _export_batch_norm,
    L.Residual: _export_residual,
}

# The layers of cconv.layers that not every cconv has: registered only where the class exists.
OPTIONAL_EXPORTERS = {
    "DepthwiseConv2D": _export_depthwise_conv2d, "SeparableConv2D": _export_separable_conv2d,
    "Conv2DTranspose": _export_conv2d_transpose, "UpSampling2D": _export_upsampling,
    "ZeroPadding2D": _export_zero_padding, "GlobalMaxPool2D": _export_global_max_pool,
    "ReLU6": _export_relu6, "SiLU": _export_silu, "Hardswish": _export_hardswish,
    "GELU": _export_gelu, "ELU": _export_elu,
}
for _name, _converter in OPTIONAL_EXPORTERS.items():
    if isinstance(getattr(L, _name, None), type):
        EXPORTERS[getattr(L, _name)] = _converter


def export_layer(g, layer, x, base=None):
    """Add `layer`'s nodes reading tensor x to g; returns its output tensor's name."""
    converter = EXPORTERS.get(type(layer))
    if converter is None:
        known = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
        raise ValueError(f"cannot export {layer.describe()} to ONNX: no converter for "
                         f"{type(layer).__name__} (exported layers: {known})")
    return converter(g, layer, x, base or layer.name or type(layer).__name__.lower())


# -- graph models (cconv.Model) --------------------------------------------------------------------

def _export_merge(g, layer, inputs, base):
    if type(layer).__name__ == "Add":
        return g.node("Add", inputs, base)
    axis = layer.get_config().get("axis", 1)
    if axis not in (1, -3):
        raise ValueError(f"{layer.describe()}: only channel concatenation (axis=1) is exported")
    return g.node("Concat", inputs, base, axis=1)


def _export_graph_model(g, model, x):
    """The nodes of a functional cconv.Model: its layers in the order they run, each reading the
    tensors its node names. Needs the model's `graph_nodes()`: (layer, input keys, output key)
    tuples with the model input's key first, as cconv.graph records them."""
    nodes, input_key, output_key = model.graph_nodes()
    tensors = {input_key: x}
    for layer, inputs, output in nodes:
        names = [tensors[key] for key in inputs]
        if type(layer).__name__ in ("Add", "Concatenate"):
            tensors[output] = _export_merge(g, layer, names, layer.name)
        else:
            tensors[output] = export_layer(g, layer, names[0])
    return tensors[output_key]


# -- the model -------------------------------------------------------------------------------------

def _value_info(name, shape):
    dims = ["N"] + [int(d) for d in shape]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def export(model, path, opset=DEFAULT_OPSET):
    """Write `model` (a built cconv.Sequential or cconv.Model) to `path` as an ONNX model.

    The graph has one input "input" of shape (N,) + the model's input shape (N dynamic; (N, H,
    W, C) for a channels_last model, which the graph transposes to NCHW first) and one output
    "output"; weights are float32 initializers; the model's name and the cconv version are in
    the metadata. `opset`: the ONNX opset to target, 13 or newer (default 18; GELU needs 20).
    onnx.checker validates the model before it is written (atomically). Returns the ModelProto.

    Raises ValueError for a layer with no exact ONNX form (the message names it), RuntimeError
    for an unbuilt model.
    """
    opset = as_int(opset, "opset", MIN_OPSET)
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"opset {opset} is newer than the installed onnx supports ({newest})")
    if not getattr(model, "built", False):
        raise RuntimeError("export needs a built model: pass input_shape to the model or run it once")
    g = GraphBuilder(opset)
    g._taken.update(("input", "output"))
    x = "input"
    input_shape = tuple(model.input_shape)
    channels_last = getattr(model, "data_format", "channels_first") == "channels_last" and len(input_shape) > 1
    declared = input_shape[1:] + input_shape[:1] if channels_last else input_shape
    if channels_last:
        x = g.node("Transpose", [x], "input_nchw", perm=[0, len(input_shape)] + list(range(1, len(input_shape))))
    if isinstance(model, cconv.Sequential):
        for layer in model.layers:
            x = export_layer(g, layer, x)
    elif hasattr(model, "graph_nodes"):
        x = _export_graph_model(g, model, x)
    else:
        raise TypeError(f"cannot export a {type(model).__name__}: cconv.onnx.export takes a "
                        f"cconv.Sequential or a cconv.Model")
    if x == "input":
        x = g.node("Identity", [x], "identity")
    g.rename_output(x, "output")

    graph = helper.make_graph(g.nodes, model.name, [_value_info("input", declared)],
                              [_value_info("output", model.output_shape)], g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="cconv",
                              producer_version=cconv.__version__,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string=f"cconv model {model.name!r}")
    helper.set_model_props(proto, {"model_name": model.name, "cconv_version": cconv.__version__,
                                   "data_format": "channels_last" if channels_last else "channels_first"})
    if proto.ByteSize() > MAX_MODEL_BYTES:
        raise ValueError(f"the model's ONNX form is {proto.ByteSize():,} bytes, more than one ONNX "
                         f"file holds without external data ({MAX_MODEL_BYTES:,})")
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    with naming_path(path, "the ONNX file"):
        write_atomically(os.fspath(path), lambda f: f.write(data))
    return proto
