"""Process-wide singleton flags: jokers, ETag conditions, retrieval modes, sentinels.

Every flag class has exactly one instance: calling the class returns it, and
pickling or copying it gives the same object back, so flags are compared with
``is``.  The five base classes are independent of each other; in particular the
sentinels ``ITEM_NOT_AVAILABLE`` and ``VALUE_NOT_RETRIEVED`` are not jokers.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

__all__ = [
    "ALWAYS_RETRIEVE",
    "ANY_ETAG",
    "DELETE_CURRENT",
    "ETAG_HAS_CHANGED",
    "ETAG_IS_THE_SAME",
    "IF_ETAG_CHANGED",
    "ITEM_NOT_AVAILABLE",
    "KEEP_CURRENT",
    "NEVER_RETRIEVE",
    "VALUE_NOT_RETRIEVED",
    "AlwaysRetrieveFlag",
    "AnyETagFlag",
    "DeleteCurrentFlag",
    "ETagConditionFlag",
    "ETagHasChangedFlag",
    "ETagIsTheSameFlag",
    "IfETagChangedRetrieveFlag",
    "ItemNotAvailableFlag",
    "Joker",
    "KeepCurrentFlag",
    "NeverRetrieveFlag",
    "RetrieveValueFlag",
    "ValueNotRetrievedFlag",
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


class ItemNotAvailableFlag(_Singleton):
    """Sentinel: the key is absent (stands in for its ETag and value)."""

    __slots__ = ()


class ValueNotRetrievedFlag(_Singleton):
    """Sentinel: the key is present but its value was not fetched."""

    __slots__ = ()


KEEP_CURRENT = KeepCurrentFlag()
DELETE_CURRENT = DeleteCurrentFlag()
ANY_ETAG = AnyETagFlag()
ETAG_IS_THE_SAME = ETagIsTheSameFlag()
ETAG_HAS_CHANGED = ETagHasChangedFlag()
ALWAYS_RETRIEVE = AlwaysRetrieveFlag()
NEVER_RETRIEVE = NeverRetrieveFlag()
IF_ETAG_CHANGED = IfETagChangedRetrieveFlag()
ITEM_NOT_AVAILABLE = ItemNotAvailableFlag()
VALUE_NOT_RETRIEVED = ValueNotRetrievedFlag()

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
}
