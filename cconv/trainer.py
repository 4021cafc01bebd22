"""Trainer: fit / evaluate a model (Sequential or graph Model) with a loss, an optimizer and
metrics; train_on_batch / test_on_batch; History; progress bar.

fit() checks every argument before doing any work, shuffles with a seeded generator (which
also drives Dropout, so a seed and a thread count reproduce a run bit for bit), shows a
per-epoch progress bar, and stops cleanly after the current batch on Ctrl-C. If the loss
becomes NaN or infinite, fit restores the weights of the last batch whose loss was finite
and raises TrainingDivergedError naming the epoch and batch.
"""
import math
import os
import signal
import sys
import threading
import time
from typing import NamedTuple

import numpy as np

from cconv import losses as losses_module
from cconv import metrics as metrics_module
from cconv import optim
from cconv._args import as_int
from cconv.callbacks import Callback
from cconv.model import Network

__all__ = ["Trainer", "History", "TrainingDivergedError", "ProgressBar", "split_validation"]


class StepResult(NamedTuple):
    """What one optimizer step of fit computed (over every rank, for DistributedTrainer)."""

    loss: float  # the step's mean loss; a NaN or infinite one stops the training
    loss_sum: float  # the sum of its samples' losses
    statistics: np.ndarray  # the metrics' additive statistics (cconv.metrics), over its samples
    samples: int
    grads: list  # the gradients to apply, matching model.parameters(); None for a diverged loss
    stop: bool  # DistributedTrainer: a Ctrl-C on some rank, so every rank stops after this step


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; `history` holds the epochs completed before that."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history

    @classmethod
    def at(cls, loss, epoch, batch, batches, history):
        """The error for a loss that became `loss` at 0-based `epoch` and `batch` of `batches`."""
        return cls(f"training stopped: the loss became {loss} at epoch {epoch + 1}, batch "
                   f"{batch + 1} of {batches}; the model keeps the weights of the last batch "
                   f"with a finite loss (try a lower learning rate)", history)


class History:
    """What fit returns: history['loss'], ['accuracy'], ['val_loss'], ... one value per epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.interrupted = False

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(f"no metric {key!r} in this history; it holds {', '.join(self.history) or 'none'}") from None

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        return self.history.keys()

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, metrics={list(self.history)})"


class ProgressBar:
    """One line per epoch: bar, batches done, loss, accuracy, samples/s. Redrawn in place
    (at most 10 times a second) on a terminal; written once at the end of the epoch otherwise."""

    WIDTH = 24

    def __init__(self, epoch, epochs, batches, file, live):
        self.prefix = f"Epoch {epoch + 1}/{epochs}"
        self.batches = batches
        self.file = file
        self.live = live
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def _line(self, done, samples, logs):
        filled = self.WIDTH * done // max(self.batches, 1)
        bar = "=" * filled + (">" if filled < self.WIDTH else "") + "." * (self.WIDTH - filled - 1)
        elapsed = time.perf_counter() - self.start
        rate = samples / elapsed if elapsed > 0 else 0.0
        width = len(str(self.batches))
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        return f"{self.prefix} [{bar[:self.WIDTH]}] {done:>{width}}/{self.batches}  {metrics}  {rate:,.0f} samples/s", elapsed

    def update(self, done, samples, logs):
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and done < self.batches:
            return
        self.last_draw = now
        line, _ = self._line(done, samples, logs)
        self.file.write("\r" + line)
        self.file.flush()

    def finish(self, done, samples, logs):
        line, elapsed = self._line(done, samples, logs)
        self.file.write(("\r" if self.live else "") + line + f"  {elapsed:.1f} s\n")
        self.file.flush()


def split_validation(X, y, validation_split, validation_data):
    """(X, y, validation_data) with the last `validation_split` fraction of (X, y) moved to
    validation_data when validation_split is not 0."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.floating)) \
            or not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be a number from 0 to below 1 (the fraction of "
                         f"the samples held out for validation), got {validation_split!r}")
    if not validation_split:
        return X, y, validation_data
    if validation_data is not None:
        raise ValueError("pass validation_data or validation_split, not both")
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    split_at = int(len(X) * (1 - validation_split))
    if split_at == 0 or split_at == len(X):
        raise ValueError(f"validation_split={validation_split} of {len(X)} samples leaves an empty "
                         f"{'training' if split_at == 0 else 'validation'} set")
    return X[:split_at], y[:split_at], (X[split_at:], y[split_at:])


