"""Tests of cconv.datasets: the embedded digits split, the IDX reader (valid and malformed
files written here), load_mnist on a small fake MNIST folder, and RandomShift."""
import gzip
import struct

import numpy as np
import pytest

from cconv import datasets

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
             np.float64: 0x0E}


def idx_bytes(array):
    """An IDX file for `array` (written independently of cconv's reader)."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype.type], array.ndim])
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# ---------------------------------------------------------------------------- digits

def test_load_digits_split():
    (x, y), (xt, yt) = datasets.load_digits()
    assert x.shape == (1437, 1, 8, 8) and xt.shape == (360, 1, 8, 8)
    assert x.dtype == xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert x.min() == 0 and x.max() == 1 and xt.min() == 0 and xt.max() == 1
    assert np.array_equal(x * 16, np.round(x * 16))  # original 0..16 pixel levels
    assert set(np.unique(y)) == set(range(10)) and set(np.unique(yt)) == set(range(10))
    train_counts, test_counts = np.bincount(y, minlength=10), np.bincount(yt, minlength=10)
    fraction = test_counts / (train_counts + test_counts)
    assert np.all(np.abs(fraction - 0.2) < 0.01)  # stratified: 20% of every class
    (x2, y2), (xt2, yt2) = datasets.load_digits()
    assert np.array_equal(x, x2) and np.array_equal(yt, yt2)  # fixed split
    x[0] = 5.0
    assert datasets.load_digits()[0][0].max() == 1  # callers get fresh arrays


def test_digits_are_the_uci_set_scikit_learn_ships():
    sk = pytest.importorskip("sklearn.datasets")
    reference = sk.load_digits()
    (x, y), (xt, yt) = datasets.load_digits()
    ours = np.concatenate([np.concatenate([x, xt]).reshape(-1, 64) * 16,
                           np.concatenate([y, yt])[:, None]], axis=1)
    theirs = np.concatenate([reference.data, reference.target[:, None]], axis=1)
    order = np.lexsort(ours.T[::-1])
    ref_order = np.lexsort(theirs.T[::-1])
    assert np.array_equal(ours[order], theirs[ref_order])


# ---------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, compress, rng):
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(array), compress)
    got = datasets.read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert np.array_equal(got, array)
    assert np.array_equal(datasets.read_idx(str(path)), array)


def test_read_idx_one_dimensional(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    assert np.array_equal(datasets.read_idx(write(tmp_path / "l", idx_bytes(labels))), labels)


@pytest.mark.parametrize("data, match", [
    (b"", "only 0 bytes"),
    (b"\x00\x00", "only 2 bytes"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "element type 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 1), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00\x01", "truncated"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01\x02", "trailing bytes"),
    (b"\x00\x00\x0e\x02" + struct.pack(">II", 2**31, 2**31), "implausibly large"),
])
def test_read_idx_rejects_malformed_files(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        datasets.read_idx(write(tmp_path / "bad", data))


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4, 4), np.uint8)))
    with pytest.raises(ValueError, match="gzip"):
        datasets.read_idx(write(tmp_path / "bad.gz", good[: len(good) // 2]))
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "missing")


# ---------------------------------------------------------------------------- MNIST

def fake_mnist(directory, n_train=12, n_test=5, compress=True, rng=None):
    rng = rng or np.random.default_rng(0)
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if compress else ""
        write(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), compress)
        write(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress)
        parts[prefix] = (images, labels)
    return parts


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist(tmp_path, compress):
    parts = fake_mnist(tmp_path, compress=compress)
    x, y = datasets.load_mnist(tmp_path, "train")
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0] * 255, parts["train"][0], atol=1e-4)
    assert np.array_equal(y, parts["train"][1])
    xt, yt = datasets.load_mnist(str(tmp_path), kind="test")
    assert xt.shape == (5, 1, 28, 28) and np.array_equal(yt, parts["t10k"][1])


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        datasets.load_mnist(tmp_path, kind="validation")
    fake_mnist(tmp_path, compress=False)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(ValueError, match="12 images but"):
        datasets.load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.full(12, 10, np.uint8)))
    with pytest.raises(ValueError, match="0..9"):
        datasets.load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros((12, 1), np.uint8)))
    with pytest.raises(ValueError, match="1-D uint8"):
        datasets.load_mnist(tmp_path)


# ---------------------------------------------------------------------------- RandomShift

def test_random_shift(rng):
    x = rng.standard_normal((50, 2, 6, 7)).astype(np.float32)
    shift = datasets.RandomShift(1, probability=1.0)
    out = shift(x, np.random.default_rng(3))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.array_equal(out, shift(x, np.random.default_rng(3)))  # seeded
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    candidates = np.stack([padded[:, :, i:i + 6, j:j + 7] for i in range(3) for j in range(3)])
    matches = np.all(candidates == out[None], axis=(2, 3, 4))  # (9 shifts, 50 images)
    assert np.all(matches.any(axis=0))  # every image is one of the 9 shifts of itself
    assert matches[4].sum() < 25  # most are moved (offset (0, 0) has probability 1/9)
    assert np.array_equal(datasets.RandomShift(1, probability=0.0)(x, rng), x)
    assert np.array_equal(datasets.RandomShift(0)(x, rng), x)
    with pytest.raises(ValueError):
        datasets.RandomShift(1, probability=2)
    with pytest.raises(ValueError):
        shift(x[0], rng)


def test_make_shapes_is_a_seeded_cifar_like_set():
    x, y = datasets.make_shapes(300, seed=4)
    assert x.shape == (300, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) == set(range(10)) == set(range(len(datasets.SHAPE_CLASSES)))
    x2, y2 = datasets.make_shapes(300, seed=4)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # without noise each image is a shape in one colour on a background of another
    clean, labels = datasets.make_shapes(50, size=16, seed=1, noise=0)
    for image, label in zip(clean, labels):
        colours, counts = np.unique(image.reshape(3, -1).T, axis=0, return_counts=True)
        assert len(colours) == 2 and np.abs(colours[0] - colours[1]).max() >= 0.3 - 1e-6
        assert counts.min() >= 10  # the shape is there, and not the whole picture
    with pytest.raises(ValueError, match="noise"):
        datasets.make_shapes(4, noise=2)
    with pytest.raises(ValueError, match="size"):
        datasets.make_shapes(4, size=4)
