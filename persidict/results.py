"""Types shared by the conditional operations: ETags, results, transformers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, NewType, Protocol, TypeAlias, TypeVar, runtime_checkable

from .jokers import DeleteCurrentFlag, ItemNotAvailableFlag, KeepCurrentFlag, ValueNotRetrievedFlag

__all__ = [
    "ConditionalOperationResult",
    "ETagIfExists",
    "ETagValue",
    "OperationResult",
    "TransformingFunction",
    "ValueType",
]

ValueType = TypeVar("ValueType")

ETagValue = NewType("ETagValue", str)
"""An opaque version string; it changes whenever the stored item changes."""

ETagIfExists: TypeAlias = ETagValue | ItemNotAvailableFlag


@runtime_checkable
class TransformingFunction(Protocol[ValueType]):
    """A read-modify-write step for ``transform_item``: current value in, new value out.

    It receives ``ITEM_NOT_AVAILABLE`` for an absent key and may return
    ``KEEP_CURRENT`` or ``DELETE_CURRENT``.  It can run several times.
    """

    def __call__(
        self, current: ValueType | ItemNotAvailableFlag, /
    ) -> ValueType | KeepCurrentFlag | DeleteCurrentFlag: ...


@dataclass(frozen=True, slots=True)
class ConditionalOperationResult(Generic[ValueType]):
    """What a conditional operation saw and did.

    ``actual_etag`` is the ETag before the call, ``resulting_etag`` the one
    after it (``ITEM_NOT_AVAILABLE`` when the key is absent).
    """

    condition_was_satisfied: bool
    actual_etag: ETagIfExists
    resulting_etag: ETagIfExists
    new_value: ValueType | ItemNotAvailableFlag | ValueNotRetrievedFlag

    @property
    def value_was_mutated(self) -> bool:
        """True when the operation inserted, overwrote or deleted the item."""
        return self.resulting_etag != self.actual_etag


@dataclass(frozen=True, slots=True)
class OperationResult(Generic[ValueType]):
    """The outcome of ``transform_item``: the ETag and value the key ended with."""

    resulting_etag: ETagIfExists
    new_value: ValueType | ItemNotAvailableFlag
