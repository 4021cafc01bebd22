"""Hostile inputs that once crashed the process, damaged state silently or allocated without
bound, each kept as a regression test: thread counts, empty batches, resource bombs in data
and model files, special save targets, the loaders' exception contract, hyper-parameters
set after construction, and convolutions whose padding, dilation or stride reach 2**31 - 1
(sizes that overflowed int64 and wrapped to small workspaces). Where the failure was the process
dying, the case runs in a child process and the test checks how it ended."""
import gzip
import json
import os
import stat
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import assume, given, note, settings, strategies as st

from hypothesis_profiles import examples  # (importing it registers and loads the settings profile)
import reference as ref

import cconv
from cconv import datasets, optim
from cconv import functional as F
from cconv._threads import max_threads
from cconv.callbacks import ModelCheckpoint
from cconv.distributed import load_checkpoint, save_checkpoint
from cconv.layers import (BatchNorm2D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D,
                          Residual)
from cconv.model import _config_digest
from cconv.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))  # where the tested cconv lives


def run_child(code, env=None, timeout=120):
    """Run `code` in a fresh interpreter that imports the tested cconv (run from its folder: `-c`
    puts the working folder first on sys.path, and a source checkout's cconv may be unbuilt)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def small_model(seed=0):
    return cconv.Sequential([Conv2D(4, 3, padding=1), BatchNorm2D(), Flatten(), Dense(3)],
                            input_shape=(2, 5, 5), seed=seed)


# ----------------------------------------------------------------------------- thread counts
def test_thread_counts_are_clamped():
    cap = max_threads()
    cconv.set_num_threads(20000)
    assert cconv.get_num_threads() == cap
    cconv.set_num_threads(10**12)
    assert cconv.get_num_threads() == cap
    cconv.set_num_threads(1)
    assert cconv.get_num_threads() == 1


@pytest.mark.parametrize("value", ["20000", "100000", "99999999999999", "100000,100000"])
def test_huge_omp_num_threads_runs_and_finishes(value):
    code = ("import numpy as np, cconv\n"
            "from cconv import functional as F\n"
            "from cconv._threads import max_threads\n"
            "assert 1 <= cconv.get_num_threads() <= max_threads(), cconv.get_num_threads()\n"
            "cconv.set_num_threads(20000)\n"
            "try:\n"
            "    y = F.conv2d(np.ones((4, 8, 16, 16), np.float32), np.ones((8, 8, 3, 3), np.float32))\n"
            "    assert float(y[0, 0, 0, 0]) == 72.0\n"
            "finally:\n"
            "    print('finally ran', flush=True)\n")
    result = run_child(code, env=dict(os.environ, OMP_NUM_THREADS=value))
    assert result.returncode == 0, result.stderr
    assert "finally ran" in result.stdout


# ------------------------------------------------------------------------------ empty batches
def stateful_model():
    return cconv.Sequential([Conv2D(3, 3, padding=1), BatchNorm2D(), Dropout(0.5),
                             Residual([Conv2D(3, 3, padding=1), BatchNorm2D()]),
                             GlobalAvgPool2D(), Dense(2)], input_shape=(2, 6, 6), seed=1)


def test_empty_batch_leaves_every_buffer_untouched(tmp_path):
    model = stateful_model()
    rng = np.random.default_rng(0)
    model.forward(rng.standard_normal((4, 2, 6, 6)).astype(np.float32))  # some real statistics
    before = {k: v.copy() for k, v in model.named_buffers().items()}
    assert before
    out = model.forward(np.zeros((0, 2, 6, 6), np.float32))
    assert out.shape == (0, 2)
    grad_x = model.backward(np.zeros((0, 2), np.float32))
    assert grad_x.shape == (0, 2, 6, 6)
    for key, value in model.named_buffers().items():
        assert np.array_equal(value, before[key]), key
    for key, grad in zip(model.named_parameters(), model.gradients()):
        assert np.all(np.isfinite(grad)), key
    model.save(tmp_path / "m.npz")
    loaded = cconv.load_model(tmp_path / "m.npz")
    for key, value in loaded.named_buffers().items():
        assert np.array_equal(value, before[key]) and np.all(np.isfinite(value)), key
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    assert np.all(np.isfinite(loaded.predict(x)))


def test_batchnorm_empty_batch_in_eval_and_train_modes():
    layer = BatchNorm2D()
    layer.build((3, 2, 2))
    for mode in (True, False):
        layer.train(mode)
        y = layer.forward(np.zeros((0, 3, 2, 2), np.float32))
        assert y.shape == (0, 3, 2, 2)
        assert layer.backward(np.zeros((0, 3, 2, 2), np.float32)).shape == (0, 3, 2, 2)
        assert np.array_equal(layer.grads["gamma"], np.zeros(3)) and np.array_equal(layer.grads["beta"], np.zeros(3))
        assert np.array_equal(layer.buffers["running_mean"], np.zeros(3))
        assert np.array_equal(layer.buffers["running_var"], np.ones(3))


# ----------------------------------------------------------------------- IDX resource bombs
def idx_header(type_code, shape):
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def test_gzip_bomb_with_a_bad_header_is_refused_at_once(tmp_path, monkeypatch):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        chunk = bytes(1 << 20)
        for _ in range(512):  # 512 MiB of zeros: a header of zeros has no valid element type
            f.write(chunk)
    read, taken = gzip.GzipFile.read, []

    def counting_read(self, *args):
        data = read(self, *args)
        taken.append(len(data))
        return data
    monkeypatch.setattr(gzip.GzipFile, "read", counting_read)
    with pytest.raises(ValueError, match="element type"):
        datasets.read_idx(path)
    assert 0 < sum(taken) <= 64  # the header, not the 512 MiB behind it


def test_gzip_declaring_more_than_it_can_hold_is_refused_before_decompressing(tmp_path):
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (60000, 2800, 28)) + bytes(1000)))
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(path)


def test_plain_file_declaring_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(idx_header(0x0D, (100000, 1000, 10)) + bytes(40))
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(path)


def test_dev_zero_is_refused_without_reading_it():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(ValueError, match="element type"):
        datasets.read_idx("/dev/zero")


def test_valid_gzip_idx_streams(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, array.shape) + array.tobytes()))
    assert np.array_equal(datasets.read_idx(path), array)
    path.write_bytes(gzip.compress(idx_header(0x08, array.shape) + array.tobytes() + b"x"))
    with pytest.raises(ValueError, match="trailing"):
        datasets.read_idx(path)


def test_load_mnist_checks_both_headers_before_reading_images(tmp_path):
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_header(0x08, (3,)) + bytes(3))
    # images declare another count (and far more data than the file holds)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_header(0x08, (60000, 28, 28)))
    with pytest.raises(ValueError, match="60000 images but the labels file holds 3"):
        datasets.load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_header(0x0C, (3, 28, 28)))
    with pytest.raises(ValueError, match="3-D uint8"):
        datasets.load_mnist(tmp_path)


# ---------------------------------------------------------------------- model file bombs
def craft_model_file(path, config, arrays=None):
    """A small .npz whose header declares `config` (with a valid architecture checksum)."""
    header = {"format": "cconv-model", "version": 1, "model": config,
              "model_sha256": _config_digest(config), "arrays": []}
    np.savez(path, __cconv__=np.array(json.dumps(header)), **(arrays or {}))


def huge_dense_config(units=2**31 - 1):
    return {"name": "sequential", "dtype": "float32", "input_shape": [50000],
            "layers": [{"class": "Dense", "config": {"units": units}}]}


def test_small_file_declaring_a_huge_architecture_is_refused_fast(tmp_path):
    path = tmp_path / "bomb.npz"
    craft_model_file(path, huge_dense_config(200000))  # 40 GB of float32 weights
    assert os.path.getsize(path) < 2048
    # 2 GiB of address space: building the layer first would fail with MemoryError. AddressSanitizer
    # reserves far more address space than that for its shadow memory, so the sanitizer run
    # (which preloads it) checks the refusal without the limit.
    limit = "libasan" not in os.environ.get("LD_PRELOAD", "")
    code = ("import resource, sys, cconv\n"
            + ("resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n" if limit else "")
            + "try:\n"
            "    cconv.load_model(sys.argv[1])\n"
            "except ValueError as exc:\n"
            "    print('ValueError', exc)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT), timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ValueError" in result.stdout and "more parameter data" in result.stdout


def test_array_header_declaring_a_huge_shape_is_refused_before_reading(tmp_path):
    good = tmp_path / "good.npz"
    model = cconv.Sequential([Flatten(), Dense(2)], input_shape=(1, 2, 2))
    model.save(good)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "1.weight.npy":  # the .npy header claims a giant array
                data = _npy_with_shape(data, (4 * 10**10, 2))
            dst.writestr(info, data)
    with pytest.raises(ValueError, match="shape"):
        cconv.load_model(bad)


def _npy_with_shape(data, shape):
    """A .npy file's bytes with its header rewritten to declare `shape` (the data unchanged)."""
    header_len = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + header_len].decode("latin1")
    start, end = header.index("'shape': ") + 9, header.index(")", header.index("'shape': ")) + 1
    header = header[:start] + repr(tuple(shape)) + header[end:]
    padded = header.rstrip().ljust(header_len - 1) + "\n"
    return data[:8] + struct.pack("<H", len(padded)) + padded.encode("latin1") + data[10 + header_len:]


