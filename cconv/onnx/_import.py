"""Loading ONNX models into cconv: the file is checked before anything large is allocated, then a
table of converters, one per ONNX op (IMPORTERS), turns the nodes into cconv layers.

Checks, each a ValueError naming what is wrong: the protobuf parses; the default-domain opset is
11 or newer; one graph input and one output; every node input is produced exactly once (by a
node, an initializer or the graph input); the nodes form no cycle; extra node outputs (a
Dropout's mask, a MaxPool's indices) are unused; every initializer's declared shape matches the
bytes it holds before it is decoded, so a small file cannot declare a huge array. External data
is read only from regular files inside the model's folder (no absolute paths, no '..', no links
out of it), and only the declared bytes.

A converter reads one node (and, for a few known patterns, the nodes that follow it when they
are its only consumers: Conv + Relu, MatMul + Add, GlobalAveragePool + Flatten, the
Pow-AveragePool-Mul-Pow form of an Lp pooling) and emits a layer with its weights, or an alias.
The layers are then assembled into a Sequential, where Add nodes that join a chain with a skip
become Residual blocks, or into a functional cconv.Model where the graph is no chain.
"""
import collections
import math
import os
import re

import numpy as np
import onnx
from onnx import TensorProto

import cconv
from cconv import layers as L
from cconv._args import MAX_DIM, pool_out_size
from cconv._io import _check_regular
from cconv.layers.base import ParamBudget

MIN_OPSET = 11

_DTYPES = {TensorProto.FLOAT: np.dtype("<f4"), TensorProto.DOUBLE: np.dtype("<f8"),
           TensorProto.INT64: np.dtype("<i8"), TensorProto.INT32: np.dtype("<i4")}
_TYPED_FIELDS = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data",
                 TensorProto.INT64: "int64_data", TensorProto.INT32: "int32_data"}
_MODEL_DTYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}


class _NotAChain(Exception):
    """The layers do not form a chain with residual blocks (they need a functional Model)."""


def _optional_layer(name):
    cls = getattr(L, name, None)
    return cls if isinstance(cls, type) else None


# -- reading and checking the file -----------------------------------------------------------------

class _Tensor:
    """An initializer or Constant value: its declared shape and dtype checked against the bytes
    it holds (external ones inside the model's folder); decoded only when a converter asks."""

    def __init__(self, proto, folder, where):
        self.proto, self.folder, self.where = proto, folder, where
        self.name = proto.name
        if proto.data_type not in _DTYPES:
            self.dtype = None  # refused when read
        else:
            self.dtype = _DTYPES[proto.data_type]
        dims = list(proto.dims)
        if any(d < 0 for d in dims):
            raise ValueError(f"{where} declares a negative dimension {dims}")
        self.shape = tuple(int(d) for d in dims)
        self.count = math.prod(self.shape)
        if proto.HasField("segment"):
            raise ValueError(f"{where} is a segmented tensor, which cconv does not read")
        if self.dtype is None:
            return
        nbytes = self.count * self.dtype.itemsize
        if proto.data_location == TensorProto.EXTERNAL:
            self._external_check(nbytes)
        elif proto.raw_data:
            if len(proto.raw_data) != nbytes:
                raise ValueError(f"{where} declares shape {self.shape} ({nbytes:,} bytes of "
                                 f"{self.dtype.name}) but holds {len(proto.raw_data):,} bytes")
        else:
            held = len(getattr(proto, _TYPED_FIELDS[proto.data_type]))
            if held != self.count:
                raise ValueError(f"{where} declares shape {self.shape} ({self.count:,} values) but "
                                 f"holds {held:,} values")

    def _external_check(self, nbytes):
        info = {entry.key: entry.value for entry in self.proto.external_data}
        location = info.get("location", "")
        parts = re.split(r"[\\/]", location)
        if not location or os.path.isabs(location) or re.match(r"^[A-Za-z]:", location) or ".." in parts:
            raise ValueError(f"{self.where}: its external data path {location!r} is not a file "
                             f"inside the model's folder; cconv reads external data only from there")
        folder = os.path.realpath(self.folder)
        path = os.path.realpath(os.path.join(folder, location))
        if os.path.commonpath([folder, path]) != folder:
            raise ValueError(f"{self.where}: its external data {location!r} links out of the "
                             f"model's folder; cconv reads external data only from there")
        try:
            offset = int(info.get("offset", "0"))
            length = int(info.get("length", str(nbytes)))
        except ValueError:
            raise ValueError(f"{self.where}: its external data offset / length are no numbers") from None
        if offset < 0 or length != nbytes:
            raise ValueError(f"{self.where} declares shape {self.shape} ({nbytes:,} bytes) but its "
                             f"external data has offset {offset} and length {length}")
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ValueError(f"{self.where}: its external data file {location!r} cannot be read "
                             f"({exc.strerror or exc})") from None
        _check_regular(mode, path, f"{self.where}: cannot read its external data")
        if offset + nbytes > os.path.getsize(path):
            raise ValueError(f"{self.where}: its external data file {location!r} is shorter than "
                             f"the {nbytes:,} bytes it declares at offset {offset}")
        self._external = (path, offset, nbytes)

    def value(self):
        """The tensor as a NumPy array (native byte order)."""
        if self.dtype is None:
            names = {v: k for k, v in TensorProto.DataType.items()}
            raise ValueError(f"{self.where} has data type {names.get(self.proto.data_type, self.proto.data_type)}; "
                             f"cconv reads FLOAT, DOUBLE, INT32 and INT64 tensors")
        if self.proto.data_location == TensorProto.EXTERNAL:
            path, offset, nbytes = self._external
            with open(path, "rb") as f:
                f.seek(offset)
                raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"{self.where}: its external data file ended early")
        elif self.proto.raw_data:
            raw = self.proto.raw_data
        else:
            field = getattr(self.proto, _TYPED_FIELDS[self.proto.data_type])
            return np.array(field, dtype=self.dtype.newbyteorder("=")).reshape(self.shape)
        return np.frombuffer(raw, dtype=self.dtype).astype(self.dtype.newbyteorder("=")).reshape(self.shape)


def _read_model(path):
    """The ModelProto in `path` (never loading external data by itself); OSError when the file
    system cannot give the file, ValueError when it is no ONNX model."""
    _check_regular(os.stat(path).st_mode, path, "cannot load ONNX model")
    with open(path, "rb") as f:
        data = f.read()
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and its relatives
        raise ValueError(f"cannot load ONNX model {path!r}: not an ONNX model file ({type(exc).__name__}: "
                         f"{exc})") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise ValueError(f"cannot load ONNX model {path!r}: it holds no graph with nodes")
    return proto


def _short(value):
    """A float32 value as the shortest decimal that rounds to it (0.1, not 0.100000001)."""
    return float(str(np.float32(value)))


