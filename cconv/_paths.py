"""Output paths checked before long work starts, and save errors that name the user's path."""
import contextlib
import os
import tempfile


def check_writable(path, what, directory=False):
    """Raise an OSError naming `path` (described as `what`, e.g. 'the model file') when cconv
    could not write it: its folder is missing or not writable, or a file path names a folder.
    With directory=True, path is a folder that must exist and take new files. Checked by
    creating (and at once deleting) a temporary file there, so read-only file systems and
    permissions are seen as they are."""
    path = os.fspath(path)
    folder = path if directory else os.path.dirname(os.path.abspath(path))
    if not directory and os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {what} {path!r}: it is a folder; give a file name")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {what} {path!r}: the folder {folder!r} does not exist")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(f"cannot write {what} {path!r}: the folder {folder!r} does not take new "
                        f"files ({exc.strerror or exc})") from None


@contextlib.contextmanager
def naming_path(path, what):
    """Re-raise an OSError of the block as one that names `path`, not a temporary file."""
    try:
        yield
    except OSError as exc:
        raise type(exc)(f"cannot write {what} {os.fspath(path)!r}: {exc.strerror or exc}") from exc
