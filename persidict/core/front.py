"""PersiDict: the dict-like interface every store shares, built on a few primitives.

A concrete store implements ``__getitem__``, ``__setitem__``, ``__delitem__``,
``__contains__``, ``__len__``, ``_generic_iter``, ``timestamp``,
``_remove_item`` and ``get_subdict``.  Everything else here (jokers, pop,
equality, the ETag-based conditional operations, transform_item) is derived
from them.

The conditional operations are written once, here, on three versioned
primitives (``_read_versioned``, ``_write_if``, ``_delete_if``).  Their
defaults check and then act, so they are not atomic; a store that can do
better overrides the three (every FsspecDict does, with conditional requests
or locks), and all its conditional operations become as atomic as they are.
"""

from __future__ import annotations

import heapq
import random
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from typing import Any, Generic, Self, TypeAlias, TypeVar, overload

from ..keys.chars import contains_unsafe_chars
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from ..protocol.conditions import (
    CONFLICT_ATTEMPTS,
    absent_result,
    condition_holds,
    normalize_n_retries,
    require_retrieve_mode,
    should_retrieve,
)
from ..protocol.exceptions import ConcurrencyConflictError, MutationPolicyError
from ..protocol.flags import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    CONTINUE_NORMAL_EXECUTION,
    DELETE_CURRENT,
    ETAG_IS_THE_SAME,
    EXECUTION_IS_COMPLETE,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    ETagValue,
    Joker,
    OperationResult,
    RetrieveValueFlag,
    StatusFlag,
    TransformingFunction,
    ValueType,
)
from ..protocol.retry import CONFLICT_BACKOFF_BASE, backoff_delay
from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed
from .html import store_html

__all__ = ["NonEmptyPersiDictKey", "PersiDict", "PersiDictKey", "reopen"]

PersiDictKey: TypeAlias = SafeStrTuple | Sequence[str] | str
"""A key or a key prefix: a ``SafeStrTuple``, a sequence of strings or one string; may be empty (a prefix)."""
NonEmptyPersiDictKey: TypeAlias = NonEmptySafeStrTuple | Sequence[str] | str
"""An item key: a ``NonEmptySafeStrTuple``, a sequence of strings or one string; never empty."""

_Default = TypeVar("_Default")

FORMATS_FOR_ANY_VALUE = ("pkl", "json", "dill")
_ITER_LABELS = frozenset({"keys", "values", "timestamps"})
_GET_VALUE_ATTEMPTS = 3
APPEND_ONLY = "append-only"


def reopen(cls: type[Any], params: dict[str, Any]) -> Any:
    """``cls(**params)``: how a pickled store comes back (its class and its parameters)."""
    return cls(**params)


def validate_iter_request(result_type: Any) -> frozenset[str]:
    """Check a ``_generic_iter`` request: a set of 1 to 3 known labels."""
    if not isinstance(result_type, set):
        raise TypeError(f"result_type must be a set, got {type(result_type).__name__}")
    if not 1 <= len(result_type) <= 3 or not result_type <= _ITER_LABELS:
        raise ValueError(f"result_type must hold 1 to 3 of {sorted(_ITER_LABELS)}, got {result_type!r}")
    return frozenset(result_type)


