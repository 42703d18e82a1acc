"""Flags and the types of the conditional operations: jokers, conditions, sentinels, results.

Every flag class has exactly one instance: calling the class returns it, and
pickling or copying it gives the same object back, so flags are compared with
``is``.  The five base classes are independent of each other; in particular the
sentinels ``ITEM_NOT_AVAILABLE`` and ``VALUE_NOT_RETRIEVED`` are not jokers.
Each flag also answers ``get_params()`` with ``{}``, so parameter-based
serializers (``type(x)(**x.get_params())``) rebuild the same singleton.

The module's name is that of persidict 0.x: pickles and JSON written by either
package record it, so flags and results stored in values load in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NewType, Protocol, Self, TypeAlias, TypeVar, runtime_checkable

__all__ = [
    "ALWAYS_RETRIEVE",
    "ANY_ETAG",
    "CONTINUE_NORMAL_EXECUTION",
    "DELETE_CURRENT",
    "ETAG_HAS_CHANGED",
    "ETAG_IS_THE_SAME",
    "EXECUTION_IS_COMPLETE",
    "IF_ETAG_CHANGED",
    "ITEM_NOT_AVAILABLE",
    "KEEP_CURRENT",
    "NEVER_RETRIEVE",
    "VALUE_NOT_RETRIEVED",
    "AlwaysRetrieveFlag",
    "AnyETagFlag",
    "ConditionalOperationResult",
    "ContinueNormalExecutionFlag",
    "DeleteCurrentFlag",
    "ETagConditionFlag",
    "ETagHasChangedFlag",
    "ETagIfExists",
    "ETagIsTheSameFlag",
    "ETagValue",
    "ExecutionIsCompleteFlag",
    "IfETagChangedRetrieveFlag",
    "ItemNotAvailableFlag",
    "Joker",
    "KeepCurrentFlag",
    "NeverRetrieveFlag",
    "OperationResult",
    "RetrieveValueFlag",
    "StatusFlag",
    "TransformingFunction",
    "ValueNotRetrievedFlag",
    "ValueType",
]


class _Singleton:
    """Base of every flag: one instance per concrete class, kept through pickle and copy."""

    _instances: ClassVar[dict[type, Any]] = {}
    __slots__ = ()

    def __new__(cls) -> Self:
        instance = _Singleton._instances.get(cls)
        if instance is None:
            instance = super().__new__(cls)
            _Singleton._instances[cls] = instance
        return instance

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return type(self), ()

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    def __repr__(self) -> str:
        return _NAMES.get(type(self), type(self).__name__)

    def get_params(self) -> dict[str, Any]:
        """No parameters: ``type(flag)()`` is the flag itself."""
        return {}


class Joker(_Singleton):
    """A value that, when written, commands an action instead of being stored."""

    __slots__ = ()


class KeepCurrentFlag(Joker):
    """Writing it leaves the key exactly as it is."""

    __slots__ = ()


class DeleteCurrentFlag(Joker):
    """Writing it deletes the key if it is present."""

    __slots__ = ()


class ETagConditionFlag(_Singleton):
    """Base of the conditions a conditional operation checks against the actual ETag."""

    __slots__ = ()


class AnyETagFlag(ETagConditionFlag):
    """Always satisfied."""

    __slots__ = ()


class ETagIsTheSameFlag(ETagConditionFlag):
    """Satisfied when the expected ETag equals the actual one."""

    __slots__ = ()


class ETagHasChangedFlag(ETagConditionFlag):
    """Satisfied when the expected ETag differs from the actual one."""

    __slots__ = ()


class RetrieveValueFlag(_Singleton):
    """Base of the modes deciding whether a conditional operation fetches the stored value."""

    __slots__ = ()


class AlwaysRetrieveFlag(RetrieveValueFlag):
    """Always fetch the stored value."""

    __slots__ = ()


class NeverRetrieveFlag(RetrieveValueFlag):
    """Never fetch it; report ``VALUE_NOT_RETRIEVED`` instead."""

    __slots__ = ()


class IfETagChangedRetrieveFlag(RetrieveValueFlag):
    """Fetch it only when the caller's expected ETag is stale."""

    __slots__ = ()