def _attribute_value(attribute):
    """An attribute's value: str for bytes; a float attribute (stored as float32) as the shortest
    decimal that rounds to it, so that eps=1e-5 reads back as 1e-5 and not 9.99999974e-06."""
    value = onnx.helper.get_attribute_value(attribute)
    if attribute.type == onnx.AttributeProto.FLOAT:
        return _short(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value


class _Graph:
    """The checked graph: nodes in an order where every input comes first, constants, the one
    input and output, who produces and who reads each tensor."""

    def __init__(self, proto, folder):
        graph = proto.graph
        self.opset = None
        for entry in proto.opset_import:
            if entry.domain in ("", "ai.onnx"):
                self.opset = entry.version
        if self.opset is None:
            raise ValueError("the model imports no version of the default ONNX opset")
        if self.opset < MIN_OPSET:
            raise ValueError(f"the model uses opset {self.opset}; cconv.onnx.load reads opset "
                             f"{MIN_OPSET} or newer (convert it with onnx.version_converter)")
        if graph.sparse_initializer:
            raise ValueError("the model has sparse initializers, which cconv does not read")
        self.constants = {}
        for index, tensor in enumerate(graph.initializer):
            if tensor.name in self.constants:
                raise ValueError(f"two initializers are named {tensor.name!r}")
            self.constants[tensor.name] = _Tensor(tensor, folder, f"initializer {tensor.name!r}")
        inputs = [v for v in graph.input if v.name not in self.constants]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ValueError(f"cconv loads models with one input and one output; this one has "
                             f"{len(inputs)} inputs ({', '.join(v.name for v in inputs)}) and "
                             f"{len(graph.output)} outputs")
        self.input = inputs[0]
        self.output = graph.output[0].name
        self.nodes = []
        producers = {self.input.name: "the graph input"}
        producers.update({name: "an initializer" for name in self.constants})
        for index, node in enumerate(graph.node):
            label = f"node {node.name or index!r} ({node.op_type})"
            if node.domain not in ("", "ai.onnx"):
                raise ValueError(f"{label} is in the operator domain {node.domain!r}; cconv reads "
                                 f"standard ONNX ops only")
            if not node.output or not node.output[0]:
                raise ValueError(f"{label} has no output")
            for output in node.output:
                if output and output in producers:
                    raise ValueError(f"{label} writes {output!r}, which {producers[output]} already provides")
                if output:
                    producers[output] = label
            if node.op_type == "Constant":
                self.constants[node.output[0]] = self._constant_node(node, folder, label)
            else:
                self.nodes.append((node, label, {a.name: _attribute_value(a) for a in node.attribute}))
        for node, label, _ in self.nodes:
            for name in node.input:
                if name and name not in producers:
                    raise ValueError(f"{label} reads {name!r}, which no node, initializer or graph "
                                     f"input provides (a missing initializer?)")
        if self.output not in producers:
            raise ValueError(f"the graph output {self.output!r} is produced by no node")
        self._sort()
        self.consumers = {}
        for position, (node, _, _) in enumerate(self.nodes):
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(position)
        for node, label, _ in self.nodes:
            for output in node.output[1:]:
                if output and (output in self.consumers or output == self.output):
                    raise ValueError(f"{label}: its extra output {output!r} is used; cconv layers "
                                     f"give one output")

    @staticmethod
    def _constant_node(node, folder, label):
        attributes = {a.name: a for a in node.attribute}
        if "value" in attributes:
            return _Tensor(attributes["value"].t, folder, f"{label}'s value")
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attributes:
                array = np.asarray(onnx.helper.get_attribute_value(attributes[key]), dtype=dtype)
                return _Tensor(onnx.numpy_helper.from_array(array, node.output[0]), folder, label)
        raise ValueError(f"{label}: only numeric tensor constants are supported (attributes "
                         f"{', '.join(attributes)})")

    def _sort(self):
        """Order the nodes so that each comes after those that produce its inputs (Kahn's
        algorithm); a ValueError names the nodes of a cycle."""
        available = {self.input.name} | set(self.constants) | {""}
        waiting = {}
        ready = collections.deque()
        for position, (node, _, _) in enumerate(self.nodes):
            missing = {name for name in node.input if name not in available}
            if missing:
                waiting[position] = missing
            else:
                ready.append(position)
        readers = {}
        for position, missing in waiting.items():
            for name in missing:
                readers.setdefault(name, []).append(position)
        order = []
        while ready:
            position = ready.popleft()
            order.append(position)
            for output in self.nodes[position][0].output:
                for reader in readers.pop(output, []):
                    waiting[reader].discard(output)
                    if not waiting[reader]:
                        del waiting[reader]
                        ready.append(reader)
        if waiting:
            stuck = ", ".join(self.nodes[p][1] for p in sorted(waiting)[:5])
            raise ValueError(f"the graph has a cycle: {stuck} wait on each other's outputs")
        self.nodes = [self.nodes[p] for p in order]


# -- converting nodes into layers ------------------------------------------------------------------

class _LayerNode:
    """One layer of the loaded model (kind 'layer'), or an Add / Concat of tensors (kind 'add' /
    'concat'), with the weights to copy into it."""

    def __init__(self, kind, layer, inputs, output, weights, label):
        self.kind, self.layer, self.inputs, self.output = kind, layer, inputs, output
        self.weights, self.label = weights, label


_REQUIRED = object()


class _Converter:
    """The state of one load: the checked graph, the shape (without the batch axis) of every
    tensor computed so far, aliases (Identity), and the layers emitted."""

    def __init__(self, graph, dtype, input_name, input_shape, batch):
        self.graph, self.dtype, self.batch = graph, dtype, batch
        self.shapes = {input_name: input_shape}
        self.alias = {}
        self.claimed = set()
        self.pending_pads = {}
        self.layer_nodes = []

    # -- helpers for converters --
    def resolve(self, name):
        while name in self.alias:
            name = self.alias[name]
        return name

    def attrs(self, node, label, given, **known):
        """The node's attributes as a dict with `known`'s defaults; ValueError for an attribute
        cconv does not know, or a required one that is missing."""
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"{label}: attribute {unknown[0]!r} is not supported (supported: "
                             f"{', '.join(sorted(known)) or 'none'})")
        values = dict(known)
        values.update(given)
        for key, value in values.items():
            if value is _REQUIRED:
                raise ValueError(f"{label}: the attribute {key!r} is required")
        return values

    def data_input(self, node, label, index=0):
        """The resolved name of the node's data input `index` (computed from the model input)."""
        if index >= len(node.input) or not node.input[index]:
            raise ValueError(f"{label}: input {index} is missing")
        name = self.resolve(node.input[index])
        if name in self.pending_pads:
            raise ValueError(self.pending_pads[name][2])
        if name not in self.shapes:
            what = "a constant" if name in self.graph.constants else "not computed from the model input"
            raise ValueError(f"{label}: its input {name!r} is {what}; cconv layers take the data "
                             f"flowing from the model input there")
        return name

    def image_shape(self, label, name):
        shape = self.shapes[name]
        if len(shape) != 3:
            raise ValueError(f"{label}: expects an (N, C, H, W) input, got (N, {', '.join(map(str, shape))})")
        return shape

    def constant(self, node, label, index, what, optional=False):
        """The value of the node's constant input `index` (None when optional and absent)."""
        if index >= len(node.input) or not node.input[index]:
            if optional:
                return None
            raise ValueError(f"{label}: its {what} (input {index}) is missing")
        name = node.input[index]
        if name not in self.graph.constants:
            raise ValueError(f"{label}: its {what} {name!r} must be a constant (an initializer), "
                             f"not computed in the graph")
        return self.graph.constants[name].value()

    def sole_consumer(self, tensor, op_types):
        """(node, label, attributes) of the only node reading `tensor`, when its op type is one
        of `op_types` and it is not yet claimed, and the tensor is not the graph output."""
        readers = self.graph.consumers.get(tensor, [])
        if len(readers) != 1 or tensor == self.graph.output:
            return None
        node, label, given = self.graph.nodes[readers[0]]
        if node.op_type not in op_types or readers[0] in self.claimed:
            return None
        return readers[0], node, label, given

    def claim(self, position):
        self.claimed.add(position)

    def fused_relu(self, tensor):
        """(activation, output tensor): 'relu' and the Relu's output when the only reader of
        `tensor` is a Relu (fused into the layer), else (None, tensor)."""
        found = self.sole_consumer(tensor, ("Relu",))
        if found is None:
            return None, tensor
        position, node, _, _ = found
        self.claim(position)
        return "relu", node.output[0]

    def emit(self, layer, inputs, output, label, weights=None, kind="layer"):
        """Record a layer reading `inputs` and writing `output`; builds it once for its input
        shape (parameters from a budget of its weights' size) to learn its output shape and
        check the weights' shapes."""
        if kind == "layer":
            weights = {k: v for k, v in (weights or {}).items() if v is not None}
            budget = ParamBudget(sum(v.size for v in weights.values()) * np.dtype(self.dtype).itemsize)
            try:
                shape = layer.build(self.shapes[inputs[0]], self.dtype, budget)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{label}: {exc}") from None
            for key, value in weights.items():
                target = layer.params.get(key, layer.buffers.get(key))
                if target is None or target.shape != value.shape:
                    raise ValueError(f"{label}: its {key} has shape {value.shape}, the layer needs "
                                     f"{None if target is None else target.shape}")
        else:
            shapes = [self.shapes[name] for name in inputs]
            if kind == "add":
                if any(s != shapes[0] for s in shapes):
                    raise ValueError(f"{label}: adds tensors of shapes {shapes}; cconv adds equal shapes only")
                shape = shapes[0]
            else:
                if any(len(s) != 3 or s[1:] != shapes[0][1:] for s in shapes):
                    raise ValueError(f"{label}: concatenates {shapes}; cconv concatenates images "
                                     f"of one size along the channels")
                shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        if math.prod(shape) > MAX_DIM:
            raise ValueError(f"{label}: its output of shape {shape} holds more than {MAX_DIM} values per sample")
        self.shapes[output] = tuple(shape)
        self.layer_nodes.append(_LayerNode(kind, layer, list(inputs), output, weights or {}, label))

    def run(self):
        for position, (node, label, given) in enumerate(self.graph.nodes):
            if position in self.claimed:
                continue
            converter = IMPORTERS.get(node.op_type)
            if converter is None:
                raise ValueError(f"{label}: the op {node.op_type} is not supported; cconv.onnx.load "
                                 f"reads {', '.join(sorted(IMPORTERS))}")
            self.claim(position)
            converter(self, node, label, given)
        if self.pending_pads:
            raise ValueError(next(iter(self.pending_pads.values()))[2])
        return self.layer_nodes


