"""Read-through caches over a main PersiDict: AppendOnlyDictCached and MutableDictCached.

The main dict is the source of truth (for example a remote S3 store); the
caches are any PersiDicts (typically local folders).  Only the main dict's
public API is used, so any PersiDict can be the main one.  Conditional
operations delegate to main, so they are exactly as atomic as main's.
"""

from __future__ import annotations

from typing import Any, cast

from ..core.front import APPEND_ONLY, NonEmptyPersiDictKey, PersiDict
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from ..protocol.exceptions import MutationPolicyError
from ..protocol.flags import (
    ANY_ETAG,
    ETAG_HAS_CHANGED,
    EXECUTION_IS_COMPLETE,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    ETagValue,
    Joker,
    OperationResult,
    RetrieveValueFlag,
    TransformingFunction,
    ValueType,
)
from .pass_through import PassThroughDict, require_persidict

__all__ = ["AppendOnlyDictCached", "MutableDictCached"]

_NOT_GIVEN: Any = object()  # "no actual_etag known" (transform_item results carry none)


def _is_real_value(value: Any) -> bool:
    """True for a stored value, False for the INA/VNR sentinels and jokers."""
    return value is not ITEM_NOT_AVAILABLE and value is not VALUE_NOT_RETRIEVED and not isinstance(value, Joker)


class _CachedDict(PassThroughDict[ValueType]):
    """Shared by both caches: conditional reads and writes go to main, then ``_learn`` sees the result."""

    def __init__(self, main_dict: PersiDict[ValueType], data_cache: PersiDict[ValueType], *, append_only: bool) -> None:
        super().__init__(main_dict, append_only=append_only)
        self._data_cache = data_cache

    @property
    def main_dict(self) -> PersiDict[ValueType]:
        """The source of truth."""
        return self._inner

    @property
    def data_cache(self) -> PersiDict[ValueType]:
        """The dict holding copies of main's values."""
        return self._data_cache

    def _learn(
        self, key: NonEmptySafeStrTuple, result: ConditionalOperationResult[ValueType]
    ) -> ConditionalOperationResult[ValueType]:
        """Update the caches from a result of main; return the result unchanged."""
        raise NotImplementedError

    def get_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        result = super().get_item_if(
            key, condition=condition, expected_etag=expected_etag, retrieve_value=retrieve_value
        )
        return self._learn(to_nonempty_key(key), result)

    def set_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        result = super().set_item_if(
            key, value=value, condition=condition, expected_etag=expected_etag, retrieve_value=retrieve_value
        )
        return self._learn(to_nonempty_key(key), result)

    def setdefault_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        default_value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        result = super().setdefault_if(
            key,
            default_value=default_value,
            condition=condition,
            expected_etag=expected_etag,
            retrieve_value=retrieve_value,
        )
        return self._learn(to_nonempty_key(key), result)


