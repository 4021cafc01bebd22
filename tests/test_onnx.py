"""Tests of cconv.onnx: export checked by onnx.checker and ONNX Runtime against cconv's own
outputs, load back (round trips stable), PyTorch-exported networks against PyTorch's outputs,
fine-tuning a loaded model, hostile files; and load_torch_state_dict, channels_last models and
the lazily imported submodules. Skipped without onnx and onnxruntime (CI installs both)."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import cconv  # noqa: E402
import cconv.onnx  # noqa: E402
from cconv import layers as L  # noqa: E402
from cconv.layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten,  # noqa: E402
                          GlobalAvgPool2D, LeakyReLU, LPPool2D, MaxPool2D, ReLU, Residual, Sigmoid,
                          Softmax, Tanh)

TOLERANCE = 1e-5  # max |error| / max |output|, float32


def rel_error(actual, expected):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def run_onnx(path, x):
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def randomise_batch_norms(model, rng):
    """Running statistics and affine parameters away from their initial 0 / 1, so that a wrong
    mapping shows."""
    for layer in cconv.model.walk_layers(model.layers):
        if isinstance(layer, BatchNorm2D):
            c = layer.params["gamma"].shape[0]
            layer.params["gamma"][:] = rng.uniform(0.5, 1.5, c)
            layer.params["beta"][:] = rng.standard_normal(c)
            layer.buffers["running_mean"][:] = rng.standard_normal(c)
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, c)
        elif "bias" in layer.params:
            layer.params["bias"][:] = rng.standard_normal(layer.params["bias"].shape) * 0.1
    return model


def graph_signature(proto):
    """What a model computes, independent of tensor names: ops, attributes, constants' values."""
    return [(node.op_type, sorted((a.name, str(helper.get_attribute_value(a))) for a in node.attribute))
            for node in proto.graph.node], [numpy_helper.to_array(t).tolist() for t in proto.graph.initializer]


def check_export(model, path, rng, opset=cconv.onnx.DEFAULT_OPSET):
    """Export, check, run in ONNX Runtime at batch 1 and 7; load back and export again."""
    proto = cconv.onnx.export(model, path, opset=opset)
    onnx.checker.check_model(onnx.load(os.fspath(path)), full_check=True)
    shape = model.input_shape if getattr(model, "data_format", "channels_first") == "channels_first" else \
        model.input_shape[1:] + model.input_shape[:1]
    for batch in (1, 7):
        x = rng.standard_normal((batch,) + tuple(shape)).astype(np.float32)
        expected = model.predict(x)
        assert rel_error(run_onnx(path, x), expected) <= TOLERANCE
    loaded = cconv.onnx.load(path)
    assert not loaded.training
    x = rng.standard_normal((3,) + tuple(shape)).astype(np.float32)
    assert rel_error(loaded.predict(x), model.predict(x)) <= TOLERANCE
    again = cconv.onnx.export(loaded, str(path) + ".again.onnx", opset=opset)
    assert graph_signature(again) == graph_signature(proto)
    return proto, loaded


# -- export of every built-in layer --------------------------------------------------------------