# -- converters: convolution, dense -------------------------------------------------------------------

def _pairs(values, label, name, default, length=2):
    values = default if values is None else list(values)
    if len(values) != length or not all(isinstance(v, int) for v in values):
        raise ValueError(f"{label}: {name} must be {length} ints for a 2-D op, got {values}")
    return values


def _explicit_pads(cv, label, a, size, kernel, strides, dilations):
    """ONNX's [top, left, bottom, right] from pads / auto_pad."""
    auto_pad = a["auto_pad"]
    if auto_pad in ("NOTSET", ""):
        pads = _pairs(a["pads"], label, "pads", [0, 0, 0, 0], 4)
        if min(pads) < 0:
            raise ValueError(f"{label}: negative pads {pads} are not supported")
        return pads
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        before, after = [], []
        for n, k, s, d in zip(size, kernel, strides, dilations):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small = total // 2
            before.append(small if auto_pad == "SAME_UPPER" else total - small)
            after.append(total - before[-1])
        return before + after
    raise ValueError(f"{label}: auto_pad={auto_pad!r} is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER)")


def _import_conv(cv, node, label, given):
    a = cv.attrs(node, label, given, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                 pads=None, strides=None)
    x = cv.resolve(node.input[0]) if node.input else ""
    if x not in cv.pending_pads:
        x = cv.data_input(node, label)
    weight = cv.constant(node, label, 1, "weight")
    bias = cv.constant(node, label, 2, "bias", optional=True)
    if weight.ndim != 4:
        raise ValueError(f"{label}: only 2-D convolution is supported (4-D weights), got weight shape {weight.shape}")
    kernel = list(weight.shape[2:])
    if a["kernel_shape"] is not None and list(a["kernel_shape"]) != kernel:
        raise ValueError(f"{label}: kernel_shape {a['kernel_shape']} does not match the weight's {kernel}")
    strides = _pairs(a["strides"], label, "strides", [1, 1])
    dilations = _pairs(a["dilations"], label, "dilations", [1, 1])
    extra = [0, 0, 0, 0]
    if x in cv.pending_pads:  # a zero Pad before the convolution joins its padding
        x, extra, _ = cv.pending_pads.pop(x)
    c, h, w = cv.image_shape(label, x)
    padded = (h + extra[0] + extra[2], w + extra[1] + extra[3])
    pads = [p + e for p, e in zip(_explicit_pads(cv, label, a, padded, kernel, strides, dilations), extra)]
    filters = weight.shape[0]
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{label}: bias shape {bias.shape} does not match the {filters} filters")
    activation, output = cv.fused_relu(node.output[0])
    layer = L.Conv2D(filters, kernel, stride=strides, padding=((pads[0], pads[2]), (pads[1], pads[3])),
                     dilation=dilations, groups=a["group"], use_bias=bias is not None, activation=activation)
    cv.emit(layer, [x], output, label, {"weight": weight, "bias": bias})


