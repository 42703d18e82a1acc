"""Any other fsspec filesystem, through fsspec's public API alone.

Writes go to a hidden temporary name and are then moved into place, so they
are as atomic as the filesystem's rename; versions come from ``info()``.
Conditional operations are checked and applied under one lock held by this
process: atomic between the threads of one process, best effort across
processes.  Filesystems that can do better get a backend of their own.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fsspec import AbstractFileSystem

from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version
from .local import TEMP_PREFIX

__all__ = ["GenericBackend", "version_from_info"]

_ETAG_FIELDS = ("etag", "ETag", "generation", "version_id")
_TIME_FIELDS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")
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
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def version_from_info(info: dict[str, Any]) -> Version:
    """A version from an ``info()`` record: the native ETag if any, else time, size and inode."""
    timestamp = _timestamp(info)
    for field in _ETAG_FIELDS:
        value = info.get(field)
        if value:
            return Version(str(value), timestamp)
    return Version(f"{timestamp!r}:{info.get('size')}:{info.get('ino', '')}", timestamp)


class GenericBackend(StorageBackend):
    """A root on any fsspec filesystem."""

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        super().__init__(fs, root)
        self._lock = _PROCESS_LOCK

    def child(self, relative: str) -> GenericBackend:
        return GenericBackend(self.fs, self.path_for(relative))

    def read(self, path: str) -> bytes:
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
        info = self.fs.info(path, refresh=True)
        if info.get("type") == "directory":
            raise FileNotFoundError(path)
        return version_from_info(info)

    def exists(self, path: str) -> bool:
        return bool(self.fs.isfile(path))

    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        with self._lock:
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
            self.fs.invalidate_cache(path)
            return self.stat(path).etag

    def remove(self, path: str, expected: Expected = ANY) -> None:
        with self._lock:
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
        found = self.fs.find(self.root, detail=True, withdirs=False)
        for path, info in found.items():
            if path.endswith(suffix):
                yield path[start:], _timestamp(info) if with_timestamps else 0.0

    def ensure_root(self) -> None:
        self.fs.makedirs(self.root, exist_ok=True)
