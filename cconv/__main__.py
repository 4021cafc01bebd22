"""The `cconv` command line (also `python -m cconv`).

    cconv train [--data digits | mnist:DIR | fashion-mnist:DIR] [--epochs N] [--batch-size B]
                [--lr LR] [--optimizer adam|adamw|sgd] [--threads T] [--seed S] [--out PATH]
                [--plots DIR] [--distributed [--checkpoint PATH] [--resume]]
    cconv info
    cconv bench [TABLE ...] [options]
    cconv --version

`cconv train` trains a small CNN (on the digits set shipped with cconv by default), showing
progress, then prints the model summary and the test accuracy and saves the model; with
--plots DIR it also draws the first conv layer's filters, the activation maps of one test
image and the training curves there (cconv.viz, which needs matplotlib: cconv[viz]).
`cconv info` prints the build configuration (OpenMP, SIMD, threads). `cconv bench` runs the
benchmark tables of `python -m cconv.bench` (the same options; `cconv bench --help`).

`mpirun -n 4 cconv train --distributed` trains data-parallel over MPI (cconv.distributed, which
needs mpi4py: cconv[mpi]): --batch-size is per rank, rank 0 prints and saves, a checkpoint is
written after every epoch and `--resume` continues from it, on any number of ranks.
"""
import argparse
import os
import sys
import time

import cconv
from cconv import callbacks, datasets, optim
from cconv._paths import check_writable, naming_path
from cconv.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from cconv.trainer import TrainingDivergedError

# Per data set: default epochs and learning rate, and the model builder.
DEFAULT_EPOCHS = {"digits": 30, "mnist": 5}
DEFAULT_LR = {("digits", "adam"): 2e-3, ("digits", "adamw"): 2e-3, ("digits", "sgd"): 0.05,
              ("mnist", "adam"): 1e-3, ("mnist", "adamw"): 1e-3, ("mnist", "sgd"): 0.05}


def digits_cnn(seed):
    """A small VGG-style CNN for 8x8 digits (149,722 parameters)."""
    return cconv.Sequential([
        Conv2D(48, 3, padding="same", activation="relu"),
        Conv2D(48, 3, padding="same", activation="relu"),
        MaxPool2D(2),
        Conv2D(96, 3, padding="same", activation="relu"),
        Conv2D(96, 3, padding="same", activation="relu"),
        MaxPool2D(2),
        Flatten(), Dropout(0.4), Dense(10)], input_shape=(1, 8, 8), seed=seed, name="digits_cnn")


def mnist_cnn(seed):
    """The classic MNIST CNN: conv32-pool-conv64-pool-FC128-FC10 (421,642 parameters)."""
    return cconv.Sequential([
        Conv2D(32, 3, padding=1, activation="relu"), MaxPool2D(2),
        Conv2D(64, 3, padding=1, activation="relu"), MaxPool2D(2),
        Flatten(), Dense(128, activation="relu"), Dropout(0.25), Dense(10)],
        input_shape=(1, 28, 28), seed=seed, name="mnist_cnn")


def load_data(spec):
    """((x_train, y_train), (x_test, y_test)), the data set's kind, and its display name."""
    if spec == "digits":
        return datasets.load_digits(), "digits", "UCI digits (embedded)"
    kind, sep, directory = spec.partition(":")
    if kind in ("mnist", "fashion-mnist") and sep and directory:
        train = datasets.load_mnist(directory, "train")
        test = datasets.load_mnist(directory, "test")
        return (train, test), "mnist", f"{kind} from {directory}"
    raise ValueError(f"--data must be 'digits', 'mnist:DIR' or 'fashion-mnist:DIR', got {spec!r}")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def threads_arg(text):
    value = int(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"must be -1 (all cores) or >= 1, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="cconv", description="Small, fast CNNs on the CPU.")
    parser.add_argument("--version", action="version", version=f"cconv {cconv.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser("train", help="train a CNN and save it",
                                description="Train a small CNN, print its summary and test accuracy, "
                                            "and save it.")
    train.add_argument("--data", default="digits",
                       help="digits (embedded, default), mnist:DIR or fashion-mnist:DIR (IDX files)")
    train.add_argument("--epochs", type=positive_int, default=None,
                       help="training epochs (default: 30 for digits, 5 for MNIST)")
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help="samples per batch (default: 32 for digits, 64 for MNIST)")
    train.add_argument("--lr", type=positive_float, default=None,
                       help="initial learning rate, cosine-annealed (default: Adam/AdamW 2e-3 for "
                            "digits, 1e-3 for MNIST; SGD 0.05)")
    train.add_argument("--optimizer", choices=optim.NAMES, default="adam", help="default: adam")
    train.add_argument("--threads", type=threads_arg, default=None,
                       help="kernel threads (default: OpenMP's default; -1 = all cores)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights, shuffling, dropout "
                                                           "and augmentation (default: 0)")
    train.add_argument("--out", default=None,
                       help="where to save the model (default: cconv-<data>.npz)")
    train.add_argument("--no-augment", action="store_true",
                       help="train without random 1-pixel shifts")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--plots", metavar="DIR", default=None,
                       help="write filters.png (first conv layer), activations.png (one test "
                            "image) and history.png (training curves; the test set is evaluated "
                            "after every epoch for them) to DIR; needs matplotlib (cconv[viz])")
    train.add_argument("--distributed", action="store_true",
                       help="data-parallel over MPI: launch with mpirun -n N; --batch-size is per "
                            "rank; needs mpi4py (cconv[mpi])")
    train.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="with --distributed: the checkpoint written after every epoch "
                            "(default: the --out path with .ckpt.npz)")
    train.add_argument("--resume", action="store_true",
                       help="with --distributed: continue from --checkpoint when it exists")
    commands.add_parser("info", help="show the build configuration")
    commands.add_parser("bench", help="time cconv against PyTorch (python -m cconv.bench's tables)",
                        add_help=False)
    return parser


