"""Make cconv/datasets/digits.npz from scikit-learn's bundled copy of the UCI digits data.

Run once by the maintainers (scikit-learn is not a dependency of cconv):

    python tools/make_digits.py [path/to/digits.csv.gz]

The CSV has 1,797 rows of 64 pixel values (0..16) followed by the label. The script makes a
fixed stratified split: in every class, 20% of the images (rounded by largest remainder so
the test set has exactly 360 images) go to the test set, picked by a seeded permutation.
The split is stored in the file, so loading never depends on a random number generator.
Data: E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository (1998), https://doi.org/10.24432/C50P49, license CC BY 4.0.
"""
import gzip
import os
import sys

import numpy as np

TEST_SIZE = 360
SEED = 0
OUT = os.path.join(os.path.dirname(__file__), os.pardir, "cconv", "datasets", "digits.npz")


def default_source():
    import sklearn  # only needed to locate the bundled CSV
    return os.path.join(os.path.dirname(sklearn.__file__), "datasets", "data", "digits.csv.gz")


def stratified_test_counts(class_counts, test_size):
    """Per-class test counts proportional to class sizes, summing exactly to test_size."""
    exact = class_counts * (test_size / class_counts.sum())
    counts = np.floor(exact).astype(np.int64)
    leftover = test_size - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:leftover]] += 1
    return counts


def main(argv):
    source = argv[1] if len(argv) > 1 else default_source()
    with gzip.open(source, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise SystemExit(f"unexpected digits table shape {table.shape}")
    images = table[:, :64].reshape(-1, 8, 8)
    labels = table[:, 64]
    if images.min() < 0 or images.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit("pixel or label values out of range")
    rng = np.random.default_rng(SEED)
    class_counts = np.bincount(labels, minlength=10)
    test_counts = stratified_test_counts(class_counts, TEST_SIZE)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        is_test[rng.permutation(members)[:test_counts[digit]]] = True
    np.savez_compressed(
        os.path.abspath(OUT),
        x_train=images[~is_test].astype(np.uint8), y_train=labels[~is_test].astype(np.uint8),
        x_test=images[is_test].astype(np.uint8), y_test=labels[is_test].astype(np.uint8))
    print(f"wrote {os.path.abspath(OUT)}: {int((~is_test).sum())} train, {int(is_test.sum())} test, "
          f"test per class {test_counts.tolist()}")


if __name__ == "__main__":
    main(sys.argv)
