"""Output files: written atomically, their directory checked before a long run, failures told in one line.

A run that trains for an hour must not discover at its final save that its output directory is read-only
or full. `check_output_dir` probes the directory (and its free space, when the caller knows how much
it will write) before any work starts; `atomic_write` writes a file next to its target, flushes it to
disk and renames it over the target, so a failed write leaves the previous file whole. Both turn the
operating system's error into an `OutputError` that names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# Errors that the user fixes outside the program: a full disk or quota; permissions or a read-only mount; a path
# that runs through a file or ends at a directory.
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_NOT_A_FILE_PATH = {errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}
_FREE_SPACE = "free some space (or choose another output path) and run the same command again"


class OutputError(RuntimeError):
    """An output cannot be written: read-only, not ours to write, or out of space."""


def storage_error(err: OSError, path: str | Path) -> OutputError | None:
    """The one-line form of a storage failure while writing `path`; None for other errors (real bugs)."""
    reason = err.strerror or (os.strerror(err.errno) if err.errno else str(err))
    if err.errno in _FULL:
        advice = _FREE_SPACE
    elif err.errno in _READ_ONLY:
        advice = "make the directory writable (or choose another output path) and run the same command again"
    elif err.errno in _NOT_A_FILE_PATH:
        through = err.errno in (errno.ENOTDIR, errno.EEXIST) and err.filename and str(err.filename) != str(path)
        where = f" ({err.filename})" if through else ""
        return OutputError(f"cannot write {path}: {reason}{where}; choose an output path whose directories are "
                           "directories and that is not one itself")
    else:
        return None
    return OutputError(f"cannot write {path}: {reason}; {advice}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write `path` through `write(handle)` all at once: a crash or a full disk leaves the old file whole."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise storage_error(err, path) or err from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and storage_error(err, path) is not None:
            raise storage_error(err, path) from None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode()))


def check_output_dir(path: str | Path, needed_bytes: int = 0) -> None:
    """Fail now, with one line, if files cannot be written next to `path` or there is not room for them."""
    path = Path(path)
    if path.is_dir():
        raise storage_error(OSError(errno.EISDIR, os.strerror(errno.EISDIR)), path)
    probe = path.parent / f".{path.name}.write-probe"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(b"\0")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise storage_error(err, path) or err from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    free = shutil.disk_usage(path.parent).free
    if free < needed_bytes:
        raise OutputError(
            f"cannot write {path}: {free / 1e6:.1f} MB free in {path.parent}, this run writes about "
            f"{needed_bytes / 1e6:.1f} MB; {_FREE_SPACE}")
