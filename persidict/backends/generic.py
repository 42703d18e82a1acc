"""Any other fsspec filesystem, through fsspec's public API alone.

Writes go to a hidden temporary name and are then moved into place, so they
are as atomic as the filesystem's rename; versions come from ``info()``.
Conditional operations are checked and applied under one lock held by this
process: atomic between the threads of one process, best effort across
processes.  Filesystems that can do better get a backend of their own.

Read-only filesystems (``http://``, ``zip://`` opened for reading, ``tar://``,
``github://``, ...) serve every read; a write or delete fails with an
``OSError`` (``EROFS``) that says so.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fsspec import AbstractFileSystem

from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version
from .local import TEMP_PREFIX

__all__ = ["GenericBackend", "is_read_only", "version_from_info"]

_ETAG_FIELDS = ("etag", "ETag", "generation", "version_id")
_TIME_FIELDS = ("mtime", "LastModified", "last_modified", "Last-Modified", "updated", "modified", "created",
                "date_time")
_READ_ONLY_PROTOCOLS = frozenset({"http", "https", "tar", "github", "git", "libarchive", "reference", "ftp"})
READ_ATTEMPTS = 3
_PROCESS_LOCK = threading.RLock()
"""Shared by every generic store: filesystem instances with different options may reach the same files."""


def _timestamp(info: dict[str, Any]) -> float:
    for field in _TIME_FIELDS:
        value = info.get(field)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, tuple) and len(value) == 6:  # zip's date_time
            return datetime(*value).timestamp()
        if isinstance(value, str):
            parsed = _parse_time(value)
            if parsed is not None:
                return parsed
    return 0.0


def _parse_time(text: str) -> float | None:
    """ISO 8601 (most filesystems) or an HTTP date (``Last-Modified``)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def is_read_only(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` can only be read: by its protocol, or an archive opened for reading."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & _READ_ONLY_PROTOCOLS) or getattr(fs, "mode", None) == "r"


def version_from_info(info: dict[str, Any]) -> Version:
    """A version from an ``info()`` record: the native ETag if any, else time, size and inode."""
    timestamp = _timestamp(info)
    for field in _ETAG_FIELDS:
        value = info.get(field)
        if value:
            return Version(str(value), timestamp)
    return Version(f"{timestamp!r}:{info.get('size')}:{info.get('ino', info.get('CRC', ''))}", timestamp)


@contextmanager
def _as_os_errors() -> Iterator[None]:
    """Any filesystem's own exceptions as ``OSError`` (missing paths and preconditions pass through)."""
    try:
        yield
    except (OSError, PreconditionFailed):
        raise
    except Exception as exc:  # fsspec filesystems raise what their libraries raise: ValueError, HTTP errors...
        raise OSError(errno.EIO, f"{type(exc).__name__}: {exc}") from exc


class GenericBackend(StorageBackend):
    """A root on any fsspec filesystem."""

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        super().__init__(fs, root)
        self._lock = _PROCESS_LOCK
        self.read_only = is_read_only(fs)

    def child(self, relative: str) -> GenericBackend:
        return GenericBackend(self.fs, self.path_for(relative))

    def read(self, path: str) -> bytes:
        with _as_os_errors():
            return self.fs.cat_file(path)  # type: ignore[no-any-return]

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        # fsspec reads bytes and metadata in separate calls: pair them only if no write fell between.
        for _ in range(READ_ATTEMPTS):
            before = self.stat(path)
            data = self.read(path)
            if self.stat(path) == before:
                return data, before
        raise OSError(errno.EAGAIN, f"{path} kept changing while it was read")

    def stat(self, path: str) -> Version:
        with _as_os_errors():
            self.fs.invalidate_cache(path)  # not every filesystem takes info(refresh=True)
            info = self.fs.info(path)
        if info.get("type") == "directory":
            raise FileNotFoundError(path)
        return version_from_info(info)

    def exists(self, path: str) -> bool:
        with _as_os_errors():
            return bool(self.fs.isfile(path))

    def _refuse_if_read_only(self, path: str) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, f"{self.fs.unstrip_protocol(path)}: the filesystem is read-only")

    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        self._refuse_if_read_only(path)
        with self._lock, _as_os_errors():
            if expected is not ANY:
                self._check(path, expected)
            # Written aside, then moved into place: where the filesystem can rename,
            # a reader never sees a half-written value (pipe_file writes in place).
            temp = f"{self.fs._parent(path)}/{TEMP_PREFIX}{os.urandom(8).hex()}"
            try:
                self.fs.pipe_file(temp, data)
            except FileNotFoundError:  # a filesystem with real folders: make the parents, once
                self.fs.makedirs(self.fs._parent(path), exist_ok=True)
                self.fs.pipe_file(temp, data)
            self.fs.mv(temp, path)
            return self.stat(path).etag  # stat reads past the listing cache

    def remove(self, path: str, expected: Expected = ANY) -> None:
        self._refuse_if_read_only(path)
        with self._lock, _as_os_errors():
            if expected is not ANY:
                self._check(path, expected)
            self.fs.rm_file(path)
            self.fs.invalidate_cache(path)

    def _check(self, path: str, expected: Expected) -> None:
        try:
            actual = self.stat(path).etag
        except FileNotFoundError:
            if expected is not ABSENT:
                raise PreconditionFailed(path) from None
            return
        if expected is ABSENT or actual != expected:
            raise PreconditionFailed(path)

    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        start = len(self.root) + 1
        with _as_os_errors():
            found = self.fs.find(self.root, detail=True, withdirs=False)
        for path, info in found.items():
            if path.endswith(suffix):
                yield path[start:], _timestamp(info) if with_timestamps else 0.0

    def remove_temporary_files(self, older_than: float) -> int:
        if self.read_only:
            return 0
        deadline = time.time() - older_than
        with _as_os_errors():
            found = self.fs.find(self.root, detail=True, withdirs=False)
            stale = [path for path, info in found.items()
                     if path.rpartition("/")[2].startswith(TEMP_PREFIX) and _timestamp(info) < deadline]
            for path in stale:
                self.fs.rm_file(path)
        return len(stale)

    def ensure_root(self) -> None:
        if not self.read_only:
            with _as_os_errors():
                self.fs.makedirs(self.root, exist_ok=True)