# Set in the processes that an MPI launcher starts (Open MPI, MPICH / Intel MPI, PMIx, Slurm).
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_ID")


def is_live_terminal(file):
    """Whether progress may be redrawn in place ('\r') on `file`: it is a terminal, and not the
    pseudo-terminal an MPI launcher gives its ranks (their output often ends in a log file,
    where every redraw would stay)."""
    if any(name in os.environ for name in LAUNCHER_VARIABLES):
        return False
    return hasattr(file, "isatty") and file.isatty()


class _InterruptFlag:
    """While active (main thread only), the first Ctrl-C sets `raised` instead of raising; a
    second Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self):
        self.raised = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not allowed here (e.g. embedded interpreter)
                self.previous = None
        return self

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


class _LastGoodWeights:
    """Copies of every parameter and buffer as they were for the last batch whose loss was
    finite (taken after its forward pass, before its optimizer step)."""

    def __init__(self, model):
        self.targets = model.parameters() + list(model.named_buffers().values())
        self.saved = [target.copy() for target in self.targets]

    def remember(self):
        for target, saved in zip(self.targets, self.saved):
            np.copyto(saved, target)

    def restore(self):
        for target, saved in zip(self.targets, self.saved):
            np.copyto(target, saved)


class Trainer:
    """Trainer(model, loss='cross_entropy', optimizer='adam', metrics=None)

    `model` is a cconv.Sequential or cconv.Model; `loss` is 'cross_entropy' (softmax on
    logits; per pixel for segmentation maps) or 'mse', or a cconv.losses object; `optimizer`
    is 'sgd', 'adam', 'adamw' or a cconv.optim optimizer. `metrics`: what fit and evaluate log
    beside the loss, a list of 'accuracy' (pixel accuracy for segmentation maps), 'mean_iou'
    or cconv.metrics objects; None logs accuracy for a classification loss.
    """

    def __init__(self, model, loss="cross_entropy", optimizer="adam", metrics=None):
        if not isinstance(model, Network):
            raise TypeError(f"model must be a cconv.Sequential or cconv.Model, got {type(model).__name__}")
        self.model = model
        self.loss = losses_module.get(loss)
        self.optimizer = optim.get(optimizer)
        if metrics is None:
            metrics = ["accuracy"] if self.loss.classification else []
        if isinstance(metrics, (str, metrics_module.Metric)):
            metrics = [metrics]
        self.metrics = [metrics_module.get(metric) for metric in metrics]
        for metric in self.metrics:
            if not self.loss.classification:
                raise ValueError(f"metric {metric.name!r} needs a classification loss, not {self.loss.name}")
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metrics {names} name one metric twice")
        self.stop_training = False
        self.metric_names = []
        self.epochs = None  # the epoch limit of the fit running (for callbacks)
        self._file = sys.stdout

    # -- helpers ------------------------------------------------------------------------
    def log(self, message):
        """Print a message to fit's output stream (used by callbacks when verbose)."""
        self._file.write(message + "\n")
        self._file.flush()

    def _check_data(self, X, y, names=("X", "y")):
        X = self.model.check_input(X, names[0])
        if X.shape[0] == 0:
            raise ValueError(f"{names[0]} has no samples")
        if not self.model.built:
            self.model.build(X.shape[1:])
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{names[0]} contains NaN or infinite values")
        self._check_loss_fits_model()
        for metric in self.metrics:
            metric.size(self.model.output_shape)  # a metric that cannot fit the model says so now
        y = self.loss.check_targets(y, X.shape[0], self.model.output_shape)
        return X, y

    def _check_loss_fits_model(self):
        """A softmax output under a loss that applies its own softmax would train on the
        softmax of probabilities: wrong gradients that still look like training."""
        if getattr(self.loss, "from_logits", False) and self.model.ends_in_softmax():
            raise ValueError("the model ends in a softmax but the cross-entropy loss takes logits "
                             "(it applies the softmax itself): remove the final softmax (more "
                             "accurate; predict() then gives logits), or pass "
                             "loss=cconv.losses.CrossEntropy(from_logits=False)")

    def _statistics_size(self):
        """The length of the metrics' statistics vector (StepResult.statistics)."""
        return sum(metric.size(self.model.output_shape) for metric in self.metrics)

    def _batch_metrics(self, output, target):
        """(mean loss, dL/doutput, the metrics' statistics) of one batch."""
        loss, grad = self.loss(output, target)
        statistics = [metric.statistics(output, target) for metric in self.metrics]
        return loss, grad, np.concatenate(statistics) if statistics else np.zeros(0)

    def _epoch_logs(self, loss_sum, statistics, count):
        """The logs of `count` samples whose losses sum to loss_sum and whose metrics'
        statistics sum to `statistics`."""
        logs = {"loss": loss_sum / count}
        start = 0
        for metric in self.metrics:
            size = metric.size(self.model.output_shape)
            logs[metric.name] = metric.result(statistics[start:start + size])
            start += size
        return logs

    # -- training -----------------------------------------------------------------------
    def fit(self, X, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, seed=None,
            verbose=1, callbacks=None, augment=None, file=None, validation_split=0.0):
        """Train for `epochs` passes over (X, y); returns a History.

        X: (N,) + model input shape; y: class labels (N,) for cross_entropy, targets shaped
        like the output for mse. validation_data: (X_val, y_val), evaluated after each epoch.
        validation_split: instead of validation_data, the fraction (0 to 1) of the samples held
        out for validation: the last ones, taken before shuffling, as Keras does.
        seed: seeds shuffling, Dropout and `augment`. verbose: 0 silent, 1 progress bar,
        2 one line per epoch. callbacks: cconv.callbacks objects. augment: a callable
        augment(x_batch, rng) -> batch of the same shape, applied to every training batch (e.g.
        cconv.datasets.RandomShift(1)); rng is fit's seeded generator. file: where progress
        goes (default sys.stdout).
        """
        epochs, batch_size, seed, callbacks = self._check_fit_args(epochs, batch_size, verbose, seed,
                                                                   augment, callbacks)
        X, y, validation_data = split_validation(X, y, validation_split, validation_data)
        X, y = self._check_data(X, y)
        validation_data = self._check_validation_data(validation_data)
        return self._fit_checked(X, y, epochs, batch_size, validation_data, shuffle, seed, verbose,
                                 callbacks, augment, file)

    def _check_fit_args(self, epochs, batch_size, verbose, seed, augment, callbacks):
        """fit's arguments other than the data, checked: (epochs, batch_size, seed, callbacks
        as a list)."""
        epochs = as_int(epochs, "epochs", 0)
        batch_size = as_int(batch_size, "batch_size", 1)
        if verbose not in (0, 1, 2) or isinstance(verbose, float):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if seed is not None:
            seed = as_int(seed, "seed", 0)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be callable as augment(x_batch, rng), got {type(augment).__name__}")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be cconv.callbacks.Callback objects, got {type(cb).__name__}")
        return epochs, batch_size, seed, callbacks

    def _check_validation_data(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        return self._check_data(*validation_data, names=("X_val", "y_val"))

    def _fit_checked(self, X, y, epochs, batch_size, validation_data, shuffle, seed, verbose,
                     callbacks, augment, file):
        """fit, for the arguments as fit's checks returned them."""
        self._file = sys.stdout if file is None else file
        self.epochs = epochs
        live = verbose == 1 and is_live_terminal(self._file)

        model, n = self.model, X.shape[0]
        rng = np.random.default_rng(seed)
        model.set_rng(rng)
        history = History()
        self.stop_training = False
        self.metric_names = ["loss"] + [metric.name for metric in self.metrics]
        if validation_data is not None:
            self.metric_names += ["val_" + name for name in self.metric_names]
        for cb in callbacks:
            cb.set_trainer(self)
        for cb in callbacks:
            cb.on_train_begin()

        last_good = _LastGoodWeights(model)
        was_training = model.training
        step = self._samples_per_step(batch_size)
        try:
            # a diverging run is detected from the loss, so NumPy's overflow warnings are noise
            with _InterruptFlag() as interrupt, np.errstate(over="ignore", invalid="ignore"):
                for epoch in range(self._first_epoch(), epochs):
                    model.train()
                    for cb in callbacks:
                        cb.on_epoch_begin(epoch)
                    bar = ProgressBar(epoch, epochs, -(-n // step), self._file, live) if verbose else None
                    logs, batches_done = self._train_epoch(
                        epoch, X, y, batch_size, shuffle, rng, augment, callbacks, bar, interrupt,
                        last_good, history)
                    if validation_data is not None and not interrupt.raised:
                        val = self._evaluate(*validation_data, batch_size=256)
                        logs.update({"val_" + k: v for k, v in val.items()})
                    if bar is not None and batches_done:
                        bar.finish(batches_done, min(batches_done * step, n), logs)
                    if interrupt.raised:
                        history.interrupted = True
                        if verbose:
                            self.log(f"Interrupted: stopped after batch {batches_done} of epoch "
                                     f"{epoch + 1}; the model keeps its current weights")
                        break
                    history.append(epoch, logs)
                    for cb in callbacks:
                        cb.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
            for cb in callbacks:
                cb.on_train_end()
        finally:
            model.train(was_training)
        return history

    def _train_epoch(self, epoch, X, y, batch_size, shuffle, rng, augment, callbacks, bar,
                     interrupt, last_good, history):
        """One pass over the data; returns (logs, batches done). Stops early on Ctrl-C."""
        steps, rng = self._epoch_steps(epoch, X.shape[0], batch_size, shuffle, rng)
        params = self.model.parameters()
        loss_sum, statistics, seen, logs = 0.0, np.zeros(self._statistics_size()), 0, {}
        for batch, step in enumerate(steps):
            result = self._train_step(X, y, step, augment, rng, interrupt)
            if not math.isfinite(result.loss):
                last_good.restore()
                raise TrainingDivergedError.at(result.loss, epoch, batch, len(steps), history)
            last_good.remember()
            self.optimizer.step(params, result.grads)
            loss_sum += result.loss_sum
            statistics += result.statistics
            seen += result.samples
            logs = self._epoch_logs(loss_sum, statistics, seen)
            if bar is not None:
                bar.update(batch + 1, seen, logs)
            for cb in callbacks:
                cb.on_batch_end(batch, dict(logs))
            if self._interrupted(result, interrupt):
                return logs, batch + 1
        self._end_epoch()
        return logs, len(steps)

    # hooks for cconv.distributed.DistributedTrainer
    def _samples_per_step(self, batch_size):
        """Samples one optimizer step consumes (the global batch)."""
        return batch_size

    def _first_epoch(self):
        """The epoch fit starts from (later than 0 when resuming from a checkpoint)."""
        return 0

    def _epoch_steps(self, epoch, n, batch_size, shuffle, rng):
        """(the epoch's steps, each what _train_step takes, and the generator that Dropout and
        augment draw from): here the batches' sample indices of a shuffled order, or slices."""
        order = rng.permutation(n) if shuffle else None
        steps = [order[start:start + batch_size] if shuffle else slice(start, start + batch_size)
                 for start in range(0, n, batch_size)]
        return steps, rng

    def _train_step(self, X, y, index, augment, rng, interrupt):
        """Forward and (for a finite loss) backward of the batch X[index]: a StepResult whose
        gradients the optimizer applies."""
        loss, grad, statistics, count = self._forward_batch(X, y, index, augment, rng)
        grads = None
        if math.isfinite(loss):  # a diverged step is not applied, so it needs no gradient
            self.model.backward(grad, need_input_grad=False)
            grads = self.model.gradients()
        return StepResult(loss, loss * count, statistics, count, grads, False)

    def _interrupted(self, result, interrupt):
        """Whether to stop after this step (on Ctrl-C)."""
        return interrupt.raised

    def _end_epoch(self):
        """Called when an epoch has run every step."""

    def _forward_batch(self, X, y, index, augment, rng):
        """(mean loss, dL/doutput, metrics' statistics, batch size) of the forward pass of the
        batch X[index], augmented, with targets y[index]."""
        xb, yb = X[index], y[index]
        if augment is not None:
            xb = self._augmented(augment, xb, rng)
        loss, grad, statistics = self._batch_metrics(self.model.forward_unchecked(xb), yb)
        return loss, grad, statistics, xb.shape[0]

    def _augmented(self, augment, xb, rng):
        out = augment(xb, rng)
        if not isinstance(out, np.ndarray) or out.shape != xb.shape:
            raise ValueError(f"augment must return an array of the batch's shape {xb.shape}, got "
                             f"{getattr(out, 'shape', type(out).__name__)}")
        return np.ascontiguousarray(out, dtype=xb.dtype)

    def evaluate(self, X, y, batch_size=256):
        """{'loss': mean loss, metric name: value, ...} over (X, y), computed in eval mode
        ('accuracy' for a classification loss unless the metrics say otherwise)."""
        batch_size = as_int(batch_size, "batch_size", 1)
        X, y = self._check_data(X, y)
        return self._evaluate(X, y, batch_size)

    def _evaluate(self, X, y, batch_size):
        """evaluate, for data that _check_data returned."""
        return self._epoch_logs(*self._evaluate_sums(X, y, batch_size), X.shape[0])

    def _evaluate_sums(self, X, y, batch_size):
        """(sum of the samples' losses, sum of the metrics' statistics) over (X, y), in eval mode."""
        model = self.model
        was_training = model.training
        model.eval()
        loss_sum, statistics = 0.0, np.zeros(self._statistics_size())
        try:
            for start in range(0, X.shape[0], batch_size):
                output = model.forward_unchecked(X[start:start + batch_size])
                loss, _, batch_statistics = self._batch_metrics(output, y[start:start + batch_size])
                loss_sum += loss * output.shape[0]
                statistics += batch_statistics
        finally:
            model.train(was_training)
        return loss_sum, statistics

    # -- one batch at a time, as Keras's train_on_batch / test_on_batch ---------------------
    def train_on_batch(self, X, y):
        """One optimizer step on the batch (X, y) in training mode; returns the batch's logs
        ({'loss': ..., 'accuracy': ...}, computed by the forward pass before the step).

        A NaN or infinite loss applies no step: the weights and the BatchNorm statistics stay
        as they were, and TrainingDivergedError says so."""
        X, y = self._check_data(X, y)
        model = self.model
        buffers = list(model.named_buffers().values())
        saved = [b.copy() for b in buffers]
        was_training = model.training
        model.train()
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                loss, grad, statistics = self._batch_metrics(model.forward_unchecked(X), y)
            if not math.isfinite(loss):
                for buffer, value in zip(buffers, saved):
                    np.copyto(buffer, value)
                raise TrainingDivergedError(f"train_on_batch: the loss became {loss}; the step was "
                                            f"not applied and the model keeps its weights (try a "
                                            f"lower learning rate)", History())
            model.backward(grad, need_input_grad=False)
            self.optimizer.step(model.parameters(), model.gradients())
        finally:
            model.train(was_training)
        return self._epoch_logs(loss * X.shape[0], statistics, X.shape[0])

    def test_on_batch(self, X, y):
        """The logs of the batch (X, y) in eval mode ({'loss': ..., 'accuracy': ...}); no step."""
        X, y = self._check_data(X, y)
        return self._evaluate(X, y, X.shape[0])
