"""A local folder bounded in bytes: least-recently-used files are evicted, by every process alike.

``FolderBudget`` keeps an index of the folder's files (path, size, last use)
in SQLite beside them (``.persidict@budget``), which every process
sharing the folder uses: a writer first *reserves* the bytes it is about to
write, in one transaction, evicting the least recently used files until the
stored bytes fit under ``max_bytes``, and only then writes.  So however many
processes write at once, the files stored (values, ETags, the layout record,
writes in progress) never add up to more than ``max_bytes`` plus the one value
being written that alone exceeds what is left (a value larger than the whole
budget is still stored, after everything else is evicted).  A read marks its
file used.  The index itself is bookkeeping, as in diskcache (whose size limit
works the same way: a tally beside the data, eviction by the writer that
crosses it): a few dozen bytes per file, not counted.

A file being overwritten is pinned (its use time set in the future) until the
write lands, so no other process evicts it under the writer; a writer killed
in between leaves a pin that expires after ``PIN_SECONDS``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .base import ANY, Decoder, Expected, Payload, Version
from .local import LocalBackend

__all__ = ["BUDGET_NAME", "BoundedLocalBackend", "FolderBudget"]

BUDGET_NAME = ".persidict@budget"
"""The index's file name (``@`` is no key character: it is never a key's file)."""

PIN_SECONDS = 3600.0
"""How long a file being overwritten is protected from eviction (a killed writer's pin expires then)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS files_by_use ON files (used);
"""


class FolderBudget:
    """The shared size limit of one folder tree (see the module docstring)."""

    def __init__(self, root: str, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        self.root = root
        self.max_bytes = max_bytes
        self._index_path = os.path.join(root, BUDGET_NAME)
        self._local = threading.local()  # sqlite connections are per thread

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            os.makedirs(self.root, exist_ok=True)
            connection = sqlite3.connect(self._index_path, timeout=120, isolation_level=None)
            connection.execute("PRAGMA journal_mode=TRUNCATE")  # no WAL file growing beside a small cache
            connection.execute("PRAGMA synchronous=OFF")  # an index of a cache: rebuilt if it is ever lost
            connection.executescript(_SCHEMA)
            self._local.connection = connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def reserve(self, path: str, size: int) -> None:
        """Make room for ``size`` more bytes at ``path`` (its old version stays counted until ``settle``)."""
        with self._transaction() as db:
            row = db.execute("SELECT size FROM files WHERE path = ?", (path,)).fetchone()
            old = row[0] if row else 0
            total = db.execute("SELECT COALESCE(SUM(size), 0) FROM files").fetchone()[0]
            excess = total + size - self.max_bytes
            if excess > 0:
                self._evict(db, excess, keep=path)
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (path, old + size, time.time() + PIN_SECONDS))

    def _evict(self, db: sqlite3.Connection, excess: int, keep: str) -> None:
        """Delete least-recently-used files until ``excess`` bytes are freed (or nothing else is left)."""
        rows = db.execute("SELECT path, size FROM files WHERE path != ? ORDER BY used", (keep,))
        for path, size in rows.fetchall():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            db.execute("DELETE FROM files WHERE path = ?", (path,))
            excess -= size
            if excess <= 0:
                return

    def settle(self, path: str) -> None:
        """Record what ``path`` holds now that a write to it has landed or failed (it was just used)."""
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            self.forget([path])
            return
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", (path, size, time.time()))

    def used(self, path: str) -> None:
        """Mark ``path`` as just read (it moves to the back of the eviction order; a pin stays)."""
        now = time.time()
        with self._transaction() as db:
            db.execute("UPDATE files SET used = ? WHERE path = ? AND used < ?", (now, path, now))

    def forget(self, paths: Iterable[str]) -> None:
        """``paths`` were deleted."""
        with self._transaction() as db:
            db.executemany("DELETE FROM files WHERE path = ?", ((path,) for path in paths))


class BoundedLocalBackend(LocalBackend):
    """A local folder whose files, with every other process's, stay within one ``FolderBudget``."""

    def __init__(self, root: str, *, fsync: bool = True, budget: FolderBudget) -> None:
        super().__init__(root, fsync=fsync)
        self.budget = budget

    def child(self, relative: str) -> BoundedLocalBackend:
        return BoundedLocalBackend(self.path_for(relative), fsync=self.fsync, budget=self.budget)

    def read(self, path: str) -> bytes:
        data = super().read(path)
        self.budget.used(path)
        return data

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        found = super().read_versioned(path)
        self.budget.used(path)
        return found

    def read_decoded(self, path: str, decoder: Decoder, *, versioned: bool = True) -> tuple[Any, Version | None]:
        found = super().read_decoded(path, decoder, versioned=versioned)
        self.budget.used(path)
        return found

    def open_read(self, path: str) -> tuple[IO[bytes], Version]:
        found = super().open_read(path)
        self.budget.used(path)
        return found

    def put_stream(self, path: str, payload: Payload, expected: Expected = ANY) -> str:
        return self.put(path, payload.to_bytes(), expected)  # the budget needs the size before the write

    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        self.budget.reserve(path, len(data))
        try:
            return super().put(path, data, expected)
        finally:
            self.budget.settle(path)

    def remove(self, path: str, expected: Expected = ANY) -> None:
        super().remove(path, expected)
        self.budget.forget([path])
