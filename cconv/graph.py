"""The functional API: cconv.Input, symbolic tensors, and Model, a network whose layers form a
directed acyclic graph (skips, branches, merges) instead of a stack.

    inputs = cconv.Input((3, 32, 32))
    x = Conv2D(16, 3, padding=1, activation='relu')(inputs)
    y = Conv2D(16, 3, padding=1)(x)
    x = ReLU()(Add()([x, y]))
    outputs = Dense(10)(Flatten()(GlobalAvgPool2D()(x)))   # a GlobalAvgPool2D gives (N, C)
    model = cconv.Model(inputs, outputs, seed=0)

Calling a layer on a symbolic tensor records a node (the layer and the tensors it takes) and
builds the layer for that shape, so a shape error shows at once. Model(inputs, outputs) keeps
the layers that lead from its input to its output, in an order in which each runs after every
layer it takes input from (`model.layers`), and initialises them all from its seed.

Backward runs the nodes in reverse; a tensor that feeds several nodes gets the sum of their
gradients. A layer object can sit at one node only (it keeps its last forward for backward):
Model refuses one used twice.

Saved files (format version 2) list the nodes in that order, each with its layer and the names
of the nodes it takes input from; load_model checks the graph (unknown node, cycle, a node
without input or not leading to the output) before building anything.
"""
from collections import Counter

import numpy as np

from cconv._args import as_bool
from cconv.layers import layer_from_json, layer_to_json
from cconv.layers.base import as_model_dtype, as_shape, check_distinct
from cconv.layers.merge import Merge
from cconv.model import Network, name_layers

__all__ = ["Input", "Model", "SymbolicTensor"]


class SymbolicTensor:
    """The output of one node of a graph under construction: the model input (cconv.Input), or
    a layer called on the symbolic tensors in `inputs`. `shape` excludes the batch axis."""

    is_symbolic_tensor = True  # what Layer.__call__ looks for

    def __init__(self, shape, dtype, layer=None, inputs=(), name=None):
        self.shape = shape
        self.dtype = dtype
        self.layer = layer
        self.inputs = list(inputs)
        self.name = name  # the model input's name (a layer's output goes by the layer's name)

    @property
    def node_name(self):
        return self.name if self.layer is None else self.layer.name

    def __repr__(self):
        source = f"Input {self.name!r}" if self.layer is None else self.layer.describe()
        shape = "(N, " + ", ".join(map(str, self.shape)) + ")" if self.shape is not None else "unknown"
        return f"<SymbolicTensor shape={shape} dtype={self.dtype.name} from {source}>"

    def __array__(self, *args, **kwargs):
        raise TypeError("a symbolic tensor (from cconv.Input) holds no values: build a "
                        "cconv.Model(inputs, outputs) and call the model on arrays")


