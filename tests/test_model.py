"""Tests of cconv.Sequential: building, parameter counts and summary (LeNet-5), predict,
an end-to-end float64 finite-difference check, and save / load_model (exact round trip,
atomic writes, refusal of corrupt, truncated, foreign and tampered files)."""
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from reference import numerical_gradient, rel_error

import cconv
from cconv import losses
from cconv.model import _config_digest
from cconv.layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                          LeakyReLU, LPPool2D, MaxPool2D, ReLU, Residual, Sigmoid, Tanh)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives


def lenet5(**kwargs):
    return cconv.Sequential([
        Conv2D(6, 5, activation="relu"), MaxPool2D(2),
        Conv2D(16, 5, activation="relu"), MaxPool2D(2),
        Flatten(), Dense(120, activation="relu"), Dense(84, activation="relu"), Dense(10)],
        input_shape=(1, 32, 32), **kwargs)


def every_layer_model(dtype="float32", seed=0):
    """A small model that uses every layer type (and so every saved-state kind)."""
    return cconv.Sequential([
        Conv2D(4, 3, padding="same"), BatchNorm2D(), LeakyReLU(0.05),
        Residual([Conv2D(4, 3, padding=1, activation="relu"), Conv2D(4, 3, padding=1)],
                 activation="relu"),
        MaxPool2D(2), AvgPool2D(2, stride=1, padding=1), LPPool2D(2, 2), Tanh(),
        Residual([Conv2D(6, 1)], shortcut=Conv2D(6, 1, use_bias=False)),
        GlobalAvgPool2D(), Dropout(0.1), Dense(8, activation="sigmoid"), ReLU(), Flatten(),
        Dense(3), Sigmoid()], input_shape=(2, 8, 8), dtype=dtype, seed=seed)


# ---------------------------------------------------------------------------- structure

def test_lenet5_has_61706_parameters():
    model = lenet5()
    assert model.count_params() == 61706
    assert model.output_shape == (10,)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 61,706" in text
    assert "Trainable params: 61,706" in text and "Non-trainable params: 0" in text
    for fragment in ["conv2d_1 (Conv2D)", "(6, 28, 28)", "156", "(16, 10, 10)", "2,416",
                     "(400,)", "48,120", "10,164", "850"]:
        assert fragment in text, fragment


def test_ten_filters_model_summary():
    model = cconv.Sequential([Conv2D(10, 5, padding=2)], input_shape=(3, 32, 32))
    assert model.count_params() == 760 and model.output_shape == (10, 32, 32)


def test_summary_counts_batchnorm_buffers_as_non_trainable(capsys):
    model = cconv.Sequential([Conv2D(4, 3), BatchNorm2D(), Flatten(), Dense(2)], input_shape=(1, 5, 5))
    model.summary()
    out = capsys.readouterr().out
    trainable = 4 * 9 + 4 + 8 + 36 * 2 + 2
    assert f"Trainable params: {trainable}" in out and "Non-trainable params: 8" in out
    assert model.count_params() == trainable + 8
    assert model.count_params(trainable_only=True) == trainable


def test_lazy_build_add_and_default_names(rng):
    model = cconv.Sequential([Conv2D(3, 3), ReLU()])
    assert not model.built
    with pytest.raises(RuntimeError, match="built"):
        model.summary()
    y = model.forward(rng.standard_normal((2, 1, 6, 6)))
    assert model.built and model.input_shape == (1, 6, 6) and y.shape == (2, 3, 4, 4)
    assert y.dtype == np.float32
    model.add(Flatten())
    model.add(Dense(2))
    assert model.output_shape == (2,)
    assert [l.name for l in model.layers] == ["conv2d_1", "relu_1", "flatten_1", "dense_1"]
    assert cconv.Sequential([LeakyReLU(), GlobalAvgPool2D()]).layers[1].name == "global_avg_pool2d_1"


def test_seed_makes_initialisation_reproducible():
    a, b, c = lenet5(seed=3), lenet5(seed=3), lenet5(seed=4)
    for x, y in zip(a.parameters(), b.parameters()):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.parameters()[0], c.parameters()[0])


