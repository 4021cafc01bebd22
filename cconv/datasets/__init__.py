"""Datasets: the digits set shipped with cconv, and a reader for MNIST-style IDX files.

load_digits()
    The UCI "Optical Recognition of Handwritten Digits" test set (1,797 images of 8x8 pixels,
    values 0..16, ten classes; the set scikit-learn calls `load_digits`), stored inside the
    package as `digits.npz` so it works offline. It comes with a fixed stratified split made
    once by `tools/make_digits.py`: 1,437 training and 360 test images (20% of each class in
    the test set). Data: E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits",
    UCI Machine Learning Repository (1998), https://doi.org/10.24432/C50P49, licensed under
    Creative Commons Attribution 4.0 (CC BY 4.0).

load_mnist(directory, kind='train')
    MNIST or Fashion-MNIST from the standard IDX files in a folder you have (gzipped or not).

RandomShift(max_shift=1)
    A batch augmentation for Trainer.fit(augment=...): random small translations.

make_shapes(n, size=32, seed=None)
    A CIFAR-like synthetic set made on the spot: colour images (3, size, size) of ten shape
    classes (disk, square, ring, stripes, ...) at random places, sizes and colours.

read_idx(path)
    Any IDX file (the format of MNIST), validated: magic number, element type, dimensions
    and exact size; `.gz` files are decompressed on the fly.
"""
import gzip
import os
import zlib

import numpy as np

from cconv._args import as_data_format
from cconv.datasets.synthetic import SHAPE_CLASSES, make_shapes
from cconv.datasets.transforms import RandomShift

__all__ = ["load_digits", "load_mnist", "read_idx", "RandomShift", "make_shapes", "SHAPE_CLASSES"]

_DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")

# IDX element type code -> big-endian NumPy dtype
_IDX_TYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_MAX_IDX_BYTES = 2**34  # 16 GiB: anything larger is certainly a corrupt header


def load_digits(data_format="channels_first"):
    """The embedded digits set as ((X_train, y_train), (X_test, y_test)).

    X is float32 of shape (N, 1, 8, 8) with values in [0, 1] (pixel / 16), or (N, 8, 8, 1) with
    data_format='channels_last' (Keras's layout); y is int64 in 0..9. N is 1,437 for training
    and 360 for testing; the split is fixed and stratified.
    """
    shape = (-1, 1, 8, 8) if as_data_format(data_format) == "channels_first" else (-1, 8, 8, 1)
    with np.load(_DIGITS_FILE, allow_pickle=False) as data:
        parts = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    x_train, y_train, x_test, y_test = parts

    def images(x):
        return (x.astype(np.float32) / np.float32(16.0)).reshape(shape)

    return ((images(x_train), y_train.astype(np.int64)),
            (images(x_test), y_test.astype(np.int64)))


def read_idx(path):
    """Read an IDX file (optionally gzipped) into a native-byte-order ndarray.

    The file is streamed: the header is read and checked first, and then exactly the number of
    bytes it declares, so a corrupt or hostile file (a gzip bomb, /dev/zero) costs no more
    memory or time than the array it declares, at most 16 GiB.

    Raises FileNotFoundError when the file is missing and ValueError when it is not a valid
    IDX file: bad magic number, unknown element type, zero dimensions, a data size that does
    not match the header, or corrupt gzip data.
    """
    return _read_idx(os.fspath(path))


# deflate expands at most 1032:1, so a .gz file this many times smaller than the data its IDX
# header declares cannot hold that data
_MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 22


def _read_idx(path, check=None):
    """read_idx; `check(dtype, shape)` may raise ValueError about the header before any data
    is read."""
    with open(path, "rb") as raw:
        compressed = raw.peek(2)[:2] == b"\x1f\x8b"  # peek: a pipe cannot seek back
        size = os.fstat(raw.fileno()).st_size
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            with stream:
                return _read_idx_stream(path, stream, size, compressed, check)
        except (OSError, EOFError, zlib.error) as exc:
            if not compressed:
                raise
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc


