"""Training callbacks: EarlyStopping, ModelCheckpoint, LearningRateScheduler.

A callback's hooks are called by Trainer.fit with the epoch (from 0) and the logs dict of
that epoch ({'loss': ..., 'accuracy': ..., 'val_loss': ..., 'val_accuracy': ...}).
`self.trainer` is set before on_train_begin; setting `trainer.stop_training = True` ends
training after the current epoch.
"""
import math
import numbers
import os

from cconv._args import as_count, as_finite_float
from cconv._paths import check_writable

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler"]


class Callback:
    """Base class: override the hooks you need."""

    trainer = None

    def set_trainer(self, trainer):
        self.trainer = trainer

    @property
    def model(self):
        return None if self.trainer is None else self.trainer.model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class _Monitor(Callback):
    """Tracks the best value of one logged metric ('min' or 'max'; 'auto' guesses from the name)."""

    def __init__(self, monitor, mode, min_delta=0.0):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.min_delta = abs(as_finite_float(min_delta, "min_delta"))
        self.best = None

    def on_train_begin(self, logs=None):
        names = self.trainer.metric_names
        if self.monitor not in names:
            hint = " (pass validation_data to fit)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, but fit logs only "
                             f"{', '.join(names)}{hint}")
        self.best = None

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs in a
    row (Keras's rule; patience 0 stops at the first epoch without improvement); with
    restore_best_weights the model gets the weights of the best epoch back. `stopped_epoch` is
    the epoch (from 0) it stopped after, None when training ran to its last epoch."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False, verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = as_count(patience, "patience", 0)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.wait = 0
        self.best_epoch = None
        self.best_state = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = self.model.state_dict()
            return
        self.wait += 1
        # as in Keras: stop after `patience` epochs without improvement (patience 0 acts as 1),
        # unless this epoch is the last one anyway
        epochs = getattr(self.trainer, "epochs", None)
        last = epochs is not None and epoch + 1 >= epochs
        if self.wait >= max(self.patience, 1) and not last:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                self.trainer.log(f"Early stopping after epoch {epoch + 1}: {self.monitor} has not "
                                 f"improved since epoch {self.best_epoch + 1 if self.best_epoch is not None else '-'}")

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            if self.verbose:
                self.trainer.log(f"Restored the weights of epoch {self.best_epoch + 1}")


class ModelCheckpoint(_Monitor):
    """Save the model to `path` after each epoch, or only when `monitor` improves
    (save_best_only=True). `path` may contain '{epoch}' and metric fields, e.g.
    'ckpt-{epoch:02d}-{val_loss:.3f}.npz'."""

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto", verbose=0):
        super().__init__(monitor, mode)
        if not isinstance(path, str) or not path:
            raise TypeError(f"path must be a non-empty str, got {path!r}")
        self.path = path
        self.save_best_only = bool(save_best_only)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            super().on_train_begin(logs)
        self._check_path_fields()
        folder = os.path.dirname(self.path)
        # fail before training, not after its first epoch, when the files cannot be written
        if "{" not in self.path:
            check_writable(self.path, "ModelCheckpoint's file")
        elif "{" not in folder:
            check_writable(folder or ".", f"ModelCheckpoint's files {self.path!r} in the folder",
                           directory=True)

    def _check_path_fields(self):
        """Fail before the first epoch when `path` names a field fit will not log (or is not a
        valid format string), rather than after an epoch of training."""
        if "{" not in self.path:
            return
        sample = {name: 0.0 for name in self.trainer.metric_names}
        try:
            self.path.format(epoch=1, **sample)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be filled in ({type(exc).__name__}: "
                             f"{exc}); it may use {{epoch}} and the metrics fit logs: "
                             f"{', '.join(self.trainer.metric_names)}") from None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = logs.get(self.monitor)
            if not self._improved(value):
                return
            self.best = value
        path = self.path.format(epoch=epoch + 1, **logs) if "{" in self.path else self.path
        self.model.save(path)
        if self.verbose:
            self.trainer.log(f"Saved the model to {path}")


class LearningRateScheduler(Callback):
    """Set optimizer.lr = schedule(epoch, base_lr) at the start of every epoch; base_lr is the
    optimizer's lr when the first fit with this callback begins. `schedule` is e.g.
    cconv.optim.CosineLR(t_max). A second fit() restarts the schedule: its epochs count from 0
    again and start from the same base_lr (not from the lr the first fit ended with)."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"schedule must be callable as schedule(epoch, base_lr), got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose
        self.base_lr = None

    def on_train_begin(self, logs=None):
        if self.base_lr is None:  # a later fit restarts the schedule from the same base lr
            self.base_lr = self.trainer.optimizer.lr

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.schedule(epoch, self.base_lr)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"the schedule gave learning rate {lr!r} for epoch {epoch}; it must be a "
                             f"positive finite number")
        self.trainer.optimizer.lr = float(lr)
        if self.verbose:
            self.trainer.log(f"Epoch {epoch + 1}: learning rate {lr:.3g}")