def pools_with_overhang():
    """Poolings whose ceil_mode adds windows running past the padded 12x12 input (checked below)."""
    return [MaxPool2D(3, stride=2, padding=1, ceil_mode=True),
            AvgPool2D(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
            AvgPool2D(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            AvgPool2D(3, stride=2, ceil_mode=True),
            LPPool2D(2, 3, stride=2, ceil_mode=True), LPPool2D(1.5, 3, stride=2, ceil_mode=True)]


MODELS = {
    "conv_forms": lambda: [
        Conv2D(6, 3, padding="same", activation="relu"), Conv2D(6, 3, stride=2, padding="same", groups=3),
        Conv2D(4, 3, dilation=2, padding=((0, 1), (2, 0)), use_bias=False, activation="tanh"),
        Conv2D(4, (1, 3), padding="valid", activation="leaky_relu"), Conv2D(2, 1, activation="sigmoid"),
        Conv2D(3, 1, activation="softmax")],
    "pool_overhang": lambda: [Conv2D(2, 1)] + [pools_with_overhang()[i] for i in (0,)] + [ReLU()],
    "avg_include_pad_overhang": lambda: [pools_with_overhang()[1], AvgPool2D(2, padding=1)],
    "avg_exclude_pad_overhang": lambda: [pools_with_overhang()[2], AvgPool2D(3, stride=1, padding=1,
                                                                           count_include_pad=False)],
    "avg_no_pad_overhang": lambda: [pools_with_overhang()[3]],
    "lp_pools": lambda: [pools_with_overhang()[4], LPPool2D(3, 2), LPPool2D(2, 2, ceil_mode=True)],
    "lp_fractional": lambda: [Sigmoid(), pools_with_overhang()[5]],  # x**1.5: NaN below 0
    "dense_stack": lambda: [Flatten(), Dense(16, activation="relu"), Dropout(0.25),
                            Dense(8, activation="sigmoid", use_bias=False), Dense(5, activation="softmax")],
    "activations": lambda: [BatchNorm2D(), LeakyReLU(0.2), Sigmoid(), Tanh(), ReLU(), Softmax(),
                            GlobalAvgPool2D(), Dense(3, activation="leaky_relu"), Softmax()],
    "residuals": lambda: [
        Conv2D(4, 3, padding=1, activation="relu"),
        Residual([Conv2D(4, 3, padding=1, use_bias=False), BatchNorm2D(), ReLU(),
                  Conv2D(4, 3, padding=1, use_bias=False), BatchNorm2D()], activation="relu"),
        Residual([Conv2D(8, 3, stride=2, padding=1), ReLU(), Conv2D(8, 3, padding=1)],
                 shortcut=[Conv2D(8, 1, stride=2), BatchNorm2D()]),
        Residual([Residual([Conv2D(8, 3, padding=1)], activation="relu"), Conv2D(8, 1)], activation="tanh"),
        GlobalAvgPool2D(), Dense(4)],
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_matches_onnx_runtime_and_round_trips(name, tmp_path, rng):
    model = randomise_batch_norms(cconv.Sequential(MODELS[name](), input_shape=(3, 12, 12), seed=1), rng)
    check_export(model, tmp_path / f"{name}.onnx", rng)


def test_the_pooling_cases_really_have_windows_past_the_padding():
    """The overhang models above test the exact export only if ceil_mode adds windows that
    the symmetric padding does not cover."""
    for layer in pools_with_overhang():
        padding = getattr(layer, "padding", (0, 0))
        floor = [(12 + 2 * p - k) // s + 1 for k, s, p in zip(layer.kernel_size, layer.stride, padding)]
        assert list(layer.build((3, 12, 12))[1:]) != floor, layer


def test_export_metadata_dynamic_batch_and_separate_activation_nodes(tmp_path):
    model = cconv.Sequential([Conv2D(4, 3, activation="relu"), Flatten(), Dense(2, activation="softmax")],
                             input_shape=(1, 6, 6), name="tiny_net", seed=0)
    proto = cconv.onnx.export(model, tmp_path / "m.onnx", opset=17)
    assert [n.op_type for n in proto.graph.node] == ["Conv", "Relu", "Flatten", "Gemm", "Softmax"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["model_name"] == "tiny_net" and props["cconv_version"] == cconv.__version__
    assert proto.producer_name == "cconv" and proto.opset_import[0].version == 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [1, 6, 6]
    assert {t.name for t in proto.graph.initializer} == {"conv2d_1.weight", "conv2d_1.bias",
                                                         "dense_1.weight", "dense_1.bias"}
    assert cconv.onnx.load(tmp_path / "m.onnx").name == "tiny_net"


def test_export_refuses_what_it_cannot_write_exactly(tmp_path):
    class Doubler(L.Layer):
        def _forward(self, x):
            return 2 * x

    model = cconv.Sequential([Conv2D(2, 3), Doubler()], input_shape=(1, 5, 5))
    with pytest.raises(ValueError, match="no converter for Doubler"):
        cconv.onnx.export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(RuntimeError, match="built model"):
        cconv.onnx.export(cconv.Sequential([Conv2D(2, 3)]), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset"):
        cconv.onnx.export(cconv.Sequential([Flatten()], input_shape=(2,)), tmp_path / "m.onnx", opset=12)


# -- the layers and the graph API that other branches add (skipped where they are missing) --------

def optional(name):
    cls = getattr(L, name, None)
    if cls is None:
        pytest.skip(f"cconv.layers.{name} does not exist in this cconv")
    return cls


OPTIONAL_MODELS = {
    "DepthwiseConv2D": lambda cls: [cls(3, padding=1, depth_multiplier=2, activation="relu")],
    "SeparableConv2D": lambda cls: [cls(8, 3, padding="same", stride=2)],
    "Conv2DTranspose": lambda cls: [cls(4, 3, stride=2, padding=1, output_padding=1)],
    "UpSampling2D": lambda cls: [cls(2), Conv2D(2, 3)],
    "ZeroPadding2D": lambda cls: [cls(((1, 2), (0, 1))), AvgPool2D(3, stride=2, ceil_mode=True)],
    "GlobalMaxPool2D": lambda cls: [cls(), Dense(3)],
    "ReLU6": lambda cls: [Conv2D(4, 3), cls()],
    "SiLU": lambda cls: [Conv2D(4, 3), cls()],
    "Hardswish": lambda cls: [Conv2D(4, 3), cls()],
    "ELU": lambda cls: [Conv2D(4, 3), cls(alpha=0.5)],
    "GELU": lambda cls: [Conv2D(4, 3), cls(), Conv2D(2, 1), cls(approximate="tanh")],
}


@pytest.mark.parametrize("name", sorted(OPTIONAL_MODELS))
def test_export_of_the_new_layers(name, tmp_path, rng):
    cls = optional(name)
    model = cconv.Sequential(OPTIONAL_MODELS[name](cls), input_shape=(3, 9, 9), seed=2)
    check_export(model, tmp_path / f"{name}.onnx", rng, opset=20)


def test_gelu_needs_opset_20(tmp_path):
    cls = optional("GELU")
    model = cconv.Sequential([Conv2D(2, 1), cls()], input_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="opset >= 20"):
        cconv.onnx.export(model, tmp_path / "m.onnx", opset=18)


def test_functional_model_with_add_and_concatenate(tmp_path, rng):
    if not hasattr(cconv, "Model") or not hasattr(cconv, "Input"):
        pytest.skip("cconv.Model (the functional API) does not exist in this cconv")
    merge = {name: getattr(L, name, None) or getattr(getattr(cconv, "graph", None), name, None)
             for name in ("Add", "Concatenate")}
    x = cconv.Input((3, 8, 8))
    a = Conv2D(4, 3, padding=1, activation="relu")(x)
    b = Conv2D(4, 1)(x)
    joined = merge["Concatenate"](axis=1)([merge["Add"]()([a, b]), b])
    y = Dense(3)(Flatten()(Conv2D(2, 3)(joined)))
    model = cconv.Model(x, y, name="branches")
    _, loaded = check_export(model, tmp_path / "graph.onnx", rng)
    assert type(loaded).__name__ == "Model"


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "mobilenet_v2", "unet_tiny"])
def test_zoo_networks_export(name, tmp_path, rng):
    models = pytest.importorskip("cconv.models", reason="cconv.models (the zoo) does not exist in this cconv")
    model = getattr(models, name)()
    if not model.built:
        pytest.skip(f"{name}() is not built with an input shape")
    randomise_batch_norms(model, rng)
    check_export(model, tmp_path / f"{name}.onnx", rng, opset=20)


# -- PyTorch-exported networks --------------------------------------------------------------------

def torch_networks():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    from test_models import BasicBlock as Block  # the zoo tests' torch ResNet block (needs torch)

    lenet5 = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                           nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                           nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    pooling = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                            nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.BatchNorm2d(8),
                            nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
                            nn.AvgPool2d(2, 1, padding=1), nn.Dropout(0.3), nn.Flatten(),
                            nn.Linear(8 * 5 * 5, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
    resnet = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                           Block(8, 8, 1), Block(8, 16, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(16, 10))
    return torch, {"lenet5": (lenet5, (1, 28, 28)), "pooling": (pooling, (3, 13, 13)),
                   "resnet": (resnet, (3, 12, 12))}


def randomise_torch(torch, net):
    torch.manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def torch_export(torch, net, shape, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros((1,) + shape),), os.fspath(path), dynamo=False,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})


@pytest.mark.parametrize("name", ["lenet5", "pooling", "resnet"])
def test_torch_exported_networks_load_and_fine_tune(name, tmp_path, rng):
    torch, networks = torch_networks()
    net, shape = networks[name]
    randomise_torch(torch, net)
    torch_export(torch, net, shape, tmp_path / "torch.onnx")
    model = cconv.onnx.load(tmp_path / "torch.onnx")
    assert isinstance(model, cconv.Sequential) and not model.training
    if name == "resnet":
        assert sum(isinstance(layer, Residual) for layer in model.layers) == 2
    for batch in (1, 7):
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        with torch.no_grad():
            expected = net(torch.from_numpy(x)).numpy()
        assert rel_error(model.predict(x), expected) <= TOLERANCE

    data = np.random.default_rng(5)
    x = data.standard_normal((16,) + shape).astype(np.float32)
    y = data.integers(0, 10, 16)
    trainer = cconv.Trainer(model, optimizer=cconv.optim.Adam(lr=1e-2))
    first = trainer.evaluate(x, y)["loss"]
    trainer.fit(x, y, epochs=20, batch_size=16, verbose=0, seed=0)
    assert trainer.evaluate(x, y)["loss"] < 0.8 * first


ZOO_INPUTS = {"lenet5": (1, 32, 32), "resnet20": (3, 32, 32), "mobilenet_v2": (3, 32, 32), "unet_tiny": (1, 64, 64)}


@pytest.mark.parametrize("name", list(ZOO_INPUTS))
def test_torch_exported_zoo_networks_load(name, tmp_path, rng):
    """The zoo's torch.nn twins (cconv.bench defines them), exported by torch with random batch
    norm statistics, load and give torch's outputs; the U-Net's skips make it a graph Model."""
    torch = pytest.importorskip("torch")
    bench = pytest.importorskip("cconv.bench")
    net = randomise_torch(torch, bench.torch_zoo_network(name, torch))
    shape = ZOO_INPUTS[name]
    torch_export(torch, net, shape, tmp_path / "zoo.onnx")
    model = cconv.onnx.load(tmp_path / "zoo.onnx")
    assert type(model).__name__ == ("Model" if name == "unet_tiny" else "Sequential")
    x = rng.standard_normal((2,) + shape).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert rel_error(model.predict(x), expected) <= TOLERANCE


def cconv_twins():
    """The cconv Sequential stacks whose layers correspond one to one to torch_networks()."""
    def block(cin, cout, stride):
        shortcut = None if stride == 1 and cin == cout else [Conv2D(cout, 1, stride=stride, use_bias=False),
                                                             BatchNorm2D()]
        return Residual([Conv2D(cout, 3, stride=stride, padding=1, use_bias=False), BatchNorm2D(), ReLU(),
                         Conv2D(cout, 3, padding=1, use_bias=False), BatchNorm2D()],
                        shortcut=shortcut, activation="relu")

    return {
        "lenet5": cconv.Sequential([Conv2D(6, 5, padding=2, activation="tanh"), AvgPool2D(2),
                                    Conv2D(16, 5, activation="tanh"), AvgPool2D(2), Flatten(),
                                    Dense(120, activation="tanh"), Dense(84, activation="tanh"), Dense(10)],
                                   input_shape=(1, 28, 28)),
        "pooling": cconv.Sequential([Conv2D(8, 3, padding=1), BatchNorm2D(), ReLU(),
                                     MaxPool2D(3, stride=2, padding=1, ceil_mode=True), BatchNorm2D(),
                                     AvgPool2D(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                                     AvgPool2D(2, stride=1, padding=1), Dropout(0.3), Flatten(),
                                     Dense(32, activation="relu"), Dropout(0.5), Dense(10)],
                                    input_shape=(3, 13, 13)),
        "resnet": cconv.Sequential([Conv2D(8, 3, padding=1, use_bias=False), BatchNorm2D(), ReLU(),
                                    block(8, 8, 1), block(8, 16, 2), GlobalAvgPool2D(), Dense(10)],
                                   input_shape=(3, 12, 12)),
    }


@pytest.mark.parametrize("name", ["lenet5", "pooling", "resnet"])
def test_load_torch_state_dict_gives_torch_outputs(name, rng):
    torch, networks = torch_networks()
    net, shape = networks[name]
    randomise_torch(torch, net)
    model = cconv_twins()[name]
    model.load_torch_state_dict(net.state_dict())
    x = rng.standard_normal((5,) + shape).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert rel_error(model.predict(x), expected) <= TOLERANCE


def test_load_torch_state_dict_names_the_first_mismatch_and_copies_nothing():
    torch, networks = torch_networks()
    state = networks["lenet5"][0].state_dict()
    model = cconv_twins()["lenet5"]
    before = model.state_dict()

    wrong = dict(state)
    wrong["7.weight"] = torch.zeros(120, 399)
    with pytest.raises(ValueError, match=r"'7.weight' has shape \(120, 399\) but Dense 'dense_1' needs "
                                         r"\(120, 400\) \(torch's \(out, in\) layout"):
        model.load_torch_state_dict(wrong)
    with pytest.raises(ValueError, match=r"the state dict lacks '9.bias'"):
        model.load_torch_state_dict({k: v for k, v in state.items() if k != "9.bias"})
    extra = dict(state, **{"12.weight": torch.zeros(3, 10)})
    with pytest.raises(ValueError, match=r"'12.weight' .* has no layer left"):
        model.load_torch_state_dict(extra)
    with pytest.raises(ValueError, match=r"the state dict has no more modules, but Dense 'dense_3'"):
        model.load_torch_state_dict({k: v for k, v in state.items() if not k.startswith("11.")})
    no_bias = cconv.Sequential([Conv2D(6, 5, padding=2, use_bias=False)], input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match=r"'0.bias' has no counterpart in Conv2D 'conv2d_1', which takes 0.weight"):
        no_bias.load_torch_state_dict({"0.weight": state["0.weight"], "0.bias": state["0.bias"]})
    for key, value in before.items():
        np.testing.assert_array_equal(model.state_dict()[key], value)


# -- channels_last ---------------------------------------------------------------------------------

def digits_cnn(data_format):
    shape = (1, 8, 8) if data_format == "channels_first" else (8, 8, 1)
    return cconv.Sequential([Conv2D(8, 3, padding="same", activation="relu"), MaxPool2D(2), Flatten(),
                             Dense(10)], input_shape=shape, seed=3, data_format=data_format)


def test_channels_last_model_trains_as_the_channels_first_one(tmp_path):
    (x, y), (xt, yt) = cconv.datasets.load_digits()
    (x_last, _), (xt_last, _) = cconv.datasets.load_digits(data_format="channels_last")
    np.testing.assert_array_equal(x_last, np.moveaxis(x, 1, -1))
    first, last = digits_cnn("channels_first"), digits_cnn("channels_last")
    assert last.input_shape == (1, 8, 8)
    for model, data in ((first, (x, xt)), (last, (x_last, xt_last))):
        model.compile(optimizer="adam", metrics=["accuracy"])
        model.history = model.fit(data[0][:300], y[:300], epochs=2, verbose=0, seed=0,
                                  validation_data=(data[1][:100], yt[:100]))
    assert last.history["val_loss"] == first.history["val_loss"]
    assert last.evaluate(xt_last, yt) == first.evaluate(xt, yt)
    np.testing.assert_array_equal(last.predict(xt_last), first.predict(xt))
    np.testing.assert_array_equal(last(xt_last[:3]), first(xt[:3]))
    with pytest.raises(ValueError, match=r"must have shape \(N, 8, 8, 1\) for this model, got \(2, 1, 8, 8\)"):
        last.predict(xt[:2])

    last.save(tmp_path / "last.npz")
    reloaded = cconv.load_model(tmp_path / "last.npz")
    assert reloaded.data_format == "channels_last"
    np.testing.assert_array_equal(reloaded.predict(xt_last[:5]), last.predict(xt_last[:5]))


def test_channels_last_export_takes_nhwc_and_loads_back(tmp_path, rng):
    model = digits_cnn("channels_last")
    proto, loaded = check_export(model, tmp_path / "last.onnx", rng)
    assert proto.graph.node[0].op_type == "Transpose"
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]] == [8, 8, 1]
    assert loaded.data_format == "channels_last" and loaded.input_shape == (1, 8, 8)


def test_data_format_is_checked():
    with pytest.raises(ValueError, match="data_format must be 'channels_first'"):
        cconv.Sequential([Flatten()], data_format="NHWC")
    with pytest.raises(ValueError, match="data_format must be"):
        cconv.datasets.load_digits(data_format="nhwc")


# -- loading: what is refused, hostile files -------------------------------------------------------

def make_model(nodes, initializers=(), input_shape=(None, 1, 4, 4), opset=18, output="y"):
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N" if d is None else d for d in input_shape])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def save(proto, path):
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return path


def conv_weight(name="w", shape=(2, 1, 3, 3)):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_unsupported_ops_and_attributes_name_the_node(tmp_path):
    erf = make_model([helper.make_node("Erf", ["x"], ["y"], name="the_erf")])
    with pytest.raises(ValueError, match=r"node 'the_erf' \(Erf\): the op Erf is not supported; "
                                         r"cconv.onnx.load reads .*Conv.*MaxPool"):
        cconv.onnx.load(save(erf, tmp_path / "erf.onnx"))
    dilated = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2],
                                           dilations=[2, 2])])
    with pytest.raises(ValueError, match=r"node 'mp' \(MaxPool\): dilations \[2, 2\] are not supported"):
        cconv.onnx.load(save(dilated, tmp_path / "dilated.onnx"))
    unknown = make_model([helper.make_node("Relu", ["x"], ["y"], name="r", colour="blue")])
    with pytest.raises(ValueError, match=r"node 'r' \(Relu\): attribute 'colour' is not supported"):
        cconv.onnx.load(save(unknown, tmp_path / "unknown.onnx"))
    custom = make_model([helper.make_node("Relu", ["x"], ["y"], name="c", domain="com.example")])
    with pytest.raises(ValueError, match="operator domain 'com.example'"):
        cconv.onnx.load(save(custom, tmp_path / "custom.onnx"))


