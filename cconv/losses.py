"""Losses (NumPy): softmax cross-entropy on logits, and mean squared error.

A loss is called as `loss(output, target)` and returns (mean loss as a Python float,
dL/doutput as an array shaped like output). `check_targets` validates labels for a model
before training starts.
"""
import numpy as np

__all__ = ["CrossEntropy", "MeanSquaredError", "get", "NAMES"]


class CrossEntropy:
    """CrossEntropy(from_logits=True): softmax cross-entropy on logits (N, C), averaged over the
    batch.

    Targets are class indices (N,) in 0..C-1, or target probabilities (N, C) (e.g. one-hot).
    Computed through log-softmax with the row maximum subtracted, so it never overflows.
    With from_logits=False the output is taken as probabilities (a model ending in a softmax)
    and clipped to [1e-7, 1] before the logarithm, as Keras does; logits are more accurate.
    """

    name = "cross_entropy"
    classification = True
    EPSILON = 1e-7

    def __init__(self, from_logits=True):
        if not isinstance(from_logits, bool):
            raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = from_logits

    def __call__(self, output, target):
        if not self.from_logits:
            return self._on_probabilities(output, target)
        n = output.shape[0]
        shifted = output - output.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(total)
        probs = exp / total
        if target.ndim == 1:
            loss = -log_probs[np.arange(n), target].sum() / n
            probs[np.arange(n), target] -= 1
            grad = probs
        else:
            target = target.astype(output.dtype, copy=False)
            loss = -(target * log_probs).sum() / n
            grad = probs * target.sum(axis=1, keepdims=True) - target
        grad /= output.dtype.type(n)
        return float(loss), grad

    def _on_probabilities(self, output, target):
        n = output.shape[0]
        probs = np.clip(output, self.EPSILON, 1.0)
        if target.ndim == 1:
            target = np.eye(output.shape[1], dtype=output.dtype)[target]
        target = target.astype(output.dtype, copy=False)
        loss = -(target * np.log(probs)).sum() / n
        # d(-log p)/dp, zero where the clip holds the probability (as the clip's derivative is)
        grad = np.where(output == probs, -target / probs, 0).astype(output.dtype) / output.dtype.type(n)
        return float(loss), grad

    def check_targets(self, y, n, output_shape):
        """y as int64 labels (N,) or float probabilities (N, C); ValueError when it cannot fit."""
        if len(output_shape) != 1:
            raise ValueError(f"cross_entropy needs a model with flat (classes,) output, the model "
                             f"outputs {output_shape}")
        classes = output_shape[0]
        y = np.asarray(y)
        if y.ndim == 1:
            if len(y) != n:
                raise ValueError(f"X has {n} samples but y has {len(y)} labels")
            if y.dtype.kind == "f":
                if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                    raise ValueError("cross_entropy labels must be integers (class indices)")
            elif y.dtype.kind not in "iub":
                raise TypeError(f"labels must be integers, got dtype {y.dtype}")
            if n and (y.min() < 0 or y.max() >= classes):
                raise ValueError(f"labels must be in 0..{classes - 1} (the model has {classes} "
                                 f"outputs), got values from {y.min()} to {y.max()}")
            return y.astype(np.int64)
        if y.ndim == 2:
            if y.shape != (n, classes):
                raise ValueError(f"target probabilities must have shape ({n}, {classes}), got {y.shape}")
            if y.dtype.kind not in "fiub" or not np.all(np.isfinite(y)):
                raise ValueError("target probabilities must be finite numbers")
            return y.astype(np.float64)
        raise ValueError(f"y must be class labels (N,) or probabilities (N, {classes}), got shape {y.shape}")

    @staticmethod
    def correct(output, target):
        """Number of samples whose arg-max output is the (arg-max) target class."""
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        return int(np.count_nonzero(output.argmax(axis=1) == labels))


class MeanSquaredError:
    """mean((output - target) ** 2) over every element, as torch.nn.MSELoss does."""

    name = "mse"
    classification = False

    def __call__(self, output, target):
        diff = output - target.astype(output.dtype, copy=False)
        loss = float(np.mean(diff * diff))
        return loss, diff * output.dtype.type(2.0 / diff.size)

    def check_targets(self, y, n, output_shape):
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise TypeError(f"mse targets must be numbers, got dtype {y.dtype}")
        if y.shape[:1] != (n,):
            raise ValueError(f"X has {n} samples but y has shape {y.shape}")
        if y.shape[1:] != tuple(output_shape):
            raise ValueError(f"mse targets must have shape (N, {', '.join(map(str, output_shape))}) "
                             f"like the model output, got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("mse targets must be finite")
        return y.astype(np.float64)


_BY_NAME = {"cross_entropy": CrossEntropy, "crossentropy": CrossEntropy,
            "categorical_crossentropy": CrossEntropy, "sparse_categorical_crossentropy": CrossEntropy,
            "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError}
NAMES = ("cross_entropy", "mse")


def get(loss):
    """A loss object from a name ('cross_entropy', 'mse') or an existing loss object."""
    if isinstance(loss, str):
        try:
            return _BY_NAME[loss.lower()]()
        except KeyError:
            raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(NAMES)}") from None
    if callable(loss) and hasattr(loss, "check_targets"):
        return loss
    raise TypeError(f"loss must be a name such as 'cross_entropy' or a cconv.losses object, got "
                    f"{type(loss).__name__}")
