"""cconv's benchmarks, runnable from an installed wheel: `python -m cconv.bench [conv|layers|networks|pool|epoch|models|all]`.

Each table times cconv and, when PyTorch is installed, PyTorch's CPU path in the same run, with
the same thread count, and prints medians and the ratio torch time / cconv time (above 1 means
cconv is faster). These machines are shared and noisy: compare ratios, not absolute times; the
cconv and torch runs of a row are interleaved, round by round, so both see the same spells.

  conv    forward and backward (grad x + grad weight + grad bias) of the standard layer shapes
  layers  the same for depthwise, strided, grouped, dilated and large-kernel layers; its summary
          caps each row's ratio at 4x so that one layer cannot carry the geometric mean
  networks  the same for 47 layers of published networks (AlexNet, VGG, ResNet, Inception,
          MobileNet, EfficientNet, ShuffleNet, ResNeXt, DeepLab, ConvNeXt, batch-1 inference),
          capped likewise: shapes cconv was not tuned on (several minutes)
  pool    max, average and L2 pooling 2x2/2 on a (64, 64, 32, 32) batch, forward and backward
  epoch   one training epoch (SGD with momentum) of LeNet-5 and of the MNIST CNN
  models  the model zoo (cconv.models) against the same networks in torch.nn: one SGD-momentum
          training step (forward, backward, update) at batch 32 (64 for LeNet-5, 8 for the U-Net
          at 64x64) and batch-1 inference; a network whose layers this cconv lacks is skipped

Malloc settings (--malloc): glibc's default malloc hands PyTorch's large outputs fresh pages that
it pays first-touch page faults on, while cconv reuses its buffers. The conv, layers and networks tables
therefore run twice, each in a child process that times cconv and torch interleaved: 'tuned'
with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=... (large blocks
stay in the heap and are reused; the harder comparison and the headline) and 'default' with
glibc's defaults; glibc reads GLIBC_TUNABLES only at process start, hence the child processes.
The models table runs the same way.
Without glibc or without PyTorch the tables run once in this process.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
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
LAYER_SHAPES = [  # name, (N, C, H, W, K, R, stride, pad, dilation, groups)
    ("dw3_s1", (64, 96, 32, 32, 96, 3, 1, 1, 1, 96)), ("dw3_s2", (64, 144, 32, 32, 144, 3, 2, 1, 1, 144)),
    ("dw5_s1", (32, 240, 14, 14, 240, 5, 1, 2, 1, 240)), ("stem7_s2", (8, 3, 224, 224, 64, 7, 2, 3, 1, 1)),
    ("down1x1_s2", (32, 64, 56, 56, 128, 1, 2, 0, 1, 1)), ("conv3_s2", (32, 64, 56, 56, 128, 3, 2, 1, 1, 1)),
    ("group1x1_g4", (32, 240, 28, 28, 240, 1, 1, 0, 1, 4)), ("resnext_g32", (16, 128, 28, 28, 128, 3, 1, 1, 1, 32)),
    ("dilated3_d2", (8, 256, 33, 33, 256, 3, 1, 2, 2, 1)), ("k5_s1", (32, 32, 32, 32, 64, 5, 1, 2, 1, 1)),
]
# Layers of published networks, as a new user's networks would have them: a wider check than the
# two tables above, which cconv was tuned on. A filter or padding may be (rows, columns).
NETWORK_SHAPES = [  # name, (N, C, H, W, K, R, stride, pad, dilation, groups)
    ("alexnet1", (16, 3, 224, 224, 64, 11, 4, 2, 1, 1)), ("alexnet2", (16, 64, 27, 27, 192, 5, 1, 2, 1, 1)),
    ("alexnet3", (16, 192, 13, 13, 384, 3, 1, 1, 1, 1)), ("alexnet4", (16, 384, 13, 13, 256, 3, 1, 1, 1, 1)),
    ("vgg_conv2", (4, 64, 112, 112, 128, 3, 1, 1, 1, 1)), ("vgg_conv5", (8, 512, 14, 14, 512, 3, 1, 1, 1, 1)),
    ("r50_reduce", (16, 256, 56, 56, 64, 1, 1, 0, 1, 1)), ("r50_expand", (16, 64, 56, 56, 256, 1, 1, 0, 1, 1)),
    ("r50_3x3", (16, 128, 28, 28, 128, 3, 1, 1, 1, 1)), ("r50_proj_s2", (16, 512, 28, 28, 1024, 1, 2, 0, 1, 1)),
    ("r50_stage4", (16, 512, 7, 7, 512, 3, 1, 1, 1, 1)), ("r18_down", (16, 128, 28, 28, 256, 3, 2, 1, 1, 1)),
    ("inc_1x7", (16, 128, 17, 17, 128, (1, 7), 1, (0, 3), 1, 1)),
    ("inc_7x1", (16, 128, 17, 17, 192, (7, 1), 1, (3, 0), 1, 1)),
    ("inc_5x5", (16, 48, 35, 35, 64, 5, 1, 2, 1, 1)), ("inc_s2_valid", (16, 288, 35, 35, 384, 3, 2, 0, 1, 1)),
    ("inc_stem", (16, 3, 299, 299, 32, 3, 2, 0, 1, 1)), ("mb_stem", (16, 3, 224, 224, 32, 3, 2, 1, 1, 1)),
    ("mb_dw112", (16, 32, 112, 112, 32, 3, 1, 1, 1, 32)), ("mb_dw56_s2", (16, 128, 56, 56, 128, 3, 2, 1, 1, 128)),
    ("mb_dw14", (32, 512, 14, 14, 512, 3, 1, 1, 1, 512)), ("mb_dw7", (32, 1024, 7, 7, 1024, 3, 1, 1, 1, 1024)),
    ("mb_expand", (32, 24, 56, 56, 144, 1, 1, 0, 1, 1)), ("mb_project", (32, 144, 56, 56, 24, 1, 1, 0, 1, 1)),
    ("mb_pw7", (32, 1024, 7, 7, 1024, 1, 1, 0, 1, 1)), ("eff_dw5_s2", (16, 144, 56, 56, 144, 5, 2, 2, 1, 144)),
    ("eff_se", (32, 96, 1, 1, 4, 1, 1, 0, 1, 1)), ("shuffle_g3", (32, 240, 28, 28, 240, 1, 1, 0, 1, 3)),
    ("shuffle_dw", (32, 60, 28, 28, 60, 3, 1, 1, 1, 60)), ("resnext_56", (8, 256, 56, 56, 256, 3, 1, 1, 1, 32)),
    ("deeplab_d4", (4, 256, 33, 33, 256, 3, 1, 4, 4, 1)), ("deeplab_d12", (4, 256, 33, 33, 256, 3, 1, 12, 12, 1)),
    ("small_4x4", (32, 512, 4, 4, 512, 3, 1, 1, 1, 1)), ("small_2x2", (64, 256, 2, 2, 256, 3, 1, 1, 1, 1)),
    ("b1_stem", (1, 3, 224, 224, 64, 7, 2, 3, 1, 1)), ("b1_3x3", (1, 256, 14, 14, 256, 3, 1, 1, 1, 1)),
    ("b1_dw", (1, 32, 112, 112, 32, 3, 1, 1, 1, 32)), ("b1_pw", (1, 128, 28, 28, 128, 1, 1, 0, 1, 1)),
    ("r20_16", (128, 16, 32, 32, 16, 3, 1, 1, 1, 1)), ("r20_32", (128, 32, 16, 16, 32, 3, 1, 1, 1, 1)),
    ("r20_64", (128, 64, 8, 8, 64, 3, 1, 1, 1, 1)), ("r20_down", (128, 16, 32, 32, 32, 3, 2, 1, 1, 1)),
    ("convnext_dw", (16, 96, 56, 56, 96, 7, 1, 3, 1, 96)), ("convnext_dw14", (16, 384, 14, 14, 384, 7, 1, 3, 1, 384)),
    ("k7_same", (16, 64, 28, 28, 64, 7, 1, 3, 1, 1)), ("rgb_16", (32, 3, 32, 32, 16, 3, 1, 1, 1, 1)),
    ("odd_17_33", (32, 17, 31, 31, 33, 3, 1, 1, 1, 1)),
]
# The tables that time convolution rows: their shapes and the cap on each row's ratio in the
# summary's geometric mean (None: uncapped).
CONV_TABLES = {"conv": (CONV_SHAPES, None), "layers": (LAYER_SHAPES, 4.0), "networks": (NETWORK_SHAPES, 4.0)}
# The model zoo's networks: training batch, input shape, classes (per pixel for the U-Net).
MODEL_ROWS = {"lenet5": (64, (1, 32, 32), 10), "resnet20": (32, (3, 32, 32), 10),
              "mobilenet_v2": (32, (3, 32, 32), 10), "unet_tiny": (8, (1, 64, 64), 2)}
CHILD_TABLES = ("conv", "layers", "networks", "models")  # timed in child processes, one per malloc setting
TABLES = ("conv", "layers", "networks", "pool", "epoch", "models")

# The 'tuned' malloc: blocks up to 1 GiB come from the heap rather than fresh mmaps, and the heap
# is trimmed only past 4 GiB, so a freed output's pages are reused instead of faulted in again.
TUNED_GLIBC = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"
MALLOC_SETTINGS = {"tuned": TUNED_GLIBC, "default": None}  # the GLIBC_TUNABLES of each child


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


def process_malloc():
    """Words for this process's malloc: the C library and any environment that changes it."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    return f"{platform.libc_ver()[0] or 'system'} " + (f"with environment {env}" if env else "default settings")


