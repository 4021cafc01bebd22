"""Time one training epoch of the same CNN in cconv and in PyTorch (CPU), when installed.

Both frameworks train the same architecture on the same data with the same batch size,
loss (softmax cross-entropy), optimizer (SGD, momentum 0.9) and thread count; each epoch
is timed `--repeats` times after one warm-up epoch and the medians are printed with the
ratio cconv / torch (below 1 means cconv is faster). Networks:

  lenet5  1x32x32: conv6 5x5-ReLU-maxpool-conv16 5x5-ReLU-maxpool-FC120-FC84-FC10 (61,706 params)
  mnist   1x28x28: conv32 3x3 p1-ReLU-maxpool-conv64 3x3 p1-ReLU-maxpool-FC128-FC10 (421,642)

The data is synthetic (random images and labels of MNIST's shape) unless --mnist DIR points
at MNIST IDX files, whose first --samples training images are used (zero-padded to 32x32
for LeNet-5). Timings depend only on shapes, so synthetic data measures the same work.

    python benchmarks/bench_epoch.py [--samples 4096] [--batch-size 64] [--threads 2]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cconv  # noqa: E402
from cconv.layers import Conv2D, Dense, Flatten, MaxPool2D  # noqa: E402


def cconv_model(name, seed=0):
    if name == "lenet5":
        layers = [Conv2D(6, 5, activation="relu"), MaxPool2D(2), Conv2D(16, 5, activation="relu"),
                  MaxPool2D(2), Flatten(), Dense(120, activation="relu"), Dense(84, activation="relu"),
                  Dense(10)]
        return cconv.Sequential(layers, input_shape=(1, 32, 32), seed=seed)
    layers = [Conv2D(32, 3, padding=1, activation="relu"), MaxPool2D(2),
              Conv2D(64, 3, padding=1, activation="relu"), MaxPool2D(2), Flatten(),
              Dense(128, activation="relu"), Dense(10)]
    return cconv.Sequential(layers, input_shape=(1, 28, 28), seed=seed)


def torch_model(name, torch):
    nn = torch.nn
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def make_data(name, samples, mnist_dir, seed=0):
    size = 32 if name == "lenet5" else 28
    if mnist_dir:
        x, y = cconv.datasets.load_mnist(mnist_dir, "train")
        x, y = x[:samples], y[:samples]
        if size == 32:
            x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        return np.ascontiguousarray(x), y
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 1, size, size), dtype=np.float32)
    return x, rng.integers(0, 10, samples)


def time_cconv(name, x, y, batch_size, repeats):
    model = cconv_model(name)
    trainer = cconv.Trainer(model, optimizer=cconv.optim.SGD(0.01, momentum=0.9))
    trainer.fit(x[: batch_size * 4], y[: batch_size * 4], epochs=1, batch_size=batch_size, verbose=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
        times.append(time.perf_counter() - start)
    return times


def time_torch(name, x, y, batch_size, repeats, torch):
    torch.manual_seed(0)
    model = torch_model(name, torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))

    def epoch(count):
        for start in range(0, count, batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(tx[start:start + batch_size]), ty[start:start + batch_size])
            loss.backward()
            optimizer.step()

    epoch(batch_size * 4)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch(len(x))
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["lenet5", "mnist", "all"], default="all")
    parser.add_argument("--samples", type=int, default=4096, help="images per epoch (default 4096)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both frameworks (default: cconv's default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per framework (median)")
    parser.add_argument("--mnist", default=None, help="folder with MNIST IDX files (else synthetic)")
    parser.add_argument("--no-torch", action="store_true", help="time cconv only")
    args = parser.parse_args()

    if args.threads is not None:
        cconv.set_num_threads(args.threads)
    threads = cconv.get_num_threads()
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError:
            print("PyTorch is not installed: timing cconv only")
    names = ["lenet5", "mnist"] if args.model == "all" else [args.model]
    print(f"one training epoch: {args.samples} images, batch size {args.batch_size}, {threads} thread{'s' if threads != 1 else ''}, "
          f"{'MNIST' if args.mnist else 'synthetic'} data, median of {args.repeats}"
          + (f", torch {torch.__version__}" if torch else ""))
    print(f"{'network':<8} {'cconv s':>9} {'img/s':>8} {'torch s':>9} {'img/s':>8} {'cconv/torch':>12}")
    for name in names:
        x, y = make_data(name, args.samples, args.mnist)
        ours = statistics.median(time_cconv(name, x, y, args.batch_size, args.repeats))
        line = f"{name:<8} {ours:>9.3f} {args.samples / ours:>8.0f}"
        if torch is not None:
            theirs = statistics.median(time_torch(name, x, y, args.batch_size, args.repeats, torch))
            line += f" {theirs:>9.3f} {args.samples / theirs:>8.0f} {ours / theirs:>12.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
