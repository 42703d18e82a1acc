"""The narrow protocol every PersiDict stands on: a versioned map from keys to values.

A ``Store`` reads a value together with its version, writes a value if the
stored version is the expected one, deletes if, and lists.  That is all the
dict front (``core/front.py``) and the conditional engine (``engine.py``) need;
every public method of a PersiDict is built on these few.  A layer (write-once,
a cache) is a ``WrapperStore`` that overrides what it changes, so no public
method of the front can go around it.

Errors are the protocol's own vocabulary: ``KeyError`` for an absent key,
``PreconditionFailed`` for an unmet precondition, ``MutationPolicyError`` for a
write the store's policy refuses; anything else is a ``BackendError`` raised by
the store's error boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple
from .exceptions import MutationPolicyError
from .versions import ANY, Expected, PreconditionFailed, Version

__all__ = ["APPEND_ONLY", "WRITE_ONCE", "FileSource", "Store", "WrapperStore"]

APPEND_ONLY = "append-only"
"""The policy of a store whose items are inserted and never replaced or deleted."""
WRITE_ONCE = "write-once"
"""Append-only, and a repeated plain write of a key is ignored (after an optional consistency check)."""

Key = NonEmptySafeStrTuple


class FileSource:
    """A value whose stored bytes are those of an open local file, as they are (``put_file``).

    It travels through ``write`` like any value, so every layer's policy applies to it; a
    store of files (``FsspecStore``) copies the file, and it refuses to be pickled, so no
    other store can mistake it for a value.
    """

    __slots__ = ("file",)

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file

    def __reduce__(self) -> Any:
        raise TypeError("a file given to put_file is stored as its bytes, never serialized as a value")


class Store(ABC):
    """A versioned map: values with ETags, written and deleted under preconditions.

    ``atomic_conditions`` says whether a precondition is checked atomically
    with the write or delete it guards, against every other writer.
    ``policy`` is ``None`` (mutable), ``APPEND_ONLY`` or ``WRITE_ONCE``.
    """

    atomic_conditions: bool = False
    policy: str | None = None
    backend_name: str = "store"
    """What holds the values (``filesystem``, ``s3``, ...), as errors report it."""

    @property
    def append_only(self) -> bool:
        """True when items are never replaced or deleted."""
        return self.policy is not None

    # --- reads ---------------------------------------------------------------------------
    @abstractmethod
    def read(self, key: Key, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        """The value and the version it belongs to; ``KeyError`` if absent.

        With ``unless_etag``, a value whose ETag is still that one is not
        fetched: ``VALUE_NOT_RETRIEVED`` comes back in its place.
        """

    def get(self, key: Key) -> Any:
        """The value alone (a store may answer it more cheaply than ``read``); ``KeyError`` if absent."""
        return self.read(key)[0]

    @abstractmethod
    def stat(self, key: Key) -> Version:
        """The key's current version; ``KeyError`` if absent."""

    def exists(self, key: Key) -> bool:
        """Whether the key holds a value."""
        try:
            self.stat(key)
        except KeyError:
            return False
        return True

    def read_many(self, keys: Iterable[Key]) -> Iterator[tuple[Any, Version] | None]:
        """``read`` of many keys, in order; ``None`` for a key that is absent.  Stores may do it concurrently."""
        for key in keys:
            try:
                yield self.read(key)
            except KeyError:
                yield None

    # --- writes --------------------------------------------------------------------------
    @abstractmethod
    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        """Store ``value`` if the key's version is ``expected``; the new ETag.

        ``PreconditionFailed`` if it is not; ``TypeError`` before anything is
        written if the store cannot hold the value.
        """

    @abstractmethod
    def delete(self, key: Key, expected: Expected = ANY) -> None:
        """Delete the key if its version is ``expected``: ``KeyError`` if absent, ``PreconditionFailed`` if changed."""

    def write_many(self, items: Iterable[tuple[Key, Any]], expected: Expected = ANY) -> dict[Key, Exception]:
        """``write`` of many items under one precondition; the keys that failed, with their errors."""
        failures: dict[Key, Exception] = {}
        for key, value in items:
            try:
                self.write(key, value, expected)
            except (PreconditionFailed, MutationPolicyError) as exc:
                failures[key] = exc
        return failures

    def delete_many(self, keys: Iterable[Key]) -> dict[Key, Exception]:
        """Delete every key whatever its version (an absent one is fine); the keys that failed."""
        for key in keys:
            try:
                self.delete(key)
            except KeyError:
                continue
        return {}

    # --- files as values (docs/big-values.md#files-as-values) ---------------------------------
    def write_file(self, key: Key, file: IO[bytes], expected: Expected = ANY) -> str:
        """Store the rest of the open binary ``file`` as the key's bytes, as they are, if the key's
        version is ``expected``; the new ETag.  Stores of files and bytes only; others refuse."""
        raise TypeError(f"{type(self).__name__} stores values, not files")

    def open_file(self, key: Key) -> tuple[IO[bytes], Version]:
        """A binary file object of the key's stored bytes (the caller closes it) and their version."""
        raise TypeError(f"{type(self).__name__} stores values, not files")

    # --- listing -------------------------------------------------------------------------
    @abstractmethod
    def list(self, *, with_timestamps: bool = False) -> Iterator[tuple[Key, float]]:
        """Every key with its write time (0.0 unless ``with_timestamps``), in no particular order."""

    def read_all(self) -> Iterator[tuple[Key, Any, Version]]:
        """Every key with its value and version, in no particular order (a key deleted meanwhile is
        skipped): ``list``, then ``read_many``.  A store may read each value through the file name
        its listing found, instead of computing the key's path again."""
        keys = [key for key, _ in self.list()]
        for key, entry in zip(keys, self.read_many(keys), strict=True):
            if entry is not None:
                yield key, entry[0], entry[1]

    def count(self) -> int:
        """How many keys there are."""
        known = self.known_count()
        return sum(1 for _ in self.list()) if known is None else known

    def known_count(self) -> int | None:
        """How many keys there are if the storage knows without listing (memory: O(1)), else None."""
        return None

    def clear(self) -> dict[Key, Exception]:
        """Delete every key (and any leftovers of interrupted writes); the keys that failed."""
        return self.delete_many(key for key, _ in list(self.list()))

    # --- structure -----------------------------------------------------------------------
    @abstractmethod
    def child(self, prefix: SafeStrTuple) -> Store:
        """The store of the keys that start with ``prefix``, addressed without it."""

    def relative_path(self, prefix: SafeStrTuple) -> str:
        """Where the keys of ``prefix`` live below this store's root, as a ``/``-separated path."""
        return "/".join(prefix.strings)