def test_predict_batches_match_forward_in_eval_mode(rng):
    model = every_layer_model()
    x = rng.standard_normal((37, 2, 8, 8))
    out = model.predict(x, batch_size=8)
    assert out.shape == (37, 3) and out.dtype == np.float32
    model.eval()
    np.testing.assert_allclose(out, model.forward(x), rtol=1e-5, atol=1e-6)
    assert not model.training
    model.train()
    model.predict(x[:3])
    assert model.training  # predict restores the mode
    assert model.predict(x[:0]).shape == (0, 3)


def test_predict_and_forward_input_checks(rng):
    model = lenet5()
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        model.predict(rng.standard_normal((2, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        model.forward(rng.standard_normal((1, 32, 32)))
    with pytest.raises(TypeError):
        model.predict(np.array([["a"]]))
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(rng.standard_normal((2, 1, 32, 32)), batch_size=0)
    # integer pixels are converted to the model dtype
    assert model.predict(np.zeros((2, 1, 32, 32), dtype=np.uint8)).shape == (2, 10)


def test_build_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"layer 2 \(Conv2D 'conv2d_2'\)"):
        cconv.Sequential([Conv2D(4, 3), MaxPool2D(2), Conv2D(4, 5)], input_shape=(1, 8, 8))
    with pytest.raises(TypeError):
        cconv.Sequential([Conv2D(4, 3), "relu"])
    with pytest.raises(TypeError):
        cconv.Sequential([Conv2D(4, 3)], dtype="int32")
    with pytest.raises(ValueError):
        cconv.Sequential([Conv2D(4, 3)], input_shape=(1, 0, 8))


# ---------------------------------------------------------------------------- end-to-end gradients

def test_whole_model_gradients_finite_differences(rng):
    model = cconv.Sequential([
        Conv2D(3, 3, padding=1, activation="relu"), BatchNorm2D(), MaxPool2D(2),
        Residual([Conv2D(3, 3, padding=1, activation="tanh"), Conv2D(3, 3, padding=1)], activation="relu"),
        AvgPool2D(2), Flatten(), Dropout(0.3), Dense(5, activation="leaky_relu"), Dense(4)],
        input_shape=(2, 6, 6), dtype="float64", seed=1)
    x = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 3, 1])
    loss_fn = losses.get("cross_entropy")

    def loss():
        model.set_rng(np.random.default_rng(7))  # the same dropout mask every time
        return np.array(loss_fn(model.forward(x), y)[0])

    model.set_rng(np.random.default_rng(7))
    _, grad = loss_fn(model.forward(x), y)
    grad_x = model.backward(grad)
    analytic = [grad_x] + [g.copy() for g in model.gradients()]
    numeric = [numerical_gradient(loss, x, 1.0, 1e-6)]
    numeric += [numerical_gradient(loss, p, 1.0, 1e-6) for p in model.parameters()]
    names = ["x"] + list(model.named_parameters())
    for name, a, n in zip(names, analytic, numeric):
        abs_err = float(np.max(np.abs(a - n)))
        assert rel_error(a, n) < 1e-5 or abs_err < 1e-9, f"{name}: {rel_error(a, n):.2e} / {abs_err:.2e}"


@pytest.mark.parametrize("first", ["conv", "dense"])
def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng, first):
    """need_input_grad=False (what Trainer uses) skips dL/dinput but no parameter gradient."""
    head = [Conv2D(4, 3, padding=1, activation="relu"), Flatten()] if first == "conv" else [Flatten(), Dense(8)]
    model = cconv.Sequential(head + [Dense(3)], input_shape=(2, 5, 5), dtype="float64", seed=3)
    x, grad = rng.standard_normal((4, 2, 5, 5)), rng.standard_normal((4, 3))
    model.forward(x)
    assert model.backward(grad).shape == x.shape
    full = [g.copy() for g in model.gradients()]
    model.forward(x)
    assert model.backward(grad, need_input_grad=False) is None
    for a, b in zip(full, model.gradients()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- save / load

def trained_copy_state(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_roundtrip_is_exact(tmp_path, rng, dtype):
    model = every_layer_model(dtype=dtype, seed=5)
    for p in model.parameters():  # make every array distinctive
        p += rng.standard_normal(p.shape).astype(p.dtype)
    x = rng.standard_normal((4, 2, 8, 8))
    model.forward(x)  # updates BatchNorm running statistics (buffers)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = cconv.load_model(path)
    assert loaded.get_config() == model.get_config()
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for key in state:
        assert loaded_state[key].dtype == state[key].dtype
        assert np.array_equal(loaded_state[key], state[key]), key
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    # the file is an ordinary .npz that NumPy reads without pickle
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["__cconv__"]))
    assert header["format"] == "cconv-model" and header["version"] == 1