def _import_conv_transpose(cv, node, label, given):
    cls = _optional_layer("Conv2DTranspose")
    a = cv.attrs(node, label, given, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                 output_padding=None, pads=None, strides=None)
    if cls is None:
        raise ValueError(f"{label}: ConvTranspose needs cconv.layers.Conv2DTranspose, which this cconv lacks")
    if a["group"] != 1 or a["auto_pad"] not in ("NOTSET", ""):
        raise ValueError(f"{label}: only group=1 and explicit pads are supported")
    x = cv.data_input(node, label)
    weight = cv.constant(node, label, 1, "weight")
    bias = cv.constant(node, label, 2, "bias", optional=True)
    if weight.ndim != 4:
        raise ValueError(f"{label}: only 2-D transposed convolution is supported, got weight shape {weight.shape}")
    pads = _pairs(a["pads"], label, "pads", [0, 0, 0, 0], 4)
    layer = cls(weight.shape[1], list(weight.shape[2:]), stride=_pairs(a["strides"], label, "strides", [1, 1]),
                padding=((pads[0], pads[2]), (pads[1], pads[3])),
                output_padding=_pairs(a["output_padding"], label, "output_padding", [0, 0]),
                dilation=_pairs(a["dilations"], label, "dilations", [1, 1]), use_bias=bias is not None)
    activation, output = cv.fused_relu(node.output[0])
    if activation:
        layer = cls(**dict(layer.get_config(), activation=activation))
    cv.emit(layer, [x], output, label, {"weight": weight, "bias": bias})


def _emit_dense(cv, label, x, weight, bias, output):
    activation, output = cv.fused_relu(output)
    layer = L.Dense(weight.shape[1], use_bias=bias is not None, activation=activation)
    cv.emit(layer, [x], output, label, {"weight": weight, "bias": bias})


def _bias_vector(value, units, label):
    """A bias constant broadcast along the batch: shape (), (1,), (units,) or (1, units)."""
    if value.size not in (1, units) or value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
        raise ValueError(f"{label}: the bias of shape {value.shape} does not broadcast to ({units},)")
    return np.broadcast_to(value.reshape(-1), (units,)).copy()


def _import_gemm(cv, node, label, given):
    a = cv.attrs(node, label, given, alpha=1.0, beta=1.0, transA=0, transB=0)
    if a["transA"]:
        raise ValueError(f"{label}: transA=1 is not supported (the data must be (N, features))")
    x = cv.data_input(node, label)
    weight = cv.constant(node, label, 1, "weight")
    if weight.ndim != 2:
        raise ValueError(f"{label}: the weight must be a matrix, got shape {weight.shape}")
    weight = weight.T if a["transB"] else weight
    weight = weight * weight.dtype.type(a["alpha"]) if a["alpha"] != 1 else weight
    bias = cv.constant(node, label, 2, "bias", optional=True)
    if bias is not None:
        bias = _bias_vector(bias, weight.shape[1], label) * bias.dtype.type(a["beta"])
    _emit_dense(cv, label, x, np.ascontiguousarray(weight), bias, node.output[0])


def _import_matmul(cv, node, label, given):
    cv.attrs(node, label, given)
    x = cv.data_input(node, label)
    weight = cv.constant(node, label, 1, "weight")
    if weight.ndim != 2 or len(cv.shapes[x]) != 1:
        raise ValueError(f"{label}: cconv reads MatMul of (N, features) data by a constant matrix "
                         f"(a Dense layer), got data (N, {cv.shapes[x]}) and a constant of shape {weight.shape}")
    bias, output = None, node.output[0]
    found = cv.sole_consumer(output, ("Add",))
    if found is not None:
        position, add, add_label, _ = found
        other = [name for name in add.input if name != output]
        if len(other) == 1 and other[0] in cv.graph.constants:
            bias = _bias_vector(cv.graph.constants[other[0]].value(), weight.shape[1], add_label)
            cv.claim(position)
            output = add.output[0]
    _emit_dense(cv, label, x, weight, bias, output)


# -- converters: pooling ---------------------------------------------------------------------------