def _read_exactly(stream, count):
    """Up to `count` bytes from `stream` (fewer only at its end), read in bounded chunks."""
    parts, left = [], count
    while left > 0:
        part = stream.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _read_idx_stream(path, stream, file_size, compressed, check):
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(magic)} bytes, the header needs 4)")
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic number must start with two zero "
                         f"bytes, got {magic[0]:#04x} {magic[1]:#04x})")
    type_code, ndim = magic[2], magic[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX element type {type_code:#04x} (expected one of "
                         f"{', '.join(f'{c:#04x}' for c in _IDX_TYPES)})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    dims = _read_exactly(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({4 + len(dims)} bytes, {ndim} dimensions "
                         f"need {4 + 4 * ndim})")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    dtype = _IDX_TYPES[type_code]
    expected = dtype.itemsize
    for d in shape:
        expected *= d
        if expected > _MAX_IDX_BYTES:
            raise ValueError(f"{path}: IDX header declares an implausibly large array {shape}")
    if check is not None:
        check(dtype, shape)
    header_size = 4 + 4 * ndim
    # cheap size checks before reading anything: a plain file's size is known, and a gzip
    # file cannot expand by more than deflate's ratio
    limit = file_size * _MAX_GZIP_RATIO if compressed else file_size - header_size
    if file_size and limit < expected:
        what = ("could not hold" if compressed else "holds only")
        raise ValueError(f"{path}: IDX file truncated: header declares shape {shape} of "
                         f"{dtype.name} ({expected} bytes of data) but the file {what} "
                         f"{'that much' if compressed else f'{limit}'}")
    data = _read_exactly(stream, expected)
    if len(data) < expected:
        raise ValueError(f"{path}: IDX file truncated: header declares shape {shape} of "
                         f"{dtype.name} ({expected} bytes of data) but the file holds {len(data)}")
    if stream.read(1):
        raise ValueError(f"{path}: IDX file has trailing bytes: header declares shape {shape} "
                         f"of {dtype.name} ({expected} bytes of data) but the file holds more")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(directory, prefix, what):
    """The path of e.g. train-images-idx3-ubyte[.gz] in `directory` (a few common spellings)."""
    rank = "idx3" if what == "images" else "idx1"
    names = [f"{prefix}-{what}-{rank}-ubyte", f"{prefix}-{what}.{rank}-ubyte"]
    for name in names:
        for candidate in (name, name + ".gz"):
            full = os.path.join(directory, candidate)
            if os.path.isfile(full):
                return full
    raise FileNotFoundError(f"no {names[0]}[.gz] in {directory!r} (MNIST / Fashion-MNIST IDX "
                            f"files are expected there)")


def _expect_uint8(path, ndim, what, count=None):
    """A read_idx header check: a `ndim`-D uint8 array (of `count` items when given)."""
    def check(dtype, shape):
        if len(shape) != ndim or dtype != np.uint8:
            raise ValueError(f"{path}: expected a {ndim}-D uint8 {what} array, got {len(shape)}-D "
                             f"{dtype.name}")
        if count is not None and shape[0] != count:
            raise ValueError(f"{path} holds {shape[0]} {what}s but the labels file holds {count} labels")
    return check


def load_mnist(directory, kind="train", data_format="channels_first"):
    """MNIST or Fashion-MNIST from the IDX files in `directory` as (X, y).

    kind is 'train' (train-images-idx3-ubyte, train-labels-idx1-ubyte) or 'test'
    (t10k-...); the files may be gzipped. X is float32 of shape (N, 1, 28, 28) in [0, 1]
    ((N, 28, 28, 1) with data_format='channels_last'); y is int64 in 0..9.
    """
    channel_axis = 1 if as_data_format(data_format) == "channels_first" else 3
    if kind not in ("train", "test"):
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"MNIST directory {directory!r} does not exist")
    prefix = "train" if kind == "train" else "t10k"
    images_path = _find_idx(directory, prefix, "images")
    labels_path = _find_idx(directory, prefix, "labels")
    # both headers are checked before the images are read
    labels = _read_idx(labels_path, _expect_uint8(labels_path, 1, "label"))
    images = _read_idx(images_path, _expect_uint8(images_path, 3, "image", len(labels)))
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0..9, found {int(labels.max())}")
    x = np.expand_dims(images.astype(np.float32) / np.float32(255.0), channel_axis)
    return x, labels.astype(np.int64)