def test_lp_pool_with_clipped_windows_is_refused(tmp_path):
    """ONNX's LpPool sums a window clipped by ceil_mode as it is; cconv (as PyTorch) scales it."""
    proto = make_model([helper.make_node("LpPool", ["x"], ["y"], name="lp", kernel_shape=[3, 3],
                                         strides=[2, 2], ceil_mode=1)], input_shape=(None, 1, 6, 6))
    with pytest.raises(ValueError, match="cannot load it exactly"):
        cconv.onnx.load(save(proto, tmp_path / "lp.onnx"))


def test_hostile_shapes_cycles_and_missing_initializers(tmp_path):
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20, 3, 3], raw_data=b"\0" * 64)
    proto = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [huge])
    with pytest.raises(ValueError, match=r"initializer 'w' declares shape \(1048576, 1048576, 3, 3\)"):
        cconv.onnx.load(save(proto, tmp_path / "huge.onnx"))
    wide = make_model([helper.make_node("Relu", ["x"], ["y"])], input_shape=(None, 2**16, 2**16, 2**16))
    with pytest.raises(ValueError, match="values per sample"):
        cconv.onnx.load(save(wide, tmp_path / "wide.onnx"))
    cycle = make_model([helper.make_node("Relu", ["x2"], ["x1"], name="a"),
                        helper.make_node("Add", ["x", "x1"], ["x2"], name="b"),
                        helper.make_node("Relu", ["x2"], ["y"], name="c")])
    with pytest.raises(ValueError, match="cycle"):
        cconv.onnx.load(save(cycle, tmp_path / "cycle.onnx"))
    missing = make_model([helper.make_node("Conv", ["x", "weights"], ["y"], name="conv")])
    with pytest.raises(ValueError, match=r"node 'conv' \(Conv\) reads 'weights', which no node, initializer"):
        cconv.onnx.load(save(missing, tmp_path / "missing.onnx"))
    twice = make_model([helper.make_node("Relu", ["x"], ["y"], name="a"),
                        helper.make_node("Relu", ["x"], ["y"], name="b")])
    with pytest.raises(ValueError, match="already provides"):
        cconv.onnx.load(save(twice, tmp_path / "twice.onnx"))
    open_size = make_model([helper.make_node("Relu", ["x"], ["y"])], input_shape=(None, 1, "H", "W"))
    with pytest.raises(ValueError, match="pass input_shape"):
        cconv.onnx.load(save(open_size, tmp_path / "open.onnx"))
    assert cconv.onnx.load(tmp_path / "open.onnx", input_shape=(1, 5, 6)).input_shape == (1, 5, 6)


