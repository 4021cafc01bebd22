"""cconv's benchmarks, runnable from an installed wheel: `python -m cconv.bench [conv|pool|epoch|all]`.

Each table times cconv and, when PyTorch is installed, PyTorch's CPU path in the same run, with
the same thread count, and prints medians and the ratio torch time / cconv time (above 1 means
cconv is faster). These machines are shared and noisy: compare ratios, not absolute times; the
cconv and torch runs of a row are interleaved, round by round, so both see the same spells.

  conv   forward and backward (grad x + grad weight + grad bias) of the standard layer shapes
  pool   max, average and L2 pooling 2x2/2 on a (64, 64, 32, 32) batch, forward and backward
  epoch  one training epoch (SGD with momentum) of LeNet-5 and of the MNIST CNN
"""
import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import cconv
from cconv import functional as F
from cconv._config import config

CONV_SHAPES = [  # name, (N, C, H, W, K, R, stride, pad)
    ("lenet1", (64, 1, 28, 28, 6, 5, 1, 0)), ("lenet2", (64, 6, 14, 14, 16, 5, 1, 0)),
    ("mnist_a", (64, 1, 28, 28, 32, 3, 1, 1)), ("mnist_b", (64, 32, 14, 14, 64, 3, 1, 1)),
    ("cifar_a", (64, 3, 32, 32, 64, 3, 1, 1)), ("cifar_b", (64, 64, 32, 32, 64, 3, 1, 1)),
    ("cifar_c", (64, 128, 16, 16, 128, 3, 1, 1)), ("resnet_l3", (32, 256, 14, 14, 256, 3, 1, 1)),
    ("resnet_s2", (32, 128, 28, 28, 256, 3, 2, 1)), ("pointwise", (32, 256, 14, 14, 512, 1, 1, 0)),
    ("batch1_vgg", (1, 64, 56, 56, 64, 3, 1, 1)),
]
FIRST_LAYERS = ("lenet1", "mnist_a", "cifar_a")


