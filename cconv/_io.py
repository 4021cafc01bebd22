"""Atomic file writes: what a user saved is never lost to a crash in the middle of a save.

The data goes to a temporary file in the target's directory, is flushed to disk, and is renamed
over the target (os.replace), so a reader sees the old file or the new one, never a partial one.
The target must be a regular file or not exist yet: a directory, FIFO, socket or device node is
refused (a rename would replace the node itself by a regular file). A symbolic link is followed:
the file it points to is replaced and the link is kept. An existing file keeps its permission
bits; a new one gets 0666 less the process's umask, as open() would give it.

Temporary files are named `.<target name>.<pid>.<random>.tmp`; a save removes those of the same
target whose process no longer runs (left by a save killed with SIGKILL), so they cannot pile up.
"""
import errno
import os
import re
import secrets
import stat

import numpy as np


def _regular_target(path):
    """The real path to write (symbolic links followed), after checking that it is a regular
    file or does not exist; OSError otherwise."""
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real, None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "cannot save over a directory", path)
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device node" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise OSError(errno.EINVAL, f"cannot save to {kind}: only regular files are written "
                                    f"(renaming over it would replace the node itself)", path)
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
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
