"""Atomic file writes: what a user saved is never lost to a crash in the middle of a save."""
import os
import tempfile

import numpy as np


def save_npz_atomically(path, arrays):
    """np.savez(path, **arrays) written to a temporary file in the same folder, flushed to disk,
    then renamed over `path`: a reader sees the old file or the new one, never a partial one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