def header(torch, malloc_note):
    info = config()
    omp = {k: v for k, v in os.environ.items() if k.startswith("OMP_")}
    print(f"cconv {info['cconv']} ({info['simd_selected']}, OpenMP {info['openmp']}), "
          f"{cconv.get_num_threads()} thread(s), numpy {np.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}" + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", no torch")
          + (f", environment {omp}" if omp else ""))
    print(f"malloc: {malloc_note}", flush=True)


# ---------------------------------------------------------------------------- convolution rows
def time_conv_row(torch, repeats, n, c, h, w, k, r, stride, pad, dilation=1, groups=1):
    """Median times (s) of one float32 convolution layer, its forward ('fwd') and its backward
    ('bwd': grad x, grad weight and grad bias), in cconv and, when torch is given, in PyTorch
    ('tfwd', 'tbwd'), all four interleaved. The conv table's rows are dilation 1, groups 1. The
    filter r and the padding pad are a size for both axes or a pair (rows, columns)."""
    rng = np.random.default_rng(0)
    r, pad = (r, r) if isinstance(r, int) else tuple(r), (pad, pad) if isinstance(pad, int) else tuple(pad)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weight = rng.standard_normal((k, c // groups, *r), dtype=np.float32) * 0.1
    bias = np.zeros(k, np.float32)
    geometry = dict(stride=stride, padding=pad, dilation=dilation, groups=groups)
    y = F.conv2d(x, weight, bias, **geometry)
    fns = [lambda: F.conv2d(x, weight, bias, **geometry),
           lambda: F.conv2d_backward(y, x, weight, **geometry)]
    if torch is not None:
        tx, tw, tb, ty = (torch.from_numpy(a) for a in (x, weight, bias, y))
        fns += [lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, pad, dilation, groups),
                lambda: torch.ops.aten.convolution_backward(
                    ty, tx, tw, [k], [stride] * 2, list(pad), [dilation] * 2, False, [0, 0], groups,
                    [True, True, True])]
    return dict(zip(("fwd", "bwd", "tfwd", "tbwd"), median_times(fns, repeats)))


def fb_ratio(times):
    """Forward+backward ratio torch / cconv of one row's times."""
    return (times["tfwd"] + times["tbwd"]) / (times["fwd"] + times["bwd"])


def selected_shapes(table, rows):
    shapes = CONV_TABLES[table][0]
    return [(name, shape) for name, shape in shapes if not rows or name in rows]


def summary_line(table, label, ratios):
    """The forward+backward ratios' geometric mean (capped per row for the layers table), the
    lowest row and, in the conv table, the first layers."""
    cap = CONV_TABLES[table][1]
    mean = geometric_mean([min(r, cap) if cap else r for r in ratios.values()])
    lowest = min(ratios, key=ratios.get)
    line = (f"forward+backward ratio{label}: geometric mean {mean:.2f}"
            + (f" (each row capped at {cap:g}x)" if cap else "") + f", lowest {ratios[lowest]:.2f} ({lowest})")
    first = [s for s in FIRST_LAYERS if s in ratios]
    return line + (", first layers " + ", ".join(f"{s} {ratios[s]:.2f}" for s in first) if first else "")


def conv_rows_table(table, torch, args, settings):
    """Prints the conv or layers table. settings None: timed in this process; else a list of
    malloc settings, each timed in its own child process and shown as its own ratio columns,
    the absolute times being the first setting's."""
    shapes = selected_shapes(table, args.rows)
    runs = None if settings is None else [run_child(table, setting, args)["rows"] for setting in settings]
    labels = [""] if settings is None else [f" {setting}" for setting in settings]
    width = max(6, *(len("f+b x" + label) for label in labels))
    title = {"conv": "convolution", "layers": "convolution layers (depthwise, strided, grouped, dilated)",
             "networks": "layers of published networks (AlexNet to ConvNeXt, batch-1 inference)"}[table]
    source = "" if settings is None else f", times from the '{settings[0]}' run"
    print(f"\n{title}, float32, median of {args.repeats} (ms{source}); ratio = torch / cconv")
    print(f"{'shape':<11} {'cconv fwd':>9} {'bwd':>8} {'torch fwd':>9} {'bwd':>8}"
          + "".join(f" {'fwd x' + label:>{width}} {'f+b x' + label:>{width}}" for label in labels))
    ratios = [{} for _ in labels]
    for name, shape in shapes:
        row = [time_conv_row(torch, args.repeats, *shape)] if runs is None else [run[name] for run in runs]
        line = f"{name:<11} {row[0]['fwd'] * 1e3:>9.3f} {row[0]['bwd'] * 1e3:>8.3f}"
        if "tfwd" in row[0]:
            line += f" {row[0]['tfwd'] * 1e3:>9.3f} {row[0]['tbwd'] * 1e3:>8.3f}"
            for times, table_ratios in zip(row, ratios):
                table_ratios[name] = fb_ratio(times)
                line += f" {times['tfwd'] / times['fwd']:>{width}.2f} {table_ratios[name]:>{width}.2f}"
        print(line, flush=True)
    for setting, table_ratios in zip(settings or [None], ratios):
        if table_ratios:
            which = "" if setting is None else f", malloc {setting}" + (" (the headline)" if setting == "tuned" else "")
            print(summary_line(table, which, table_ratios))


def run_child(table, setting, args):
    """Times one conv table in a child process (`--malloc inherit --json`) whose environment has
    the GLIBC_TUNABLES of `setting` (glibc reads it only at process start) and no MALLOC_*
    variables; returns the child's JSON: its rows' times and the GLIBC_TUNABLES it ran with."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    if MALLOC_SETTINGS[setting]:
        env["GLIBC_TUNABLES"] = MALLOC_SETTINGS[setting]
    # the child imports the same cconv as this process, wherever that came from
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "cconv.bench", table, "--malloc", "inherit", "--json",
               "--threads", str(cconv.get_num_threads()), "--repeats", str(args.repeats)]
    if args.rows:
        command += ["--rows", ",".join(args.rows)]
    print(f"[{table}: timing with malloc '{setting}' in a child process]", file=sys.stderr, flush=True)
    # run from there too: `-m` puts the working folder first on sys.path, and a source checkout's
    # unbuilt cconv there would shadow the installed one
    child = subprocess.run(command, env=env, cwd=package_root, stdout=subprocess.PIPE, text=True)
    if child.returncode != 0:
        raise SystemExit(f"cconv.bench: the '{setting}' child process of the {table} table "
                         f"failed (exit status {child.returncode})")
    return json.loads(child.stdout.strip().splitlines()[-1])


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


# ---------------------------------------------------------------------------- the model zoo
def torch_zoo_network(name, torch):
    """The torch.nn twin of cconv.models.<name>() (the same layers and parameter count)."""
    nn = torch.nn
    if name == "lenet5":
        return torch_network("lenet5", torch)

    def conv_bn(cin, cout, kernel, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        return layers + ([act()] if act else [])

    class Residual(nn.Module):  # y = relu?(body(x) + shortcut(x))
        def __init__(self, body, shortcut=None, relu=False):
            super().__init__()
            self.body, self.shortcut, self.relu = nn.Sequential(*body), shortcut, relu

        def forward(self, x):
            y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
            return torch.relu(y) if self.relu else y

    if name == "resnet20":
        layers, cin = conv_bn(3, 16, 3, act=nn.ReLU), 16
        for stage, cout in enumerate((16, 32, 64)):
            for block in range(3):
                stride = 2 if stage > 0 and block == 0 else 1
                body = conv_bn(cin, cout, 3, stride, act=nn.ReLU) + conv_bn(cout, cout, 3)
                shortcut = nn.Sequential(*conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout else None
                layers.append(Residual(body, shortcut, relu=True))
                cin = cout
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    if name == "mobilenet_v2":
        from cconv.models import MOBILENET_V2_STAGES, make_divisible
        cin = make_divisible(32 * 0.5)
        layers = conv_bn(3, cin, 3, act=nn.ReLU6)
        for t, c, n, s in MOBILENET_V2_STAGES:
            cout = make_divisible(c * 0.5)
            for i in range(n):
                stride, hidden = (s if i == 0 else 1), int(round(cin * t))
                body = (conv_bn(cin, hidden, 1, act=nn.ReLU6) if t != 1 else []) + \
                    conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6) + conv_bn(hidden, cout, 1)
                layers.append(Residual(body) if stride == 1 and cin == cout else nn.Sequential(*body))
                cin = cout
        layers += conv_bn(cin, 1280, 1, act=nn.ReLU6)
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, 10))

    class UNetTiny(nn.Module):
        def __init__(self, base=16):
            super().__init__()

            def double(cin, cout):
                return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))
            self.enc = nn.ModuleList([double(1, base), double(base, 2 * base), double(2 * base, 4 * base)])
            self.bottom = double(4 * base, 8 * base)
            self.ups = nn.ModuleList(nn.ConvTranspose2d(2 * (base << k), base << k, 2, stride=2) for k in (2, 1, 0))
            self.decs = nn.ModuleList(double(2 * (base << k), base << k) for k in (2, 1, 0))
            self.out = nn.Conv2d(base, 2, 1)

        def forward(self, x):
            skips = []
            for enc in self.enc:
                x = enc(x)
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
            x = self.bottom(x)
            for up, dec, skip in zip(self.ups, self.decs, reversed(skips)):
                x = dec(torch.cat([skip, up(x)], 1))
            return self.out(x)
    return UNetTiny()


def time_model_row(torch, repeats, name):
    """Median times (s) of one training step ('step') and one batch-1 inference ('infer') of the
    zoo network `name` in cconv and, when torch is given, in PyTorch ('tstep', 'tinfer'), all
    interleaved; {'skipped': why} when this cconv lacks the network's layers."""
    from cconv import models
    batch, shape, classes = MODEL_ROWS[name]
    try:
        model, inference = getattr(models, name)(seed=0), getattr(models, name)(seed=0)
    except ImportError as exc:
        return {"skipped": str(exc)}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + shape, dtype=np.float32)
    y = rng.integers(0, classes, (batch,) + (shape[1:] if name == "unet_tiny" else ()))
    trainer = cconv.Trainer(model, optimizer=cconv.optim.SGD(0.01, momentum=0.9))
    inference.eval()
    x1 = x[:1].copy()
    fns = [lambda: trainer.train_on_batch(x, y), lambda: inference.forward(x1)]
    times = {"params": model.count_params(trainable_only=True)}
    if torch is not None:
        torch.manual_seed(0)
        net, net_inference = torch_zoo_network(name, torch), torch_zoo_network(name, torch).eval()
        times["tparams"] = sum(p.numel() for p in net.parameters())
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        tx, ty, tx1 = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x1)

        def torch_step():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(tx), ty).backward()
            optimizer.step()

        def torch_infer():
            with torch.inference_mode():
                net_inference(tx1)
        fns += [torch_step, torch_infer]
    times.update(zip(("step", "infer", "tstep", "tinfer"), median_times(fns, repeats)))
    return times