def run_train(args, out=None):
    out = sys.stdout if out is None else out
    (train, test), kind, title = load_data(args.data)
    (x_train, y_train), (x_test, y_test) = train, test
    if args.threads is not None:
        cconv.set_num_threads(args.threads)
    epochs = args.epochs or DEFAULT_EPOCHS[kind]
    batch_size = args.batch_size or (32 if kind == "digits" else 64)
    lr = args.lr or DEFAULT_LR[kind, args.optimizer]
    path = args.out or f"cconv-{args.data.partition(':')[0]}.npz"
    # fail before training, not after it, when the results could not be written
    check_writable(path, "the model file (--out)")
    viz = None
    if args.plots is not None:
        from cconv import viz
        with naming_path(args.plots, "the --plots folder"):
            os.makedirs(args.plots, exist_ok=True)
        check_writable(args.plots, "the --plots folder", directory=True)
    model = (digits_cnn if kind == "digits" else mnist_cnn)(args.seed)
    trainer_class, fit_options, ranks, lead = cconv.Trainer, {}, 1, True
    if args.distributed:
        from cconv.distributed import DistributedTrainer as trainer_class
        fit_options = {"checkpoint": args.checkpoint or os.path.splitext(path)[0] + ".ckpt.npz",
                       "resume": args.resume}
    elif args.checkpoint or args.resume:
        raise ValueError("--checkpoint and --resume need --distributed")
    trainer = trainer_class(model, loss="cross_entropy", optimizer=optim.get(args.optimizer, lr=lr))
    if args.distributed:  # rank 0 prints and saves
        ranks, lead = trainer.size, trainer.rank == 0
    print_fn = (lambda text: None) if args.quiet or not lead else (lambda text: print(text, file=out, flush=True))
    batch_text = str(batch_size) if ranks == 1 else f"{ranks} ranks x batch {batch_size} = {ranks * batch_size}"
    model.summary(print_fn=print_fn)
    print_fn(f"Data: {title}: {len(x_train):,} training and {len(x_test):,} test images\n"
             f"Training: {epochs} epoch{'s' if epochs != 1 else ''}, batch size {batch_text}, {type(trainer.optimizer).__name__} "
             f"lr {lr:g} (cosine schedule), seed {args.seed}, {cconv.get_num_threads()} threads")
    augment = None if args.no_augment else datasets.RandomShift(1, probability=0.5)
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, seed=args.seed,
                          verbose=0 if args.quiet else 1, augment=augment, file=out,
                          validation_data=None if viz is None else (x_test, y_test),
                          callbacks=[callbacks.LearningRateScheduler(optim.CosineLR(epochs))],
                          **fit_options)
    elapsed = time.perf_counter() - start
    result = trainer.evaluate(x_test, y_test)
    if not lead:
        return result
    model.save(path)
    note = " (interrupted)" if history.interrupted else ""
    print(f"Test accuracy: {result['accuracy']:.4f} ({round(result['accuracy'] * len(x_test))}/"
          f"{len(x_test)}), test loss {result['loss']:.4f}; trained in {elapsed:.1f} s{note}",
          file=out, flush=True)
    print(f"Saved the model to {os.path.abspath(path)}", file=out, flush=True)
    if viz is not None:
        write_plots(viz, args.plots, model, x_test[0], history, out)
    return result


def write_plots(viz, directory, model, image, history, out):
    """The first conv layer's filters, one image's activation maps there, and the curves."""
    written = [os.path.join(directory, name) for name in ("filters.png", "activations.png")]
    viz.plot_filters(model, written[0])
    viz.plot_activations(model, image, path=written[1])
    if history.epoch:  # nothing to draw when stopped during the first epoch
        written.append(os.path.join(directory, "history.png"))
        viz.plot_history(history, written[-1], val_label="test")
    print(f"Wrote {', '.join(os.path.abspath(p) for p in written)}", file=out, flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["bench"]:  # bench parses its own options
        from cconv import bench
        return bench.main(argv[1:]) or 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "info":
        cconv.show_config()
        return 0
    try:
        if args.distributed:  # an error on one rank must end every rank (MPI Abort)
            from cconv.distributed import abort_on_error
            with abort_on_error():
                run_train(args)
        else:
            run_train(args)
    except (FileNotFoundError, ValueError, TrainingDivergedError, OSError, ImportError) as exc:
        print(f"cconv: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
