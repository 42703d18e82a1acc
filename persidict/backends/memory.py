"""fsspec's memory filesystem, with O(1) operations, write-counter ETags and a lock.

fsspec's ``info()`` and ``exists()`` on memory scan the whole store, so this
backend works on ``fs.store`` (a dict of path to file object) directly: every
read, write and stat is one dict operation.  Each stored file carries its
version, an ETag drawn from one counter per store (timestamps alone collide
within a microsecond) plus its write time.  Mutations hold the store's lock,
which makes conditional operations atomic across threads.  Stored files are
ordinary ``MemoryFile`` objects, so the filesystem stays usable through fsspec.
"""

from __future__ import annotations

import functools
import io
import itertools
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version

__all__ = ["MemoryBackend", "private_memory_filesystem"]


def private_memory_filesystem() -> MemoryFileSystem:
    """A memory filesystem whose store no other instance or ``memory://`` URL sees.

    Its store counts its files by folder and suffix as they come and go
    (``len`` of a LocalDict is O(1)); fsspec writes to it as to any dict.
    """
    fs = MemoryFileSystem(global_store=False, skip_instance_cache=True)
    fs.store = _CountingStore()
    return fs


class _CountingStore(dict[str, Any]):
    """A memory filesystem's path -> file dict that keeps, for every folder and suffix,
    how many files lie below it: ``counts[("/a", ".pkl")]``.  Each write of a new path
    or delete costs one update per folder level; a folder whose last file goes loses
    its entry, so a store that churns keys keeps no trace of the folders it emptied."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str], int] = {}

    def __setitem__(self, path: str, file: Any) -> None:
        if path not in self:
            self._count(path, 1)
        super().__setitem__(path, file)

    def __delitem__(self, path: str) -> None:
        super().__delitem__(path)
        self._count(path, -1)

    def _count(self, path: str, change: int) -> None:
        folder, _, name = path.rpartition("/")
        dot = name.rfind(".")
        if dot < 0:
            return  # no suffix: no store's value
        suffix, counts = name[dot:], self.counts
        while True:
            count = counts.get((folder, suffix), 0) + change
            if count:
                counts[folder, suffix] = count
            else:
                del counts[folder, suffix]
            if not folder:
                return
            folder = folder.rpartition("/")[0]


class _VersionedFile(MemoryFile):  # type: ignore[misc]
    """A ``MemoryFile`` that knows its version; its times derive from one float."""

    def __init__(self, fs: MemoryFileSystem, path: str, data: bytes, etag: str, timestamp: float) -> None:
        io.BytesIO.__init__(self, data)
        self.fs = fs
        self.path = path
        self.etag = etag
        self.timestamp = timestamp

    @property
    def version(self) -> Version:
        return Version(self.etag, self.timestamp)

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, tz=UTC)

    @created.setter
    def created(self, value: datetime) -> None:
        self.timestamp = value.timestamp()

    modified = created


class _StoreState:
    """The lock and ETag counter shared by every backend on one memory store."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.counter = itertools.count(1)


_STATES: dict[int, tuple[Any, _StoreState]] = {}
"""Each memory store's state, by ``id`` of the store (a path -> file dict), kept here rather than on
fsspec's classes.  A store that can be weakly referenced (a private one) is held weakly and its entry
goes with it; a plain dict (fsspec's global store, which lives as long as its class) is held strongly,
so its ``id`` cannot be reused while the entry exists."""
_states_lock = threading.Lock()


def _state_of(fs: MemoryFileSystem) -> _StoreState:
    """The state of ``fs``'s store, shared by every backend on it (one for fsspec's global store)."""
    store = fs.store
    entry = _STATES.get(id(store))
    if entry is None or _referent(entry[0]) is not store:
        with _states_lock:
            entry = _STATES.get(id(store))
            if entry is None or _referent(entry[0]) is not store:
                entry = (_holder(store), _StoreState())
                _STATES[id(store)] = entry
    return entry[1]


def _holder(store: dict[str, Any]) -> Any:
    """A weak reference to ``store`` that drops its registry entry with it, or the store itself."""
    try:
        return weakref.ref(store, functools.partial(_dropped, id(store)))
    except TypeError:
        return store  # a plain dict cannot be weakly referenced


def _dropped(key: int, reference: weakref.ref[Any]) -> None:
    """A store's weak reference died: its entry goes (unless a newer store took its ``id`` meanwhile)."""
    entry = _STATES.get(key)
    if entry is not None and entry[0] is reference:
        _STATES.pop(key, None)  # no lock: this may run inside a garbage collection, in any thread


def _referent(holder: Any) -> Any:
    return holder() if isinstance(holder, weakref.ref) else holder


class MemoryBackend(StorageBackend):
    """A root on a memory filesystem; thread-safe, O(1) per item operation."""

    backend_name = "memory"
    atomic_conditions = True

    def __init__(self, fs: MemoryFileSystem | None = None, root: str = "") -> None:
        fs = private_memory_filesystem() if fs is None else fs
        super().__init__(fs, fs._strip_protocol(root) if root else "")
        self._store: dict[str, Any] = fs.store
        self._state = _state_of(fs)

    def child(self, relative: str) -> MemoryBackend:
        return MemoryBackend(self.fs, self.path_for(relative))

    def path_for(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    # --- reads ---------------------------------------------------------------
    def read(self, path: str) -> bytes:
        try:
            return self._store[path].getvalue()  # type: ignore[no-any-return]
        except KeyError:
            raise FileNotFoundError(path) from None

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        try:
            stored = self._store[path]
        except KeyError:
            raise FileNotFoundError(path) from None
        return stored.getvalue(), self._version_of(stored)

    def stat(self, path: str) -> Version:
        try:
            stored = self._store[path]
        except KeyError:
            raise FileNotFoundError(path) from None
        return self._version_of(stored)

    def exists(self, path: str) -> bool:
        return path in self._store

    def _version_of(self, stored: Any) -> Version:
        version = getattr(stored, "version", None)
        if version is None:  # written through fsspec directly: give it a version now
            with self._state.lock:
                version = getattr(stored, "version", None)
                if version is None:
                    version = Version(str(next(self._state.counter)), stored.modified.timestamp())
                    stored.version = version
        return version

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        state = self._state
        with state.lock:
            if expected is not ANY:
                self._check(path, expected)
            etag = str(next(state.counter))
            self._store[path] = _VersionedFile(self.fs, path, data, etag, time.time())
        return etag

    def remove(self, path: str, expected: Expected = ANY) -> None:
        with self._state.lock:
            if path not in self._store:
                raise FileNotFoundError(path)
            if expected is not ANY:
                self._check(path, expected)
            del self._store[path]

    def _check(self, path: str, expected: Expected) -> None:
        stored = self._store.get(path)
        if expected is ABSENT:
            if stored is not None:
                raise PreconditionFailed(path)
        elif stored is None or self._version_of(stored).etag != expected:
            raise PreconditionFailed(path)

    # --- listing -------------------------------------------------------------
    def count(self, suffix: str) -> int | None:
        store = self._store
        return store.counts.get((self.root, suffix), 0) if isinstance(store, _CountingStore) else None

    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        prefix = self.root + "/"
        start = len(prefix)
        for path in list(self._store):  # a snapshot: other threads may write meanwhile
            if path.startswith(prefix) and path.endswith(suffix):
                if not with_timestamps:
                    yield path[start:], 0.0
                    continue
                stored = self._store.get(path)
                if stored is not None:
                    yield path[start:], self._version_of(stored).timestamp