def test_save_replaces_atomically_and_failed_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    first = lenet5(seed=1)
    first.save(path)
    second = lenet5(seed=2)

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        second.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = cconv.load_model(path)
    assert np.array_equal(loaded.parameters()[0], first.parameters()[0])
    second.save(str(path))
    assert np.array_equal(cconv.load_model(path).parameters()[0], second.parameters()[0])


def test_killed_saver_leaves_a_loadable_file(tmp_path):
    path = tmp_path / "m.npz"
    script = (
        "import sys, cconv\n"
        "from cconv.layers import Conv2D, Flatten, Dense\n"
        "m = cconv.Sequential([Conv2D(64, 3), Flatten(), Dense(256), Dense(10)], input_shape=(3, 16, 16))\n"
        "m.save(sys.argv[1]); print('saved', flush=True)\n"
        "while True:\n"
        "    m.parameters()[0][...] += 1\n"
        "    m.save(sys.argv[1])\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, env=env,
                            cwd=tmp_path)  # not the source tree, whose cconv is unbuilt
    try:
        assert proc.stdout.readline().strip() == b"saved"
        time.sleep(0.5)  # let it overwrite the file a number of times
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    model = cconv.load_model(path)  # whatever moment it died, the file is a complete model
    assert model.count_params() == 64 * 27 + 64 + 64 * 14 * 14 * 256 + 256 + 2570


def corrupt_variants(good):
    """(description, bytes) of damaged versions of a good model file."""
    middle = len(good) // 2
    flipped = bytearray(good)
    flipped[middle] ^= 0xFF
    return [("empty", b""), ("truncated", good[:middle]), ("header only", good[:30]),
            ("flipped byte", bytes(flipped)), ("text", b"hello, I am not a model\n")]


def test_corrupt_and_truncated_files_raise_valueerror(tmp_path):
    good_path = tmp_path / "good.npz"
    lenet5().save(good_path)
    good = good_path.read_bytes()
    for what, data in corrupt_variants(good):
        path = tmp_path / f"bad-{what.replace(' ', '_')}.npz"
        path.write_bytes(data)
        with pytest.raises(ValueError, match="cannot load cconv model"):
            cconv.load_model(path)


def test_foreign_files_raise_valueerror(tmp_path):
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "pickled.npz", __cconv__=np.array([{"a": 1}], dtype=object))
    for name, match in [("foreign.npz", "without a cconv header"), ("array.npy", "not a .npz"),
                        ("pickled.npz", "cannot load")]:
        with pytest.raises(ValueError, match=match):
            cconv.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        cconv.load_model(tmp_path / "missing.npz")


