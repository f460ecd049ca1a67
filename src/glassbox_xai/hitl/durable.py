"""Crash-safe file primitives for the retraining set: staged folders published by one
rename, fsync of files and folders, an inter-process lock, and removal of leftovers.

A version is written into a private staging folder, every file fsynced, the folder
fsynced, then renamed to its final name in one step and its parent fsynced. A
``kill -9`` at any instruction leaves either no version or the whole version; a
power cut after :func:`publish` returns cannot lose it. Renaming onto an existing
non-empty folder fails, so a published version is never overwritten.

Pure Python: no numpy, no napari, no TensorFlow.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: saves still atomic, concurrent processes not serialised
    fcntl = None

STAGING_PREFIX = ".staging-"


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new file) survive a power cut."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - some file systems refuse fsync on folders
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (which must not exist) with ``data`` and fsync it; the mode follows the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def new_staging(parent: Path) -> Path:
    """A fresh, private folder inside ``parent`` to build a version in."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
    staging.mkdir()
    return staging


def publish(staging: Path, target: Path) -> None:
    """Rename the complete ``staging`` folder to ``target`` in one step, durably.

    Raises:
        FileExistsError: ``target`` already exists (a published version is never replaced).
    """
    fsync_dir(staging)
    if target.exists():
        raise FileExistsError(errno.EEXIST, "a published version already exists", str(target))
    os.rename(staging, target)  # atomic; fails on an existing non-empty folder
    fsync_dir(target.parent)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() and not path.is_dir():
        path.unlink(missing_ok=True)


class FolderLock:
    """An exclusive, re-entrant lock on a folder, shared by threads and processes.

    Uses ``flock`` on ``<folder>/<name>``: the kernel drops it when the holder dies,
    so a lock held by a killed process never blocks the next one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> "FolderLock":
        self._thread_lock.acquire()
        try:
            if self._depth == 0 and fcntl is not None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
        self._thread_lock.release()
