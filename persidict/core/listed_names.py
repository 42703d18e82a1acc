"""The keys of the file names local listings met, folder by folder: listing a folder again is a lookup.

A name's key never changes (it depends on the name alone), so a remembered key is never
stale: a deleted key's name is simply not listed again (and is forgotten, so a process that
churns keys keeps no trace of them).  Only folders whose names are all keys' are remembered,
whole, up to a bound: past it (a store of a million files) names are parsed each time, never
evicted and parsed again.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..keys.tuples import NonEmptySafeStrTuple

__all__ = ["ListedNames"]

Key = NonEmptySafeStrTuple


class ListedNames:
    """File name -> key, per folder below a store's root, for at most ``limit`` names."""

    def __init__(self, limit: int) -> None:
        self._folders: dict[str, dict[str, Key]] = {}
        self._size = 0
        self._limit = limit

    def __len__(self) -> int:
        return self._size

    def keys(self, head: str, names: Sequence[str]) -> list[Key] | None:
        """The keys of ``names`` in folder ``head``, if every one of them is remembered (else None)."""
        known = self._folders.get(head)
        if known is None:
            return None
        try:
            return list(map(known.__getitem__, names))  # a lookup per name, in C
        except KeyError:
            return None

    def has_room(self, count: int) -> bool:
        """Whether ``count`` more names would be remembered."""
        return self._size + count <= self._limit

    def remember(self, head: str, names: Sequence[str], keys: Sequence[Key]) -> None:
        """Remember that ``names`` in folder ``head`` are the files of ``keys`` (one each, in order)."""
        if not names or not self.has_room(len(names)):
            return
        known = self._folders.setdefault(head, {})
        before = len(known)
        known.update(zip(names, keys, strict=True))
        self._size += len(known) - before

    def forget(self, head: str, name: str) -> None:
        """Drop the name of a deleted key."""
        known = self._folders.get(head)
        if known is not None and known.pop(name, None) is not None:
            self._size -= 1
            if not known:
                del self._folders[head]
