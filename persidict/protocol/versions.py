"""The vocabulary of versioned storage, shared by the conditional engine and the backends.

A stored item has a ``Version`` (an ETag and a write time).  A write or
delete may carry a precondition, ``Expected``: ``ANY`` (none), ``ABSENT``
(insert-if-absent) or the ETag the item must have now.  A precondition that
does not hold raises ``PreconditionFailed``, an internal signal that the
engine (``PersiDict``'s conditional operations) always turns into a result:
it never reaches a caller.
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

__all__ = ["ABSENT", "ANY", "Expected", "PreconditionFailed", "Version"]


class Version(NamedTuple):
    """The identity of one stored version of an item: its ETag and write time."""

    etag: str
    timestamp: float


class _Marker:
    """A named marker for write and delete preconditions."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


ANY = _Marker("ANY")
"""Precondition: none; the write or delete happens whatever is stored."""

ABSENT = _Marker("ABSENT")
"""Precondition: nothing is stored (insert-if-absent)."""

Expected: TypeAlias = _Marker | str
"""``ANY``, ``ABSENT`` or the ETag the item must currently have."""


class PreconditionFailed(Exception):
    """A conditional write or delete found another version than expected (internal)."""