def selected_models(rows):
    return [name for name in MODEL_ROWS if not rows or name in rows]


def models_table(torch, args, settings):
    """Prints the models table (see conv_rows_table for `settings`)."""
    names = selected_models(args.rows)
    runs = None if settings is None else [run_child("models", setting, args)["rows"] for setting in settings]
    labels = [""] if settings is None else [f" {setting}" for setting in settings]
    width = max(7, *(len("infer x" + label) for label in labels))
    source = "" if settings is None else f", times from the '{settings[0]}' run"
    print(f"\nwhole networks, float32: one SGD-momentum training step (forward, backward, update) and "
          f"batch-1 inference, median of {args.repeats} (ms{source}); ratio = torch / cconv")
    print(f"{'network':<13} {'batch':>5} {'params':>9} {'cconv step':>10} {'infer':>7} {'torch step':>10} "
          f"{'infer':>7}" + "".join(f" {'step x' + label:>{width}} {'infer x' + label:>{width}}" for label in labels))
    for name in names:
        row = [time_model_row(torch, args.repeats, name)] if runs is None else [run[name] for run in runs]
        if "skipped" in row[0]:
            print(f"{name:<13} skipped: {row[0]['skipped']}", flush=True)
            continue
        batch = MODEL_ROWS[name][0]
        line = (f"{name:<13} {batch:>5} {row[0]['params']:>9,} {row[0]['step'] * 1e3:>10.2f} "
                f"{row[0]['infer'] * 1e3:>7.2f}")
        if "tstep" in row[0]:
            line += f" {row[0]['tstep'] * 1e3:>10.2f} {row[0]['tinfer'] * 1e3:>7.2f}"
            for times in row:
                line += f" {times['tstep'] / times['step']:>{width}.2f} {times['tinfer'] / times['infer']:>{width}.2f}"
            if row[0]["tparams"] != row[0]["params"]:
                line += f"  (torch's twin has {row[0]['tparams']:,} parameters)"
        print(line, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cconv.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="*", help="conv, layers, networks, pool, epoch, models or all (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="threads for cconv and torch")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median)")
    parser.add_argument("--samples", type=int, default=4096, help="images per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mnist", default=None, help="folder with MNIST IDX files (else synthetic data)")
    parser.add_argument("--no-torch", action="store_true", help="time cconv only")
    parser.add_argument("--malloc", choices=("both", "tuned", "default", "inherit"), default="both",
                        help="malloc of the conv, layers, networks and models tables: 'both' (default) runs each in two "
                             "child processes, glibc malloc tuned by GLIBC_TUNABLES (the headline) and "
                             "glibc's defaults, side by side; 'tuned' or 'default' runs one of them; "
                             "'inherit' runs in this process with its environment. Without glibc or "
                             "PyTorch: inherit")
    # internal: the child mode, one conv table's times as one JSON line on stdout
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    # internal: only these comma-separated rows of the conv, layers, networks and models tables (quick checks, tests)
    parser.add_argument("--rows", type=lambda s: s.split(","), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.tables) - {*TABLES, "all"}
    if unknown:
        parser.error(f"unknown table(s) {sorted(unknown)}: choose from {', '.join(TABLES)}, all")
    known_rows = {name for shapes, _ in CONV_TABLES.values() for name, _ in shapes} | set(MODEL_ROWS)
    if args.rows and set(args.rows) - known_rows:
        parser.error(f"unknown row(s) {sorted(set(args.rows) - known_rows)}")
    if args.json and (len(args.tables) != 1 or args.tables[0] not in CHILD_TABLES or args.malloc != "inherit"):
        parser.error("--json times one of conv, layers, networks, models with --malloc inherit")
    if args.threads is not None:
        cconv.set_num_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(cconv.get_num_threads())
        except ImportError:
            pass
    if args.json:  # child mode: no header, only the results
        if args.tables[0] == "models":
            rows = {name: time_model_row(torch, args.repeats, name) for name in selected_models(args.rows)}
        else:
            rows = {name: time_conv_row(torch, args.repeats, *shape)
                    for name, shape in selected_shapes(args.tables[0], args.rows)}
        print(json.dumps({"table": args.tables[0], "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
                          "threads": cconv.get_num_threads(), "rows": rows}))
        return 0

    tables = set(TABLES) if not args.tables or "all" in args.tables else set(args.tables)
    in_process = ("--malloc inherit" if args.malloc == "inherit" else "no PyTorch" if torch is None
                  else "not glibc" if platform.libc_ver()[0] != "glibc" else None)
    if in_process:
        settings = None
        header(torch, f"every table in this process ({in_process}): {process_malloc()}")
    else:
        settings = list(MALLOC_SETTINGS) if args.malloc == "both" else [args.malloc]
        columns = {"tuned": f"GLIBC_TUNABLES={TUNED_GLIBC} (the headline)",
                   "default": "glibc's default settings (GLIBC_TUNABLES unset)"}
        header(torch, "conv, layers, networks and models tables in child processes, one per column: "
               + "; ".join(f"'{s}' = {columns[s]}" for s in settings)
               + f"; MALLOC_* unset in each; pool and epoch in this process: {process_malloc()}")
    for table in ("conv", "layers", "networks"):
        if table in tables:
            conv_rows_table(table, torch, args, settings)
    if "pool" in tables:
        pool_table(torch, args.repeats)
    if "epoch" in tables:
        epoch_table(torch, max(3, args.repeats // 2), args.samples, args.batch_size, args.mnist)
    if "models" in tables:
        models_table(torch, args, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
