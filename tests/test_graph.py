"""Tests of the functional API (cconv.Input, cconv.Model, Add, Concatenate), its save / load
(graph validation), the dense-prediction cross-entropy and metrics, and train_on_batch /
test_on_batch.

Oracles: PyTorch (the same graph with copied weights, float64), float64 finite differences
through whole graphs with fan-out, and naive NumPy loops for the metrics."""
import json
import os
import zipfile

import numpy as np
import pytest

from reference import numerical_gradient, rel_error

import cconv
from cconv import functional as F
from cconv import losses, metrics
from cconv.layers import (Add, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten,
                          GlobalAvgPool2D, MaxPool2D, ReLU, Residual, Tanh)
from cconv.model import _config_digest
from cconv.trainer import TrainingDivergedError

torch = pytest.importorskip("torch")


def branchy(dtype="float64", seed=0):
    """A graph with every kind of joint: the input feeds two nodes, a conv output feeds three
    (two branches and an Add), an Add and a Concatenate merge them."""
    inputs = cconv.Input((2, 6, 6), dtype=dtype)
    a = Conv2D(3, 3, padding=1, activation="relu")(inputs)
    b = Conv2D(3, 1)(inputs)                              # the input's second reader
    s = Add()([a, b])
    left = Tanh()(Conv2D(3, 3, padding=1)(s))
    right = Conv2D(2, 1, activation="relu")(s)
    joined = Concatenate()([left, right, s])              # s also goes straight in
    x = MaxPool2D(2)(joined)
    outputs = Dense(4)(Flatten()(x))
    return cconv.Model(inputs, outputs, seed=seed, name="branchy")


class TorchBranchy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.a, self.b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 1)
        self.left, self.right = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 2, 1)
        self.fc = nn.Linear(8 * 3 * 3, 4)

    def forward(self, x):
        s = torch.relu(self.a(x)) + self.b(x)
        joined = torch.cat([torch.tanh(self.left(s)), torch.relu(self.right(s)), s], 1)
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(joined, 2), 1))


def copy_into_torch(model, net, order):
    """Copy cconv's weights into the torch modules `order` (in model.layers order of the
    layers with parameters); Dense weights are (in, out), torch's Linear (out, in)."""
    layers = [layer for layer in model.layers if layer.params]
    assert len(layers) == len(order)
    with torch.no_grad():
        for layer, module in zip(layers, order):
            weight = layer.params["weight"]
            module.weight.copy_(torch.from_numpy(weight.T if isinstance(layer, Dense) else weight))
            module.bias.copy_(torch.from_numpy(layer.params["bias"]))