def Input(shape, dtype=np.float32, name=None):
    """A symbolic tensor standing for a model's input batches of shape (N,) + shape, e.g.
    Input((3, 32, 32)); call layers on it, then pass it to Model as `inputs`."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    return SymbolicTensor(as_shape(shape, "shape"), as_model_dtype(dtype), name=name)


def connect(layer, inputs, build=True):
    """Record the call layer(inputs) on symbolic tensors and return its output tensor; with
    build, build the layer for the inputs' shapes (its weights are drawn again by Model)."""
    takes_list = isinstance(layer, Merge)
    if takes_list:
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{layer.describe()} takes a list of tensors, e.g. "
                            f"{type(layer).__name__}()([a, b]), got one tensor")
        tensors = list(inputs)
    else:
        if isinstance(inputs, (list, tuple)):
            raise TypeError(f"{layer.describe()} takes one tensor, got a list of {len(inputs)}; only "
                            f"merge layers (Add, Concatenate) take lists")
        tensors = [inputs]
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, SymbolicTensor):
            raise TypeError(f"{layer.describe()}: input {i} is a {type(tensor).__name__}, not a "
                            f"symbolic tensor; in the functional API every input comes from "
                            f"cconv.Input or from a layer called on one")
    dtypes = {tensor.dtype for tensor in tensors}
    if len(dtypes) != 1:
        raise TypeError(f"{layer.describe()}: the inputs have different dtypes {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    shape = None
    if build:
        shapes = [tensor.shape for tensor in tensors]
        try:
            shape = layer.build(shapes if takes_list else shapes[0], dtype, np.random.default_rng())
        except ValueError as exc:
            on = ", ".join(f"(N, {', '.join(map(str, s))})" for s in shapes)
            raise ValueError(f"{layer.describe()} called on {on}: {exc}") from None
    return SymbolicTensor(shape, dtype, layer, tensors)


def _single(tensors, what):
    if isinstance(tensors, (list, tuple)):
        if len(tensors) != 1:
            raise ValueError(f"Model takes one input and one output tensor, got {len(tensors)} {what}")
        tensors = tensors[0]
    if not isinstance(tensors, SymbolicTensor):
        raise TypeError(f"Model's {what} must be symbolic tensors (from cconv.Input and layer calls), "
                        f"got {type(tensors).__name__}")
    return tensors


def _post_order(output):
    """Every tensor `output` depends on, itself included, each after all of its inputs
    (depth first, inputs in call order): the same order for the same graph."""
    order, done = [], set()
    stack = [(output, 0)]
    while stack:
        tensor, next_input = stack.pop()
        if next_input == 0 and id(tensor) in done:
            continue
        if next_input < len(tensor.inputs):
            stack.append((tensor, next_input + 1))
            child = tensor.inputs[next_input]
            if id(child) not in done:
                stack.append((child, 0))
        else:
            done.add(id(tensor))
            order.append(tensor)
    return order


class Model(Network):
    """Model(inputs, outputs, name=None, seed=None)

    A network of the layers that lead from `inputs` (a cconv.Input) to `outputs` (a symbolic
    tensor), one of each. It is built and its weights initialised at once, from `seed` when
    given. Everything Sequential offers works the same: forward / backward, predict, summary,
    count_params, save / load_model, compile / fit / evaluate, Trainer and DistributedTrainer.
    `model.layers` lists the layers in the order they run.
    """

    _format_version = 2  # of the saved file: version 1 (Sequential only) has no graph

    def __init__(self, inputs, outputs, name=None, seed=None):
        input_tensor = _single(inputs, "inputs")
        output_tensor = _single(outputs, "outputs")
        super().__init__(input_tensor.dtype, seed, name, default_name="model")
        self._set_graph(input_tensor, output_tensor)
        self.build(input_tensor.shape)

    def _set_graph(self, input_tensor, output_tensor):
        order = _post_order(output_tensor)
        for tensor in order:
            if tensor.layer is None and tensor is not input_tensor:
                raise ValueError(f"the output depends on the Input {tensor.name or ''} "
                                 f"{tensor.shape}, which is not the model's input (the graph is "
                                 f"disconnected from `inputs`)")
        if order[0] is not input_tensor:
            raise ValueError("the output does not depend on the model's input")
        nodes = order[1:]
        if not nodes:
            raise ValueError("the model has no layers: its output is its input")
        seen = {}
        for index, node in enumerate(nodes):
            first = seen.setdefault(id(node.layer), index)
            if first != index:
                raise ValueError(
                    f"the model {self.name!r} uses the same {type(node.layer).__name__} object at two "
                    f"places (layers {first} and {index}); a layer object remembers its last forward "
                    f"pass for backward, so it can sit at one place only: create a new instance for "
                    f"each place, e.g. {type(node.layer).__name__}() again")
        layers = [node.layer for node in nodes]
        check_distinct(layers, f"the model {self.name!r}")
        name_layers(layers, [])
        names = [layer.name for layer in layers]
        if input_tensor.name is None:
            count = 1
            while f"input_{count}" in names:
                count += 1
            input_tensor.name = f"input_{count}"
        duplicates = sorted(n for n, count in Counter(names + [input_tensor.name]).items() if count > 1)
        if duplicates:
            raise ValueError(f"the model's layers and input need distinct names; {duplicates} "
                             f"name more than one")
        self._input = input_tensor
        self._nodes = nodes
        self.layers = layers
        # where each node reads its inputs: slot 0 is the model input, slot i + 1 node i's output
        slot = {id(input_tensor): 0}
        slot.update({id(node): i + 1 for i, node in enumerate(nodes)})
        self._sources = [[slot[id(t)] for t in node.inputs] for node in nodes]
        self._merges = [isinstance(layer, Merge) for layer in layers]
        last_reader = {}
        for i, sources in enumerate(self._sources):
            for s in sources:
                last_reader[s] = i
        # forward drops its references to an output once its last reader has run
        self._release_after = [[s for s in sorted(set(sources)) if last_reader[s] == i]
                               for i, sources in enumerate(self._sources)]
        for layer in layers:
            layer.train(self.training)

    def build(self, input_shape, rng=None):
        """Create every layer's parameters for the Input's shape; `rng` draws their initial
        values (default: a generator seeded with the model's seed)."""
        input_shape = as_shape(input_shape, "input_shape")
        if input_shape != self._input.shape:
            raise ValueError(f"this Model takes inputs of shape (N, {', '.join(map(str, self._input.shape))}) "
                             f"(its Input's), not {input_shape}")
        self._rng = np.random.default_rng(self.seed)
        shapes = [input_shape]
        for index, (node, sources) in enumerate(zip(self._nodes, self._sources)):
            layer = node.layer
            in_shapes = [shapes[s] for s in sources]
            try:
                shape = layer.build(in_shapes if self._merges[index] else in_shapes[0], self.dtype,
                                    self._rng if rng is None else rng)
            except ValueError as exc:
                raise ValueError(f"layer {index} ({layer.describe()}): {exc}") from None
            node.shape = shape
            shapes.append(shape)
        self.input_shape = input_shape
        self.output_shape = shapes[-1]
        return self

    def output_layer(self):
        return self.layers[-1]

    def graph_nodes(self):
        """The graph as (layer, input keys, output key) per node, in the order they run, then the
        model input's key and the output's: key 0 is the input, key i + 1 node i's output
        (cconv.onnx exports it)."""
        nodes = [(layer, list(sources), i + 1) for i, (layer, sources) in enumerate(zip(self.layers, self._sources))]
        return nodes, 0, len(self.layers)

    # -- computation --------------------------------------------------------------------
    def _run(self, x, stop):
        """The output of node `stop` for the checked batch x (every node up to it runs)."""
        values = [x] + [None] * len(self.layers)
        for i in range(stop + 1):
            sources = self._sources[i]
            if self._merges[i]:
                y = self.layers[i].forward_unchecked([values[s] for s in sources])
            else:
                y = self.layers[i].forward_unchecked(values[sources[0]])
            for s in self._release_after[i]:
                values[s] = None
            values[i + 1] = y
        return values[stop + 1]

    def forward_unchecked(self, x):
        """forward for a batch x that check_input returned (or a part of one); the layers pass
        each other their outputs unchecked."""
        return self._run(x, len(self.layers) - 1)

    def layer_output(self, x, layer):
        index = next(i for i, item in enumerate(self.layers) if item is layer)
        return self._run(x, index)

    def backward(self, grad_out, need_input_grad=True):
        """Back-propagate dL/doutput through the graph, each node after every node that takes
        its output; a tensor read by several nodes gets the sum of their gradients. Returns
        dL/dinput (None when need_input_grad is False, which spares the layers that read the
        input that work). The output layer checks grad_out."""
        need_input_grad = as_bool(need_input_grad, "need_input_grad")
        last = len(self.layers) - 1
        grads = [None] * (last + 2)
        owned = [False] * (last + 2)  # whether grads[s] is a sum this method allocated
        grads[last + 1] = grad_out
        for i in range(last, -1, -1):
            layer, sources = self.layers[i], self._sources[i]
            g, grads[i + 1] = grads[i + 1], None
            need = need_input_grad or any(sources)
            if i == last:
                result = layer.backward(g, need_input_grad=need)
            else:
                result = layer.backward_unchecked(g, need_input_grad=need)
            if not need:
                continue
            for s, piece in zip(sources, result if self._merges[i] else [result]):
                if s == 0 and not need_input_grad:
                    continue
                if grads[s] is None:
                    grads[s] = piece
                elif owned[s]:
                    grads[s] += piece
                else:  # never add into a layer's own array: it may still hold it
                    grads[s] = grads[s] + piece
                    owned[s] = True
        return grads[0] if need_input_grad else None

    # -- description --------------------------------------------------------------------
    def _summary_table(self):
        rows = [(f"{self._input.name} (Input)", str(self.input_shape), "0", "")]

        def add_rows(layers, indent, connected):
            for layer, sources in zip(layers, connected):
                rows.append((" " * indent + f"{layer.name} ({type(layer).__name__})",
                             str(layer.output_shape), f"{layer.count_params():,}", sources))
                add_rows(layer.sublayers(), indent + 2, [""] * len(layer.sublayers()))

        add_rows(self.layers, 0, [", ".join(t.node_name for t in node.inputs) for node in self._nodes])
        return ("Layer (type)", "Output shape", "Param #", "Connected to"), rows, {2}

    def get_config(self):
        return {"class": "Model", "name": self.name, "dtype": self.dtype.name,
                "input_shape": list(self.input_shape), "input": self._input.name,
                "nodes": [{"name": node.layer.name, "layer": layer_to_json(node.layer),
                           "inputs": [t.node_name for t in node.inputs]} for node in self._nodes],
                "output": self.layers[-1].name}

    def __repr__(self):
        return (f"Model(name={self.name!r}, layers={len(self.layers)}, input_shape={self.input_shape}, "
                f"output_shape={self.output_shape}, dtype={self.dtype.name!r})")


# -- loading --------------------------------------------------------------------------------
def _checked_nodes(config):
    """The node records of a saved graph in an order in which every node follows its inputs;
    ValueError for an unknown node, a node without inputs, a cycle, or a node that does not
    lead to the output. Works on names alone: nothing is built."""
    input_name, output_name, nodes = config.get("input"), config.get("output"), config.get("nodes")
    if not isinstance(input_name, str) or not isinstance(output_name, str):
        raise ValueError("the graph has no input or output node name")
    if not isinstance(nodes, list) or not nodes:
        raise ValueError("the graph has no node list")
    by_name = {}
    for item in nodes:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("inputs"), list) or not isinstance(item.get("layer"), dict) \
                or not all(isinstance(n, str) for n in item["inputs"]):
            raise ValueError(f"a node must be {{'name': str, 'layer': dict, 'inputs': [str, ...]}}, "
                             f"got {item!r:.200}")
        if item["name"] in by_name or item["name"] == input_name:
            raise ValueError(f"two nodes are named {item['name']!r:.100}")
        by_name[item["name"]] = item
    for item in nodes:
        if not item["inputs"]:
            raise ValueError(f"node {item['name']!r:.100} has no input (a dangling node)")
        for source in item["inputs"]:
            if source != input_name and source not in by_name:
                raise ValueError(f"node {item['name']!r:.100} takes input from the unknown node "
                                 f"{source!r:.100}")
    if output_name not in by_name:
        raise ValueError(f"the output {output_name!r:.100} is not a node of the graph")
    # Kahn's algorithm: a node is placed once all of its inputs are
    waiting = {name: len(set(item["inputs"]) - {input_name}) for name, item in by_name.items()}
    readers = {}
    for name, item in by_name.items():
        for source in set(item["inputs"]) - {input_name}:
            readers.setdefault(source, []).append(name)
    ready = [item["name"] for item in nodes if waiting[item["name"]] == 0]
    order = []
    while ready:
        name = ready.pop()
        order.append(name)
        for reader in readers.get(name, ()):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    if len(order) != len(nodes):
        stuck = sorted(name for name, count in waiting.items() if count)
        raise ValueError(f"the graph has a cycle through the nodes {stuck[:5]!r:.200}")
    used, stack = {output_name}, [output_name]
    while stack:
        for source in by_name[stack.pop()]["inputs"]:
            if source in by_name and source not in used:
                used.add(source)
                stack.append(source)
    unused = [item["name"] for item in nodes if item["name"] not in used]
    if unused:
        raise ValueError(f"the nodes {unused[:5]!r:.200} do not lead to the output (dangling)")
    return [by_name[name] for name in order]


