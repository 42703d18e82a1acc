"""The append-only and write-once policies, as layers below every method of the front.

Because the policy sits in the store, no public method of a dict can go
around it: ``__setitem__``, ``update``, ``setdefault``, ``|=``, the jokers,
``pop``, ``clear`` all end in ``write`` or ``delete`` here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..keys.tuples import NonEmptySafeStrTuple
from ..protocol.exceptions import MutationPolicyError
from ..protocol.store import APPEND_ONLY, WRITE_ONCE, FileSource, Store, WrapperStore
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version

__all__ = ["AppendOnlyStore", "ConsistencyChecks", "WriteOnceStore"]

Key = NonEmptySafeStrTuple


class AppendOnlyStore(WrapperStore):
    """Items are inserted and never replaced or deleted.

    A plain write is an insert-if-absent, refused with ``MutationPolicyError``
    when the key is present; a write under an ETag and every delete are
    refused outright.  (The engine turns a refused *conditional* operation
    into an unsatisfied result where the contract says so, before it gets here.)
    """

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.policy = self.policy_name()

    def policy_name(self) -> str:
        """The policy this layer enforces, as its errors name it."""
        return APPEND_ONLY

    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        if isinstance(expected, str):
            raise MutationPolicyError(APPEND_ONLY)
        try:
            return self.inner.write(key, value, ABSENT)
        except PreconditionFailed:
            if expected is ABSENT:
                raise
            raise MutationPolicyError(APPEND_ONLY) from None

    def read_many(self, keys: Iterable[Key]) -> Iterator[tuple[Any, Version] | None]:
        return self.inner.read_many(keys)  # reads are not this layer's business: the inner store's, in bulk

    def write_many(self, items: Iterable[tuple[Key, Any]], expected: Expected = ANY) -> dict[Key, Exception]:
        if isinstance(expected, str):
            raise MutationPolicyError(APPEND_ONLY)
        return self.inner.write_many(items, ABSENT)

    def delete(self, key: Key, expected: Expected = ANY) -> None:
        raise MutationPolicyError(self.policy_name())

    def delete_many(self, keys: Iterable[Key]) -> dict[Key, Exception]:
        raise MutationPolicyError(APPEND_ONLY)

    def clear(self) -> dict[Key, Exception]:
        raise MutationPolicyError(APPEND_ONLY)


class ConsistencyChecks:
    """How often a write-once store compares a repeated write with what is stored, and the tallies.

    ``probability`` 1 compares every repeated write, 0 none.  Values are equal
    when their serialized bytes hash the same, or, if they do not (a set's
    bytes follow its iteration order, which differs between processes), when
    they are equal values of the same types.
    """

    def __init__(self, probability: float, fingerprint: Callable[[Any], bytes]) -> None:
        self.probability = probability
        self._fingerprint = fingerprint
        self.attempted = 0
        self.passed = 0

    def fresh(self) -> ConsistencyChecks:
        """The same checks with tallies at zero (a subdict's)."""
        return ConsistencyChecks(self.probability, self._fingerprint)

    def wanted(self) -> bool:
        """Whether to compare this repeated write (``random.random``, so runs repeat after seeding)."""
        return self.probability >= 1 or (self.probability > 0 and random.random() < self.probability)

    def compare(self, proposed: Any, stored: Any) -> None:
        """Count a comparison; ``MutationPolicyError("write-once")`` if the values differ."""
        self.attempted += 1
        if self._digest(proposed) != self._digest(stored) and not _equal(proposed, stored):
            raise MutationPolicyError(WRITE_ONCE)
        self.passed += 1

    def _digest(self, value: Any) -> bytes:
        return hashlib.sha256(self._fingerprint(value)).digest()


class WriteOnceStore(AppendOnlyStore):
    """The first write of a key wins; a repeated plain write is ignored, and compared with what is
    stored as often as ``checks`` says (a mismatch is ``MutationPolicyError("write-once")``)."""

    def __init__(self, inner: Store, checks: ConsistencyChecks) -> None:
        self.checks = checks
        super().__init__(inner)

    def policy_name(self) -> str:
        return WRITE_ONCE

    def rewrap(self, inner: Store) -> WriteOnceStore:
        return WriteOnceStore(inner, self.checks.fresh())

    def write(self, key: Key, value: Any, expected: Expected = ANY) -> str:
        if expected is not ANY:
            return super().write(key, value, expected)
        # Look before writing: a repeated write (the common case) costs one read, no upload.
        # A file (put_file) is no value to compare with the stored one: a repeat is ignored unchecked.
        checked = type(value) is not FileSource
        compare = checked and self.checks.probability >= 1
        try:
            stored, version = self.inner.read(key) if compare else (None, self.inner.stat(key))
        except KeyError:
            try:
                return self.inner.write(key, value, ABSENT)
            except PreconditionFailed:
                return self.inner.stat(key).etag  # written by someone else since we looked: theirs stands
        if compare:
            self.checks.compare(value, stored)
        elif checked and self.checks.wanted():
            self.checks.compare(value, self.inner.get(key))
        return version.etag

    def write_many(self, items: Iterable[tuple[Key, Any]], expected: Expected = ANY) -> dict[Key, Exception]:
        if expected is not ANY:
            return super().write_many(items, expected)
        failures: dict[Key, Exception] = {}
        for key, value in items:
            try:
                self.write(key, value)
            except MutationPolicyError as exc:
                failures[key] = exc
        return failures


def _equal(a: Any, b: Any) -> bool:
    """Equal values of the same types, down through lists, tuples and dicts.

    ``2 == 2.0``, but a function that returns one and then the other is not
    deterministic; an ``==`` that raises or is ambiguous (numpy arrays) counts
    as unequal.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:
        return False