def median_times(fns, repeats, warmup=2):
    """The median wall time of each fn() in seconds, after `warmup` untimed calls of each. The
    calls are interleaved (one of each per round), so a slow spell of a shared machine slows
    cconv and torch alike instead of whichever happened to run then."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def header(torch):
    info = config()
    malloc = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "OMP_"))}
    print(f"cconv {info['cconv']} ({info['simd_selected']}, OpenMP {info['openmp']}), "
          f"{cconv.get_num_threads()} thread(s), numpy {np.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}" + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", no torch"))
    print(f"malloc: {platform.libc_ver()[0] or 'system'} default settings"
          + (f"; environment {malloc}" if malloc else ""))


def conv_table(torch, repeats):
    rng = np.random.default_rng(0)
    print(f"\nconvolution, float32, median of {repeats} (ms); ratio = torch / cconv")
    print(f"{'shape':<11} {'cconv fwd':>9} {'bwd':>8} {'torch fwd':>9} {'bwd':>8} {'fwd x':>6} {'f+b x':>6}")
    ratios = {}
    for name, (n, c, h, w, k, r, stride, pad) in CONV_SHAPES:
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        weight = rng.standard_normal((k, c, r, r), dtype=np.float32) * 0.1
        bias = np.zeros(k, np.float32)
        y = F.conv2d(x, weight, bias, stride=stride, padding=pad)
        fns = [lambda: F.conv2d(x, weight, bias, stride=stride, padding=pad),
               lambda: F.conv2d_backward(y, x, weight, stride=stride, padding=pad)]
        if torch is not None:
            tx, tw, tb, ty = (torch.from_numpy(a) for a in (x, weight, bias, y))
            fns += [lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, pad),
                    lambda: torch.ops.aten.convolution_backward(
                        ty, tx, tw, [k], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1, [True, True, True])]
        times = median_times(fns, repeats)
        fwd, bwd = times[:2]
        line = f"{name:<11} {fwd * 1e3:>9.3f} {bwd * 1e3:>8.3f}"
        if torch is not None:
            tfwd, tbwd = times[2:]
            ratios[name] = (tfwd + tbwd) / (fwd + bwd)
            line += f" {tfwd * 1e3:>9.3f} {tbwd * 1e3:>8.3f} {tfwd / fwd:>6.2f} {ratios[name]:>6.2f}"
        print(line, flush=True)
    if ratios:
        print(f"forward+backward ratio: geometric mean {geometric_mean(list(ratios.values())):.2f}, "
              f"lowest {min(ratios.values()):.2f} ({min(ratios, key=ratios.get)}), first layers "
              + ", ".join(f"{s} {ratios[s]:.2f}" for s in FIRST_LAYERS))


def pool_table(torch, repeats):
    x = np.random.default_rng(0).standard_normal((64, 64, 32, 32), dtype=np.float32)
    ops = {
        "max": (lambda: F.max_pool2d(x, 2), lambda g: F.max_pool2d_backward(g, x, 2)),
        "avg": (lambda: F.avg_pool2d(x, 2), lambda g: F.avg_pool2d_backward(g, x, 2)),
        "lp2": (lambda: F.lp_pool2d(x, 2, 2), lambda g: F.lp_pool2d_backward(g, x, 2, 2)),
    }
    print(f"\npooling 2x2/2 on (64, 64, 32, 32) float32, median of {repeats} (ms); ratio = torch / cconv")
    print(f"{'op':<5} {'cconv fwd':>9} {'bwd':>8} {'torch fwd':>9} {'bwd':>8} {'fwd x':>6} {'bwd x':>6} {'f+b x':>6}")
    for name, (forward, backward) in ops.items():
        g = forward()
        fns = [forward, lambda: backward(g)]
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            tf = {"max": lambda: torch.nn.functional.max_pool2d(tx, 2),
                  "avg": lambda: torch.nn.functional.avg_pool2d(tx, 2),
                  "lp2": lambda: torch.nn.functional.lp_pool2d(tx, 2, 2)}[name]
            tg, out = torch.from_numpy(g), tf()

            def torch_backward():  # the backward alone, through the graph kept from one forward
                tx.grad = None
                out.backward(tg, retain_graph=True)
            fns += [lambda: tf().detach(), torch_backward]
        times = median_times(fns, repeats)
        fwd, bwd = times[:2]
        line = f"{name:<5} {fwd * 1e3:>9.3f} {bwd * 1e3:>8.3f}"
        if torch is not None:
            tfwd, tbwd = times[2:]
            line += (f" {tfwd * 1e3:>9.3f} {tbwd * 1e3:>8.3f} {tfwd / fwd:>6.2f} {tbwd / bwd:>6.2f}"
                     f" {(tfwd + tbwd) / (fwd + bwd):>6.2f}")
        print(line, flush=True)


# ---------------------------------------------------------------------------- epochs
def cconv_network(name, seed=0):
    from cconv.layers import Conv2D, Dense, Flatten, MaxPool2D
    if name == "lenet5":
        layers = [Conv2D(6, 5, activation="relu"), MaxPool2D(2), Conv2D(16, 5, activation="relu"),
                  MaxPool2D(2), Flatten(), Dense(120, activation="relu"), Dense(84, activation="relu"),
                  Dense(10)]
        return cconv.Sequential(layers, input_shape=(1, 32, 32), seed=seed)
    layers = [Conv2D(32, 3, padding=1, activation="relu"), MaxPool2D(2),
              Conv2D(64, 3, padding=1, activation="relu"), MaxPool2D(2), Flatten(),
              Dense(128, activation="relu"), Dense(10)]
    return cconv.Sequential(layers, input_shape=(1, 28, 28), seed=seed)


def torch_network(name, torch):
    nn = torch.nn
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def epoch_data(name, samples, mnist_dir, seed=0):
    """MNIST-shaped images (28x28; 32x32 for LeNet-5): real ones from mnist_dir, else random."""
    size = 32 if name == "lenet5" else 28
    if mnist_dir:
        x, y = cconv.datasets.load_mnist(mnist_dir, "train")
        x, y = x[:samples], y[:samples]
        if size == 32:
            x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
        return np.ascontiguousarray(x), y
    rng = np.random.default_rng(seed)
    return rng.random((samples, 1, size, size), dtype=np.float32), rng.integers(0, 10, samples)


def cconv_epoch(name, x, y, batch_size):
    trainer = cconv.Trainer(cconv_network(name), optimizer=cconv.optim.SGD(0.01, momentum=0.9))
    return lambda: trainer.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)


def torch_epoch(name, x, y, batch_size, torch):
    torch.manual_seed(0)
    model = torch_network(name, torch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(np.asarray(y, dtype=np.int64))

    def epoch():
        for start in range(0, len(tx), batch_size):
            optimizer.zero_grad()
            loss_fn(model(tx[start:start + batch_size]), ty[start:start + batch_size]).backward()
            optimizer.step()
    return epoch


def epoch_table(torch, repeats, samples, batch_size, mnist_dir):
    print(f"\none training epoch: {samples} images, batch {batch_size}, SGD momentum 0.9, "
          f"{'MNIST' if mnist_dir else 'synthetic'} data, median of {repeats} (s); ratio = torch / cconv")
    print(f"{'network':<8} {'cconv s':>9} {'img/s':>8} {'torch s':>9} {'img/s':>8} {'ratio':>6}")
    for name in ("lenet5", "mnist"):
        x, y = epoch_data(name, samples, mnist_dir)
        fns = [cconv_epoch(name, x, y, batch_size)]
        if torch is not None:
            fns.append(torch_epoch(name, x, y, batch_size, torch))
        times = median_times(fns, repeats, warmup=1)
        ours = times[0]
        line = f"{name:<8} {ours:>9.3f} {samples / ours:>8.0f}"
        if torch is not None:
            theirs = times[1]
            line += f" {theirs:>9.3f} {samples / theirs:>8.0f} {theirs / ours:>6.2f}"
        print(line, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cconv.bench", description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help="conv, pool, epoch or all (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="threads for cconv and torch")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median)")
    parser.add_argument("--samples", type=int, default=4096, help="images per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mnist", default=None, help="folder with MNIST IDX files (else synthetic data)")
    parser.add_argument("--no-torch", action="store_true", help="time cconv only")
    args = parser.parse_args(argv)
    unknown = set(args.tables) - {"conv", "pool", "epoch", "all"}
    if unknown:
        parser.error(f"unknown table(s) {sorted(unknown)}: choose from conv, pool, epoch, all")
    if args.threads is not None:
        cconv.set_num_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(cconv.get_num_threads())
        except ImportError:
            pass
    header(torch)
    tables = {"conv", "pool", "epoch"} if not args.tables or "all" in args.tables else set(args.tables)
    if "conv" in tables:
        conv_table(torch, args.repeats)
    if "pool" in tables:
        pool_table(torch, args.repeats)
    if "epoch" in tables:
        epoch_table(torch, max(3, args.repeats // 2), args.samples, args.batch_size, args.mnist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