def _onnx_pool_out(size, kernel, stride, before, after, ceil_mode):
    """The output size ONNX Runtime (and PyTorch) give a pooling axis; with ceil_mode a window
    that would start past the input and the padding before it is dropped."""
    total = size + before + after - kernel
    if total < 0:
        return 0
    if not ceil_mode:
        return total // stride + 1
    out = -(-total // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def _pool_match(label, size, kernel, strides, pads, ceil_mode):
    """(padding, ceil_mode) of the cconv pooling whose windows are the ONNX node's: the same
    padding before the input and the same number of windows (what lies past the input is
    clipped by both)."""
    before = pads[:2]
    target = [_onnx_pool_out(n, k, s, b, e, ceil_mode)
              for n, k, s, b, e in zip(size, kernel, strides, before, pads[2:])]
    for ceil in (False, True):
        try:
            outs = [pool_out_size(n, k, s, b, ceil, "axis") for n, k, s, b in zip(size, kernel, strides, before)]
        except ValueError as exc:
            raise ValueError(f"{label}: kernel {kernel}, strides {strides}, pads {pads} on a {size} "
                             f"input: {exc}") from None
        if outs == target:
            return tuple(before), ceil
    raise ValueError(f"{label}: kernel {kernel}, strides {strides}, pads {pads}, ceil_mode={ceil_mode} "
                     f"gives {target} windows on a {size} input, which no cconv pooling with padding "
                     f"{before} gives")


def _pool_attrs(cv, node, label, given, **extra):
    a = cv.attrs(node, label, given, auto_pad="NOTSET", ceil_mode=0, dilations=None,
                 kernel_shape=_REQUIRED, pads=None, strides=None, **extra)
    kernel = _pairs(a["kernel_shape"], label, "kernel_shape", None)
    strides = _pairs(a["strides"], label, "strides", [1, 1])
    if _pairs(a["dilations"], label, "dilations", [1, 1]) != [1, 1]:
        raise ValueError(f"{label}: dilations {a['dilations']} are not supported (cconv pools without dilation)")
    if a["auto_pad"] not in ("NOTSET", "", "VALID"):
        raise ValueError(f"{label}: auto_pad={a['auto_pad']!r} is not supported (NOTSET or VALID)")
    pads = [0, 0, 0, 0] if a["auto_pad"] == "VALID" else _pairs(a["pads"], label, "pads", [0, 0, 0, 0], 4)
    if min(pads) < 0:
        raise ValueError(f"{label}: negative pads {pads} are not supported")
    return a, kernel, strides, pads


def _import_max_pool(cv, node, label, given):
    a, kernel, strides, pads = _pool_attrs(cv, node, label, given, storage_order=0)
    x = cv.data_input(node, label)
    _, h, w = cv.image_shape(label, x)
    padding, ceil = _pool_match(label, (h, w), kernel, strides, pads, a["ceil_mode"])
    cv.emit(L.MaxPool2D(kernel, stride=strides, padding=padding, ceil_mode=ceil), [x], node.output[0], label)


def _import_avg_pool(cv, node, label, given):
    a, kernel, strides, pads = _pool_attrs(cv, node, label, given, count_include_pad=0)
    name = cv.resolve(node.input[0]) if node.input else ""
    if name in cv.pending_pads and not a["count_include_pad"] and not any(pads[:2]):
        # zero padding counted by the average: cconv's count_include_pad=True
        x, extra, _ = cv.pending_pads.pop(name)
        if extra[:2] != extra[2:]:
            raise ValueError(f"{label}: the Pad before it pads unevenly {extra}; cconv pools with even padding")
        _, h, w = cv.image_shape(label, x)
        after = [e + p for e, p in zip(extra[2:], pads[2:])]
        padding, ceil = _pool_match(label, (h, w), kernel, strides, extra[:2] + after, a["ceil_mode"])
        layer = L.AvgPool2D(kernel, stride=strides, padding=padding, ceil_mode=ceil, count_include_pad=True)
        cv.emit(layer, [x], node.output[0], label)
        return
    x = cv.data_input(node, label)
    _, h, w = cv.image_shape(label, x)
    include = bool(a["count_include_pad"])
    if include and any(e > b for b, e in zip(pads[:2], pads[2:])):
        raise ValueError(f"{label}: count_include_pad=1 with more padding after the input than "
                         f"before ({pads}) counts padding cconv would not count")
    padding, ceil = _pool_match(label, (h, w), kernel, strides, pads, a["ceil_mode"])
    layer = L.AvgPool2D(kernel, stride=strides, padding=padding, ceil_mode=ceil, count_include_pad=include)
    cv.emit(layer, [x], node.output[0], label)


def _import_lp_pool(cv, node, label, given):
    a, kernel, strides, pads = _pool_attrs(cv, node, label, given, p=2)
    if any(pads):
        raise ValueError(f"{label}: pads {pads} are not supported (cconv's LPPool2D has no padding)")
    x = cv.data_input(node, label)
    _, h, w = cv.image_shape(label, x)
    floor = [_onnx_pool_out(n, k, s, 0, 0, 0) for n, k, s in zip((h, w), kernel, strides)]
    if a["ceil_mode"] and [_onnx_pool_out(n, k, s, 0, 0, 1) for n, k, s in zip((h, w), kernel, strides)] != floor:
        raise ValueError(f"{label}: with ceil_mode, LpPool sums windows clipped at the input's edge "
                         f"as they are, while cconv (as PyTorch) scales them to the full window; "
                         f"cannot load it exactly")
    if not a["p"] > 0 or min(floor) < 1:
        raise ValueError(f"{label}: p={a['p']} and kernel {kernel} on a {(h, w)} input are not supported")
    cv.emit(L.LPPool2D(float(a["p"]), kernel, stride=strides), [x], node.output[0], label)


def _scalar(cv, name):
    """The value of a one-element constant `name`, or None."""
    tensor = cv.graph.constants.get(name)
    if tensor is None or tensor.count != 1:
        return None
    return float(tensor.value().reshape(-1)[0])


def _import_pow(cv, node, label, given):
    """Pow -> AveragePool(count_include_pad=0) -> Mul(window size) -> Pow(1/p): an Lp pooling
    whose windows clipped by ceil_mode are scaled to the full window (cconv's LPPool2D)."""
    cv.attrs(node, label, given)
    refusal = (f"{label}: Pow is supported only as the start of an Lp pooling, Pow(x, p) -> "
               f"AveragePool -> Mul(kernel area) -> Pow(1/p)")
    x = cv.data_input(node, label)
    p = _scalar(cv, node.input[1]) if len(node.input) > 1 else None
    pool = cv.sole_consumer(node.output[0], ("AveragePool",))
    if p is None or not p > 0 or pool is None:
        raise ValueError(refusal)
    pool_position, pool_node, pool_label, pool_given = pool
    a, kernel, strides, pads = _pool_attrs(cv, pool_node, pool_label, pool_given, count_include_pad=0)
    mul = cv.sole_consumer(pool_node.output[0], ("Mul",))
    root = cv.sole_consumer(mul[1].output[0], ("Pow",)) if mul else None
    if a["count_include_pad"] or any(pads[:2]) or root is None:
        raise ValueError(refusal)
    area = [_scalar(cv, name) for name in mul[1].input if name != pool_node.output[0]]
    inverse = _scalar(cv, root[1].input[1]) if len(root[1].input) > 1 and root[1].input[0] == mul[1].output[0] else None
    if area != [kernel[0] * kernel[1]] or inverse is None or not np.isclose(inverse, 1.0 / p, rtol=1e-6):
        raise ValueError(refusal)
    _, h, w = cv.image_shape(label, x)
    _, ceil = _pool_match(pool_label, (h, w), kernel, strides, pads, a["ceil_mode"])
    for position in (pool_position, mul[0], root[0]):
        cv.claim(position)
    cv.emit(L.LPPool2D(p, kernel, stride=strides, ceil_mode=ceil), [x], root[1].output[0], label)


def _flattening_consumer(cv, tensor, shape):
    """The Flatten(axis=1) / Reshape(N, -1) / Squeeze(2, 3) reading `tensor` alone, or None."""
    found = cv.sole_consumer(tensor, ("Flatten", "Reshape", "Squeeze"))
    if found is None:
        return None
    position, node, label, given = found
    if node.op_type == "Flatten" and given.get("axis", 1) not in (1, -3):
        return None
    if node.op_type != "Flatten" and _flatten_target(cv, node, given, shape) is None:
        return None
    return position, node


def _global_pool(cv, node, label, given, flat_name, fallback):
    cv.attrs(node, label, given)
    x = cv.data_input(node, label)
    c, h, w = cv.image_shape(label, x)
    flat_cls = _optional_layer(flat_name)
    flatten = _flattening_consumer(cv, node.output[0], (c, 1, 1)) if flat_cls else None
    if flatten is not None:
        cv.claim(flatten[0])
        cv.emit(flat_cls(), [x], flatten[1].output[0], label)
    else:  # the 4-D (N, C, 1, 1) result: a pooling over the whole image
        cv.emit(fallback((h, w)), [x], node.output[0], label)


def _import_global_avg_pool(cv, node, label, given):
    _global_pool(cv, node, label, given, "GlobalAvgPool2D", L.AvgPool2D)


def _import_global_max_pool(cv, node, label, given):
    _global_pool(cv, node, label, given, "GlobalMaxPool2D", L.MaxPool2D)


# -- converters: shapes, normalisation, regularisation ----------------------------------------------

def _flatten_target(cv, node, given, shape):
    """For a Reshape / Squeeze node: whether it turns (N,) + shape into (N, prod(shape))."""
    size = math.prod(shape)
    if node.op_type == "Squeeze":
        axes = given.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in cv.graph.constants:
            axes = cv.graph.constants[node.input[1]].value().reshape(-1).tolist()
        rank = len(shape) + 1
        axes = sorted(int(a) % rank for a in axes) if axes is not None else \
            [i + 1 for i, d in enumerate(shape) if d == 1]
        return True if len(shape) == 3 and shape[1:] == (1, 1) and axes == [2, 3] else None
    if given.get("allowzero", 0) or len(node.input) < 2 or node.input[1] not in cv.graph.constants:
        return None
    target = cv.graph.constants[node.input[1]].value().tolist()
    if len(target) != 2 or target[0] not in (0, -1) + ((cv.batch,) if cv.batch else ()):
        return None
    if target[1] == size or (target[1] == -1 and target[0] != -1):
        return True
    return None


def _import_flatten(cv, node, label, given):
    a = cv.attrs(node, label, given, axis=1)
    x = cv.data_input(node, label)
    if a["axis"] not in (1, -len(cv.shapes[x])):
        raise ValueError(f"{label}: axis={a['axis']} is not supported (cconv flattens all but the batch axis: axis=1)")
    cv.emit(L.Flatten(), [x], node.output[0], label)


def _import_reshape(cv, node, label, given):
    cv.attrs(node, label, given, allowzero=0, axes=None)
    x = cv.data_input(node, label)
    if _flatten_target(cv, node, given, cv.shapes[x]) is None:
        raise ValueError(f"{label}: only a reshape to (N, features) (a Flatten) is supported")
    cv.emit(L.Flatten(), [x], node.output[0], label)


def _import_batch_norm(cv, node, label, given):
    a = cv.attrs(node, label, given, epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1)
    if a["training_mode"] or a["spatial"] != 1:
        raise ValueError(f"{label}: only inference-mode, spatial batch normalisation is supported")
    if not 0 <= a["momentum"] <= 1:
        raise ValueError(f"{label}: momentum {a['momentum']} is not in [0, 1]")
    x = cv.data_input(node, label)
    c, _, _ = cv.image_shape(label, x)
    values = [cv.constant(node, label, i, what) for i, what in
              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance"))]
    for value, key in zip(values, ("scale", "bias", "mean", "variance")):
        if value.shape != (c,):
            raise ValueError(f"{label}: its {key} has shape {value.shape}, the input has {c} channels")
    layer = L.BatchNorm2D(momentum=_short(1.0 - a["momentum"]), eps=a["epsilon"])
    cv.emit(layer, [x], node.output[0], label,
            dict(zip(("gamma", "beta", "running_mean", "running_var"), values)))


def _import_dropout(cv, node, label, given):
    a = cv.attrs(node, label, given, seed=0, ratio=0.5, is_test=1)
    x = cv.data_input(node, label)
    ratio = a["ratio"]
    if cv.graph.opset >= 12 and len(node.input) > 1 and node.input[1]:
        ratio = _scalar(cv, node.input[1])
        if ratio is None:
            raise ValueError(f"{label}: its ratio must be a one-value constant")
    if len(node.input) > 2 and node.input[2] and _scalar(cv, node.input[2]) != 0:
        raise ValueError(f"{label}: training_mode must be a constant false")
    cv.emit(L.Dropout(_short(ratio)), [x], node.output[0], label)


def _import_identity(cv, node, label, given):
    cv.attrs(node, label, given)
    if node.input and node.input[0] in cv.graph.constants:  # a copy of a constant is that constant
        cv.graph.constants[node.output[0]] = cv.graph.constants[node.input[0]]
    else:
        cv.alias[node.output[0]] = cv.data_input(node, label)


def _import_pad(cv, node, label, given):
    a = cv.attrs(node, label, given, mode="constant")
    x = cv.data_input(node, label)
    pads = cv.constant(node, label, 1, "pads").reshape(-1).tolist()
    value = _scalar(cv, node.input[2]) if len(node.input) > 2 and node.input[2] else 0.0
    if len(node.input) > 3 and node.input[3]:
        axes = [int(v) % 4 for v in cv.constant(node, label, 3, "axes").reshape(-1)]
        full = [0] * 8
        for i, axis in enumerate(axes):
            full[axis], full[axis + 4] = pads[i], pads[i + len(axes)]
        pads = full
    cv.image_shape(label, x)
    if a["mode"] != "constant" or value != 0 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) \
            or min(pads) < 0:
        raise ValueError(f"{label}: only zero padding of the height and width is supported, got "
                         f"mode={a['mode']!r}, value {value}, pads {pads}")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    padding_cls = _optional_layer("ZeroPadding2D")
    if padding_cls is not None:
        cv.emit(padding_cls(((top, bottom), (left, right))), [x], node.output[0], label)
        return
    # no padding layer in this cconv: the padding joins the Conv / AveragePool that reads it
    cv.pending_pads[node.output[0]] = (x, [top, left, bottom, right],
                                       f"{label}: a zero Pad is supported before a Conv or an AveragePool "
                                       f"(count_include_pad=0) that alone reads it")


# -- converters: activations -----------------------------------------------------------------------

def _simple(cls):
    def convert(cv, node, label, given):
        cv.attrs(node, label, given)
        cv.emit(cls(), [cv.data_input(node, label)], node.output[0], label)
    return convert


def _import_relu(cv, node, label, given):
    _simple(L.ReLU)(cv, node, label, given)


def _import_leaky_relu(cv, node, label, given):
    a = cv.attrs(node, label, given, alpha=0.01)
    cv.emit(L.LeakyReLU(a["alpha"]), [cv.data_input(node, label)], node.output[0], label)


def _import_sigmoid(cv, node, label, given):
    cv.attrs(node, label, given)
    x = cv.data_input(node, label)
    silu = _optional_layer("SiLU")
    readers = cv.graph.consumers.get(node.input[0], [])
    found = cv.sole_consumer(node.output[0], ("Mul",))
    if silu is not None and found is not None and sorted(found[1].input) == sorted([node.input[0], node.output[0]]) \
            and len(readers) == 2 and found[0] in readers:
        cv.claim(found[0])
        cv.emit(silu(), [x], found[1].output[0], label)
        return
    cv.emit(L.Sigmoid(), [x], node.output[0], label)


def _import_softmax(cv, node, label, given):
    x = cv.data_input(node, label)
    rank = len(cv.shapes[x]) + 1
    a = cv.attrs(node, label, given, axis=1 if cv.graph.opset < 13 else -1)
    if a["axis"] % rank != 1 or (cv.graph.opset < 13 and rank != 2):
        raise ValueError(f"{label}: softmax over axis {a['axis']} of a {rank}-D input is not supported "
                         f"(cconv's Softmax runs over axis 1)")
    cv.emit(L.Softmax(), [x], node.output[0], label)


def _import_clip(cv, node, label, given):
    a = cv.attrs(node, label, given, min=None, max=None)
    x = cv.data_input(node, label)
    low, high = a["min"], a["max"]
    for index in (1, 2):
        if len(node.input) > index and node.input[index]:
            value = _scalar(cv, node.input[index])
            if value is None:
                raise ValueError(f"{label}: its bounds must be one-value constants")
            low, high = (value, high) if index == 1 else (low, value)
    relu6 = _optional_layer("ReLU6")
    if low == 0 and (high is None or high == np.inf):
        cv.emit(L.ReLU(), [x], node.output[0], label)
    elif low == 0 and high == 6 and relu6 is not None:
        cv.emit(relu6(), [x], node.output[0], label)
    else:
        raise ValueError(f"{label}: Clip({low}, {high}) is not supported (Clip(0) is a ReLU"
                         f"{', Clip(0, 6) a ReLU6' if relu6 else ''})")


def _import_optional_activation(class_name, **known):
    def convert(cv, node, label, given):
        a = cv.attrs(node, label, given, **known)
        cls = _optional_layer(class_name)
        if cls is None:
            raise ValueError(f"{label}: {node.op_type} needs cconv.layers.{class_name}, which this cconv lacks")
        arguments = {}
        if "alpha" in known:
            arguments["alpha"] = a["alpha"]
        if "approximate" in known:
            arguments["approximate"] = a["approximate"]
        cv.emit(cls(**arguments), [cv.data_input(node, label)], node.output[0], label)
    return convert


def _import_resize(cv, node, label, given):
    a = cv.attrs(node, label, given, mode="nearest", coordinate_transformation_mode="half_pixel",
                 nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75, exclude_outside=0,
                 extrapolation_value=0.0, antialias=0, axes=None, keep_aspect_ratio_policy="stretch")
    cls = _optional_layer("UpSampling2D")
    if cls is None:
        raise ValueError(f"{label}: Resize needs cconv.layers.UpSampling2D, which this cconv lacks")
    x = cv.data_input(node, label)
    c, h, w = cv.image_shape(label, x)
    scales = cv.constant(node, label, 2, "scales", optional=True)
    sizes = cv.constant(node, label, 3, "sizes", optional=True)
    if scales is not None and scales.size:
        factors = scales.reshape(-1).tolist()
    elif sizes is not None and sizes.size == 4:
        factors = [s / n for s, n in zip(sizes.reshape(-1).tolist(), (1, c, h, w))]
    else:
        raise ValueError(f"{label}: needs constant scales or sizes for the 4 axes")
    if len(factors) != 4 or factors[:2] != [1, 1] or any(f != int(f) or f < 1 for f in factors[2:]):
        raise ValueError(f"{label}: only integer upscaling of the height and width is supported, got scales {factors}")
    transform, mode = a["coordinate_transformation_mode"], a["mode"]
    if mode == "nearest" and ((transform == "asymmetric" and a["nearest_mode"] == "floor") or (
            transform in ("half_pixel", "pytorch_half_pixel")
            and a["nearest_mode"] in ("round_prefer_floor", "round_prefer_ceil"))):
        interpolation = "nearest"  # each output pixel reads input pixel floor(i / scale)
    elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
        interpolation = "bilinear"
    else:
        raise ValueError(f"{label}: Resize mode={mode!r} with coordinate_transformation_mode={transform!r} "
                         f"and nearest_mode={a['nearest_mode']!r} is not supported")
    try:
        layer = cls(size=(int(factors[2]), int(factors[3])), interpolation=interpolation)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label}: {exc}") from None
    cv.emit(layer, [x], node.output[0], label)


