"""Models: the behaviour every model shares (Network) and Sequential, a stack of layers; save and
load_model. cconv.graph's Model, a graph of layers, is the other kind of Network.

A saved model is one `.npz` file (read with allow_pickle=False, so loading never runs code)
holding a JSON header under the key "__cconv__" (format name, version, the architecture,
and a SHA-256 of the architecture and of every array) and one array per parameter or buffer. `save` writes a
temporary file in the target directory and renames it over the target (os.replace), so a
crash while saving leaves any previous file intact. A Sequential file is format version 1; a
graph Model's architecture (its nodes and their inputs) needs version 2.
"""
import hashlib
import json
import os
import re
import zipfile

import numpy as np

from cconv._args import (as_bool, as_data_format, as_int, as_real_array, channels_first_shape,
                         channels_last_shape)
from cconv._io import open_npz, save_npz_atomically, stored_array_header
from cconv._paths import naming_path
from cconv.layers import Layer, Softmax, layer_from_json, layer_to_json
from cconv.layers.base import ParamBudget, as_model_dtype, as_shape, check_distinct, walk_layers
from cconv.layers.folding import inference_steps

__all__ = ["Network", "Sequential", "load_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cconv-model"
FORMAT_VERSION = 2  # the newest this cconv reads; Sequential files are still written as 1
SEQUENTIAL_VERSION = 1
HEADER_KEY = "__cconv__"


def _snake(name):
    return re.sub(r"(?<=[a-z])(?=[A-Z][a-z])", "_", name).lower()


def name_layers(new_layers, existing_layers):
    """Give every unnamed layer of `new_layers` (nested ones included) a name unique among them
    and `existing_layers`: '<snake_case class>_<n>' (conv2d_1, batch_norm2_d_1, ...)."""
    taken = {layer.name for layer in walk_layers(existing_layers)}
    for item in walk_layers(new_layers):
        if item.name is None:
            base = _snake(type(item).__name__)
            count = 1
            while f"{base}_{count}" in taken:
                count += 1
            item.name = f"{base}_{count}"
        taken.add(item.name)


class Network:
    """What Sequential and cconv.Model share: modes, checked forward, predict, compile / fit /
    evaluate, parameters and gradients, state_dict, count_params, summary and save.

    A subclass keeps its layers in `self.layers` in the order they run, sets `input_shape` and
    `output_shape` when it is built, and implements build, forward_unchecked, backward,
    output_layer, get_config and _summary_table."""

    def __init__(self, dtype="float32", seed=None, name=None, default_name="model", data_format="channels_first"):
        self.name = name if name is not None else default_name
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        self.dtype = as_model_dtype(dtype)
        if seed is not None:
            seed = as_int(seed, "seed", 0)
        self.seed = seed
        self.layers = []
        self.input_shape = None
        self.output_shape = None
        self.training = True
        self._rng = None
        self.trainer = None  # set by compile()
        self.metrics = []
        self.data_format = as_data_format(data_format)

    @property
    def built(self):
        return self.output_shape is not None

    def _require_built(self, what):
        if not self.built:
            raise RuntimeError(f"{what} needs a built model: pass input_shape to Sequential, call "
                               f"build(input_shape), or run a forward pass first")

    def output_layer(self):
        """The layer whose output is the model's (None for a model without layers)."""
        raise NotImplementedError

    # -- modes --------------------------------------------------------------------------
    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def set_rng(self, rng):
        """Give every random layer (Dropout) the generator `rng`."""
        for layer in walk_layers(self.layers):
            if hasattr(layer, "rng"):
                layer.rng = rng

    # -- computation --------------------------------------------------------------------
    def check_input(self, x, name="X"):
        """x as a C-contiguous array of the model's dtype with shape (N,) + input_shape
        (transposed from (N, H, W, C) for a channels_last model)."""
        x = as_real_array(x, name)
        given = x.shape
        if self.data_format == "channels_last" and x.ndim >= 3:
            x = np.moveaxis(x, -1, 1)  # a view: the copy below is the one transpose
        if self.built and (x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape):
            expected = channels_last_shape(self.input_shape, self.data_format)
            raise ValueError(f"{name} must have shape (N, {', '.join(map(str, expected))}) for "
                             f"this model, got {given}")
        if not self.built and x.ndim < 2:
            raise ValueError(f"{name} must have a batch axis, got shape {x.shape}")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def forward(self, x):
        """The model's output for the batch x (in the current train / eval mode)."""
        x = self.check_input(x)
        if not self.built:
            self.build(x.shape[1:])
        return self.forward_unchecked(x)

    def __call__(self, x, training=False):
        """The output for the batch x, as a Keras model call: in inference mode (Dropout off,
        BatchNorm on its running statistics) unless training=True. forward() runs in the
        model's current mode instead."""
        was_training = self.training
        self.train(bool(training))
        try:
            return self.forward(x)
        finally:
            self.train(was_training)

    def forward_unchecked(self, x):
        """forward for a batch x that check_input returned (or a part of one) of a built model."""
        raise NotImplementedError

    def backward(self, grad_out, need_input_grad=True):
        """Back-propagate dL/doutput; returns dL/dinput (None when need_input_grad is False)."""
        raise NotImplementedError

    def layer_output(self, x, layer):
        """The output of `layer` (one of self.layers) for the checked batch x, running only what
        it depends on, in the current mode (cconv.viz draws activation maps with it)."""
        raise NotImplementedError

    def predict(self, x, batch_size=256):
        """The model's output for every sample of x, in eval mode, batch by batch (in a
        Sequential, each Conv2D followed by a BatchNorm2D, and a ReLU, runs as one convolution
        with the batch norm folded into its weights: cconv.layers.folding)."""
        batch_size = as_int(batch_size, "batch_size", 1)
        x = self.check_input(x)
        if not self.built:
            self.build(x.shape[1:])
        was_training = self.training
        self.eval()
        try:
            run = self._inference_runner()
            outputs = [run(x[start:start + batch_size]) for start in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        if not outputs:
            return np.empty((0,) + self.output_shape, dtype=self.dtype)
        return np.concatenate(outputs)

    def _inference_runner(self):
        """What predict calls on each checked batch, in eval mode: forward_unchecked here; a
        subclass may return a faster equivalent (its layers can change between calls, so it is
        asked again for every predict)."""
        return self.forward_unchecked

    def ends_in_softmax(self):
        """Whether the model's output is a softmax (a Softmax layer or activation='softmax')."""
        last = self.output_layer()
        return isinstance(last, Softmax) or getattr(last, "activation", None) == "softmax"

    # -- Keras-style training: compile, then fit / evaluate (a Trainer underneath) -------------
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=None):
        """Choose the optimizer and loss for fit / evaluate, as in Keras (a cconv.Trainer does
        the work). `optimizer`: 'adam', 'adamw', 'sgd' or a cconv.optim object; `loss`:
        'cross_entropy' (Keras's 'sparse_categorical_crossentropy' and
        'categorical_crossentropy' name it too), 'mse' or a cconv.losses object. The
        cross-entropy takes logits, so the last layer needs no softmax; a model that ends in
        one gets the cross-entropy on probabilities instead, as these names mean in Keras.
        `metrics`: None or a list of 'accuracy' (pixel accuracy for a segmentation output),
        'mean_iou' or cconv.metrics objects; evaluate() returns [loss, *metrics]."""
        from cconv import losses
        from cconv.trainer import Trainer

        if isinstance(loss, str):
            loss = losses.get(loss)
            if isinstance(loss, losses.CrossEntropy) and self.ends_in_softmax():
                loss = losses.CrossEntropy(from_logits=False)
        metrics = [] if metrics is None else list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        trainer = Trainer(self, loss=loss, optimizer=optimizer, metrics=metrics or None)
        self.trainer = trainer
        self.metrics = [metric.name for metric in trainer.metrics] if metrics else []
        return self

    def _compiled(self, what):
        if self.trainer is None:
            raise RuntimeError(f"{what} needs a compiled model: call model.compile(optimizer='adam', "
                               f"loss='cross_entropy', metrics=['accuracy']) first (or use "
                               f"cconv.Trainer(model, loss, optimizer))")
        return self.trainer

    def fit(self, x, y, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
            callbacks=None, shuffle=True, seed=None, verbose=1, **options):
        """Train as Keras's model.fit does (after compile); returns a History (history['loss'],
        ...). The other options of cconv.Trainer.fit (augment, file) pass through."""
        return self._compiled("fit").fit(x, y, epochs=epochs, batch_size=batch_size,
                                         validation_split=validation_split,
                                         validation_data=validation_data, callbacks=callbacks,
                                         shuffle=shuffle, seed=seed, verbose=verbose, **options)

    def _keras_result(self, logs, return_dict):
        if return_dict:
            return logs
        return [logs["loss"]] + [logs[name] for name in self.metrics] if self.metrics else logs["loss"]

    def evaluate(self, x, y, batch_size=256, return_dict=False):
        """As Keras's model.evaluate: the loss, or [loss, metric...] when compiled with
        metrics; with return_dict=True the dict of Trainer.evaluate."""
        return self._keras_result(self._compiled("evaluate").evaluate(x, y, batch_size=batch_size),
                                  return_dict)

    def train_on_batch(self, x, y, return_dict=False):
        """One optimizer step on the batch (x, y), as Keras's model.train_on_batch (after
        compile): the loss (and metrics) of that batch before the step."""
        return self._keras_result(self._compiled("train_on_batch").train_on_batch(x, y), return_dict)

    def test_on_batch(self, x, y, return_dict=False):
        """The loss (and metrics) of the batch (x, y) in eval mode, as Keras's model.test_on_batch."""
        return self._keras_result(self._compiled("test_on_batch").test_on_batch(x, y), return_dict)

    # -- parameters ---------------------------------------------------------------------
    def load_torch_state_dict(self, state_dict):
        """Copy a PyTorch state_dict (e.g. torch_model.state_dict()) into this built model,
        whose layers with parameters correspond one to one, in order, to the torch modules
        with parameters: Conv2D to Conv2d, Dense to Linear (its (out, in) weight transposed),
        BatchNorm2D to BatchNorm2d. Every key and shape is checked first; a ValueError names
        the first that does not match, and then nothing is copied."""
        from cconv._torch_weights import load_torch_state_dict

        self._require_built("load_torch_state_dict")
        load_torch_state_dict(self.layers, state_dict, self.dtype)

    def named_parameters(self):
        """{'<layer index>.<name>': array} of every trainable parameter, in a fixed order."""
        return {f"{i}.{key}": value for i, layer in enumerate(self.layers)
                for key, value in layer.params.items()}

    def named_buffers(self):
        """{'<layer index>.<name>': array} of the non-trainable state (BatchNorm statistics)."""
        return {f"{i}.{key}": value for i, layer in enumerate(self.layers)
                for key, value in layer.buffers.items()}

    def parameters(self):
        """The trainable parameter arrays (the optimizer updates them in place)."""
        return list(self.named_parameters().values())

    def gradients(self):
        """The gradient arrays of the last backward pass, matching parameters()."""
        grads = []
        for i, layer in enumerate(self.layers):
            layer_grads = layer.grads
            for key in layer.params:
                if key not in layer_grads:
                    raise RuntimeError(f"no gradient for {i}.{key}: run backward first")
                grads.append(layer_grads[key])
        return grads

    def state_dict(self):
        """A copy of every parameter and buffer, by name."""
        state = {k: v.copy() for k, v in self.named_parameters().items()}
        state.update({k: v.copy() for k, v in self.named_buffers().items()})
        return state

    def load_state_dict(self, state):
        """Copy the arrays of `state` (as from state_dict) into the model, checking every name,
        shape and dtype first."""
        self._require_built("load_state_dict")
        targets = dict(self.named_parameters())
        targets.update(self.named_buffers())
        missing = sorted(set(targets) - set(state))
        extra = sorted(set(state) - set(targets))
        if missing or extra:
            raise ValueError(f"state does not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
        for key, target in targets.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ValueError(f"{key}: expected shape {target.shape}, got {value.shape}")
            if value.dtype != target.dtype:
                raise ValueError(f"{key}: expected dtype {target.dtype}, got {value.dtype}")
        for key, target in targets.items():
            np.copyto(target, state[key])

    def count_params(self, trainable_only=False):
        """Number of parameter values (with non-trainable buffers unless trainable_only)."""
        self._require_built("count_params")
        return sum(layer.count_params(trainable_only) for layer in self.layers)

    # -- description --------------------------------------------------------------------
    def _summary_table(self):
        """(column titles, rows, columns aligned right) of summary's table."""
        rows = []

        def add_rows(layers, indent):
            for layer in layers:
                rows.append((" " * indent + f"{layer.name} ({type(layer).__name__})",
                             str(layer.output_shape), f"{layer.count_params():,}"))
                add_rows(layer.sublayers(), indent + 2)

        add_rows(self.layers, 0)
        return ("Layer (type)", "Output shape", "Param #"), rows, {2}

    def summary(self, print_fn=print):
        """Print a table of layers, output shapes and parameter counts, with totals."""
        self._require_built("summary")
        titles, rows, right = self._summary_table()
        rows = [titles] + rows
        widths = [max(len(row[i]) for row in rows) + 3 for i in range(len(titles))]
        rule = "=" * (sum(widths) - 3)

        def fmt(row):
            cells = [cell.rjust(width - 3) + "   " if i in right else cell.ljust(width)
                     for i, (cell, width) in enumerate(zip(row, widths))]
            return "".join(cells).rstrip()

        total = self.count_params()
        trainable = self.count_params(trainable_only=True)
        shown = channels_last_shape(self.input_shape, self.data_format)
        layout = ", channels_last" if self.data_format == "channels_last" else ""
        lines = [f'Model: "{self.name}"  input shape {shown}{layout}, {self.dtype.name}', rule,
                 fmt(rows[0]), rule]
        lines += [fmt(row) for row in rows[1:]]
        lines += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}"]
        print_fn("\n".join(lines))

    def get_config(self):
        raise NotImplementedError

    _format_version = SEQUENTIAL_VERSION  # the file format version save() writes

    # -- files --------------------------------------------------------------------------
    def save(self, path):
        """Write the architecture and weights to `path` (one .npz file, written atomically)."""
        self._require_built("save")
        path = os.fspath(path)
        arrays = {}
        entries = []
        for kind, named in (("param", self.named_parameters()), ("buffer", self.named_buffers())):
            for key, value in named.items():
                arrays[key] = value
                entries.append({"name": key, "kind": kind, "shape": list(value.shape),
                                "dtype": value.dtype.name, "sha256": _digest(value)})
        config = self.get_config()
        header = {"format": FORMAT, "version": self._format_version, "model": config,
                  "model_sha256": _config_digest(config), "arrays": entries}
        arrays[HEADER_KEY] = np.array(json.dumps(header))
        with naming_path(path, "the model file"):
            save_npz_atomically(path, arrays)


class Sequential(Network):
    """Sequential(layers=None, input_shape=None, dtype='float32', seed=None, name=None,
    data_format='channels_first')

    A stack of layers applied in order. With `input_shape` (no batch axis, e.g. (1, 28, 28))
    the model is built at once; otherwise it is built by the first forward / fit. `seed`
    makes the weight initialisation reproducible. New models are in training mode; predict()
    and Trainer.evaluate() always run in eval mode.

    data_format='channels_last' takes images as Keras feeds them, (N, H, W, C), in fit,
    evaluate, predict and forward (and `input_shape` as (H, W, C)): they are transposed once
    where they enter the model, and the layers, their kernels and `model.input_shape` stay
    (C, H, W). Image-shaped outputs keep the layers' (N, C, H, W).
    """

    def __init__(self, layers=None, input_shape=None, dtype="float32", seed=None, name=None,
                 data_format="channels_first"):
        super().__init__(dtype, seed, name, default_name="sequential", data_format=data_format)
        if layers is not None:
            if isinstance(layers, Layer):
                layers = [layers]
            for layer in layers:
                self.add(layer)
        if input_shape is not None:
            self.build(channels_first_shape(as_shape(input_shape, "input_shape"), self.data_format))

    # -- construction -------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (built at once when the model already is)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential holds cconv.layers.Layer objects, got {type(layer).__name__}")
        check_distinct(self.layers + [layer], f"the model {self.name!r}")
        name_layers([layer], self.layers)
        if self.built:
            self.output_shape = self._build_layer(len(self.layers), layer, self.output_shape)
        layer.train(self.training)
        self.layers.append(layer)

    def _build_layer(self, index, layer, shape, rng=None):
        try:
            return layer.build(shape, self.dtype, self._rng if rng is None else rng)
        except ValueError as exc:
            raise ValueError(f"layer {index} ({layer.describe()}): {exc}") from None

    def build(self, input_shape, rng=None):
        """Create every layer's parameters for inputs of shape (N,) + input_shape; `rng` draws
        their initial values (default: a generator seeded with the model's seed)."""
        input_shape = as_shape(input_shape, "input_shape")
        if not self.layers:
            raise ValueError("the model has no layers")
        self._rng = np.random.default_rng(self.seed)
        shape = input_shape
        for index, layer in enumerate(self.layers):
            shape = self._build_layer(index, layer, shape, rng)
        self.input_shape = input_shape
        self.output_shape = shape
        return self

    def output_layer(self):
        return self.layers[-1] if self.layers else None

    # -- computation --------------------------------------------------------------------
    def forward_unchecked(self, x):
        """forward for a batch x that check_input returned (or a part of one) of a built model;
        the layers pass each other their outputs unchecked."""
        for layer in self.layers:
            x = layer.forward_unchecked(x)
        return x

    def backward(self, grad_out, need_input_grad=True):
        """Back-propagate dL/doutput through every layer; returns dL/dinput (None when
        need_input_grad is False, which spares the first layer that work). The last layer
        checks grad_out; the others take the gradients that the layers pass back unchecked."""
        need_input_grad = as_bool(need_input_grad, "need_input_grad")
        last = len(self.layers) - 1
        if last < 0:
            return grad_out
        grad_out = self.layers[last].backward(grad_out, need_input_grad=need_input_grad or last > 0)
        for i in range(last - 1, -1, -1):
            grad_out = self.layers[i].backward_unchecked(grad_out, need_input_grad=need_input_grad or i > 0)
        return grad_out

    def layer_output(self, x, layer):
        index = next(i for i, item in enumerate(self.layers) if item is layer)
        for item in self.layers[:index + 1]:
            x = item.forward_unchecked(x)
        return x

    def _inference_runner(self):
        """Each Conv2D followed by a BatchNorm2D (and a ReLU) runs as one convolution with the
        batch norm folded into its weights (cconv.layers.folding)."""
        steps = inference_steps(self.layers)

        def run(y):
            for step in steps:
                y = step.forward_unchecked(y)
            return y
        return run

    # -- description --------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype.name,
                  "input_shape": None if self.input_shape is None else list(self.input_shape),
                  "layers": [layer_to_json(layer) for layer in self.layers]}
        if self.data_format != "channels_first":  # (C, H, W) input_shape either way
            config["data_format"] = self.data_format
        return config

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        inner = ",\n".join("    " + repr(layer) for layer in self.layers)
        layout = f", data_format={self.data_format!r}" if self.data_format != "channels_first" else ""
        shape = None if self.input_shape is None else channels_last_shape(self.input_shape, self.data_format)
        return f"Sequential([\n{inner}],\n    input_shape={shape}, dtype={self.dtype.name!r}{layout})"


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _config_digest(config):
    """SHA-256 of the architecture, so that the header is checked like the arrays are."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def load_model(path):
    """Rebuild a model saved by Sequential.save or Model.save.

    Exceptions, one type per kind of failure:
      OSError (FileNotFoundError, IsADirectoryError, PermissionError, ...) when the file
        system cannot give the file: missing, a directory or other non-regular file,
        unreadable;
      ValueError for anything that is not an intact cconv model file: not a zip/.npz,
        truncated, corrupt (bit flips included), another program's .npz, an unknown format
        version or layer, a header nested too deeply, a graph that is not one (an unknown
        node, a cycle, a dangling input), or arrays that do not match the architecture or
        their recorded checksums.
    The arrays' shapes are checked against the archive before they are read, and the declared
    architecture may not need more parameter data than the file holds, so a small crafted file
    cannot make the loader allocate or initialise a huge model. Nothing from the file is ever
    unpickled or executed.
    """
    path = os.fspath(path)
    with open_npz(path, "cannot load cconv model") as data:
        if HEADER_KEY not in data.files:
            raise ValueError("it is an .npz file without a cconv header (not written by "
                             "cconv's Sequential.save)")
        header = _parse_header(data[HEADER_KEY])
        model = _model_from_header(header, ParamBudget(_array_bytes_limit(path, data)))
        return _fill_model(model, header, data)


def _array_bytes_limit(path, data):
    """The most array data the archive can hold: its size on disk (cconv saves uncompressed),
    or deflate's largest expansion of it when an entry is compressed."""
    size = os.path.getsize(path)
    if any(info.compress_type != zipfile.ZIP_STORED for info in data.zip.infolist()):
        size *= 1032
    return size