def test_files_that_are_not_onnx_models(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ValueError, match="junk.onnx"):
        cconv.onnx.load(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError):
        cconv.onnx.load(tmp_path / "absent.onnx")
    with pytest.raises(IsADirectoryError):
        cconv.onnx.load(tmp_path)


def external(proto, location, length=None):
    """proto's initializer 'w' moved to external data at `location`."""
    tensor = proto.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    entries = {"location": location, "offset": "0"}
    if length is not None:
        entries["length"] = str(length)
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)
    return proto


def test_external_data_only_from_inside_the_model_folder(tmp_path, rng):
    folder = tmp_path / "model"
    folder.mkdir()
    weight = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    (folder / "weights.bin").write_bytes(weight.tobytes())
    (tmp_path / "outside.bin").write_bytes(weight.tobytes())
    os.symlink(tmp_path / "outside.bin", folder / "link.bin")

    def conv_model(location, length=None):
        proto = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                           [numpy_helper.from_array(weight, "w")])
        return external(proto, location, length)

    model = cconv.onnx.load(save(conv_model("weights.bin"), folder / "ok.onnx"))
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), cconv.functional.conv2d(x, weight), rtol=1e-6)
    for location, message in (("../outside.bin", "not a file inside the model's folder"),
                              (str(tmp_path / "outside.bin"), "not a file inside the model's folder"),
                              ("link.bin", "links out of the model's folder"),
                              ("absent.bin", "cannot be read")):
        with pytest.raises(ValueError, match=message):
            cconv.onnx.load(save(conv_model(location), folder / "bad.onnx"))
    with pytest.raises(ValueError, match="length"):
        cconv.onnx.load(save(conv_model("weights.bin", length=10), folder / "bad.onnx"))