# -- converters: merges ----------------------------------------------------------------------------

def _import_add(cv, node, label, given):
    cv.attrs(node, label, given)
    if any(name in cv.graph.constants for name in node.input):
        raise ValueError(f"{label}: adding a constant is supported only as the bias after a MatMul")
    cv.emit(None, [cv.data_input(node, label, i) for i in range(len(node.input))], node.output[0], label, kind="add")


def _import_concat(cv, node, label, given):
    a = cv.attrs(node, label, given, axis=_REQUIRED)
    inputs = [cv.data_input(node, label, i) for i in range(len(node.input))]
    if a["axis"] not in (1, -3):
        raise ValueError(f"{label}: only concatenation along the channels (axis=1) is supported")
    cv.emit(None, inputs, node.output[0], label, kind="concat")


IMPORTERS = {
    "Conv": _import_conv, "ConvTranspose": _import_conv_transpose, "Gemm": _import_gemm,
    "MatMul": _import_matmul, "MaxPool": _import_max_pool, "AveragePool": _import_avg_pool,
    "LpPool": _import_lp_pool, "Pow": _import_pow, "GlobalAveragePool": _import_global_avg_pool,
    "GlobalMaxPool": _import_global_max_pool, "Flatten": _import_flatten,
    "Reshape": _import_reshape, "Squeeze": _import_reshape, "BatchNormalization": _import_batch_norm,
    "Dropout": _import_dropout, "Identity": _import_identity, "Pad": _import_pad,
    "Relu": _import_relu, "LeakyRelu": _import_leaky_relu, "Sigmoid": _import_sigmoid,
    "Tanh": _simple(L.Tanh), "Softmax": _import_softmax, "Clip": _import_clip,
    "Elu": _import_optional_activation("ELU", alpha=1.0),
    "HardSwish": _import_optional_activation("Hardswish"),
    "Gelu": _import_optional_activation("GELU", approximate="none"),
    "Resize": _import_resize, "Add": _import_add, "Concat": _import_concat,
}