def _parse_header(raw):
    if raw.shape != () or raw.dtype.kind != "U":
        raise ValueError("the cconv header is not a JSON string")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ValueError(f"the cconv header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"the header does not declare format {FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"the header has no valid format version: {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"format version {version} is newer than this cconv supports "
                         f"({FORMAT_VERSION}); upgrade cconv")
    if version < 1:
        raise ValueError(f"unknown format version {version}")
    if not isinstance(header.get("model"), dict) or not isinstance(header.get("arrays"), list):
        raise ValueError("the header lacks the 'model' or 'arrays' entry")
    # files saved before the architecture had a checksum have none to check
    if "model_sha256" in header and header["model_sha256"] != _config_digest(header["model"]):
        raise ValueError("the architecture does not match its recorded checksum (the file was "
                         "modified or corrupted)")
    return header


def _model_from_header(header, budget):
    """The model the header describes, its parameters allocated (uninitialised) from `budget`."""
    config = header["model"]
    if config.get("class") == "Model":
        if header["version"] < 2:
            raise ValueError("a graph model needs format version 2, the header declares "
                             f"{header['version']}")
        from cconv.graph import model_from_config  # graph.py builds on this module
        return model_from_config(config, budget)
    if "class" in config:
        raise ValueError(f"unknown model class {config['class']!r:.100}; expected 'Model' or none "
                         f"(a Sequential)")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError("the architecture has no layer list")
    input_shape = config.get("input_shape")
    if not isinstance(input_shape, list):
        raise ValueError("the architecture has no input shape")
    name = config.get("name", "sequential")
    try:
        model = Sequential([layer_from_json(item) for item in layers],
                           dtype=config.get("dtype", "float32"), name=name,
                           data_format=config.get("data_format", "channels_first"))
        return model.build(input_shape, rng=budget)
    except TypeError as exc:
        raise ValueError(f"invalid architecture: {exc}") from None


def _fill_model(model, header, data):
    expected = {f"{kind}:{k}": v for kind, named in (("param", model.named_parameters()),
                                                      ("buffer", model.named_buffers()))
                for k, v in named.items()}
    listed = {}
    for entry in header["arrays"]:
        if not isinstance(entry, dict) or not all(k in entry for k in ("name", "kind", "shape", "sha256")):
            raise ValueError(f"malformed array entry in the header: {entry!r:.200}")
        listed[f"{entry['kind']}:{entry['name']}"] = entry
    if set(listed) != set(expected):
        missing = sorted(set(expected) - set(listed))
        extra = sorted(set(listed) - set(expected))
        raise ValueError(f"the arrays listed do not match the architecture (missing {missing[:5]}, "
                         f"unexpected {extra[:5]})")
    stored = set(data.files) - {HEADER_KEY}
    names = {k.split(":", 1)[1] for k in expected}
    if stored != names:
        raise ValueError(f"the archive's arrays do not match the architecture (missing "
                         f"{sorted(names - stored)[:5]}, unexpected {sorted(stored - names)[:5]})")
    for key, target in expected.items():  # before reading any: a header may declare anything
        name = key.split(":", 1)[1]
        shape, dtype = stored_array_header(data, name)
        if shape != target.shape or dtype != target.dtype:
            raise ValueError(f"array {name!r} has shape {shape} and dtype {dtype}; the "
                             f"architecture needs {target.shape} {target.dtype}")
    state = {}
    for key, target in expected.items():
        name = key.split(":", 1)[1]
        value = data[name]
        if _digest(value) != listed[key]["sha256"]:
            raise ValueError(f"array {name!r} does not match its recorded checksum (the file was "
                             f"modified or corrupted)")
        state[name] = value
    model.load_state_dict(state)
    return model
