"""Local folders: atomic replacement, per-version locks and stat-derived ETags.

Writes go to a hidden temporary file in the target folder, which is then
moved into place with ``os.replace`` (or ``os.link`` when the path must not
exist yet), so a reader sees the old bytes or the new ones, never a torn
file.  Every version of a value is therefore its own inode, and
``mtime_ns:size:inode`` identifies it.

Mutations are serialized per key with ``flock`` on the *current version's
inode*: a writer opens the file, locks it, and checks that the path still
names the inode it locked (another writer may have replaced it meanwhile).
Holding that lock, it compares ETags and replaces or unlinks the file.
Because every mutation of a present key holds the lock of the version it
replaces, and every creation of an absent key uses ``os.link`` (which fails
if the name exists), compare-and-swap is atomic across the processes of one
machine.  This needs a local POSIX filesystem with ``flock``; readers never
lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fsspec.implementations.local import LocalFileSystem

from ..protocol.retry import DEFAULT_RETRY
from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: conditional operations are not atomic there
    fcntl = None  # type: ignore[assignment]

__all__ = ["LocalBackend"]

T = TypeVar("T")

TEMP_PREFIX = ".__tmp__"
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _etag(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def _retrying(function: Callable[..., T], *args: Any) -> T:
    """Call ``function(*args)``; retry a ``PermissionError`` (virus scanners, sync clients) a few times."""
    try:
        return function(*args)
    except PermissionError:
        return DEFAULT_RETRY.call(lambda: function(*args), (PermissionError,))


class LocalBackend(StorageBackend):
    """A folder on the local disk."""

    backend_name = "filesystem"
    atomic_conditions = fcntl is not None

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        super().__init__(LocalFileSystem(), os.path.abspath(root))
        self.fsync = fsync

    def child(self, relative: str) -> LocalBackend:
        return LocalBackend(self.path_for(relative), fsync=self.fsync)

    @property
    def url(self) -> str:
        return "file://" + self.root

    def ensure_root(self) -> None:
        if os.path.isfile(self.root):
            raise ValueError(f"{self.root} is a file, not a directory.")
        os.makedirs(self.root, exist_ok=True)

    # --- reads ---------------------------------------------------------------
    def read(self, path: str) -> bytes:
        return _retrying(_read_file, path)

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        return _retrying(_read_file_versioned, path)

    def stat(self, path: str) -> Version:
        st = _retrying(_stat_file, path)
        return Version(_etag(st), st.st_mtime)

    def exists(self, path: str) -> bool:
        return _retrying(_is_file, path)

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        if expected is ABSENT and _retrying(_is_file, path):
            # Insert-if-absent on a present key costs one stat, not a temporary file
            # and an fsync; when the key is absent, the link below keeps it atomic.
            raise PreconditionFailed(path)
        temp, etag = _retrying(self._write_temp, path, data)
        try:
            if expected is ABSENT:
                _retrying(self._link_new, temp, path)
                os.unlink(temp)
            elif _retrying(self._replace_locked, temp, path, expected) == "linked":
                os.unlink(temp)
        except BaseException:
            _unlink_quietly(temp)
            raise
        if self.fsync:
            _fsync_dir(os.path.dirname(path))
        return etag

    def remove(self, path: str, expected: Expected = ANY) -> None:
        def unlink_if_expected() -> None:
            fd = _open_current_locked(path)
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "No such file", path)
            try:
                _check_expected(fd, expected)
                os.unlink(path)
            finally:
                os.close(fd)

        _retrying(unlink_if_expected)

    def _write_temp(self, path: str, data: bytes) -> tuple[str, str]:
        """Write ``data`` to a fresh hidden file beside ``path``; return its name and ETag.

        ``rename`` and ``link`` keep the mtime, size and inode, so the temporary
        file's ETag is the ETag the value will have in place.
        """
        folder = path.rpartition(os.sep)[0]
        temp = f"{folder}{os.sep}{TEMP_PREFIX}{os.urandom(8).hex()}"
        try:
            fd = os.open(temp, _TEMP_FLAGS, 0o666)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(temp, _TEMP_FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            # The clock's nanoseconds, not the filesystem's coarse tick: with
            # inode numbers reused at once, a coarse mtime could repeat an ETag.
            now = time.time_ns()
            os.utime(fd, ns=(now, now))
            if self.fsync:
                os.fsync(fd)
            etag = _etag(os.fstat(fd))
        except BaseException:
            os.close(fd)
            _unlink_quietly(temp)
            raise
        os.close(fd)
        return temp, etag

    def _link_new(self, temp: str, path: str) -> None:
        try:
            os.link(temp, path)
        except FileExistsError as exc:
            raise PreconditionFailed(path) from exc

    def _replace_locked(self, temp: str, path: str, expected: Expected) -> str:
        """Move ``temp`` to ``path`` while holding the lock of the version it replaces.

        Returns "linked" when ``path`` was created (``temp`` still exists), or
        "replaced" when an existing version was swapped out (``temp`` is gone).
        """
        while True:
            fd = _open_current_locked(path)  # put() already retries this whole step
            if fd is None:
                if isinstance(expected, str):
                    raise PreconditionFailed(path)
                try:
                    os.link(temp, path)  # never clobber a value created meanwhile
                    return "linked"
                except FileExistsError:
                    continue
            try:
                _check_expected(fd, expected)
                os.replace(temp, path)
                return "replaced"
            finally:
                os.close(fd)

    # --- listing -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        yield from _walk(self.root, "", suffix, with_timestamps)

    def remove_temporary_files(self, older_than: float) -> int:
        deadline = time.time() - older_than
        removed = 0
        for folder, _subdirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(folder, name)
                try:
                    if os.lstat(path).st_mtime < deadline:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue  # its writer finished (or someone else removed it) meanwhile
        return removed

    def prune_empty_dirs(self) -> None:
        for folder, _subdirs, _files in os.walk(self.root, topdown=False):
            if folder != self.root:
                with contextlib.suppress(OSError):  # not empty, or removed by someone else: both fine
                    os.rmdir(folder)


def _is_file(path: str) -> bool:
    """Like ``os.path.isfile``, but an access denial raises instead of answering False."""
    try:
        _stat_file(path)
    except FileNotFoundError:
        return False
    return True


def _not_a_value(path: str) -> FileNotFoundError:
    # A folder (of longer keys) where a value's file would be, or a file where a folder
    # of the path would be: either way, no value is stored under this key.
    return FileNotFoundError(errno.ENOENT, "No value here (a folder or a file is in the way)", path)


def _stat_file(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except NotADirectoryError:
        raise _not_a_value(path) from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_a_value(path)
    return st


def _open_file(path: str) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at ``path``, and its stat."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except NotADirectoryError:
        raise _not_a_value(path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_a_value(path)
    return fd, st


def _read_file(path: str) -> bytes:
    fd, st = _open_file(path)
    try:
        return _read_all(fd, st.st_size)
    finally:
        os.close(fd)


def _read_file_versioned(path: str) -> tuple[bytes, Version]:
    fd, st = _open_file(path)
    try:
        return _read_all(fd, st.st_size), Version(_etag(st), st.st_mtime)
    finally:
        os.close(fd)


def _read_all(fd: int, size_hint: int) -> bytes:
    data = os.read(fd, size_hint + 1)
    if len(data) <= size_hint:
        return data
    chunks = [data]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _open_current_locked(path: str) -> int | None:
    """Open and lock the version currently at ``path``; ``None`` if there is none."""
    while True:
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            locked = os.fstat(fd)
            current = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        if (current.st_ino, current.st_dev) == (locked.st_ino, locked.st_dev):
            return fd
        os.close(fd)  # replaced while we waited for the lock: lock the new version


def _check_expected(fd: int, expected: Expected) -> None:
    if isinstance(expected, str) and _etag(os.fstat(fd)) != expected:
        raise PreconditionFailed(expected)
    if expected is ABSENT:
        raise PreconditionFailed(expected)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _fsync_dir(folder: str) -> None:
    """Persist the rename itself; best effort, since some filesystems refuse directory fsync."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _walk(folder: str, relative: str, suffix: str, with_timestamps: bool) -> Iterator[tuple[str, float]]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for entry in entries:
        name = entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, relative + name + "/", suffix, with_timestamps)
            elif name.endswith(suffix) and entry.is_file():  # temporary names have no suffix
                timestamp = entry.stat().st_mtime if with_timestamps else 0.0
                yield relative + name, timestamp
        except FileNotFoundError:
            continue  # deleted while we were listing
