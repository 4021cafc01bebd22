"""Metrics that Trainer logs beside the loss: Accuracy (pixel accuracy on segmentation maps)
and MeanIoU; and the same as functions of label arrays (pixel_accuracy, mean_iou,
confusion_matrix).

A metric object turns one batch's outputs and targets into a vector of additive statistics
(counts), which Trainer sums over the batches of an epoch (and cconv.distributed over the ranks);
`result` computes the metric from the sums, so an epoch's mean IoU is that of the whole epoch,
not a mean of per-batch values. The model's output is scores (logits or probabilities) with the
classes on axis 1: (N, C) for classification, (N, C, H, W) for segmentation; the prediction is
their arg-max over axis 1. Targets are class indices shaped like the output without axis 1, or
target probabilities shaped like the output (their arg-max is the class).
"""
import numpy as np

from cconv._args import as_int

__all__ = ["Metric", "Accuracy", "MeanIoU", "get", "pixel_accuracy", "mean_iou", "confusion_matrix"]


def _labels(output, target):
    """(predicted classes, true classes), both shaped like output without axis 1."""
    true = target if target.ndim == output.ndim - 1 else target.argmax(axis=1)
    return output.argmax(axis=1), true


class Metric:
    """Base class: `name`, `size(output_shape)` statistics per batch, `statistics(output,
    target)` (a float64 vector of that size) and `result(totals)`."""

    name = None

    def size(self, output_shape):
        raise NotImplementedError

    def statistics(self, output, target):
        raise NotImplementedError

    def result(self, totals):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Accuracy(Metric):
    """The fraction of predictions that are right: of the samples for (N, C) outputs, of the
    pixels for (N, C, H, W) segmentation maps (pixel accuracy)."""

    name = "accuracy"

    def size(self, output_shape):
        return 2

    def statistics(self, output, target):
        predicted, true = _labels(output, target)
        return np.array([np.count_nonzero(predicted == true), true.size], dtype=np.float64)

    def result(self, totals):
        return float(totals[0] / totals[1]) if totals[1] else 0.0


class MeanIoU(Metric):
    """MeanIoU(num_classes=None): the intersection over union of the predicted and true regions
    of each class, TP / (TP + FP + FN), averaged over the classes that occur in the predictions
    or the targets (as Keras's MeanIoU; 0 when none does). num_classes=None takes the model's
    output channels."""

    name = "mean_iou"

    def __init__(self, num_classes=None):
        self.num_classes = None if num_classes is None else as_int(num_classes, "num_classes", 1)

    def _classes(self, output_shape):
        classes = output_shape[0] if self.num_classes is None else self.num_classes
        if classes != output_shape[0]:
            raise ValueError(f"MeanIoU(num_classes={self.num_classes}) on a model with "
                             f"{output_shape[0]} output classes")
        return classes

    def size(self, output_shape):
        return 3 * self._classes(output_shape)

    def statistics(self, output, target):
        classes = self._classes(output.shape[1:])
        predicted, true = _labels(output, target)
        return _class_counts(predicted.ravel(), true.ravel(), classes)

    def result(self, totals):
        return _mean_iou_of_counts(totals)

    def __repr__(self):
        return f"MeanIoU(num_classes={self.num_classes})"


def _class_counts(predicted, true, classes):
    """[true positives per class, predictions per class, targets per class] as one vector."""
    hits = np.bincount(true[predicted == true], minlength=classes)
    return np.concatenate([hits, np.bincount(predicted, minlength=classes),
                           np.bincount(true, minlength=classes)]).astype(np.float64)


def _mean_iou_of_counts(counts):
    hits, predicted, true = np.split(np.asarray(counts, dtype=np.float64), 3)
    union = predicted + true - hits
    present = union > 0
    return float(np.mean(hits[present] / union[present])) if present.any() else 0.0


_BY_NAME = {"accuracy": Accuracy, "acc": Accuracy, "pixel_accuracy": Accuracy, "mean_iou": MeanIoU,
            "iou": MeanIoU}


def get(metric):
    """A metric object from a name ('accuracy', 'mean_iou') or a Metric object."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        try:
            return _BY_NAME[metric.lower()]()
        except KeyError:
            raise ValueError(f"unknown metric {metric!r}; cconv computes 'accuracy' (pixel accuracy "
                             f"for segmentation maps) and 'mean_iou' beside the loss, or takes a "
                             f"cconv.metrics.Metric") from None
    raise TypeError(f"a metric must be a name such as 'accuracy' or a cconv.metrics.Metric, got "
                    f"{type(metric).__name__}")


# -- the same on label arrays ---------------------------------------------------------------
def _label_pair(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.dtype.kind not in "iub":
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have one shape, got {y_true.shape} and {y_pred.shape}")
    return y_true.ravel().astype(np.int64), y_pred.ravel().astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes):
    """(num_classes, num_classes) counts: [i, j] = how many elements of class i were predicted
    as j. y_true and y_pred are integer label arrays of one shape (e.g. (N, H, W) maps)."""
    num_classes = as_int(num_classes, "num_classes", 1)
    y_true, y_pred = _label_pair(y_true, y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must be in 0..{num_classes - 1}, got values from {y.min()} to {y.max()}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def pixel_accuracy(y_true, y_pred):
    """The fraction of elements (pixels) whose predicted label is the true one."""
    y_true, y_pred = _label_pair(y_true, y_pred)
    return float(np.count_nonzero(y_true == y_pred) / y_true.size) if y_true.size else 0.0


def mean_iou(y_true, y_pred, num_classes):
    """The mean over classes of TP / (TP + FP + FN), over the classes present in y_true or
    y_pred (0 when there are none)."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    hits = np.diag(matrix)
    return _mean_iou_of_counts(np.concatenate([hits, matrix.sum(axis=0), matrix.sum(axis=1)]))