def test_graph_forward_and_backward_match_torch(rng):
    model = branchy()
    net = TorchBranchy().double()
    copy_into_torch(model, net, [net.a, net.b, net.left, net.right, net.fc])
    x = rng.standard_normal((3, 2, 6, 6))
    g = rng.standard_normal((3, 4))
    y = model.forward(x)
    dx = model.backward(g)
    tx = torch.from_numpy(x).requires_grad_()
    ty = net(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    layers = [layer for layer in model.layers if layer.params]
    for layer, module in zip(layers, [net.a, net.b, net.left, net.right, net.fc]):
        grad = layer.grads["weight"]
        expected = module.weight.grad.numpy()
        np.testing.assert_allclose(grad.T if isinstance(layer, Dense) else grad, expected,
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads["bias"], module.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_graph_gradients_finite_differences(rng):
    """Gradient accumulation where tensors fan out (the input into two nodes, one tensor into
    three and into one Add twice), checked against central differences of the loss."""
    inputs = cconv.Input((2, 4, 4), dtype="float64")
    a = Conv2D(2, 3, padding=1)(inputs)
    t = Tanh()(a)
    doubled = Add()([t, t, Conv2D(2, 1)(inputs)])          # t twice in one Add
    both = Concatenate()([doubled, t])
    outputs = Dense(3)(Flatten()(Conv2D(2, 3, stride=2, padding=1)(both)))
    model = cconv.Model(inputs, outputs, seed=3)
    x = rng.standard_normal((2, 2, 4, 4))
    g = rng.standard_normal((2, 3))

    def value():
        return model.forward(x)

    value()
    dx = model.backward(g)
    analytic = [dx] + [grad.copy() for grad in model.gradients()]
    numeric = [numerical_gradient(value, x, g, 1e-6)]
    numeric += [numerical_gradient(value, p, g, 1e-6) for p in model.parameters()]
    for got, expected in zip(analytic, numeric):
        assert rel_error(got, expected) < 1e-6


def test_backward_without_input_gradient_gives_the_same_parameter_gradients(rng):
    model = branchy()
    x = rng.standard_normal((2, 2, 6, 6))
    g = rng.standard_normal((2, 4))
    model.forward(x)
    model.backward(g)
    full = [grad.copy() for grad in model.gradients()]
    model.forward(x)
    assert model.backward(g, need_input_grad=False) is None
    for a, b in zip(full, model.gradients()):
        np.testing.assert_array_equal(a, b)


def test_resnet_block_as_graph_equals_residual_layer_in_sequential(rng):
    """The same block written with Add and with the Residual layer computes the same numbers."""
    inputs = cconv.Input((3, 5, 5), dtype="float64")
    y = Conv2D(3, 3, padding=1)(ReLU()(Conv2D(3, 3, padding=1)(inputs)))
    outputs = ReLU()(Add()([y, inputs]))
    graph = cconv.Model(inputs, outputs, seed=1)
    stacked = cconv.Sequential([Residual([Conv2D(3, 3, padding=1), ReLU(), Conv2D(3, 3, padding=1)],
                                         activation="relu")], input_shape=(3, 5, 5), dtype="float64")
    stacked.load_state_dict({f"0.layers.{i}.{k}": v for i, k, v in [
        (0, "weight", graph.layers[0].params["weight"]), (0, "bias", graph.layers[0].params["bias"]),
        (2, "weight", graph.layers[2].params["weight"]), (2, "bias", graph.layers[2].params["bias"])]})
    x = rng.standard_normal((2, 3, 5, 5))
    g = rng.standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(graph.forward(x), stacked.forward(x), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(graph.backward(g), stacked.backward(g), rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------------------ structure
def test_symbolic_shapes_names_summary_and_counts():
    model = branchy()
    assert model.input_shape == (2, 6, 6) and model.output_shape == (4,)
    # each layer after every layer it reads
    position = {id(layer): i for i, layer in enumerate(model.layers)}
    for node in model._nodes:
        assert all(t.layer is None or position[id(t.layer)] < position[id(node.layer)] for t in node.inputs)
    expected = (2 * 3 * 9 + 3) + (2 * 3 + 3) + (3 * 3 * 9 + 3) + (3 * 2 + 2) + (72 * 4 + 4)
    assert model.count_params() == expected == sum(p.size for p in model.parameters())
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Connected to" in text and "input_1 (Input)" in text
    assert "add_1 (Add)" in text and "conv2d_1, conv2d_2" in text
    assert "concatenate_1 (Concatenate)" in text and "(8, 6, 6)" in text
    assert f"Total params: {expected:,}" in text


def test_layer_call_on_symbolic_tensor_builds_and_reports_shape_errors():
    x = cconv.Input((3, 8, 8))
    y = Conv2D(4, 3)(x)
    assert y.shape == (4, 6, 6) and y.dtype == np.float32 and "Conv2D" in repr(y)
    with pytest.raises(ValueError, match=r"Add.*one shape.*\(3, 8, 8\).*\(4, 6, 6\)"):
        Add()([x, y])
    with pytest.raises(ValueError, match="every dimension but axis 1"):
        Concatenate()([x, y])
    with pytest.raises(ValueError, match="axis 0"):
        Concatenate(axis=0)
    with pytest.raises(ValueError, match=r"Dense.*called on \(N, 4, 6, 6\).*Flatten"):
        Dense(3)(y)
    with pytest.raises(TypeError, match="takes one tensor"):
        ReLU()([x, y])
    with pytest.raises(TypeError, match="list of tensors"):
        Add()(x)
    with pytest.raises(TypeError, match="not a symbolic tensor"):
        Add()([x, np.zeros((1, 3, 8, 8), np.float32)])
    with pytest.raises(TypeError, match="dtypes"):
        Add()([x, cconv.Input((3, 8, 8), dtype="float64")])
    with pytest.raises(TypeError, match="holds no values"):
        np.asarray(y)
    # Concatenate along another axis, counted with the batch axis as 0 (negative from the end)
    z = Concatenate(axis=-1)([x, cconv.Input((3, 8, 2))])
    assert z.shape == (3, 8, 10)


def test_a_layer_object_at_two_places_is_refused():
    x = cconv.Input((4,))
    dense = Dense(4)
    y = dense(ReLU()(dense(x)))
    with pytest.raises(ValueError, match=r"same Dense object at two places \(layers 0 and 2\)"):
        cconv.Model(x, y)
    inner = Conv2D(2, 1)
    x = cconv.Input((2, 3, 3))
    y = Residual([inner])(x)
    z = Residual([inner])(y)  # the same conv nested in two blocks
    with pytest.raises(ValueError, match="same Conv2D object twice"):
        cconv.Model(x, z)


def test_disconnected_and_empty_graphs_are_refused():
    x, other = cconv.Input((4,)), cconv.Input((4,))
    y = Add()([Dense(4)(x), Dense(4)(other)])
    with pytest.raises(ValueError, match="not the model's input"):
        cconv.Model(x, y)
    with pytest.raises(ValueError, match="no layers"):
        cconv.Model(x, x)
    with pytest.raises(ValueError, match="one input and one output"):
        cconv.Model([x, other], y)
    with pytest.raises(TypeError, match="symbolic tensors"):
        cconv.Model(x, np.zeros(3))
    with pytest.raises(ValueError, match="distinct names"):
        x = cconv.Input((4,))
        cconv.Model(x, Dense(2, name="d")(Dense(4, name="d")(x)))


def test_merge_layers_on_arrays(rng):
    a, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 5, 4, 4))
    cat = Concatenate()
    np.testing.assert_array_equal(cat([a, b]), np.concatenate([a, b], axis=1))
    g = rng.standard_normal((2, 8, 4, 4))
    da, db = cat.backward(g)
    np.testing.assert_array_equal(da, g[:, :3])
    np.testing.assert_array_equal(db, g[:, 3:])
    assert da.flags.c_contiguous and db.flags.c_contiguous
    add = Add()
    np.testing.assert_array_equal(add([a, b[:, :3], a]), a + b[:, :3] + a)
    grads = add.backward(g[:, :3])
    assert len(grads) == 3 and all(np.array_equal(d, g[:, :3]) for d in grads)
    with pytest.raises(ValueError, match="batch sizes"):
        Add()([a, a[:1]])
    with pytest.raises(TypeError, match="list of arrays"):
        Add()(a)


# ------------------------------------------------------------------------------ save / load
def test_save_load_round_trip_is_exact(tmp_path, rng):
    model = branchy(dtype="float32")
    inputs = cconv.Input((2, 6, 6))
    x = BatchNorm2D()(Conv2D(3, 3, padding=1)(inputs))
    outputs = Dense(2)(Dropout(0.5)(GlobalAvgPool2D()(ReLU()(Add()([x, Conv2D(3, 1)(inputs)])))))
    bn_model = cconv.Model(inputs, outputs, seed=2)
    bn_model.forward(rng.standard_normal((4, 2, 6, 6)))  # moves the running statistics
    for m in (model, bn_model):
        path = tmp_path / f"{m.name}.npz"
        m.save(path)
        loaded = cconv.load_model(path)
        assert isinstance(loaded, cconv.Model)
        assert [type(l) for l in loaded.layers] == [type(l) for l in m.layers]
        assert [l.name for l in loaded.layers] == [l.name for l in m.layers]
        state, loaded_state = m.state_dict(), loaded.state_dict()
        assert state.keys() == loaded_state.keys()
        assert all(np.array_equal(state[k], loaded_state[k]) for k in state)
        x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
        np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
        with zipfile.ZipFile(path) as archive:
            header = json.loads(str(np.load(archive.open("__cconv__.npy"))))
        assert header["version"] == 2 and header["model"]["class"] == "Model"


def craft(path, config, version=2, arrays=None):
    header = {"format": "cconv-model", "version": version, "model": config,
              "model_sha256": _config_digest(config), "arrays": []}
    np.savez(path, __cconv__=np.array(json.dumps(header)), **(arrays or {}))


def graph_config(nodes, output="b"):
    return {"class": "Model", "name": "m", "dtype": "float32", "input_shape": [4], "input": "in",
            "nodes": nodes, "output": output}


def node(name, inputs, cls="Dense", **config):
    config = dict({"units": 4} if cls == "Dense" else {}, **config)
    return {"name": name, "layer": {"class": cls, "config": dict(config, name=name)}, "inputs": inputs}


@pytest.mark.parametrize("nodes, output, message", [
    ([node("a", ["in"]), node("b", ["zzz"])], "b", "unknown node 'zzz'"),
    ([node("a", ["b"]), node("b", ["a"])], "b", "cycle"),
    ([node("a", ["in"]), node("b", ["b"])], "b", "cycle"),
    ([node("a", []), node("b", ["a"])], "b", "no input"),
    ([node("a", ["in"]), node("b", ["in"])], "b", "do not lead to the output"),
    ([node("a", ["in"]), node("b", ["a"])], "c", "output 'c' is not a node"),
    ([node("a", ["in"]), node("a", ["a"])], "a", "two nodes are named 'a'"),
    ([node("a", ["in", "in"])], "a", "cannot take 2 input"),
    ([node("a", ["in"], cls="Add")], "a", "Add cannot take 1 input"),
    ([node("a", ["in"], cls="Eval")], "a", "unknown layer class"),
    ([{"name": "a", "layer": {"class": "Dense", "config": {"units": 4, "name": "x"}}, "inputs": ["in"]}],
     "a", "holds a layer named 'x'"),
    ([{"name": "a", "inputs": "in"}], "a", "a node must be"),
    ([node("a", ["in"]), node("b", ["a", "in"], cls="Add"), node("c", ["b"], cls="Dense", units=2**40)],
     "c", "units"),
])
def test_load_refuses_malformed_graphs(tmp_path, nodes, output, message):
    path = tmp_path / "bad.npz"
    craft(path, graph_config(nodes, output))
    with pytest.raises(ValueError, match=message):
        cconv.load_model(path)


def test_load_refuses_a_huge_graph_before_allocating(tmp_path):
    path = tmp_path / "bomb.npz"
    craft(path, graph_config([node("a", ["in"]), node("b", ["a"], units=200000)]) | {"input_shape": [50000]})
    assert os.path.getsize(path) < 4096
    with pytest.raises(ValueError, match="more parameter data"):
        cconv.load_model(path)


def test_load_refuses_a_graph_in_a_version_1_file_and_a_tampered_header(tmp_path):
    path = tmp_path / "v1.npz"
    craft(path, graph_config([node("a", ["in"]), node("b", ["a"])]), version=1)
    with pytest.raises(ValueError, match="version 2"):
        cconv.load_model(path)
    model = branchy(dtype="float32")
    good = tmp_path / "good.npz"
    model.save(good)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "__cconv__.npy":  # a NumPy str array: UTF-32 text
                swapped = data.replace('"inputs": ["conv2d_1", "conv2d_2"]'.encode("utf-32-le"),
                                       '"inputs": ["conv2d_2", "conv2d_1"]'.encode("utf-32-le"))
                assert swapped != data
                data = swapped
            dst.writestr(info, data)
    with pytest.raises(ValueError, match="checksum"):
        cconv.load_model(bad)


# ------------------------------------------------------------------------------ training
def digits_graph(seed=0):
    inputs = cconv.Input((1, 8, 8))
    a = Conv2D(8, 3, padding=1, activation="relu")(inputs)
    b = Conv2D(8, 3, padding=1, activation="relu")(a)
    x = MaxPool2D(2)(Concatenate()([a, Add()([a, b])]))
    outputs = Dense(10)(Flatten()(x))
    return cconv.Model(inputs, outputs, seed=seed)


def test_trainer_fits_a_graph_model_reproducibly():
    (x, y), (xt, yt) = cconv.datasets.load_digits()
    runs = []
    for _ in range(2):
        model = digits_graph()
        trainer = cconv.Trainer(model, optimizer=cconv.optim.Adam(3e-3))
        history = trainer.fit(x[:600], y[:600], epochs=3, batch_size=32, seed=1, verbose=0)
        runs.append((history["loss"], model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert runs[0][0][-1] < runs[0][0][0] * 0.5
    assert trainer.evaluate(xt, yt)["accuracy"] > 0.8


def test_keras_style_compile_fit_evaluate_on_a_graph_model():
    (x, y), _ = cconv.datasets.load_digits()
    model = digits_graph(seed=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x[:300], y[:300], epochs=2, batch_size=50, verbose=0, seed=0)
    loss, accuracy = model.evaluate(x[300:500], y[300:500])
    assert set(history.keys()) == {"loss", "accuracy"} and 0 <= accuracy <= 1 and loss > 0
    assert model.predict(x[:7]).shape == (7, 10)


class OneRankComm:
    """A single-rank stand-in for an mpi4py communicator (what DistributedTrainer calls)."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def allgather(self, value):
        return [value]

    def bcast(self, value, root=0):
        return value

    def Allreduce(self, send, recv, op=None):
        pass

    def Abort(self, code):
        raise SystemExit(code)


def test_distributed_trainer_on_one_rank_follows_the_trainer(monkeypatch):
    """DistributedTrainer's code path (buffers, metrics statistics, checkpoints) on a graph model,
    with a one-rank communicator; the MPI runs of tests/test_distributed.py use real ranks."""
    import types

    from cconv import distributed
    monkeypatch.setattr(distributed, "_mpi", lambda: types.SimpleNamespace(
        COMM_WORLD=OneRankComm(), IN_PLACE=None, SUM=None))
    (x, y), _ = cconv.datasets.load_digits()
    x, y = x[:200], y[:200]
    reference = digits_graph()
    cconv.Trainer(reference, optimizer=cconv.optim.SGD(0.05, momentum=0.9)).fit(
        x, y, epochs=2, batch_size=40, seed=3, verbose=0)
    model = digits_graph()
    trainer = distributed.DistributedTrainer(model, optimizer=cconv.optim.SGD(0.05, momentum=0.9),
                                             comm=OneRankComm())
    history = trainer.fit(x, y, epochs=2, batch_size=40, seed=3, verbose=0)
    for key, value in reference.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    assert set(history.keys()) == {"loss", "accuracy"}
    assert trainer.evaluate(x, y)["accuracy"] == cconv.Trainer(reference).evaluate(x, y)["accuracy"]


# ------------------------------------------------------------------------------ dense prediction
def test_cross_entropy_on_maps_matches_torch(rng):
    logits = rng.standard_normal((3, 4, 5, 6))
    labels = rng.integers(0, 4, (3, 5, 6))
    probs = rng.random((3, 4, 5, 6))
    probs /= probs.sum(axis=1, keepdims=True)
    for target in (labels, probs):
        t_logits = torch.from_numpy(logits).requires_grad_()
        t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(target))
        t_loss.backward()
        assert F.cross_entropy(logits, target) == pytest.approx(t_loss.item(), rel=1e-12)
        np.testing.assert_allclose(F.cross_entropy_backward(logits, target), t_logits.grad.numpy(),
                                   rtol=1e-10, atol=1e-15)
    # the loss object the Trainer uses, also on probabilities (a model ending in a softmax)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss, grad = losses.CrossEntropy(from_logits=False)(softmax, labels)
    picked = np.take_along_axis(softmax, labels[:, None], axis=1)
    assert loss == pytest.approx(-np.log(picked).mean(), rel=1e-12)
    expected = np.zeros_like(softmax)
    np.put_along_axis(expected, labels[:, None], -1 / picked / labels.size, axis=1)
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_cross_entropy_on_maps_refuses_bad_targets():
    logits = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"labels must have shape \(N, 4, 4\)"):
        F.cross_entropy(logits, np.zeros((2, 4, 5), int))
    with pytest.raises(ValueError, match=r"labels must be in 0..2"):
        F.cross_entropy(logits, np.full((2, 4, 4), 3))
    with pytest.raises(ValueError, match="flat"):
        F.cross_entropy(logits, np.zeros(2, int))
    with pytest.raises(ValueError, match="probabilities must have shape"):
        F.cross_entropy(logits, np.zeros((2, 2, 4, 4)))


def naive_confusion(true, pred, classes):
    matrix = np.zeros((classes, classes), int)
    for t, p in zip(true.ravel(), pred.ravel()):
        matrix[t, p] += 1
    return matrix


def naive_mean_iou(true, pred, classes):
    ious = []
    for c in range(classes):
        inter = np.sum((true == c) & (pred == c))
        union = np.sum((true == c) | (pred == c))
        if union:
            ious.append(inter / union)
    return np.mean(ious) if ious else 0.0


def test_metric_functions_match_naive_loops(rng):
    true = rng.integers(0, 5, (3, 7, 9))
    pred = np.where(rng.random(true.shape) < 0.6, true, rng.integers(0, 5, true.shape))
    pred[pred == 4] = 3  # class 4 never predicted; still present in the targets
    np.testing.assert_array_equal(metrics.confusion_matrix(true, pred, 5), naive_confusion(true, pred, 5))
    assert metrics.mean_iou(true, pred, 6) == pytest.approx(naive_mean_iou(true, pred, 6), rel=1e-12)
    assert metrics.pixel_accuracy(true, pred) == pytest.approx(np.mean(true == pred))
    with pytest.raises(ValueError, match="0..4"):
        metrics.confusion_matrix(true, pred + 2, 5)
    with pytest.raises(ValueError, match="one shape"):
        metrics.mean_iou(true, pred[0], 5)
    with pytest.raises(TypeError, match="integer"):
        metrics.pixel_accuracy(true, pred.astype(float))


def segmentation_net(seed=0):
    inputs = cconv.Input((1, 8, 8))
    x = Conv2D(6, 3, padding=1, activation="relu")(inputs)
    outputs = Conv2D(3, 1)(Concatenate()([x, inputs]))
    return cconv.Model(inputs, outputs, seed=seed)


def segmentation_data(rng, n=24):
    x = rng.random((n, 1, 8, 8), dtype=np.float32)
    y = np.digitize(x[:, 0], [0.33, 0.66])  # three classes by brightness: learnable per pixel
    return x, y


def test_trainer_logs_pixel_accuracy_and_mean_iou_for_segmentation(rng):
    x, y = segmentation_data(rng)
    model = segmentation_net()
    trainer = cconv.Trainer(model, optimizer=cconv.optim.Adam(0.05), metrics=["accuracy", "mean_iou"])
    history = trainer.fit(x, y, epochs=15, batch_size=8, seed=0, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    logs = trainer.evaluate(x, y, batch_size=5)  # batches that split the statistics
    predicted = model.predict(x).argmax(axis=1)
    assert logs["accuracy"] == pytest.approx(np.mean(predicted == y))
    assert logs["mean_iou"] == pytest.approx(naive_mean_iou(y, predicted, 3))
    assert logs["accuracy"] > 0.8
    out = model.predict(x)
    t_loss = torch.nn.functional.cross_entropy(torch.from_numpy(out.astype(np.float64)), torch.from_numpy(y))
    assert logs["loss"] == pytest.approx(t_loss.item(), rel=1e-5)
    with pytest.raises(ValueError, match="MeanIoU"):
        cconv.Trainer(model, metrics=[metrics.MeanIoU(5)]).evaluate(x, y)
    with pytest.raises(ValueError, match="needs a classification loss"):
        cconv.Trainer(model, loss="mse", metrics=["mean_iou"])
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        cconv.Trainer(model, metrics=["f1"])


# ------------------------------------------------------------------------------ one batch
def torch_twin(model):
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)).double()
    copy_into_torch(model, net, [net[0], net[3]])
    return net


def test_train_on_batch_is_one_sgd_step_like_torch(rng):
    model = cconv.Sequential([Conv2D(4, 3, padding=1, activation="relu"), Flatten(), Dense(10)],
                             input_shape=(1, 8, 8), dtype="float64", seed=0)
    net = torch_twin(model)
    trainer = cconv.Trainer(model, optimizer=cconv.optim.SGD(0.1, momentum=0.9))
    t_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = rng.standard_normal((6, 1, 8, 8))
    y = rng.integers(0, 10, 6)
    for _ in range(3):
        logs = trainer.train_on_batch(x, y)
        t_opt.zero_grad()
        out = net(torch.from_numpy(x))
        t_loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
        t_loss.backward()
        t_opt.step()
        assert logs["loss"] == pytest.approx(t_loss.item(), rel=1e-12)
        assert logs["accuracy"] == np.mean(out.detach().numpy().argmax(1) == y)
    np.testing.assert_allclose(model.layers[0].params["weight"], net[0].weight.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.layers[2].params["weight"].T, net[3].weight.detach().numpy(), rtol=1e-10)
    before = model.state_dict()
    test_logs = trainer.test_on_batch(x, y)
    assert test_logs == trainer.evaluate(x, y)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    model.compile(optimizer="sgd", loss="cross_entropy", metrics=["accuracy"])
    loss, accuracy = model.test_on_batch(x, y)
    assert loss == pytest.approx(test_logs["loss"]) and accuracy == test_logs["accuracy"]
    assert model.train_on_batch(x, y, return_dict=True).keys() == {"loss", "accuracy"}


def test_train_on_batch_with_a_nan_loss_changes_nothing(rng):
    model = cconv.Sequential([Conv2D(2, 3), BatchNorm2D(), Flatten(), Dense(3)], input_shape=(1, 5, 5), seed=0)
    trainer = cconv.Trainer(model, optimizer=cconv.optim.SGD(0.1))
    before = model.state_dict()
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    model.layers[-1].params["weight"][0, 0] = np.inf
    before = model.state_dict()
    with pytest.raises(TrainingDivergedError, match="not applied"):
        trainer.train_on_batch(x, np.zeros(4, int))
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="labels must be in"):
        trainer.train_on_batch(x, np.full(4, 3))