class StatusFlag(_Singleton):
    """Base of the flags a step of a write reports to its caller."""

    __slots__ = ()


class ExecutionIsCompleteFlag(StatusFlag):
    """The step did all there was to do (a joker was applied): the caller stops."""

    __slots__ = ()


class ContinueNormalExecutionFlag(StatusFlag):
    """The step found nothing special: the caller goes on with the write."""

    __slots__ = ()


class ItemNotAvailableFlag(_Singleton):
    """Sentinel: the key is absent (stands in for its ETag and value)."""

    __slots__ = ()


class ValueNotRetrievedFlag(_Singleton):
    """Sentinel: the key is present but its value was not fetched."""

    __slots__ = ()


KEEP_CURRENT = KeepCurrentFlag()
"""Joker: writing it leaves the key exactly as it is (value, timestamp and ETag)."""
DELETE_CURRENT = DeleteCurrentFlag()
"""Joker: writing it deletes the key if it is present (and does nothing if it is absent)."""
ANY_ETAG = AnyETagFlag()
"""Condition: always satisfied."""
ETAG_IS_THE_SAME = ETagIsTheSameFlag()
"""Condition: the expected ETag equals the actual one (with ``ITEM_NOT_AVAILABLE``: the key is absent)."""
ETAG_HAS_CHANGED = ETagHasChangedFlag()
"""Condition: the expected ETag differs from the actual one."""
ALWAYS_RETRIEVE = AlwaysRetrieveFlag()
"""Retrieval mode: report the stored value whenever the key is present."""
NEVER_RETRIEVE = NeverRetrieveFlag()
"""Retrieval mode: never read the stored value; report ``VALUE_NOT_RETRIEVED`` instead."""
IF_ETAG_CHANGED = IfETagChangedRetrieveFlag()
"""Retrieval mode (the default): read the stored value only if the expected ETag is not the actual one."""
ITEM_NOT_AVAILABLE = ItemNotAvailableFlag()
"""Sentinel: the key is absent. It stands in for the ETag and the value of an absent key."""
VALUE_NOT_RETRIEVED = ValueNotRetrievedFlag()
"""Sentinel: the key is present, but its value was not read."""
EXECUTION_IS_COMPLETE = ExecutionIsCompleteFlag()
CONTINUE_NORMAL_EXECUTION = ContinueNormalExecutionFlag()

_NAMES: dict[type, str] = {
    KeepCurrentFlag: "KEEP_CURRENT",
    DeleteCurrentFlag: "DELETE_CURRENT",
    AnyETagFlag: "ANY_ETAG",
    ETagIsTheSameFlag: "ETAG_IS_THE_SAME",
    ETagHasChangedFlag: "ETAG_HAS_CHANGED",
    AlwaysRetrieveFlag: "ALWAYS_RETRIEVE",
    NeverRetrieveFlag: "NEVER_RETRIEVE",
    IfETagChangedRetrieveFlag: "IF_ETAG_CHANGED",
    ItemNotAvailableFlag: "ITEM_NOT_AVAILABLE",
    ValueNotRetrievedFlag: "VALUE_NOT_RETRIEVED",
    ExecutionIsCompleteFlag: "EXECUTION_IS_COMPLETE",
    ContinueNormalExecutionFlag: "CONTINUE_NORMAL_EXECUTION",
}


ValueType = TypeVar("ValueType")
"""The type of a store's values: a ``FileDirDict[int]`` holds ints."""

ETagValue = NewType("ETagValue", str)
"""An opaque version string; it changes whenever the stored item changes."""

ETagIfExists: TypeAlias = ETagValue | ItemNotAvailableFlag
"""An ETag, or ``ITEM_NOT_AVAILABLE`` for an absent key."""


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


# Flags and results are stored inside values: pickled under persidict 0.x's module path.
for _name in __all__:
    if isinstance(globals()[_name], type):
        globals()[_name].__module__ = "persidict.jokers_and_status_flags"
