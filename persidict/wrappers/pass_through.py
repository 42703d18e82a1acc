"""PassThroughDict: the base of the wrappers, a PersiDict that forwards every operation.

Like zarr's ``WrapperStore``: every read, write, delete, ETag, conditional
operation and ``transform_item`` goes to the inner dict unchanged, so a
wrapper overrides only what it changes and can never fall back to
check-then-act code of its own.  Subdicts go through one hook, ``_rewrap``:
the same wrapper around the inner dict's subdict (and around the subdicts
of any other dict the wrapper holds, such as a cache).  Only the inner dict's
public API is used, so any PersiDict (local, memory, S3, another wrapper)
fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Self

from ..core.front import NonEmptyPersiDictKey, PersiDict, PersiDictKey, validate_iter_request
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple
from ..protocol.flags import (
    IF_ETAG_CHANGED,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    ETagValue,
    OperationResult,
    RetrieveValueFlag,
    TransformingFunction,
    ValueType,
)

__all__ = ["PassThroughDict", "require_persidict"]

# The public iterator that answers each ``_generic_iter`` request.
_ITERATOR_FOR_LABELS: dict[frozenset[str], str] = {
    frozenset({"keys"}): "keys",
    frozenset({"values"}): "values",
    frozenset({"keys", "values"}): "items",
    frozenset({"keys", "timestamps"}): "keys_and_timestamps",
    frozenset({"values", "timestamps"}): "values_and_timestamps",
    frozenset({"keys", "values", "timestamps"}): "items_and_timestamps",
}


def require_persidict(name: str, value: Any) -> PersiDict[Any]:
    """Return ``value`` if it is a PersiDict, else raise ``TypeError`` naming the argument."""
    if not isinstance(value, PersiDict):
        raise TypeError(f"{name} must be a PersiDict, got {type(value).__name__}")
    return value


class PassThroughDict(PersiDict[ValueType]):
    """A PersiDict that forwards every operation to ``inner``.

    It copies ``base_class_for_values`` and ``serialization_format`` from the
    inner dict.  Subclasses override what they change and implement
    ``_rewrap`` (the same wrapper around another inner dict) for subdicts.
    """

    def __init__(self, inner: PersiDict[ValueType], *, append_only: bool) -> None:
        super().__init__(
            append_only=append_only,
            base_class_for_values=inner.base_class_for_values,
            serialization_format=inner.serialization_format,
        )
        self._inner = inner

    def _rewrap(self, inner: PersiDict[ValueType], prefix: SafeStrTuple) -> Self:
        """This wrapper, configured as it is, around ``inner``: the inner dict's subdict at ``prefix``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _rewrap")

    def get_subdict(self, prefix_key: PersiDictKey) -> Self:
        """The same wrapper over the inner dict's subdict."""
        prefix = SafeStrTuple(prefix_key)
        return self._rewrap(self._inner.get_subdict(prefix), prefix)

    # --- items ----------------------------------------------------------------------
    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        return self._inner[key]

    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        self._inner[key] = value

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        del self._inner[key]

    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        self._inner._remove_item(key)

    def __contains__(self, key: object) -> bool:
        return key in self._inner

    def discard(self, key: NonEmptyPersiDictKey) -> bool:
        return self._inner.discard(key)

    def setdefault(self, key: NonEmptyPersiDictKey, default: Any = None) -> Any:
        return self._inner.setdefault(key, default)

    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        """POSIX time of the key's last write, as the inner dict reports it."""
        return self._inner.timestamp(key)

    def etag(self, key: NonEmptyPersiDictKey) -> ETagValue:
        """The inner dict's ETag for ``key``."""
        return self._inner.etag(key)

    # --- the whole store -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._inner)

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        labels = validate_iter_request(result_type)
        if labels == {"timestamps"}:
            return (timestamp for _, timestamp in self._inner.keys_and_timestamps())
        iterator: Iterator[Any] = getattr(self._inner, _ITERATOR_FOR_LABELS[labels])()
        return iterator

    def clear(self) -> None:
        self._inner.clear()

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        self._inner.update(other, **kwargs)

    def get_many(self, keys: Iterable[NonEmptyPersiDictKey], default: Any = None) -> list[Any]:
        return self._inner.get_many(keys, default)

    def random_key(self) -> NonEmptySafeStrTuple | None:
        return self._inner.random_key()

    # --- conditional operations: exactly as atomic as the inner dict's -----------------
    def get_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        return self._inner.get_item_if(
            key, condition=condition, expected_etag=expected_etag, retrieve_value=retrieve_value
        )

    def set_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        return self._inner.set_item_if(
            key, value=value, condition=condition, expected_etag=expected_etag, retrieve_value=retrieve_value
        )

    def setdefault_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        default_value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        return self._inner.setdefault_if(
            key,
            default_value=default_value,
            condition=condition,
            expected_etag=expected_etag,
            retrieve_value=retrieve_value,
        )

    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        return self._inner.discard_if(key, condition=condition, expected_etag=expected_etag)

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = 6,
    ) -> OperationResult[ValueType]:
        return self._inner.transform_item(key, transformer=transformer, n_retries=n_retries)