class WrapperStore(Store):
    """A store that passes every call to ``inner``: a layer overrides only what it changes.

    The bulk methods (``read_many``, ``write_many``, ``delete_many``, ``clear``)
    are not passed on: they fall back to this store's own ``read``, ``write`` and
    ``delete``, so a layer that changes ``write`` governs ``update`` too.  A layer
    passes a bulk method on itself where that is right (and faster: object stores
    run them concurrently).  ``rewrap(inner)`` builds the same layer around
    another store, which is how ``child`` keeps the layer one prefix down.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.atomic_conditions = inner.atomic_conditions
        self.policy = inner.policy
        self.backend_name = inner.backend_name

    def rewrap(self, inner: Store) -> WrapperStore:
        """This layer, configured as it is, around ``inner``."""
        return type(self)(inner)

    def read(self, key: Key, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        return self.inner.read(key, unless_etag=unless_etag)

    def get(self, key: Key) -> Any:
        return self.inner.get(key)

    def stat(self, key: Key) -> Version:
        return self.inner.stat(key)

    def exists(self, key: Key) -> bool:
        return self.inner.exists(key)

    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        return self.inner.write(key, value, expected)

    def delete(self, key: Key, expected: Expected = ANY) -> None:
        self.inner.delete(key, expected)

    def write_file(self, key: Key, file: IO[bytes], expected: Expected = ANY) -> str:
        return self.write(key, FileSource(file), expected)  # through this layer's own write: its policy holds

    def open_file(self, key: Key) -> tuple[IO[bytes], Version]:
        return self.inner.open_file(key)

    def list(self, *, with_timestamps: bool = False) -> Iterator[tuple[Key, float]]:
        return self.inner.list(with_timestamps=with_timestamps)

    def count(self) -> int:
        return self.inner.count()

    def known_count(self) -> int | None:
        return self.inner.known_count()

    def child(self, prefix: SafeStrTuple) -> Store:
        return self.rewrap(self.inner.child(prefix))

    def relative_path(self, prefix: SafeStrTuple) -> str:
        return self.inner.relative_path(prefix)

