"""PassThroughDict: the base of the wrappers, a PersiDict that forwards to an inner one.

Like zarr's ``WrapperStore``: reads, listing and timestamps go to the inner
dict unchanged, so a wrapper overrides only what it changes.  Only the inner
dict's public API is used, so any PersiDict (local, memory, S3, ...) fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..jokers_and_status_flags import ValueType
from ..persi_dict import NonEmptyPersiDictKey, PersiDict, validate_iter_request

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
    """A PersiDict whose reads, listing and timestamps come from ``inner``.

    It copies ``base_class_for_values`` and ``serialization_format`` from the
    inner dict.  Subclasses supply the write side (``__setitem__``,
    ``__delitem__``, ``_remove_item``) and whatever else they change.
    """

    def __init__(self, inner: PersiDict[ValueType], *, append_only: bool) -> None:
        super().__init__(
            append_only=append_only,
            base_class_for_values=inner.base_class_for_values,
            serialization_format=inner.serialization_format,
        )
        self._inner = inner

    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        return self._inner[key]

    def __contains__(self, key: object) -> bool:
        return key in self._inner

    def __len__(self) -> int:
        return len(self._inner)

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        labels = validate_iter_request(result_type)
        if labels == {"timestamps"}:
            return (timestamp for _, timestamp in self._inner.keys_and_timestamps())
        iterator: Iterator[Any] = getattr(self._inner, _ITERATOR_FOR_LABELS[labels])()
        return iterator

    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        """POSIX time of the key's last write, as the inner dict reports it."""
        return self._inner.timestamp(key)