class AppendOnlyDictCached(_CachedDict[ValueType]):
    """A read-through cache over an append-only main dict.

    Nothing is ever changed or removed, so a cached value is trusted without
    asking main: ``in`` and ``[]`` answer from the cache when they can.
    ``len``, iteration, ``timestamp`` and ``etag`` always come from main.
    """

    def __init__(self, *, main_dict: PersiDict[ValueType], data_cache: PersiDict[ValueType]) -> None:
        require_persidict("main_dict", main_dict)
        require_persidict("data_cache", data_cache)
        if not main_dict.append_only or not data_cache.append_only:
            raise ValueError("main_dict and data_cache must both be append-only")
        if main_dict.base_class_for_values != data_cache.base_class_for_values:
            raise ValueError(
                "main_dict and data_cache must have the same base_class_for_values, got "
                f"{main_dict.base_class_for_values!r} and {data_cache.base_class_for_values!r}"
            )
        super().__init__(main_dict, data_cache, append_only=True)

    def get_params(self) -> dict[str, Any]:
        return {"data_cache": self._data_cache, "main_dict": self._inner}

    def _rewrap(self, inner: PersiDict[ValueType], prefix: SafeStrTuple) -> AppendOnlyDictCached[ValueType]:
        """The same cache arrangement over the subdicts of main and cache."""
        return AppendOnlyDictCached(main_dict=inner, data_cache=self._data_cache.get_subdict(prefix))

    # --- reads ------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        key = to_nonempty_key(key)
        return key in self._data_cache or key in self._inner

    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        key = to_nonempty_key(key)
        try:
            return self._data_cache[key]
        except KeyError:
            pass
        value = self._inner[key]
        self._remember(key, value)
        return value

    def _remember(self, key: NonEmptySafeStrTuple, value: Any) -> None:
        """Copy ``value`` into the cache unless the key is cached already (insert-if-absent)."""
        if _is_real_value(value):
            self._data_cache.setdefault_if(
                key,
                default_value=value,
                condition=ANY_ETAG,
                expected_etag=ITEM_NOT_AVAILABLE,
                retrieve_value=NEVER_RETRIEVE,
            )

    def _learn(
        self, key: NonEmptySafeStrTuple, result: ConditionalOperationResult[ValueType]
    ) -> ConditionalOperationResult[ValueType]:
        self._remember(key, result.new_value)
        return result

    # --- writes (inserts only) ---------------------------------------------------------
    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        key = to_nonempty_key(key)
        if self._process_setitem_args(key, value) is EXECUTION_IS_COMPLETE:
            return
        result = self.setdefault_if(
            key,
            default_value=value,
            condition=ANY_ETAG,
            expected_etag=ITEM_NOT_AVAILABLE,
            retrieve_value=NEVER_RETRIEVE,
        )
        if not result.value_was_mutated:
            raise MutationPolicyError(APPEND_ONLY)

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        raise MutationPolicyError(APPEND_ONLY)

    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        raise MutationPolicyError(APPEND_ONLY)

    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        """Always refused: nothing is ever removed from an append-only dict."""
        raise MutationPolicyError(APPEND_ONLY)

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = 6,
    ) -> OperationResult[ValueType]:
        """Always refused: a read-modify-write is not append-only."""
        raise MutationPolicyError(APPEND_ONLY)


