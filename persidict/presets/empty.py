"""EmptyDict: the null store, like ``/dev/null``: it accepts writes and keeps nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from ..core.front import NonEmptyPersiDictKey, PersiDict, PersiDictKey, validate_iter_request
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from ..protocol.engine import absent_result, condition_holds, require_retrieve_mode
from ..protocol.exceptions import MissingKeyError
from ..protocol.flags import (
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    Joker,
    OperationResult,
    RetrieveValueFlag,
    TransformingFunction,
    ValueType,
)
from ..protocol.store import Store
from ..protocol.versions import ANY, Expected, PreconditionFailed, Version

__all__ = ["EmptyDict", "EmptyStore"]


class EmptyStore(Store):
    """The null store: every write is accepted and forgotten, reads miss, listings are empty."""

    atomic_conditions = True
    backend_name = "empty"

    def read(self, key: NonEmptySafeStrTuple, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        raise MissingKeyError(key)

    def stat(self, key: NonEmptySafeStrTuple) -> Version:
        raise MissingKeyError(key)

    def write(self, key: NonEmptySafeStrTuple, value: Any, expected: Expected = ANY) -> str:
        if isinstance(expected, str):
            raise PreconditionFailed(key)  # no version of anything is ever stored
        return secrets.token_hex(8)  # the version it would have had, already gone

    def delete(self, key: NonEmptySafeStrTuple, expected: Expected = ANY) -> None:
        raise MissingKeyError(key)

    def list(self, *, with_timestamps: bool = False) -> Iterator[tuple[NonEmptySafeStrTuple, float]]:
        return iter(())

    def child(self, prefix: SafeStrTuple) -> Store:
        return self


_EMPTY = EmptyStore()


class EmptyDict(PersiDict[ValueType]):
    """Always empty: reads miss, writes are validated and then discarded."""

    @property
    def _items(self) -> Store:
        return _EMPTY

    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        raise MissingKeyError(key)

    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        self._process_setitem_args(key, value)

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        raise MissingKeyError(key)

    def __contains__(self, key: object) -> bool:
        return False

    def get(self, key: Any, /, default: Any = None) -> Any:
        return default

    def __len__(self) -> int:
        return 0

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        validate_iter_request(result_type)
        return iter(())

    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        raise MissingKeyError(key)

    def discard(self, key: NonEmptyPersiDictKey) -> bool:
        return False

    def clear(self) -> None:
        return None

    def setdefault(self, key: NonEmptyPersiDictKey, default: Any = None) -> Any:
        return default

    def random_key(self) -> NonEmptySafeStrTuple | None:
        return None

    def get_subdict(self, prefix_key: PersiDictKey) -> EmptyDict[ValueType]:
        return EmptyDict(**self.get_params())

    def get_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        require_retrieve_mode(retrieve_value)
        to_nonempty_key(key)
        return absent_result(condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE))

    def set_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        satisfied = condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE)
        if satisfied:
            self._process_setitem_args(key, value)
        elif not isinstance(value, Joker):
            self._validate_value(value)
        return absent_result(satisfied)

    def setdefault_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        default_value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        if isinstance(default_value, Joker):
            raise TypeError("setdefault_if() does not accept a joker as default_value")
        require_retrieve_mode(retrieve_value)
        to_nonempty_key(key)
        return absent_result(condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE))

    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        to_nonempty_key(key)
        return absent_result(condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE))

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = 6,
    ) -> OperationResult[ValueType]:
        to_nonempty_key(key)
        return OperationResult(ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
