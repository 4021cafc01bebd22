"""One training epoch of LeNet-5 and the MNIST CNN in cconv and PyTorch: `cconv.bench`'s epoch
table (see `python -m cconv.bench --help` for the options).

    python benchmarks/bench_epoch.py [--samples 4096] [--batch-size 64] [--threads 2] [--mnist DIR]
"""
import sys

from cconv.bench import main

if __name__ == "__main__":
    sys.exit(main(["epoch"] + sys.argv[1:]))
