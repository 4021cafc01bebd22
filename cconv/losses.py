"""Losses (NumPy): softmax cross-entropy on logits (classification and per-pixel), and mean
squared error.

A loss is called as `loss(output, target)` and returns (mean loss as a Python float,
dL/doutput as an array shaped like output). `check_targets` validates labels for a model
before training starts.
"""
import numpy as np

__all__ = ["CrossEntropy", "MeanSquaredError", "get", "NAMES"]


class CrossEntropy:
    """CrossEntropy(from_logits=True): softmax cross-entropy over the classes on axis 1, averaged
    over the batch (and over the pixels of segmentation maps), as PyTorch's cross_entropy.

    Classification: logits (N, C) with targets class indices (N,) in 0..C-1, or target
    probabilities (N, C) (e.g. one-hot). Dense prediction (segmentation): logits
    (N, C, H, W) (any number of trailing axes) with class indices (N, H, W), or probabilities
    (N, C, H, W); the mean is over the N*H*W predictions.
    Computed through log-softmax with the maximum subtracted, so it never overflows.
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
        count = output.shape[0] * int(np.prod(output.shape[2:]))  # predictions averaged over
        shifted = output - output.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        log_probs = shifted - np.log(total)
        probs = exp / total
        if target.ndim == output.ndim - 1:
            index = target[:, None]
            loss = -np.take_along_axis(log_probs, index, axis=1).sum() / count
            np.put_along_axis(probs, index, np.take_along_axis(probs, index, axis=1) - 1, axis=1)
            grad = probs
        else:
            target = target.astype(output.dtype, copy=False)
            loss = -(target * log_probs).sum() / count
            grad = probs * target.sum(axis=1, keepdims=True) - target
        grad /= output.dtype.type(count)
        return float(loss), grad

    def _on_probabilities(self, output, target):
        count = output.shape[0] * int(np.prod(output.shape[2:]))
        probs = np.clip(output, self.EPSILON, 1.0)
        if target.ndim == output.ndim - 1:  # class indices: one-hot along axis 1
            classes = np.arange(output.shape[1]).reshape((1, -1) + (1,) * (output.ndim - 2))
            target = target[:, None] == classes
        target = target.astype(output.dtype, copy=False)
        loss = -(target * np.log(probs)).sum() / count
        # d(-log p)/dp, zero where the clip holds the probability (as the clip's derivative is)
        grad = np.where(output == probs, -target / probs, 0).astype(output.dtype) / output.dtype.type(count)
        return float(loss), grad

    def check_targets(self, y, n, output_shape):
        """y as int64 labels (N,) + output_shape[1:] or float probabilities (N,) + output_shape;
        ValueError when it cannot fit."""
        if len(output_shape) < 1:
            raise ValueError(f"cross_entropy needs a model with (classes,) or (classes, H, W) output, "
                             f"the model outputs {output_shape}")
        classes, spatial = output_shape[0], tuple(output_shape[1:])
        dims = ", ".join(map(str, spatial))
        y = np.asarray(y)
        if y.ndim == 1 + len(spatial):
            if len(y) != n:
                raise ValueError(f"X has {n} samples but y has {len(y)} labels")
            if y.shape[1:] != spatial:
                raise ValueError(f"for this model's output (N, {classes}, {dims}) the labels must have "
                                 f"shape (N, {dims}) (one class per pixel), got {y.shape}")
            if y.dtype.kind == "f":
                if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                    raise ValueError("cross_entropy labels must be integers (class indices)")
            elif y.dtype.kind not in "iub":
                raise TypeError(f"labels must be integers, got dtype {y.dtype}")
            if y.size and (y.min() < 0 or y.max() >= classes):
                raise ValueError(f"labels must be in 0..{classes - 1} (the model has {classes} "
                                 f"outputs), got values from {y.min()} to {y.max()}")
            return y.astype(np.int64)
        if y.ndim == 2 + len(spatial):
            if y.shape != (n, classes) + spatial:
                raise ValueError(f"target probabilities must have shape {(n, classes) + spatial}, got {y.shape}")
            if y.dtype.kind not in "fiub" or not np.all(np.isfinite(y)):
                raise ValueError("target probabilities must be finite numbers")
            return y.astype(np.float64)
        if not spatial:
            raise ValueError(f"y must be class labels (N,) or probabilities (N, {classes}), got shape {y.shape}")
        raise ValueError(f"the model outputs {output_shape} maps, so y must be per-pixel class labels "
                         f"(N, {dims}) or probabilities (N, {classes}, {dims}), got shape {y.shape}"
                         + ("; for one label per sample, end the model in a flat (classes,) output "
                            "(Flatten or GlobalAvgPool2D, then Dense)" if y.ndim == 1 else ""))

    @staticmethod
    def correct(output, target):
        """Number of predictions (samples, or pixels of segmentation maps) whose arg-max over the
        classes is the (arg-max) target class."""
        labels = target if target.ndim == output.ndim - 1 else target.argmax(axis=1)
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