class PersiDict(MutableMapping[NonEmptySafeStrTuple, ValueType], Generic[ValueType]):
    """A persistent dict: keys are tuples of safe strings, each value lives on its own.

    Subclasses provide storage; this class provides the dict API, jokers,
    append-only policy, value type checks, and ETag-based conditional
    operations.
    """

    _is_a_persidict = True
    """Marks every store class (``_validate_value`` refuses stores as values)."""

    def __init__(
        self,
        *,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        serialization_format: str = "pkl",
    ) -> None:
        self._append_only = bool(append_only)
        if not isinstance(serialization_format, str):
            raise TypeError(f"serialization_format must be a str, got {type(serialization_format).__name__}")
        if len(serialization_format) == 0:
            raise ValueError("serialization_format must not be empty")
        if contains_unsafe_chars(serialization_format):
            raise ValueError(f"serialization_format {serialization_format!r} contains unsafe characters")
        if base_class_for_values is not None and not isinstance(base_class_for_values, type):
            raise TypeError(f"base_class_for_values must be a type or None, got {base_class_for_values!r}")
        holds_text = base_class_for_values is not None and issubclass(base_class_for_values, str)
        if not holds_text and serialization_format not in FORMATS_FOR_ANY_VALUE:
            raise ValueError(
                f"serialization_format {serialization_format!r} needs a str base_class_for_values; "
                f"without one use one of {FORMATS_FOR_ANY_VALUE}"
            )
        self.base_class_for_values = base_class_for_values
        self.serialization_format = serialization_format

    @property
    def append_only(self) -> bool:
        """True when items can be added but never changed or deleted."""
        return self._append_only

    # --- parameters, representation, copying -----------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this dict, sorted by name."""
        return {
            "append_only": self._append_only,
            "base_class_for_values": self.base_class_for_values,
            "serialization_format": self.serialization_format,
        }

    def __repr__(self) -> str:
        params = sorted(self.get_params().items())
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params)})"

    def __str__(self) -> str:
        return str(dict(self.items()))

    def _repr_html_(self) -> str:
        """Jupyter's view: class, location (credentials masked), format, number of keys when cheap, a few keys."""
        return store_html(self)

    def __copy__(self) -> PersiDict[ValueType]:
        if type(self) is PersiDict:
            raise NotImplementedError("PersiDict is abstract")
        return type(self)(**self.get_params())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the parameters that reopen the store, never as its content or live clients.

        So a store can be an argument of a process pool, dask or ray: the
        worker opens the same storage (``type(d)(**d.get_params())``).
        """
        return reopen, (type(self), self.get_params())

    def __deepcopy__(self, memo: dict[int, Any]) -> PersiDict[ValueType]:
        """A new object on the same storage, as ``copy.copy`` gives (the content is not copied)."""
        return self.__copy__()

    # --- primitives ------------------------------------------------------------
    @abstractmethod
    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType: ...

    @abstractmethod
    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None: ...

    @abstractmethod
    def __delitem__(self, key: NonEmptyPersiDictKey) -> None: ...

    @abstractmethod
    def __contains__(self, key: object) -> bool: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        """Yield keys, values and/or timestamps, as ``validate_iter_request`` allows."""

    @abstractmethod
    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        """POSIX time of the key's last write."""

    @abstractmethod
    def _remove_item(self, key: NonEmptySafeStrTuple) -> None:
        """Delete the item with no policy checks; ``KeyError`` if it is absent."""

    def get_subdict(self, prefix_key: PersiDictKey) -> PersiDict[ValueType]:
        """A dict of the same kind holding the items whose keys start with ``prefix_key``."""
        raise NotImplementedError(f"{type(self).__name__} has no subdicts")

    # --- value checks and jokers -----------------------------------------------
    def _validate_value(self, value: Any) -> None:
        # type(...) and a plain attribute: isinstance against an ABC costs a good share of a memory write.
        if getattr(type(value), "_is_a_persidict", False):
            raise TypeError("Cannot store a PersiDict instance directly")
        base = self.base_class_for_values
        if base is not None and not isinstance(value, base):
            raise TypeError(f"Value must be an instance of {base.__name__}")

    def _check_read_value(self, value: Any) -> Any:
        base = self.base_class_for_values
        if base is not None and not isinstance(value, base):
            raise TypeError(f"Stored value is a {type(value).__name__}, expected an instance of {base.__name__}")
        return value

    def _check_append_only(self) -> None:
        if self._append_only:
            raise MutationPolicyError(APPEND_ONLY)

    def _process_setitem_args(self, key: Any, value: Any) -> StatusFlag:
        """Handle jokers and validation for ``__setitem__``.

        Returns ``EXECUTION_IS_COMPLETE`` when a joker left nothing to write,
        else ``CONTINUE_NORMAL_EXECUTION`` (the protocol subclasses of persidict
        0.x rely on).
        """
        if value is KEEP_CURRENT:
            return EXECUTION_IS_COMPLETE
        if value is DELETE_CURRENT:
            self._check_append_only()
        else:
            self._validate_value(value)
        key = to_nonempty_key(key)
        if value is DELETE_CURRENT:
            self.discard(key)
            return EXECUTION_IS_COMPLETE
        return CONTINUE_NORMAL_EXECUTION

    # --- dict API ----------------------------------------------------------------
    def __iter__(self) -> Iterator[NonEmptySafeStrTuple]:
        return self._generic_iter({"keys"})

    def keys(self) -> Iterator[NonEmptySafeStrTuple]:  # type: ignore[override]
        """A generator of keys (not a view: ask ``len(d)`` for the count)."""
        return self._generic_iter({"keys"})

    def values(self) -> Iterator[ValueType]:  # type: ignore[override]
        """A generator of values."""
        return self._generic_iter({"values"})

    def items(self) -> Iterator[tuple[NonEmptySafeStrTuple, ValueType]]:  # type: ignore[override]
        """A generator of ``(key, value)`` pairs."""
        return self._generic_iter({"keys", "values"})

    def keys_and_timestamps(self) -> Iterator[tuple[NonEmptySafeStrTuple, float]]:
        """A generator of ``(key, timestamp)`` pairs."""
        return self._generic_iter({"keys", "timestamps"})

    def values_and_timestamps(self) -> Iterator[tuple[ValueType, float]]:
        """A generator of ``(value, timestamp)`` pairs."""
        return self._generic_iter({"values", "timestamps"})

    def items_and_timestamps(self) -> Iterator[tuple[NonEmptySafeStrTuple, ValueType, float]]:
        """A generator of ``(key, value, timestamp)`` triples."""
        return self._generic_iter({"keys", "values", "timestamps"})

    def __bool__(self) -> bool:
        for _ in self.keys():
            return True
        return False

    def setdefault(self, key: NonEmptyPersiDictKey, default: Any = None) -> Any:
        """The value at ``key``, inserting ``default`` first if the key is absent (as atomic as the store)."""
        if isinstance(default, Joker):
            raise TypeError("setdefault() does not accept a joker as the default")
        key = to_nonempty_key(key)
        for _ in range(CONFLICT_ATTEMPTS):
            result = self.setdefault_if(
                key,
                default_value=default,
                condition=ANY_ETAG,
                expected_etag=ITEM_NOT_AVAILABLE,
                retrieve_value=ALWAYS_RETRIEVE,
            )
            if result.value_was_mutated:
                return default
            if result.new_value is not ITEM_NOT_AVAILABLE:
                return result.new_value
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)  # deleted as often as we looked

    def pop(self, key: NonEmptyPersiDictKey, *default: Any) -> Any:
        """Remove ``key`` and return its value (or ``default``); atomic where transform_item is."""
        if len(default) > 1:
            raise TypeError(f"pop expected at most 2 arguments, got {1 + len(default)}")
        self._check_append_only()
        key = to_nonempty_key(key)
        removed: list[Any] = []

        def take(current: Any) -> Any:
            removed[:] = [current]
            return KEEP_CURRENT if current is ITEM_NOT_AVAILABLE else DELETE_CURRENT

        self.transform_item(key, transformer=take)
        if removed and removed[0] is not ITEM_NOT_AVAILABLE:
            return removed[0]
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[NonEmptySafeStrTuple, ValueType]:
        """Remove and return some ``(key, value)`` pair; ``KeyError`` when empty."""
        self._check_append_only()
        for key in self.keys():
            try:
                return key, self.pop(key)
            except KeyError:
                continue  # removed by someone else meanwhile
        raise KeyError("dictionary is empty")

    def discard(self, key: NonEmptyPersiDictKey) -> bool:
        """Delete ``key`` if present; True if it was deleted."""
        self._check_append_only()
        try:
            self._delete_if(to_nonempty_key(key), ANY)
        except KeyError:
            return False
        return True

    def delete_if_exists(self, key: NonEmptyPersiDictKey) -> bool:
        """Backward-compatible alias of ``discard``."""
        return self.discard(key)

    def clear(self) -> None:
        """Delete every item."""
        self._check_append_only()
        for key in list(self.keys()):
            self.discard(key)

    @overload
    def get(self, key: NonEmptyPersiDictKey, /) -> ValueType | None: ...

    @overload
    def get(self, key: NonEmptyPersiDictKey, /, default: ValueType | _Default) -> ValueType | _Default: ...

    def get(self, key: NonEmptyPersiDictKey, /, default: Any = None) -> Any:
        """The value at ``key``, or ``default`` if the key is absent (only ``KeyError`` is absorbed)."""
        try:
            return self[key]
        except KeyError:
            return default

    def get_many(self, keys: Iterable[NonEmptyPersiDictKey], default: Any = None) -> list[Any]:
        """The values of ``keys``, in order (``default`` for an absent key); concurrent on object stores."""
        return [self.get(key, default) for key in keys]

    def __ior__(self, other: Any) -> Self:
        if not isinstance(other, Mapping):
            raise TypeError(f"Cannot update PersiDict with non-Mapping type: {type(other).__name__}")
        self.update(other)
        return self

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        if type(self) is type(other) and self.get_params() == other.get_params():
            return True
        try:
            for key, pair in zip_longest(self.keys(), other.items(), fillvalue=None):
                if key is None or pair is None:
                    return False
                other_key, other_value = pair
                if self[other_key] != other_value:
                    return False
        except (KeyError, TypeError, AttributeError, ValueError):
            return False
        return True

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    # --- metadata and sampling ---------------------------------------------------
    def etag(self, key: NonEmptyPersiDictKey) -> ETagValue:
        """An opaque version string for ``key`` (``KeyError`` if absent)."""
        return ETagValue(f"{self.timestamp(key):.6f}")

    def random_key(self) -> NonEmptySafeStrTuple | None:
        """A uniformly chosen key (reservoir sampling with ``random.random``), or None."""
        chosen = None
        for seen, key in enumerate(self.keys(), start=1):
            if random.random() < 1 / seen:
                chosen = key
        return chosen

    def _keys_by_time(self, max_n: int | None, newest_first: bool) -> list[NonEmptySafeStrTuple]:
        if max_n is not None and max_n <= 0:
            return []
        pairs = self.keys_and_timestamps()
        if max_n is None:
            ordered = sorted(pairs, key=lambda pair: pair[1], reverse=newest_first)
        else:
            pick = heapq.nlargest if newest_first else heapq.nsmallest
            ordered = pick(max_n, pairs, key=lambda pair: pair[1])
        return [key for key, _ in ordered]

    def oldest_keys(self, *, max_n: int | None = None) -> list[NonEmptySafeStrTuple]:
        """Keys from the oldest write to the newest (at most ``max_n``)."""
        return self._keys_by_time(max_n, newest_first=False)

    def newest_keys(self, *, max_n: int | None = None) -> list[NonEmptySafeStrTuple]:
        """Keys from the newest write to the oldest (at most ``max_n``)."""
        return self._keys_by_time(max_n, newest_first=True)

    def oldest_values(self, *, max_n: int | None = None) -> list[ValueType]:
        """Values of ``oldest_keys``."""
        return [self[key] for key in self.oldest_keys(max_n=max_n)]

    def newest_values(self, *, max_n: int | None = None) -> list[ValueType]:
        """Values of ``newest_keys``."""
        return [self[key] for key in self.newest_keys(max_n=max_n)]

    def delete_older_than(self, timestamp: float) -> int:
        """Delete every key last written before ``timestamp`` (POSIX seconds); return how many were deleted.

        A value written after the cut is never deleted, even by a writer racing
        this call: a key's ETag is read before its write time, and the delete is
        conditional on that ETag (on S3, a rewrite of identical bytes keeps its
        ETag and cannot be told apart).  Up to 16 keys are checked and deleted
        at once (each a few requests on object stores); a storage failure is
        raised after the other keys were done.
        """
        self._check_append_only()
        old = [key for key, written in self.keys_and_timestamps() if written < timestamp]

        def delete(key: NonEmptySafeStrTuple) -> bool:
            try:
                etag = self.etag(key)
                if self.timestamp(key) >= timestamp:  # rewritten since the listing: the version of etag or a newer
                    return False
            except KeyError:
                return False  # deleted meanwhile
            return self.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=etag).condition_was_satisfied

        with ThreadPoolExecutor(max_workers=16) as pool:
            return sum(pool.map(delete, old))

    def subdicts(self) -> dict[str, PersiDict[ValueType]]:
        """A subdict for every first key component."""
        return {key[0]: self.get_subdict(key[0]) for key in self.keys()}


    # --- versioned primitives -------------------------------------------------------
    # The conditional operations below are written once, on these three.  The
    # defaults build them from the dict primitives by checking and then acting,
    # so they are not atomic; a store that can do better (every FsspecDict:
    # conditional requests, locks) overrides them, and its conditional
    # operations are then exactly as atomic as its primitives.

    def _actual_etag(self, key: NonEmptySafeStrTuple) -> ETagIfExists:
        try:
            return ETagValue(self.etag(key))
        except KeyError:
            return ITEM_NOT_AVAILABLE

    def _get_value_and_etag(self, key: NonEmptySafeStrTuple) -> tuple[ValueType, ETagValue]:
        """A value and the ETag it belongs to (retried while the ETag moves)."""
        for _ in range(_GET_VALUE_ATTEMPTS):
            before = self.etag(key)
            value = self[key]
            after = self.etag(key)
            if before == after:
                return value, after
        raise ConcurrencyConflictError(key, _GET_VALUE_ATTEMPTS)

    def _read_versioned(
        self, key: NonEmptySafeStrTuple, expected: Any, retrieve_value: RetrieveValueFlag
    ) -> tuple[ETagIfExists, Any]:
        """The key's ETag (INA if absent) and, by rule R (docs/concurrency.md#rule-r), its value (else VNR).

        It compares ``expected`` with the actual ETag.
        """
        if retrieve_value is not ALWAYS_RETRIEVE:
            actual = self._actual_etag(key)
            if actual is ITEM_NOT_AVAILABLE:
                return ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE
            if not should_retrieve(retrieve_value, expected, actual):
                return actual, VALUE_NOT_RETRIEVED
        try:
            value, etag = self._get_value_and_etag(key)
        except KeyError:
            return ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE
        return etag, value

    def _check_expected(self, key: NonEmptySafeStrTuple, expected: Expected) -> None:
        """Raise ``PreconditionFailed`` unless the key's version is ``expected`` (not atomic)."""
        if expected is ANY:
            return
        actual = self._actual_etag(key)
        if (actual is ITEM_NOT_AVAILABLE) != (expected is ABSENT) or (isinstance(expected, str) and actual != expected):
            raise PreconditionFailed(key)

    def _write_if(self, key: NonEmptySafeStrTuple, value: Any, expected: Expected) -> ETagValue:
        """Store ``value`` if the key's version is ``expected``; return the new ETag."""
        self._check_expected(key, expected)
        self[key] = value
        return ETagValue(self.etag(key))

    def _delete_if(self, key: NonEmptySafeStrTuple, expected: Expected) -> None:
        """Delete the key if its version is ``expected`` (``KeyError`` if it is absent)."""
        if expected is not ANY:
            actual = self._actual_etag(key)
            if actual is ITEM_NOT_AVAILABLE:
                raise KeyError(key)
            if expected is ABSENT or actual != expected:
                raise PreconditionFailed(key)
        self._remove_item(key)

    # --- conditional operations ----------------------------------------------------------
    def get_with_etag(self, key: NonEmptyPersiDictKey) -> ConditionalOperationResult[ValueType]:
        """The value and its ETag in one call (all fields INA for an absent key)."""
        return self.get_item_if(
            key, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=ALWAYS_RETRIEVE
        )

    def get_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Read ``key``, reporting whether ``condition`` holds against ``expected_etag``."""
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        actual, value = self._read_versioned(key, expected_etag, retrieve_value)
        satisfied = condition_holds(condition, expected_etag, actual)
        if actual is ITEM_NOT_AVAILABLE:
            return absent_result(satisfied)
        return ConditionalOperationResult(satisfied, actual, actual, value)

    def _unchanged(
        self,
        key: NonEmptySafeStrTuple,
        satisfied: bool,
        expected: Any,
        actual: ETagValue,
        retrieve_value: RetrieveValueFlag,
    ) -> ConditionalOperationResult[ValueType]:
        """Report a present key the call leaves as it is, fetching its value by rule R (docs/concurrency.md#rule-r)."""
        if not should_retrieve(retrieve_value, expected, actual):
            return ConditionalOperationResult(satisfied, actual, actual, VALUE_NOT_RETRIEVED)
        fresh, value = self._read_versioned(key, expected, ALWAYS_RETRIEVE)
        if fresh is ITEM_NOT_AVAILABLE:
            return absent_result(satisfied)  # deleted meanwhile
        return ConditionalOperationResult(satisfied, fresh, fresh, value)

    def set_item_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Write ``value`` (or apply a joker) to ``key`` only if ``condition`` holds, in one atomic step.

        A real value is validated up front (``TypeError`` even if the condition fails).
        """
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        is_joker = isinstance(value, Joker)
        if not is_joker:
            self._validate_value(value)
        if not is_joker and condition is ETAG_IS_THE_SAME and self._is_direct_write(expected_etag):
            # One conditional write; only if the condition fails is the key read.
            precondition: Expected = ABSENT if expected_etag is ITEM_NOT_AVAILABLE else expected_etag  # type: ignore[assignment]
            try:
                etag = self._write_if(key, value, precondition)
            except PreconditionFailed:
                return self._report_failed_write(key, expected_etag, retrieve_value)
            return ConditionalOperationResult(True, expected_etag, etag, value)
        for _ in range(CONFLICT_ATTEMPTS):
            actual = self._read_versioned(key, expected_etag, NEVER_RETRIEVE)[0]
            satisfied = condition_holds(condition, expected_etag, actual)
            if satisfied and value is DELETE_CURRENT:
                self._check_append_only()
            if actual is ITEM_NOT_AVAILABLE and (not satisfied or is_joker):
                return absent_result(satisfied)
            if not satisfied or value is KEEP_CURRENT:
                return self._unchanged(key, satisfied, expected_etag, actual, retrieve_value)  # type: ignore[arg-type]
            seen: Expected = ABSENT if actual is ITEM_NOT_AVAILABLE else actual  # type: ignore[assignment]
            try:
                if value is DELETE_CURRENT:
                    self._delete_if(key, seen)
                    return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
                if self._append_only and seen is not ABSENT:
                    raise MutationPolicyError(APPEND_ONLY)
                etag = self._write_if(key, value, seen)
            except (PreconditionFailed, KeyError):
                continue  # changed between our look and our write: look again
            return ConditionalOperationResult(True, actual, etag, value)
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)

    def _is_direct_write(self, expected: Any) -> bool:
        """Whether ``ETAG_IS_THE_SAME`` with ``expected`` can be one conditional write (append-only: inserts)."""
        return expected is ITEM_NOT_AVAILABLE or (isinstance(expected, str) and not self._append_only)

    def _report_failed_write(
        self, key: NonEmptySafeStrTuple, expected: Any, retrieve_value: RetrieveValueFlag
    ) -> ConditionalOperationResult[ValueType]:
        """The result of a refused ``ETAG_IS_THE_SAME`` write: one read, by rule R (docs/concurrency.md#rule-r)."""
        actual, value = self._read_versioned(key, expected, retrieve_value)
        if actual is ITEM_NOT_AVAILABLE:
            return absent_result(False)
        return ConditionalOperationResult(False, actual, actual, value)

    def setdefault_if(
        self,
        key: NonEmptyPersiDictKey,
        *,
        default_value: Any,
        condition: ETagConditionFlag,
        expected_etag: ETagIfExists,
        retrieve_value: RetrieveValueFlag = IF_ETAG_CHANGED,
    ) -> ConditionalOperationResult[ValueType]:
        """Insert ``default_value`` if ``key`` is absent and ``condition`` holds; never overwrite.

        It looks first, so a present key (a write-once result written again)
        costs one read of its version and no write.
        """
        if isinstance(default_value, Joker):
            raise TypeError("setdefault_if() does not accept a joker as default_value")
        require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        for _ in range(CONFLICT_ATTEMPTS):
            actual, value = self._read_versioned(key, expected_etag, retrieve_value)
            if actual is not ITEM_NOT_AVAILABLE:
                holds = condition_holds(condition, expected_etag, actual)
                return ConditionalOperationResult(holds, actual, actual, value)
            if not condition_holds(condition, expected_etag, ITEM_NOT_AVAILABLE):
                return absent_result(False)
            self._validate_value(default_value)
            try:
                etag = self._write_if(key, default_value, ABSENT)
            except PreconditionFailed:
                continue  # inserted by someone else since we looked
            return ConditionalOperationResult(True, ITEM_NOT_AVAILABLE, etag, default_value)
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)

    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        """Delete ``key`` only if ``condition`` holds, in one atomic step."""
        key = to_nonempty_key(key)
        if condition is ETAG_IS_THE_SAME and isinstance(expected_etag, str) and not self._append_only:
            try:
                self._delete_if(key, expected_etag)
            except (PreconditionFailed, KeyError):
                pass  # not that version: report what is there below
            else:
                return ConditionalOperationResult(True, expected_etag, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
        for _ in range(CONFLICT_ATTEMPTS):
            actual = self._read_versioned(key, expected_etag, NEVER_RETRIEVE)[0]
            satisfied = condition_holds(condition, expected_etag, actual)
            if actual is ITEM_NOT_AVAILABLE:
                return absent_result(satisfied)
            if not satisfied:
                return ConditionalOperationResult(False, actual, actual, VALUE_NOT_RETRIEVED)
            self._check_append_only()
            try:
                self._delete_if(key, actual)  # type: ignore[arg-type]
            except (PreconditionFailed, KeyError):
                continue
            return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
        raise ConcurrencyConflictError(key, CONFLICT_ATTEMPTS)

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = 6,
    ) -> OperationResult[ValueType]:
        """Read-modify-write ``key`` with optimistic retries until no one else interferes.

        ``transformer`` gets the current value (``ITEM_NOT_AVAILABLE`` if absent)
        and returns the new one, ``KEEP_CURRENT`` or ``DELETE_CURRENT``; it may
        run several times.  ``ConcurrencyConflictError`` after ``1 + n_retries``
        failed attempts (``None``: retry forever).
        """
        key = to_nonempty_key(key)
        max_retries = normalize_n_retries(n_retries)
        retries = 0
        need_read = True
        current: Any = ITEM_NOT_AVAILABLE
        actual: ETagIfExists = ITEM_NOT_AVAILABLE
        while True:
            if need_read:
                read = self.get_item_if(
                    key, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=ALWAYS_RETRIEVE
                )
                current, actual = read.new_value, read.actual_etag
            new_value = transformer(current)
            if new_value is KEEP_CURRENT:
                return OperationResult(actual, current)
            if new_value is DELETE_CURRENT:
                deleted = self.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=actual)
                if deleted.condition_was_satisfied:
                    return OperationResult(ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
                need_read = True
            else:
                written = self.set_item_if(
                    key,
                    value=new_value,
                    condition=ETAG_IS_THE_SAME,
                    expected_etag=actual,
                    retrieve_value=ALWAYS_RETRIEVE,
                )
                if written.condition_was_satisfied:
                    return OperationResult(written.resulting_etag, new_value)  # type: ignore[arg-type]
                current, actual = written.new_value, written.actual_etag
                need_read = False
            if max_retries is not None and retries >= max_retries:
                raise ConcurrencyConflictError(key, retries + 1)
            time.sleep(backoff_delay(retries, base=CONFLICT_BACKOFF_BASE))
            retries += 1
