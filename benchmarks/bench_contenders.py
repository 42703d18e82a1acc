"""The things the local benchmark times side by side: persidict stores, raw baselines and the peer.

Every contender offers the same small interface, so the driver can run one
operation on all of them in turn, repeat after repeat (interleaving evens out
the drift of virtual disks between the stores compared).
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Protocol

from bench_common import VALUE

import persidict

__all__ = [
    "COUNTER_KEY",
    "Contender",
    "DiskcacheContender",
    "PersiContender",
    "RawDictContender",
    "RawFilesContender",
]

COUNTER_KEY = "counter"
SUFFIX = ".pkl"
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class Contender(Protocol):
    """What the driver needs from each store it measures."""

    name: str
    durability: str  # "fsync", "no-fsync", "memory" or "peer"

    def set_many(self, keys: list[str]) -> None:
        """Store ``VALUE`` under every key."""

    def get_many(self, keys: list[str]) -> None:
        """Read and unpickle the value of every key."""

    def length(self) -> int:
        """The number of stored items."""

    def list_keys(self) -> list[Any]:
        """Every stored key."""

    def increment(self, times: int) -> None:
        """Add one to the counter at ``COUNTER_KEY``, ``times`` times, one read-modify-write each."""

    def close(self) -> None:
        """Release files and connections."""


def _plus_one(value: Any) -> Any:
    """The transformer of the counter benchmark: add one (start at 1)."""
    return 1 if value is persidict.ITEM_NOT_AVAILABLE else value + 1


class PersiContender:
    """A persidict store (``FileDirDict`` or ``LocalDict``)."""

    def __init__(self, name: str, durability: str, store: persidict.PersiDict[Any]) -> None:
        self.name = name
        self.durability = durability
        self.store = store

    def set_many(self, keys: list[str]) -> None:
        store, value = self.store, VALUE
        for key in keys:
            store[key] = value

    def get_many(self, keys: list[str]) -> None:
        store = self.store
        for key in keys:
            store[key]

    def length(self) -> int:
        return len(self.store)

    def list_keys(self) -> list[Any]:
        return list(self.store.keys())

    def increment(self, times: int) -> None:
        transform = self.store.transform_item
        for _ in range(times):
            transform(COUNTER_KEY, transformer=_plus_one)

    def close(self) -> None:
        pass


class RawFilesContender:
    """The raw filesystem limit: atomic temp-file writes, plain reads, ``os.scandir`` listings."""

    def __init__(self, name: str, folder: str, *, fsync: bool) -> None:
        self.name = name
        self.durability = "fsync" if fsync else "no-fsync"
        self.folder = folder
        self.fsync = fsync
        os.makedirs(folder, exist_ok=True)

    def _path(self, key: str) -> str:
        """The file of ``key``."""
        return os.path.join(self.folder, key + SUFFIX)

    def _write(self, path: str, data: bytes) -> None:
        """Write to a hidden temporary file beside ``path`` and move it into place."""
        temp = os.path.join(self.folder, ".tmp" + os.urandom(8).hex())
        fd = os.open(temp, _TEMP_FLAGS, 0o666)
        try:
            os.write(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        if self.fsync:
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _read(self, path: str) -> Any:
        """The unpickled content of ``path``."""
        with open(path, "rb") as file:
            return pickle.loads(file.read())

    def set_many(self, keys: list[str]) -> None:
        for key in keys:
            self._write(self._path(key), pickle.dumps(VALUE))

    def get_many(self, keys: list[str]) -> None:
        for key in keys:
            self._read(self._path(key))

    def _names(self, folder: str, prefix: str) -> list[str]:
        """Keys of the value files below ``folder``, each prefixed with ``prefix``."""
        names: list[str] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    names.extend(self._names(entry.path, prefix + entry.name + "/"))
                elif entry.name.endswith(SUFFIX):
                    names.append(prefix + entry.name[: -len(SUFFIX)])
        return names

    def length(self) -> int:
        return len(self._names(self.folder, ""))

    def list_keys(self) -> list[Any]:
        return self._names(self.folder, "")

    def increment(self, times: int) -> None:
        path = self._path(COUNTER_KEY)
        for _ in range(times):
            try:
                current = self._read(path)
            except FileNotFoundError:
                current = 0
            self._write(path, pickle.dumps(current + 1))

    def close(self) -> None:
        pass


class RawDictContender:
    """The raw memory limit: a plain dict of pickled bytes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.durability = "memory"
        self.data: dict[str, bytes] = {}

    def set_many(self, keys: list[str]) -> None:
        data, dumps, value = self.data, pickle.dumps, VALUE
        for key in keys:
            data[key] = dumps(value)

    def get_many(self, keys: list[str]) -> None:
        data, loads = self.data, pickle.loads
        for key in keys:
            loads(data[key])

    def length(self) -> int:
        return len(self.data)

    def list_keys(self) -> list[Any]:
        return list(self.data)

    def increment(self, times: int) -> None:
        data = self.data
        for _ in range(times):
            raw = data.get(COUNTER_KEY)
            data[COUNTER_KEY] = pickle.dumps((0 if raw is None else pickle.loads(raw)) + 1)

    def close(self) -> None:
        pass


class DiskcacheContender:
    """The peer: ``diskcache.Cache`` with its default settings (SQLite, WAL, synchronous=NORMAL)."""

    def __init__(self, name: str, folder: str) -> None:
        import diskcache

        self.name = name
        self.durability = "peer"
        self.cache = diskcache.Cache(folder)

    def set_many(self, keys: list[str]) -> None:
        cache, value = self.cache, VALUE
        for key in keys:
            cache.set(key, value)

    def get_many(self, keys: list[str]) -> None:
        cache = self.cache
        for key in keys:
            cache[key]

    def length(self) -> int:
        return len(self.cache)

    def list_keys(self) -> list[Any]:
        return list(self.cache)

    def increment(self, times: int) -> None:
        cache = self.cache
        for _ in range(times):
            with cache.transact():
                cache.set(COUNTER_KEY, cache.get(COUNTER_KEY, 0) + 1)

    def close(self) -> None:
        self.cache.close()
