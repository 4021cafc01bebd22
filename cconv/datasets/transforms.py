"""Batch augmentations for Trainer.fit(augment=...): vectorised over the batch, seeded by fit's
random generator, so augmented training stays reproducible."""
import numpy as np

from cconv._args import as_int

__all__ = ["RandomShift"]


class RandomShift:
    """Shift images of an (N, C, H, W) batch, each with probability `probability`, by its own
    random offset of up to `max_shift` pixels along each axis; the uncovered border gets
    `fill`. The others pass unchanged."""

    def __init__(self, max_shift=1, probability=0.5, fill=0.0):
        self.max_shift = as_int(max_shift, "max_shift", 0)
        if not 0 <= probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {probability!r}")
        self.probability = float(probability)
        self.fill = float(fill)

    def __call__(self, x, rng):
        m = self.max_shift
        if x.ndim != 4:
            raise ValueError(f"RandomShift needs (N, C, H, W) batches, got shape {x.shape}")
        if m == 0:
            return x
        n, c, h, w = x.shape
        padded = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)), constant_values=self.fill)
        moved = rng.random(n) < self.probability
        row_offsets = np.where(moved, rng.integers(0, 2 * m + 1, n), m)
        col_offsets = np.where(moved, rng.integers(0, 2 * m + 1, n), m)
        rows = row_offsets[:, None] + np.arange(h)  # (N, H): source rows in the padded batch
        cols = col_offsets[:, None] + np.arange(w)  # (N, W)
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]

    def __repr__(self):
        return f"RandomShift(max_shift={self.max_shift}, probability={self.probability}, fill={self.fill})"
