"""The output folder: checked before any work, cleaned of stale temporary files, locked per image.

* :func:`check_out_dir` creates ``--out`` and writes a probe file into it, so a folder that is a
  file, lies below a file, is read-only or is full fails at once, with one line naming it.
* :func:`clean_stale_parts` removes the temporary ``.<name>.<pid>-<random>.part`` files that
  :func:`~deepcut.io.writers.atomic_path` left behind when its process was killed mid-write
  (only those whose process is gone: a concurrent run's files in progress are kept).
* :class:`ImageLock` (:func:`image_lock` as a context) is an advisory lock per output name (``.<stem>.lock``, removed on release):
  two processes on one ``--out`` split the images instead of each doing all of them.
* :func:`output_error` turns an ``OSError`` of a write into an :class:`OutputError` that names the
  folder, and for a full disk the disk (its mount point), not the image.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepcut.errors import OutputError

__all__ = ["FATAL_WRITE_ERRNOS", "ImageLock", "check_out_dir", "check_out_file", "clean_stale_parts",
           "image_lock", "mount_point", "output_error"]

#: Write errors that no later image can escape (the run stops with exit status 2).
FATAL_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
#: ``.<name>.<pid>-<random>.part``: the temporary names of :func:`~deepcut.io.writers.atomic_path`.
PART_RE = re.compile(r"^\..+\.(\d+)-[A-Za-z0-9_]+\.part$")
#: Older temporary names (``.<name>.<random>.part``, before the pid was recorded) count as stale
#: after this many seconds.
LEGACY_PART_AGE_S = 3600.0
_LEGACY_PART_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part$")


def mount_point(path: str | Path) -> Path:
    """The mount point of the disk holding ``path`` (the nearest existing folder above it)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    dev = p.stat().st_dev
    while p != p.parent and p.parent.stat().st_dev == dev:
        p = p.parent
    return p


def output_error(err: OSError, folder: str | Path) -> OutputError:
    """One line for a failed write into ``folder``: names the disk when it is full."""
    folder = Path(folder)
    code = err.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left" if code == errno.ENOSPC else "disk quota exceeded"
        try:
            disk = f" (the disk mounted at {mount_point(folder)})"
        except OSError:
            disk = ""
        return OutputError(f"cannot write to output folder {folder}: {what} on its disk{disk}; "
                           "free some space or choose another --out")
    reason = err.strerror or str(err) or type(err).__name__
    return OutputError(f"cannot write to output folder {folder}: {reason}")


def check_out_dir(folder: str | Path) -> Path:
    """Create ``folder`` (with parents) and prove it writable by writing a probe file.

    Raises:
        OutputError: ``folder`` is a file, lies below a file, cannot be created, or cannot be
            written (read-only, full).
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file, not a folder; choose another --out")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot create output folder {folder}: {parent} is a file")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".deepcut-probe.{os.getpid()}-", suffix=".part",
                                     dir=folder)
        try:
            os.write(fd, b"\0" * 4096)  # a full disk often lets a file be created, not written
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as e:
        raise output_error(e, folder) from None
    return folder


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


def clean_stale_parts(folder: str | Path) -> list[Path]:
    """Remove temporary files left by killed writers in ``folder`` (not recursive).

    A ``.part`` file of our own naming is stale when the process that wrote it is gone; older
    names without a process id when they are more than :data:`LEGACY_PART_AGE_S` old.

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".part")):
            continue
        m = PART_RE.match(name)
        try:
            if m:
                stale = not _pid_alive(int(m.group(1)))
            else:
                stale = bool(_LEGACY_PART_RE.match(name)) and \
                    now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_PART_AGE_S
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


class ImageLock:
    """Advisory lock of one output name in ``folder`` (``.<stem>.lock``), taken without waiting.

    :meth:`acquire` returns False when another process holds it. The lock is not bound to the
    thread that took it, so a pipelined run can take it in its main thread and release it in
    its writer thread once the image's outputs are written. :meth:`release` removes the lock file
    while still held, so a finished run leaves none behind (a killed one leaves an unlocked file
    that the next run takes over).
    """

    def __init__(self, folder: str | Path, stem: str) -> None:
        from filelock import FileLock

        self.path = Path(folder) / f".{stem}.lock"
        self._lock = FileLock(str(self.path), timeout=0, thread_local=False)
        self._held = False

    def acquire(self) -> bool:
        """True when this process now holds the lock (or the file system has no locks)."""
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            return False
        except OSError:  # a file system without locks: work without one
            return True
        self._held = True
        return True

    def release(self) -> None:
        """Release the lock (if held) and remove its file; safe to call twice."""
        if not self._held:
            return
        self._held = False
        try:
            self.path.unlink(missing_ok=True)  # while held: a waiter then sees a removed inode
        except OSError:
            pass
        self._lock.release()


@contextmanager
def image_lock(folder: str | Path, stem: str) -> Iterator[bool]:
    """Advisory lock of one output name in ``folder``; yields False when another process holds it
    (see :class:`ImageLock`)."""
    lock = ImageLock(folder, stem)
    mine = lock.acquire()
    try:
        yield mine
    finally:
        lock.release()


def check_out_file(path: str | Path) -> Path:
    """Check that the output file ``path`` can be written: its folder is created and
    test-written, and ``path`` itself is not a folder.

    Raises:
        OutputError: as :func:`check_out_dir`, or ``path`` is an existing folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"output file {path} is a folder; give a file name (e.g. "
                          f"{path / 'clusters.csv'})")
    check_out_dir(path.parent if str(path.parent) else Path("."))
    return path