def model_from_config(config, budget):
    """The Model a saved header's architecture describes, its parameters allocated
    (uninitialised) from `budget`; ValueError for anything malformed."""
    nodes = _checked_nodes(config)
    name, dtype, input_shape = config.get("name", "model"), config.get("dtype", "float32"), config.get("input_shape")
    if not isinstance(input_shape, list):
        raise ValueError("the architecture has no input shape")
    try:
        tensors = {config["input"]: Input(input_shape, dtype, name=config["input"])}
        for item in nodes:
            layer = layer_from_json(item["layer"])
            if layer.name != item["name"]:
                raise ValueError(f"node {item['name']!r:.100} holds a layer named {layer.name!r:.100}")
            inputs = [tensors[source] for source in item["inputs"]]
            if len(inputs) < 2 if isinstance(layer, Merge) else len(inputs) != 1:
                raise ValueError(f"node {item['name']!r:.100}: a {type(layer).__name__} cannot take "
                                 f"{len(inputs)} input(s)")
            tensors[item["name"]] = connect(layer, inputs if isinstance(layer, Merge) else inputs[0],
                                            build=False)
        model = Model.__new__(Model)
        Network.__init__(model, dtype, None, name, default_name="model")
        model._set_graph(tensors[config["input"]], tensors[config["output"]])
        return model.build(input_shape, rng=budget)
    except TypeError as exc:
        raise ValueError(f"invalid architecture: {exc}") from None