def rewrite(path, out, header_edit=None, array_edit=None, keep_checksum=False):
    """Copy a saved model with its header and / or arrays modified (a crafted file). The
    architecture's checksum is recomputed (so the checks behind it are reached) unless
    keep_checksum."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays.pop("__cconv__")))
    if header_edit:
        header_edit(header)
        if not keep_checksum:
            header["model_sha256"] = _config_digest(header["model"])
    if array_edit:
        array_edit(arrays)
    np.savez(out, __cconv__=np.array(json.dumps(header)), **arrays)


@pytest.mark.parametrize("header_edit, array_edit, match", [
    (lambda h: h.update(version=99), None, "newer"),
    (lambda h: h.update(format="something-else"), None, "format"),
    (lambda h: h["model"]["layers"][0].update({"class": "os.system"}), None, "unknown layer class"),
    (lambda h: h["model"]["layers"][0]["config"].update(filters=7), None, "shape"),
    (lambda h: h["model"]["layers"][0]["config"].update(evil="x"), None, "invalid configuration"),
    (lambda h: h["model"].update(input_shape=[1, 2, 2]), None, "layer 0"),
    (lambda h: h["model"].update(dtype="int8"), None, "dtype"),
    (None, lambda a: a.update({"0.weight": a["0.weight"] + 1}), "checksum"),
    (None, lambda a: a.update({"0.weight": a["0.weight"].astype(np.float64)}), "dtype"),
    (None, lambda a: a.pop("0.bias"), "missing"),
    (None, lambda a: a.update(extra=np.zeros(2)), "unexpected"),
])
def test_tampered_files_raise_valueerror(tmp_path, header_edit, array_edit, match):
    path = tmp_path / "good.npz"
    lenet5().save(path)
    bad = tmp_path / "bad.npz"
    rewrite(path, bad, header_edit, array_edit)
    with pytest.raises(ValueError, match=match):
        cconv.load_model(bad)


def test_edited_architecture_fails_its_checksum(tmp_path):
    path = tmp_path / "good.npz"
    model = cconv.Sequential([Dropout(0.5), Flatten(), Dense(3)], input_shape=(1, 4, 4))
    model.save(path)
    bad = tmp_path / "bad.npz"
    rewrite(path, bad, lambda h: h["model"]["layers"][0]["config"].update(rate=0.25), keep_checksum=True)
    with pytest.raises(ValueError, match="architecture does not match its recorded checksum"):
        cconv.load_model(bad)


def test_state_dict_validation():
    model = lenet5()
    state = model.state_dict()
    state["0.weight"] = state["0.weight"][:, :, :4]
    with pytest.raises(ValueError, match="0.weight"):
        model.load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        model.load_state_dict({})


def test_saved_file_is_a_plain_zip(tmp_path):
    path = tmp_path / "m.npz"
    lenet5().save(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert "__cconv__.npy" in names and "0.weight.npy" in names


# ---------------------------------------------------------------------------- layer objects

@pytest.mark.parametrize("make", [ReLU, lambda: MaxPool2D(2)])
def test_a_layer_object_used_twice_is_refused_when_the_model_is_built(make):
    shared = make()
    with pytest.raises(ValueError, match="same .* object twice.*create a new instance"):
        cconv.Sequential([Conv2D(2, 3, padding=1), shared, Conv2D(2, 3, padding=1), shared])
    model = cconv.Sequential([Conv2D(2, 3, padding=1), shared])
    with pytest.raises(ValueError, match="create a new instance"):
        model.add(shared)
    assert len(model) == 2  # the refused layer was not added
    with pytest.raises(ValueError, match="create a new instance"):
        model.add(Residual([Conv2D(2, 3, padding=1), shared]))


def test_a_residual_block_refuses_a_layer_object_used_twice():
    relu = ReLU()
    with pytest.raises(ValueError, match="Residual uses the same ReLU object twice"):
        Residual([Conv2D(2, 3, padding=1), relu, Conv2D(2, 3, padding=1), relu])


def test_a_fresh_instance_per_place_gives_finite_difference_gradients(rng):
    # the model a PyTorch user writes with one shared ReLU(), written with one ReLU per place
    model = cconv.Sequential([Dense(6), ReLU(), Dense(5), ReLU(), Dense(3)], input_shape=(4,),
                             dtype="float64", seed=3)
    x = rng.standard_normal((5, 4))
    y = np.array([0, 2, 1, 1, 0])
    loss_fn = losses.get("cross_entropy")
    _, grad = loss_fn(model.forward(x), y)
    model.backward(grad)
    for param, analytic in zip(model.parameters(), [g.copy() for g in model.gradients()]):
        numeric = numerical_gradient(lambda: np.array(loss_fn(model.forward(x), y)[0]), param, 1.0, 1e-6)
        assert rel_error(analytic, numeric) < 1e-6
