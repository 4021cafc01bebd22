"""Atomic file writes (what a user saved is never lost to a crash in the middle of a save), and
the checked reading of .npz archives that load_model and load_checkpoint share.

The data goes to a temporary file in the target's directory, is flushed to disk, and is renamed
over the target (os.replace), so a reader sees the old file or the new one, never a partial one.
The target must be a regular file or not exist yet: a directory, FIFO, socket or device node is
refused (a rename would replace the node itself by a regular file). A symbolic link is followed:
the file it points to is replaced and the link is kept. An existing file keeps its permission
bits; a new one gets 0666 less the process's umask, as open() would give it.

Temporary files are named `.<target name>.<pid>.<random>.tmp`; a save removes those of the same
target whose process no longer runs (left by a save killed with SIGKILL), so they cannot pile up.
"""
import contextlib
import errno
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np


def _check_regular(mode, path, failure):
    """OSError (IsADirectoryError for a directory) unless `mode` is a regular file's."""
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"{failure}: it is a directory", path)
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device node" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
        raise OSError(errno.EINVAL, f"{failure}: it is {kind}, not a regular file", path)


def _regular_target(path):
    """The real path to write (symbolic links followed) and its permission bits (None when it
    does not exist yet); OSError when it exists and is not a regular file (renaming over a
    device node or FIFO would replace the node itself)."""
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real, None
    _check_regular(mode, path, "cannot save")
    return real, stat.S_IMODE(mode)


def _process_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists but belongs to another user
        return True
    return True


def _remove_stale_temporaries(directory, name):
    """Delete the temporary files of earlier saves to `name` whose process has died."""
    pattern = re.compile(r"\." + re.escape(name) + r"\.(\d+)\.[0-9a-f]+\.tmp")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match and int(match.group(1)) != os.getpid() and not _process_running(int(match.group(1))):
            try:
                os.remove(os.path.join(directory, entry))
            except OSError:
                pass


def save_npz_atomically(path, arrays):
    """np.savez(path, **arrays) written atomically (see the module docstring). Raises OSError
    (IsADirectoryError for a directory) for a target that is not a regular file."""
    write_atomically(path, lambda f: np.savez(f, **arrays))


def write_atomically(path, write):
    """Call write(f) on a new binary file that then replaces `path` atomically (see the module
    docstring). Raises OSError (IsADirectoryError for a directory) for a target that is not a
    regular file."""
    path = os.fspath(path)
    target, keep_mode = _regular_target(path)
    directory, name = os.path.split(target)
    _remove_stale_temporaries(directory, name)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never write through a file or link someone else put there; mode 0o666 lets the
    # umask decide a new file's permissions
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if keep_mode is not None:
                os.chmod(f.fileno() if os.chmod in os.supports_fd else tmp, keep_mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


# What reading a damaged or crafted .npz can raise besides ValueError and errno-less OSErrors: the zip layer (bad
# archive, unsupported compression, bad CRC, short data), the .npy headers, and JSON nested
# too deeply for Python's recursion limit.
CORRUPT_FILE_ERRORS = (EOFError, KeyError, IndexError, TypeError, AttributeError,
                       NotImplementedError, RecursionError, UnicodeDecodeError, zipfile.BadZipFile,
                       zlib.error, struct.error)


@contextlib.contextmanager
def open_npz(path, failure):
    """np.load(path, allow_pickle=False) of a zip archive, for `with`. The file is opened first,
    so file-system failures (missing file, a directory, no permission) raise OSError; anything
    wrong with the content, in the archive or while the body of the `with` reads it, raises
    ValueError("<failure> <path>: ..."), `failure` being e.g. "cannot load cconv model"."""
    _check_regular(os.stat(path).st_mode, path, failure)  # before open(), which blocks on a FIFO
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        try:
            if magic != b"PK\x03\x04":
                raise ValueError("not a .npz (zip) archive" + (" (the file is empty)" if not magic else ""))
            with np.load(f, allow_pickle=False) as data:
                if not hasattr(data, "files"):
                    raise ValueError("it holds a single array, not a .npz archive")
                yield data
        except ValueError as exc:
            raise ValueError(f"{failure} {path!r}: {exc}") from None
        except OSError as exc:
            if exc.errno is not None:  # the system's error (EIO...), not the content's
                raise
            raise ValueError(f"{failure} {path!r}: the file is corrupt, truncated or not "
                             f"a .npz archive ({type(exc).__name__}: {exc})") from None
        except CORRUPT_FILE_ERRORS as exc:
            raise ValueError(f"{failure} {path!r}: the file is corrupt, truncated or not "
                             f"a .npz archive ({type(exc).__name__}: {exc})") from None


def stored_array_header(data, name):
    """(shape, dtype) of array `name` in the open .npz `data`, read from its .npy header
    without reading (or allocating) the array."""
    with data.zip.open(name + ".npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"array {name!r} has an unsupported .npy version {version}")
    return shape, dtype