# -- assembling the model --------------------------------------------------------------------------

def _fresh(layer):
    """An unbuilt copy of `layer` with the same configuration."""
    return type(layer).from_config(layer.get_config())


class _Assembler:
    """Turns the emitted layer nodes into a chain of layers with Residual blocks."""

    def __init__(self, nodes, start, output):
        self.nodes, self.output = nodes, output
        self.start = start
        self.consumers = {}
        for index, node in enumerate(nodes):
            for name in node.inputs:
                self.consumers.setdefault(name, []).append(index)
        self.pairs = []  # (fresh layer, weights) to fill once the model is built

    def layer(self, node):
        fresh = _fresh(node.layer)
        self.pairs.append((fresh, node.weights))
        return fresh

    def chain(self, tensor, stop_at_join, exclude=frozenset()):
        """The layers from `tensor` on, until the graph output or (stop_at_join) a tensor whose
        only reader is an Add; returns (layers, last tensor). `exclude`: a reader of `tensor`
        to ignore (the Adds that join enclosing blocks' identity shortcuts)."""
        layers = []
        while True:
            readers = [r for r in self.consumers.get(tensor, []) if r not in exclude]
            if not readers and tensor == self.output:
                return layers, tensor
            if len(readers) == 1:
                node = self.nodes[readers[0]]
                if node.kind == "add" and stop_at_join:
                    return layers, tensor
                if node.kind != "layer":
                    raise _NotAChain(node.label)
                layers.append(self.layer(node))
                tensor = node.output
            elif len(readers) >= 2:
                block, tensor = self.residual(tensor, readers, exclude)
                layers.append(block)
            else:
                raise _NotAChain(f"nothing reads {tensor!r}")
            exclude = frozenset()
            if tensor == self.output and not self.consumers.get(tensor):
                return layers, tensor

    def path(self, first, stop_tensor):
        """The layers of one branch starting at node index `first`, up to its join."""
        node = self.nodes[first]
        if node.kind != "layer":
            raise _NotAChain(node.label)
        head = [self.layer(node)]
        rest, end = self.chain(node.output, stop_at_join=True)
        return head + rest, end

    def residual(self, tensor, readers, exclude):
        """The Residual block that starts at `tensor` (read by `readers`) and the tensor after it."""
        kinds = [self.nodes[i].kind for i in readers]
        if "add" in kinds:
            # an identity shortcut: the last of the Adds reading the tensor closes this block,
            # the others close blocks nested at its start
            join = max(i for i in readers if self.nodes[i].kind == "add")
            inner, end = self.chain(tensor, stop_at_join=True, exclude=exclude | {join})
            shortcut = []
            ends = {end, tensor}
            if end == tensor or self.consumers.get(end) != [join]:
                raise _NotAChain(self.nodes[join].label)
        elif kinds == ["layer", "layer"]:
            first, second = (self.path(i, tensor) for i in readers)
            joins = {self.consumers.get(first[1], [None])[0], self.consumers.get(second[1], [None])[0]}
            if len(joins) != 1:
                raise _NotAChain(f"the branches from {tensor!r} do not meet at one Add")
            join = joins.pop()
            order = self.nodes[join].inputs
            inner, shortcut = (first[0], second[0]) if order[0] == first[1] else (second[0], first[0])
            ends = {first[1], second[1]}
        else:
            raise _NotAChain(f"the branches from {tensor!r}")
        add = self.nodes[join]
        if add.kind != "add" or set(add.inputs) != ends or len(add.inputs) != 2 or not inner:
            raise _NotAChain(add.label)
        out = add.output
        activation = None
        readers = self.consumers.get(out, [])
        if len(readers) == 1 and out != self.output:
            after = self.nodes[readers[0]]
            if after.kind == "layer" and type(after.layer) is L.ReLU:
                activation, out = "relu", after.output
        return L.Residual(inner, shortcut=shortcut or None, activation=activation), out