# ------------------------------------------------------------------------ save targets
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_save_refuses_a_fifo_and_keeps_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        small_model().save(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(OSError, match="FIFO"):
        cconv.load_model(fifo)  # refused, not a read that blocks on the pipe
    assert sorted(os.listdir(tmp_path)) == ["pipe"]


def test_save_refuses_a_directory_and_device_nodes(tmp_path):
    with pytest.raises(IsADirectoryError):
        small_model().save(tmp_path)
    # a device node of the test's own (a copy of /dev/null's), never the system's: a regression
    # would replace it with a regular file
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (OSError, AttributeError):
        pytest.skip("cannot create a device node here (not root)")
    with pytest.raises(OSError, match="device"):
        small_model().save(node)
    assert stat.S_ISCHR(os.stat(node).st_mode)


def test_save_keeps_an_existing_files_mode(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    small_model().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    os.chmod(path, 0o640)
    small_model().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    cconv.load_model(path)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        small_model().save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o666 & ~umask


def test_save_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    small_model(seed=1).save(real)
    os.symlink(real, link)
    model = small_model(seed=2)
    model.save(link)
    assert os.path.islink(link)
    assert np.array_equal(cconv.load_model(real).parameters()[0], model.parameters()[0])


def test_temporaries_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "m.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".m.npz.{dead}.abcdef012345.tmp"
    stale.write_bytes(b"partial")
    mine = tmp_path / f".m.npz.{os.getpid()}.abcdef012345.tmp"  # a save in progress here
    mine.write_bytes(b"partial")
    other = tmp_path / f".other.npz.{dead}.abcdef012345.tmp"  # another target's
    other.write_bytes(b"partial")
    small_model().save(path)
    assert not stale.exists() and mine.exists() and other.exists()


# --------------------------------------------------------------------- exception contract
def saved_model_bytes(tmp_path):
    path = tmp_path / "good.npz"
    cconv.Sequential([Conv2D(2, 3), BatchNorm2D(), Dropout(0.25), Flatten(), Dense(3, activation="tanh")],
                     input_shape=(1, 5, 5), seed=0).save(path)
    return path.read_bytes()


def assert_contract(loader, path):
    """The loader either succeeds or raises ValueError (the file's content) or OSError."""
    try:
        loader(path)
    except ValueError:
        pass


def test_model_truncations_and_bit_flips_raise_valueerror(tmp_path):
    good = saved_model_bytes(tmp_path)
    path = tmp_path / "bad.npz"
    rng = np.random.default_rng(0)
    cuts = sorted(set(rng.integers(0, len(good), 60).tolist()) | {0, 1, 4, 30, len(good) - 1})
    for cut in cuts:
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError, match="cannot load cconv model"):
            cconv.load_model(path)
    for position in rng.integers(0, len(good), 300):
        flipped = bytearray(good)
        flipped[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        assert_contract(cconv.load_model, path)


def test_checkpoint_truncations_bit_flips_and_missing_keys_raise_valueerror(tmp_path):
    model = small_model()
    opt = optim.Adam()
    Trainer(model, optimizer=opt).fit(np.zeros((4, 2, 5, 5), np.float32), np.zeros(4, np.int64),
                                      verbose=0)
    good_path = tmp_path / "ck.npz"
    save_checkpoint(good_path, model, opt, epoch=1, seed=0, history=[(0, {"loss": 1.0})])
    good = good_path.read_bytes()
    path = tmp_path / "bad.npz"
    rng = np.random.default_rng(1)
    for cut in sorted(set(rng.integers(0, len(good), 40).tolist()) | {0, 3, len(good) - 1}):
        path.write_bytes(good[:cut])
        with pytest.raises(ValueError, match="cannot read checkpoint"):
            load_checkpoint(path)
    for position in rng.integers(0, len(good), 200):
        flipped = bytearray(good)
        flipped[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        assert_contract(load_checkpoint, path)
    with np.load(good_path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    for key in ("epoch", "seed", "history", "state", "optimizer", "iterations"):
        broken = dict(meta)
        del broken[key]
        np.savez(path, **dict(arrays, meta=np.array(json.dumps(broken))))
        with pytest.raises(ValueError, match="cannot read checkpoint"):
            load_checkpoint(path)
    np.savez(path, **{k: v for k, v in arrays.items() if k != "meta"})
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("depth", [100, 100000])
def test_deeply_nested_headers_raise_valueerror(tmp_path, depth):
    path = tmp_path / "deep.npz"
    header = '{"format": "cconv-model", "version": 1, "model": ' + "[" * depth + "]" * depth + ', "arrays": []}'
    np.savez(path, __cconv__=np.array(header))
    with pytest.raises(ValueError, match="cannot load cconv model"):
        cconv.load_model(path)
    nested = depth // 10  # Residual layers inside each other
    layer = ('{"class": "Residual", "config": {"layers": [' * nested + '{"class": "Dense", "config": {"units": 1}}'
             + "]}}" * nested)
    header = ('{"format": "cconv-model", "version": 1, "arrays": [], "model": {"name": "s", "dtype": '
              '"float32", "input_shape": [3], "layers": [' + layer + "]}}")
    np.savez(path, __cconv__=np.array(header))
    with pytest.raises(ValueError, match="cannot load cconv model"):
        cconv.load_model(path)


def test_directories_and_missing_files_raise_oserror(tmp_path):
    for loader in (cconv.load_model, load_checkpoint):
        with pytest.raises(IsADirectoryError):
            loader(tmp_path)
        with pytest.raises(FileNotFoundError):
            loader(tmp_path / "missing.npz")


# ------------------------------------------------------------------- smaller checks
@pytest.mark.parametrize("make", [lambda: optim.SGD(0.1, momentum=0.5), optim.Adam, optim.AdamW])
def test_hyper_parameters_are_checked_on_assignment(make):
    opt = make()
    lr = opt.lr
    for bad, error in ((-1, ValueError), (0, ValueError), (float("nan"), TypeError), ("0.1", TypeError)):
        with pytest.raises(error):
            opt.lr = bad
        assert opt.lr == lr
    with pytest.raises(ValueError):
        opt.weight_decay = -0.1
    if isinstance(opt, optim.SGD):
        with pytest.raises(ValueError):
            opt.momentum = 1.5
        with pytest.raises(TypeError):
            opt.nesterov = "no"
    else:
        with pytest.raises(ValueError):
            opt.betas = (0.9, 1.0)
        with pytest.raises(TypeError):
            opt.betas = 0.9
        with pytest.raises(ValueError):
            opt.eps = -1e-8
    opt.lr = 0.5
    assert opt.lr == 0.5


@pytest.mark.parametrize("flag", ["no", 0, 1, None, "False"])
def test_compute_grad_x_must_be_a_bool(flag):
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(TypeError, match="compute_grad_x"):
        F.conv2d_backward(np.ones((1, 1, 2, 2), np.float32), x, w, compute_grad_x=flag)
    with pytest.raises(TypeError, match="compute_grad_x"):
        F.dense_backward(np.ones((1, 2), np.float32), np.ones((1, 3), np.float32), np.ones((3, 2), np.float32),
                         compute_grad_x=flag)
    model = cconv.Sequential([Flatten(), Dense(2)], input_shape=(1, 3, 3))
    model.forward(x)
    with pytest.raises(TypeError, match="need_input_grad"):
        model.backward(np.ones((1, 2), np.float32), need_input_grad=flag)
    grad_x, _, _ = F.conv2d_backward(np.ones((1, 1, 2, 2), np.float32), x, w, compute_grad_x=np.bool_(False))
    assert grad_x is None


@pytest.mark.parametrize("path", ["m-{unknown}.npz", "m-{epoch}-{val_loss:.2f}.npz", "m-{0}.npz", "m-{epoch.x}.npz"])
def test_model_checkpoint_with_unknown_fields_fails_before_training(tmp_path, path):
    model = cconv.Sequential([Flatten(), Dense(2)], input_shape=(1, 2, 2))
    before = model.parameters()[0].copy()
    checkpoint = ModelCheckpoint(str(tmp_path / path), monitor="loss", save_best_only=False)
    with pytest.raises(ValueError, match="cannot be filled in"):
        Trainer(model, optimizer="sgd").fit(np.ones((2, 1, 2, 2), np.float32), np.zeros(2, np.int64),
                                            verbose=0, callbacks=[checkpoint])
    assert np.array_equal(model.parameters()[0], before)  # no epoch ran
    assert os.listdir(tmp_path) == []


def test_model_checkpoint_with_known_fields_saves(tmp_path):
    model = cconv.Sequential([Flatten(), Dense(2)], input_shape=(1, 2, 2))
    checkpoint = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{loss:.3f}.npz"), monitor="loss",
                                 save_best_only=False)
    Trainer(model, optimizer="sgd").fit(np.ones((2, 1, 2, 2), np.float32), np.zeros(2, np.int64),
                                        epochs=2, verbose=0, callbacks=[checkpoint])
    assert len(os.listdir(tmp_path)) == 2


@pytest.mark.parametrize("shape", [(2**32, 2**32), (2**31, 1), (3, 2**30), (2**21, 2**21, 2**21, 2**21)])
def test_flatten_of_a_huge_shape_raises(shape):
    with pytest.raises(ValueError, match="flattens to"):
        Flatten().build(shape)


def test_flatten_of_a_large_valid_shape_builds():
    assert Flatten().build((2**15, 2**15, 1)) == (2**30,)


# ------------------------------------------------------------ huge padding, dilation and stride
BIG = 2**31 - 1  # the largest size, padding, stride or dilation cconv accepts
# The issue's reproducer: the sizes of the implicit GEMM's slab wrapped round int64 to a small
# buffer that its copy of the input then overran. The output is 1x1 and no tap meets the pixel;
# its variant's middle filter row does.
ISSUE = ((1, 641, 1, 1), (8, 641, 3, 2), dict(padding=((BIG, BIG), (6700416, 6700416)), dilation=(BIG, 13400832)))
ISSUE_HIT = ((1, 641, 1, 1), (8, 641, 3, 1), dict(padding=((BIG, BIG), (0, 0)), dilation=(BIG, 1)))

CHILD_RUNS_EVERY_ALGORITHM = """
import json, sys
import numpy as np
from cconv import functional as F
x_shape, w_shape, kwargs, out = json.loads(sys.argv[1])
kwargs = {key: tuple(tuple(v) if isinstance(v, list) else v for v in value) if isinstance(value, list) else value
          for key, value in kwargs.items()}
rng = np.random.default_rng(0)
x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
results = {"x": x, "w": w}
listed = F.conv_algorithms(x_shape, w_shape, **kwargs)
for name in ["auto"] + listed["forward"]["applicable"]:
    results["y_" + name] = F.conv2d(x, w, algorithm=name, **kwargs)
dy = rng.standard_normal(results["y_auto"].shape)
results["dy"] = dy
for name in ["auto"] + sorted(set(listed["grad_input"]["applicable"]) & set(listed["grad_weight"]["applicable"])):
    for part, value in zip(("dx_", "dw_", "db_"), F.conv2d_backward(dy, x, w, algorithm=name, **kwargs)):
        results[part + name] = value
np.savez(out, **results)
print("done", flush=True)
"""


@pytest.mark.parametrize("case", [ISSUE, ISSUE_HIT], ids=["issue", "middle-row-hits"])
def test_issue_reproducer_runs_in_a_child_and_matches_the_reference(case, tmp_path):
    """The reproducer, forward and backward with every algorithm that applies and with 'auto', in
    a child process (a heap overflow kills it, not the test run), against the reference that reads
    only the taps meeting the image."""
    x_shape, w_shape, kwargs = case
    out = tmp_path / "results.npz"
    result = subprocess.run([sys.executable, "-c", CHILD_RUNS_EVERY_ALGORITHM,
                             json.dumps([x_shape, w_shape, kwargs, str(out)])],
                            capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    got = np.load(out)
    x, w, dy = got["x"], got["w"], got["dy"]
    want_y = ref.conv2d_taps(x, w, **kwargs)
    want = dict(zip(("dx_", "dw_", "db_"), ref.conv2d_backward_taps(dy, x, w, **kwargs)))
    names = [key for key in got.files if key.startswith(("y_", "dx_", "dw_", "db_"))]
    assert "y_gemm" in names and "dx_auto" in names
    for key in names:
        prefix = key.split("_")[0] + "_"
        ref.assert_close(got[key], want_y if prefix == "y_" else want[prefix], np.float64, key)
    if case is ISSUE_HIT:  # the reference is not vacuous: the middle row meets the pixel
        assert np.abs(want_y).max() > 0.1


@st.composite
def huge_axis(draw):
    """(input size, filter taps, stride, dilation, (padding before, after)) of one axis whose
    output has at most 4 pixels, strides and dilations small or near 2**31, paddings up to 2**31 - 1;
    half the time the padding puts some tap on the image."""
    stride = draw(st.one_of(st.integers(1, 4), st.integers(2**30, BIG)))
    dilation = draw(st.one_of(st.integers(1, 4), st.integers(2**30, BIG)))
    taps, size, outputs = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    span = (outputs - 1) * stride + (taps - 1) * dilation + 1
    low = max(0, span - size)  # the total padding that gives `outputs` (or fewer, for a small span)
    assume(low <= 2 * BIG)
    total = draw(st.integers(low, min(2 * BIG, max(low, span - size + stride - 1))))
    first, last = max(0, total - BIG), min(BIG, total)  # the padding before that leaves at most BIG after
    if draw(st.booleans()):  # output o's tap t on pixel i
        o, t, i = draw(st.integers(0, outputs - 1)), draw(st.integers(0, taps - 1)), draw(st.integers(0, size - 1))
        before = min(max(o * stride + t * dilation - i, first), last)
    else:
        before = draw(st.integers(first, last))
    return size, taps, stride, dilation, (before, total - before)


@settings(max_examples=examples(40))
@given(rows=huge_axis(), columns=huge_axis(), n=st.integers(1, 2), groups=st.integers(1, 2),
       channels=st.integers(1, 2), filters=st.integers(1, 2), seed=st.integers(0, 2**32 - 1))
def test_huge_padding_dilation_and_stride_with_tiny_outputs(rows, columns, n, groups, channels, filters, seed):
    """Cheap answers whatever the geometry's size: every algorithm that says it applies (forced by
    name, pass by pass) and 'auto' run forward and backward, and match the reference that reads
    only the taps meeting the image (no padded copy)."""
    (h, r, sh, dh, pad_h), (w, s, sw, dw, pad_w) = rows, columns
    x_shape, w_shape = (n, groups * channels, h, w), (groups * filters, channels, r, s)
    kwargs = dict(stride=(sh, sw), dilation=(dh, dw), padding=(pad_h, pad_w), groups=groups)
    note(f"x {x_shape} weight {w_shape} {kwargs}")
    rng = np.random.default_rng(seed)
    x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    want_y = ref.conv2d_taps(x, weight, **kwargs)
    assert want_y.size <= 2 * 4 * 16
    dy = rng.standard_normal(want_y.shape)
    want_grads = ref.conv2d_backward_taps(dy, x, weight, **kwargs)
    listed = F.conv_algorithms(x_shape, w_shape, **kwargs)
    for name in ["auto"] + listed["forward"]["applicable"]:
        ref.assert_close(F.conv2d(x, weight, algorithm=name, **kwargs), want_y, np.float64, f"y ({name})")
    for pass_name, index in (("grad_input", 0), ("grad_weight", 1)):
        for name in ["auto"] + listed[pass_name]["applicable"]:
            grads = F.conv2d_backward(dy, x, weight, algorithm={pass_name: name}, **kwargs)
            ref.assert_close(grads[index], want_grads[index], np.float64, f"{pass_name} ({name})")
            if index == 1:
                ref.assert_close(grads[2], want_grads[2], np.float64, f"grad_bias ({name})")


@pytest.mark.parametrize("algorithm", ["auto"] + list(F.ALGORITHMS))
def test_truly_huge_outputs_raise_memory_or_value_error(algorithm):
    """Outputs of 2**64 and 2**62 elements cannot be had: MemoryError or ValueError, whichever
    algorithm is asked for (one that cannot run the geometry says so). (A backward pass needs
    grad_out, an array of the output's size, so it never meets one.)"""
    x, w = np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32)
    with pytest.raises((MemoryError, ValueError)):
        F.conv2d(x, w, padding=BIG, algorithm=algorithm)
    with pytest.raises((MemoryError, ValueError)):
        F.conv2d(np.ones((2, 1, 1, 1), np.float32), np.ones((2**20, 1, 1, 1), np.float32), padding=(2**20, 2**20),
                 algorithm=algorithm)


def test_empty_batches_with_huge_planes_run():
    """No images, but planes of 2**40 pixels padded to 2**43: nothing to compute, nothing
    allocated past the empty outputs. (NumPy refuses empty arrays whose other axes multiply past
    its limit; tests/c/test_sizes.c takes the kernels to 2**31 - 1 on every axis.)"""
    side = 2**20
    x = np.zeros((0, 2, side, side), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    y = F.conv2d(x, w, padding=side, dilation=side // 2)
    assert y.shape == (0, 3, 2 * side, 2 * side)
    grad_x, grad_w, grad_b = F.conv2d_backward(y, x, w, padding=side, dilation=side // 2)
    assert grad_x.shape == x.shape and grad_w.shape == w.shape and not grad_w.any() and not grad_b.any()
    assert F.max_pool2d(x, 2).shape == (0, 2, side // 2, side // 2)
    assert F.conv_algorithms(x.shape, w.shape, padding=side, dilation=side // 2)["forward"]["applicable"]
