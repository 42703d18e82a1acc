"""The ``Store`` of a PersiDict subclass written for persidict 0.x.

Such a class (an in-memory test double, a database-backed store) implements
0.x's seven abstract methods: ``__getitem__``, ``__setitem__``, ``__delitem__``,
``__contains__``, ``__len__``, ``_generic_iter`` and ``timestamp`` (and
perhaps ``etag``).  ``SubclassStore`` builds the versioned protocol on them by
checking and then acting, so the front's conditional operations and the cache
layers work over it as over any store, only not atomically: two writers can
interleave between the check and the act.  A version is the subclass's
``etag()`` (0.x's default: the formatted timestamp).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple
from ..protocol.exceptions import ConcurrencyConflictError
from ..protocol.flags import VALUE_NOT_RETRIEVED
from ..protocol.store import APPEND_ONLY, Store
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version

if TYPE_CHECKING:
    from .front import PersiDict

__all__ = ["SubclassStore"]

Key = NonEmptySafeStrTuple

READ_ATTEMPTS = 3
"""Reads of a value whose ETag keeps moving while it is read, before ``ConcurrencyConflictError``."""

_UNKNOWN_TIME = 0.0
"""A version's write time, which the protocol's reads do not need and 0.x classes report separately."""


class SubclassStore(Store):
    """Check-then-act versions of a 0.x subclass's own methods (not atomic)."""

    def __init__(self, owner: PersiDict[Any]) -> None:
        self._owner = owner

    @property
    def policy(self) -> str | None:  # type: ignore[override]
        return APPEND_ONLY if self._owner.append_only else None

    def _etag(self, key: Key) -> str:
        return str(self._owner.etag(key))

    def read(self, key: Key, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        """The value between two equal ETags (read again while they differ), or VNR if ``unless_etag`` is current."""
        if unless_etag is not None:
            actual = self._etag(key)
            if actual == unless_etag:
                return VALUE_NOT_RETRIEVED, Version(actual, _UNKNOWN_TIME)
        for _ in range(READ_ATTEMPTS):
            before = self._etag(key)
            value = self._owner[key]
            after = self._etag(key)
            if before == after:
                return value, Version(after, _UNKNOWN_TIME)
        raise ConcurrencyConflictError(key, READ_ATTEMPTS)

    def get(self, key: Key) -> Any:
        return self._owner[key]

    def stat(self, key: Key) -> Version:
        return Version(self._etag(key), self._owner.timestamp(key))

    def exists(self, key: Key) -> bool:
        return key in self._owner

    def _check(self, key: Key, expected: Expected) -> None:
        """``PreconditionFailed`` unless the key's version is ``expected`` (a separate look: not atomic)."""
        if expected is ANY:
            return
        try:
            actual: str | None = self._etag(key)
        except KeyError:
            actual = None
        if (actual is None) != (expected is ABSENT) or (isinstance(expected, str) and actual != expected):
            raise PreconditionFailed(key)

    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        self._check(key, expected)
        self._owner[key] = value
        return self._etag(key)

    def delete(self, key: Key, expected: Expected = ANY) -> None:
        if expected is not ANY:
            actual = self._etag(key)  # KeyError if absent
            if expected is ABSENT or actual != expected:
                raise PreconditionFailed(key)
        del self._owner[key]

    def list(self, *, with_timestamps: bool = False) -> Iterator[tuple[Key, float]]:
        if with_timestamps:
            return iter(self._owner.keys_and_timestamps())
        return ((key, _UNKNOWN_TIME) for key in self._owner.keys())  # noqa: SIM118  # the 0.x method

    def count(self) -> int:
        return len(self._owner)

    def child(self, prefix: SafeStrTuple) -> Store:
        return self._owner.get_subdict(prefix)._items