def _graph_model(nodes, start, output, input_shape, dtype, name, data_format):
    """The layer nodes as a functional cconv.Model (a graph of layers)."""
    graph = getattr(cconv, "graph", None)
    merge = {"add": getattr(L, "Add", None) or getattr(graph, "Add", None),
             "concat": getattr(L, "Concatenate", None) or getattr(graph, "Concatenate", None)}
    shape = input_shape if data_format == "channels_first" else input_shape[1:] + input_shape[:1]
    inputs = cconv.Input(shape, dtype=dtype, **({"data_format": data_format} if data_format != "channels_first" else {}))
    tensors = {start: inputs}
    pairs = []
    for node in nodes:
        if node.kind == "layer":
            layer = _fresh(node.layer)
            pairs.append((layer, node.weights))
            tensors[node.output] = layer(tensors[node.inputs[0]])
        else:
            cls = merge[node.kind]
            layer = cls() if node.kind == "add" else cls(axis=1)
            tensors[node.output] = layer([tensors[name] for name in node.inputs])
    return cconv.Model(inputs, tensors[output], name=name), pairs


def _fill(pairs, dtype):
    for layer, weights in pairs:
        for key, value in weights.items():
            target = layer.params.get(key, layer.buffers.get(key))
            np.copyto(target, np.asarray(value, dtype=dtype))


def _input_shape(graph, input_shape):
    """(dtype, shape without the batch axis, the declared batch size or None) of the graph input."""
    value_type = graph.input.type
    if not value_type.HasField("tensor_type") or value_type.tensor_type.elem_type not in _MODEL_DTYPES:
        raise ValueError(f"the graph input {graph.input.name!r} must be a float32 or float64 tensor")
    dtype = _MODEL_DTYPES[value_type.tensor_type.elem_type]
    dims = list(value_type.tensor_type.shape.dim)
    declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if input_shape is not None:
        shape = tuple(int(d) for d in input_shape)
        if dims and (len(shape) != len(dims) - 1 or any(
                d is not None and d != s for d, s in zip(declared[1:], shape))):
            raise ValueError(f"input_shape {shape} does not fit the graph input's declared shape {declared}")
    else:
        if len(dims) < 2 or any(d is None or d < 1 for d in declared[1:]):
            raise ValueError(f"the graph input's shape {declared} must have fixed sizes after the batch "
                             f"axis; pass input_shape=(C, H, W) to cconv.onnx.load")
        shape = tuple(declared[1:])
    if not shape or min(shape) < 1 or math.prod(shape) > MAX_DIM:
        raise ValueError(f"the input shape {shape} must be positive sizes of at most {MAX_DIM} values per sample")
    return dtype, shape, declared[0] if dims else None


def load(path, input_shape=None):
    """The cconv model stored in the ONNX file `path`, in eval mode and ready to train further.

    A graph that is a chain of layers (Add nodes joining a skip included, as Residual blocks)
    gives a Sequential, any other graph a functional cconv.Model (where this cconv has one).
    A graph that starts by transposing NHWC input to NCHW gives a channels_last model.
    `input_shape`: the input's shape without the batch axis, for files that leave it open.

    Raises OSError when the file system cannot give the file and ValueError for anything cconv
    cannot load exactly: an unsupported op or attribute (the message names the node, the op and
    what is supported), or a malformed or hostile file (see the module docstring).
    """
    path = os.fspath(path)
    proto = _read_model(path)
    try:
        graph = _Graph(proto, os.path.dirname(os.path.abspath(path)))
        dtype, shape, batch = _input_shape(graph, input_shape)
        start, data_format = graph.input.name, "channels_first"
        first = graph.consumers.get(start, [])
        if len(first) == 1 and graph.nodes[first[0]][0].op_type == "Transpose" and len(shape) == 3:
            node, label, given = graph.nodes[first[0]]
            if list(given.get("perm", [])) == [0, 3, 1, 2] and len(given) == 1:
                data_format, start = "channels_last", node.output[0]
                shape = (shape[2], shape[0], shape[1])
        converter = _Converter(graph, dtype, start, shape, batch)
        if data_format == "channels_last":
            converter.claim(first[0])
        nodes = converter.run()
        output = converter.resolve(graph.output)
        if output not in converter.shapes:
            raise ValueError(f"the graph output {graph.output!r} is not computed from the input")
        name = {p.key: p.value for p in proto.metadata_props}.get("model_name") or graph_name(proto)
        return _assemble(nodes, start, output, shape, dtype, name, data_format)
    except RecursionError:
        raise ValueError(f"cannot load ONNX model {path!r}: its graph nests too deeply") from None
    except ValueError as exc:
        raise ValueError(f"cannot load ONNX model {path!r}: {exc}") from None


def graph_name(proto):
    return proto.graph.name or "onnx_model"


def _assemble(nodes, start, output, shape, dtype, name, data_format):
    total = sum(v.size for node in nodes for v in node.weights.values()) * np.dtype(dtype).itemsize
    assembler = _Assembler(nodes, start, output)
    try:
        layers, end = assembler.chain(start, stop_at_join=False)
        if end != output:
            raise _NotAChain(end)
    except _NotAChain as exc:
        if not hasattr(cconv, "Model") or not hasattr(cconv, "Input"):
            raise ValueError(f"the graph is not a chain of layers with residual blocks (at {exc}); "
                             f"it needs cconv.Model, the functional API, which this cconv lacks") from None
        model, pairs = _graph_model(nodes, start, output, shape, dtype, name, data_format)
        _fill(pairs, dtype)
        return model.eval()
    options = {"data_format": data_format} if data_format != "channels_first" else {}
    model = cconv.Sequential(layers, dtype=dtype, name=name, **options)
    model.build(shape, rng=ParamBudget(total))
    _fill(assembler.pairs, dtype)
    return model.eval()