def test_a_foreign_chain_maps_onto_the_layers(tmp_path, rng):
    """MatMul + Add as Dense, Pad before an AveragePool as its counted padding, Clip(0) as ReLU,
    GlobalAveragePool + Flatten, Identity, Reshape to (N, features): each against NumPy."""
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    dense = rng.standard_normal((2, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c", "zero"], ["r"]),
             helper.make_node("Pad", ["r", "pads"], ["p"]),
             helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[3, 3], strides=[1, 1]),
             helper.make_node("Identity", ["a"], ["i"]),
             helper.make_node("GlobalAveragePool", ["i"], ["g"]),
             helper.make_node("Reshape", ["g", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "dense"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["y"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(0), "zero"),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
             numpy_helper.from_array(dense, "dense"), numpy_helper.from_array(bias, "bias")]
    path = save(make_model(nodes, inits, input_shape=(None, 1, 5, 5)), tmp_path / "chain.onnx")
    model = cconv.onnx.load(path)
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    conv = np.maximum(cconv.functional.conv2d(x, w, padding=1), 0)
    pooled = cconv.functional.avg_pool2d(conv, 3, 1, padding=1, count_include_pad=True)
    expected = pooled.mean(axis=(2, 3)) @ dense + bias
    assert rel_error(model.predict(x), expected) <= TOLERANCE
    assert rel_error(run_onnx(path, x), expected) <= TOLERANCE
    names = [type(layer).__name__ for layer in model.layers]
    # the Pad is a ZeroPadding2D where cconv has one, else it joins the AveragePool's padding
    assert names in (["Conv2D", "ReLU", "ZeroPadding2D", "AvgPool2D", "GlobalAvgPool2D", "Dense"],
                     ["Conv2D", "ReLU", "AvgPool2D", "GlobalAvgPool2D", "Dense"])


# -- submodules and the optional extra -------------------------------------------------------------

def run_python(code):
    here = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=here, timeout=60)


def test_submodules_are_attributes_and_the_optional_ones_load_lazily():
    result = run_python(
        "import sys, cconv\n"
        "assert cconv.filters.sobel().shape == (2, 1, 3, 3)\n"
        "assert 'cconv.viz' not in sys.modules and 'cconv.onnx' not in sys.modules and 'onnx' not in sys.modules\n"
        "assert callable(cconv.onnx.export) and 'onnx' in sys.modules\n"
        "assert 'viz' in dir(cconv) and callable(cconv.distributed.DistributedTrainer)\n"
        "try:\n    cconv.no_such_thing\nexcept AttributeError as e:\n    print(e)\n")
    assert result.returncode == 0, result.stderr
    assert "has no attribute 'no_such_thing'" in result.stdout


def test_without_onnx_the_error_names_the_extra():
    result = run_python("import sys; sys.modules['onnx'] = None\nimport cconv\ncconv.onnx")
    assert result.returncode != 0
    assert 'pip install "cconv[onnx]"' in result.stderr
