"""A read-through cache as a layer: a main store (the truth) in front of which local copies are kept.

``CachingStore(main, values, etags)`` answers reads from ``values`` where it
may, and passes every write and delete to ``main`` first, so conditional
operations are exactly as atomic as main's and the cache never changes what
main holds:

- **validated** (``etags`` given, a mutable main): ``etags`` holds main's ETag
  of each cached value.  A read asks main one conditional question ("has it
  changed since this ETag?"), which transfers no value while it has not: S3
  answers ``304 Not Modified``, GCS and Azure likewise.  A changed value comes
  back and replaces the copy; a key main no longer has is forgotten.
- **trusted** (no ``etags``, an append-only main): a value never changes once
  written, so a cached copy is served without asking main at all.

The copies are updated after main, value before ETag, so an interrupted update
leaves an ETag that no longer matches main (the next read fetches again),
never a stale value under a current ETag.  Listings, ``len`` and versions
always come from main.  Where the copies live (a local folder, bounded by
``max_bytes`` with least-recently-used eviction, see ``backends/budget.py``;
memory; any store) is the caller's choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple
from ..protocol.flags import VALUE_NOT_RETRIEVED
from ..protocol.store import Store, WrapperStore
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version

__all__ = ["CachingStore"]

_BINDING = "\n"
"""Between main's ETag and the cached copy's own version in an ETag cache entry (no ETag holds one)."""

Key = NonEmptySafeStrTuple


class CachingStore(WrapperStore):
    """``main`` (``self.inner``) behind copies in ``values`` (and main's ETags in ``etags``)."""

    def __init__(self, main: Store, values: Store, etags: Store | None) -> None:
        super().__init__(main)
        self.values = values
        self.etags = etags

    @property
    def trusted(self) -> bool:
        """Whether copies are served without asking main (an append-only main)."""
        return self.etags is None

    def child(self, prefix: SafeStrTuple) -> CachingStore:
        etags = None if self.etags is None else self.etags.child(prefix)
        return CachingStore(self.inner.child(prefix), self.values.child(prefix), etags)

    # --- the copies ----------------------------------------------------------------------
    # A validated copy is a pair: the value in ``values``, and in ``etags`` main's ETag of it
    # *bound to the version of that value file* ("<main etag>\n<copy etag>").  Two writers
    # refreshing one key's copies can interleave (one's value, the other's ETag); the binding
    # makes such a pair inconsistent, so it is never served: the next read fetches in full.
    def _validated_copy(self, key: Key) -> tuple[str, Any] | None:
        """Main's ETag of the cached copy and the copy itself, if both are there and belong together."""
        assert self.etags is not None
        try:
            main_etag, _, copy_etag = str(self.etags.get(key)).partition(_BINDING)
            copy, copy_version = self.values.read(key)
        except KeyError:
            return None
        return (main_etag, copy) if copy_version.etag == copy_etag else None

    def _remember(self, key: Key, value: Any, etag: str) -> None:
        """Keep a copy of main's ``value`` at ``etag`` (a trusted cache keeps the first copy it gets).

        A value the cache's format cannot write (``TypeError``: one that persidict 0.x wrote, say,
        and our stricter json codec refuses) is served uncached: copies are an optimisation.
        """
        try:
            if self.etags is None:
                with contextlib.suppress(PreconditionFailed):  # cached already: main never changes it
                    self.values.write(key, value, ABSENT)
                return
            copy_etag = self.values.write(key, value)  # value first: see the module docstring
            self.etags.write(key, f"{etag}{_BINDING}{copy_etag}")
        except TypeError:
            self._forget(key)

    def _forget(self, key: Key) -> None:
        """Drop the copy of a key main no longer has (a trusted cache never needs to: main keeps all)."""
        if self.etags is None:
            return
        for copies in (self.etags, self.values):
            with contextlib.suppress(KeyError):
                copies.delete(key)

    # --- reads -------------------------------------------------------------------------------
    def get(self, key: Key) -> Any:
        if self.etags is not None:
            return self.read(key)[0]
        try:
            return self.values.get(key)
        except KeyError:
            pass
        value = self.inner.get(key)
        self._remember(key, value, "")  # a trusted copy needs no ETag
        return value

    def read(self, key: Key, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        """Main's value and version.  With no ``unless_etag`` of the caller's, a validated cache asks
        main whether its copy is still current, and an unchanged value comes from the copy."""
        cached = self._validated_copy(key) if unless_etag is None and self.etags is not None else None
        try:
            value, version = self.inner.read(key, unless_etag=unless_etag if cached is None else cached[0])
        except KeyError:
            self._forget(key)
            raise
        if value is VALUE_NOT_RETRIEVED:
            return (value if cached is None else cached[1]), version
        self._remember(key, value, version.etag)
        return value, version

    def stat(self, key: Key) -> Version:
        try:
            return self.inner.stat(key)
        except KeyError:
            self._forget(key)  # main says it is gone: so are its copies
            raise

    def exists(self, key: Key) -> bool:
        if self.etags is None and self.values.exists(key):
            return True  # a trusted copy: main has it too, and always will
        return self.inner.exists(key)

    def read_many(self, keys: Iterable[Key]) -> Iterator[tuple[Any, Version] | None]:
        """Main's bulk read (concurrent on object stores), keeping copies of what it returns."""
        keys = list(keys)
        for key, entry in zip(keys, self.inner.read_many(keys), strict=True):
            if entry is not None:
                self._remember(key, entry[0], entry[1].etag)
            yield entry

    # --- writes: main first, then the copies ------------------------------------------------
    # Bulk writes and deletes go to main in bulk (concurrently on object stores) and leave the
    # copies as they are: a copy whose key main has changed or deleted is found out by its next read.
    def write_many(self, items: Iterable[tuple[Key, Any]], expected: Expected = ANY) -> dict[Key, Exception]:
        return self.inner.write_many(items, expected)

    def delete_many(self, keys: Iterable[Key]) -> dict[Key, Exception]:
        return self.inner.delete_many(keys)

    def clear(self) -> dict[Key, Exception]:
        return self.inner.clear()

    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        etag = self.inner.write(key, value, expected)
        self._remember(key, value, etag)
        return etag

    def delete(self, key: Key, expected: Expected = ANY) -> None:
        try:
            self.inner.delete(key, expected)
        except KeyError:
            self._forget(key)
            raise
        self._forget(key)