class MutableDictCached(_CachedDict[ValueType]):
    """A read-through cache over a mutable main dict, validated by ETags.

    ``data_cache`` holds values and ``etag_cache`` the main ETag each value
    belongs to.  A read with both cached asks main one conditional question
    (``ETAG_HAS_CHANGED`` against the cached ETag): an unchanged value costs
    no transfer, a changed one is fetched and re-cached, so writes made to
    main by others are healed on the next read.  ``in``, ``len``, iteration
    and ``timestamp`` always ask main.

    The caches are updated after main, value before ETag, so an interrupted
    update leaves an ETag that no longer matches main, never a stale value
    under a current ETag.  Several processes sharing one pair of caches can
    still interleave their updates; give each writer its own caches when that
    matters.
    """

    def __init__(
        self,
        *,
        main_dict: PersiDict[ValueType],
        data_cache: PersiDict[ValueType],
        etag_cache: PersiDict[str],
    ) -> None:
        require_persidict("main_dict", main_dict)
        require_persidict("data_cache", data_cache)
        require_persidict("etag_cache", etag_cache)
        if main_dict.append_only or data_cache.append_only or etag_cache.append_only:
            raise ValueError("main_dict, data_cache and etag_cache must not be append-only")
        super().__init__(main_dict, data_cache, append_only=main_dict.append_only)
        self._etag_cache = etag_cache

    @property
    def etag_cache(self) -> PersiDict[str]:
        """The dict holding main's ETag of each cached value."""
        return self._etag_cache

    def get_params(self) -> dict[str, Any]:
        return {"data_cache": self._data_cache, "etag_cache": self._etag_cache, "main_dict": self._inner}

    def _rewrap(self, inner: PersiDict[ValueType], prefix: SafeStrTuple) -> MutableDictCached[ValueType]:
        """The same cache arrangement over the three subdicts."""
        return MutableDictCached(
            main_dict=inner,
            data_cache=self._data_cache.get_subdict(prefix),
            etag_cache=self._etag_cache.get_subdict(prefix),
        )

    # --- cache bookkeeping ----------------------------------------------------------
    def _cached_etag(self, key: NonEmptySafeStrTuple) -> ETagIfExists:
        known = self._etag_cache.get(key)
        return ITEM_NOT_AVAILABLE if known is None else ETagValue(known)

    def _forget(self, key: NonEmptySafeStrTuple) -> None:
        self._etag_cache.discard(key)
        self._data_cache.discard(key)

    def _sync(
        self, key: NonEmptySafeStrTuple, new_value: Any, resulting_etag: Any, actual_etag: Any = _NOT_GIVEN
    ) -> None:
        """Bring the caches in line with what main reported (docs/concurrency.md#cache-sync-rule)."""
        if new_value is ITEM_NOT_AVAILABLE or resulting_etag is ITEM_NOT_AVAILABLE:
            self._forget(key)
        elif _is_real_value(new_value):
            self._data_cache[key] = new_value  # value first: see the class docstring
            self._etag_cache[key] = resulting_etag
        elif actual_etag is not _NOT_GIVEN and actual_etag != resulting_etag:
            # Main changed but sent no value: whatever is cached is outdated.
            self._data_cache.discard(key)
            self._etag_cache[key] = resulting_etag
        # Otherwise nothing is known to have changed: leave the caches alone.

    def _learn(
        self, key: NonEmptySafeStrTuple, result: ConditionalOperationResult[ValueType]
    ) -> ConditionalOperationResult[ValueType]:
        self._sync(key, result.new_value, result.resulting_etag, result.actual_etag)
        return result

    # --- reads ------------------------------------------------------------------
    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        key = to_nonempty_key(key)
        cached_etag = self._cached_etag(key)
        if cached_etag is not ITEM_NOT_AVAILABLE and key not in self._data_cache:
            cached_etag = ITEM_NOT_AVAILABLE  # an ETag without its value: fetch in full
        result = self.get_item_if(key, condition=ETAG_HAS_CHANGED, expected_etag=cached_etag)
        if result.new_value is ITEM_NOT_AVAILABLE:
            raise KeyError(key)
        if result.new_value is not VALUE_NOT_RETRIEVED:
            return cast(ValueType, result.new_value)
        try:
            return self._data_cache[key]
        except KeyError:  # removed from the cache meanwhile
            return self._fetch(key)

    def _fetch(self, key: NonEmptySafeStrTuple) -> ValueType:
        result = self.get_item_if(key, condition=ETAG_HAS_CHANGED, expected_etag=ITEM_NOT_AVAILABLE)
        if result.new_value is ITEM_NOT_AVAILABLE or result.new_value is VALUE_NOT_RETRIEVED:
            raise KeyError(key)
        return cast(ValueType, result.new_value)

    def etag(self, key: NonEmptyPersiDictKey) -> ETagValue:
        """The cached ETag (stale if others wrote to main since), else main's, then cached."""
        key = to_nonempty_key(key)
        cached = self._cached_etag(key)
        if isinstance(cached, str):
            return cached
        etag = self._inner.etag(key)
        # An ETag must never vouch for a value it was not read with.
        self._data_cache.discard(key)
        self._etag_cache[key] = etag
        return etag

    # --- writes -------------------------------------------------------------------
    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        key = to_nonempty_key(key)
        if self._process_setitem_args(key, value) is EXECUTION_IS_COMPLETE:
            return
        result = self._inner.set_item_if(
            key, value=value, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=NEVER_RETRIEVE
        )
        self._sync(key, value, result.resulting_etag, result.actual_etag)

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        self._check_append_only()
        self._remove_item(to_nonempty_key(key))

    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        del self._inner[key]  # a KeyError leaves the caches as they are
        self._forget(key)

    def discard(self, key: NonEmptyPersiDictKey) -> bool:
        """Delete ``key`` from main (and the caches); False if it was absent."""
        self._check_append_only()
        try:
            self._remove_item(to_nonempty_key(key))
        except KeyError:
            return False
        return True

    def clear(self) -> None:
        """Delete every item from main, and empty the caches."""
        self._inner.clear()
        self._data_cache.clear()
        self._etag_cache.clear()

    # --- the other conditional operations: main decides, the caches follow --------------
    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        result = super().discard_if(key, condition=condition, expected_etag=expected_etag)
        return self._learn(to_nonempty_key(key), result)

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = 6,
    ) -> OperationResult[ValueType]:
        result = super().transform_item(key, transformer=transformer, n_retries=n_retries)
        self._sync(to_nonempty_key(key), result.new_value, result.resulting_etag)
        return result
