"""What the cloud backends (S3, GCS, Azure) share: a bucket, a key prefix, async requests.

Each cloud SDK is asynchronous and runs on fsspec's event loop; a subclass
supplies ``_run`` (one request on that loop, with its errors classified once)
and ``_read_one`` (one versioned GET).  Bulk reads then fetch many values
concurrently, bounded, in one pass over the loop.
"""

from __future__ import annotations

import asyncio
import copy
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from .base import StorageBackend, Version

__all__ = ["CONCURRENT_READS", "READ_BATCH", "ObjectStoreBackend"]

T = TypeVar("T")

CONCURRENT_READS = 32
"""Requests in flight at once while reading many values (a real region's round trip is ~20 ms)."""

READ_BATCH = 8 * CONCURRENT_READS
"""Values fetched per round of a bulk read: bounds memory, keeps every connection busy."""


class ObjectStoreBackend(StorageBackend):
    """A bucket (or container) and a key prefix ending in ``/`` (or empty)."""

    atomic_conditions = True

    def __init__(self, fs: Any, root: str) -> None:
        super().__init__(fs, root)
        self.bucket, _, prefix = self.root.partition("/")
        self.prefix = prefix + "/" if prefix else ""
        self._bucket_checked = False

    def child(self, relative: str) -> ObjectStoreBackend:
        """The same bucket one prefix down; it shares what this backend has learned."""
        child = copy.copy(self)
        child.root = self.path_for(relative)
        child.prefix = child.root.partition("/")[2] + "/"
        return child

    def _object_name(self, path: str) -> str:
        """The object's name inside the bucket."""
        return path.partition("/")[2]

    @abstractmethod
    def _run(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run ``request()`` on the SDK's event loop; missing objects raise ``FileNotFoundError``."""

    @abstractmethod
    async def _read_one(self, path: str) -> tuple[bytes, Version]:
        """One GET of a value and its version (``FileNotFoundError`` if it is missing)."""

    def read(self, path: str) -> bytes:
        return self.read_versioned(path)[0]

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        return self._run(lambda: self._read_one(path))

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes, Version] | None]:
        """Fetch many values concurrently, at most ``CONCURRENT_READS`` requests in flight.

        Values come in batches of ``READ_BATCH``, so iterating over a huge store
        holds one batch in memory, not the whole store.
        """
        paths = list(paths)
        for start in range(0, len(paths), READ_BATCH):
            batch = paths[start : start + READ_BATCH]
            yield from self._run(lambda: self._read_batch(batch))

    async def _read_batch(self, paths: list[str]) -> list[tuple[str, bytes, Version] | None]:
        limit = asyncio.Semaphore(CONCURRENT_READS)

        async def one(path: str) -> tuple[str, bytes, Version] | None:
            async with limit:
                try:
                    data, version = await self._read_one(path)
                except FileNotFoundError:
                    return None  # deleted since it was listed
                return path, data, version

        return list(await asyncio.gather(*(one(path) for path in paths)))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True
