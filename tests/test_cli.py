"""Tests of the `cconv` command line: `train` on the embedded digits (one short epoch) and on
a fake MNIST folder, `python -m cconv`, argument errors, output paths checked before training,
`info`, `bench`, `--version` and the help of a bare `cconv`."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import cconv
from cconv.__main__ import build_parser, digits_cnn, main, mnist_cnn

from test_datasets import fake_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives


def test_train_digits_one_epoch(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--out", str(out), "--threads", "1"]) == 0
    text = capsys.readouterr().out
    for fragment in ["Total params: 149,722", "Epoch 1/1", "samples/s", "Test accuracy:",
                     "Saved the model to"]:
        assert fragment in text, fragment
    model = cconv.load_model(out)
    (_, _), (xt, yt) = cconv.datasets.load_digits()
    accuracy = float(np.mean(model.predict(xt).argmax(axis=1) == yt))
    assert f"Test accuracy: {accuracy:.4f}" in text


def test_train_is_reproducible_and_quiet(tmp_path, capsys):
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for path in paths:
        assert main(["train", "--epochs", "1", "--seed", "3", "--threads", "1", "--quiet",
                     "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "64", "--out", str(path)]) == 0
    text = capsys.readouterr().out
    assert "Epoch" not in text and "Test accuracy" in text
    a, b = (cconv.load_model(p).state_dict() for p in paths)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_train_on_an_mnist_folder(tmp_path, capsys):
    fake_mnist(tmp_path, n_train=20, n_test=6)
    out = tmp_path / "mnist.npz"
    assert main(["train", "--data", f"mnist:{tmp_path}", "--epochs", "1", "--out", str(out)]) == 0
    assert "6 test images" in capsys.readouterr().out
    assert cconv.load_model(out).input_shape == (1, 28, 28)


def test_default_models():
    assert digits_cnn(0).count_params() == 149722
    assert mnist_cnn(0).count_params() == 32 * 9 + 32 + 64 * 288 + 64 + 3136 * 128 + 128 + 1290
    args = build_parser().parse_args(["train"])
    assert (args.data, args.epochs, args.optimizer, args.seed) == ("digits", None, "adam", 0)


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "0"], ["train", "--threads", "0"], ["train", "--lr", "-1"],
    ["train", "--optimizer", "lbfgs"], ["train", "--batch-size", "x"], ["fly"],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("data, message", [
    ("cifar", "--data must be"), ("mnist:", "--data must be"), ("mnist:/no/such/dir", "does not exist"),
])
def test_bad_data_exits_1_with_a_message(data, message, capsys):
    assert main(["train", "--data", data]) == 1
    assert message in capsys.readouterr().err


def test_info(capsys):
    assert main(["info"]) == 0
    assert capsys.readouterr().out.strip()


def test_python_dash_m(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "m.npz"
    result = subprocess.run([sys.executable, "-m", "cconv", "train", "--epochs", "1", "--quiet",
                             "--out", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Test accuracy" in result.stdout and out.exists()
    if shutil.which("cconv") is None:
        return  # the console script exists only once the package is installed
    result = subprocess.run(["cconv", "train", "--help"], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "--epochs" in result.stdout


@pytest.mark.parametrize("option, name", [("--out", "m.npz"), ("--plots", "plots")])
def test_unwritable_outputs_fail_before_training_naming_the_path(tmp_path, capsys, option, name):
    if option == "--plots":
        pytest.importorskip("matplotlib")  # without it, --plots is refused for that first
    (tmp_path / "file").write_text("not a folder")
    path = str(tmp_path / "file" / name)  # inside a file: cannot be created
    assert main(["train", "--epochs", "30", "--out", str(tmp_path / "ok.npz"), option, path]) == 1
    captured = capsys.readouterr()
    assert path in captured.err and ".tmp" not in captured.err
    assert "Epoch" not in captured.out  # no training ran


def test_version_and_bare_command_print_and_exit_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"cconv {cconv.__version__}"
    assert main([]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: cconv") and "train" in text and "bench" in text


def test_bench_subcommand_runs_the_bench_tables_with_its_options(monkeypatch):
    from cconv import bench
    calls = []
    monkeypatch.setattr(bench, "main", lambda argv: calls.append(argv) or 0)
    assert main(["bench", "pool", "--repeats", "1", "--no-torch"]) == 0
    assert calls == [["pool", "--repeats", "1", "--no-torch"]]
