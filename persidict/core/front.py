"""The dict front every store shares: ``PersiDict``, and ``StoreDict``, a PersiDict over a ``Store``.

``PersiDict`` is persidict 0.x's abstract class: a subclass implements
``__getitem__``, ``__setitem__``, ``__delitem__``, ``__contains__``,
``__len__``, ``_generic_iter`` and ``timestamp``, and gets the rest of the
dict API, the jokers, the append-only policy, value checks and the ETag-based
conditional operations.  Those are written once, over the narrow versioned
protocol (``protocol/store.py``) and its engine (``protocol/engine.py``):
``self._items`` is the store they use.  For a 0.x-style subclass it is
``SubclassStore`` (its own methods, checked then acted); for every store of
persidict it is the store the dict was opened on.

``StoreDict`` is that: a PersiDict whose primitives are its store's, whose
parameters, pickles, ``repr`` and subdicts derive from one ``Settings`` record,
and which does bulk operations in bulk.  Every public store class is one.
"""

from __future__ import annotations

import heapq
import os
import random
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from typing import IO, Any, Generic, Self, TypeAlias, TypeVar, overload

from ..codecs.registry import formats_for_any_value, values_held
from ..keys.chars import contains_unsafe_chars
from ..keys.tuples import NonEmptySafeStrTuple, SafeStrTuple, to_nonempty_key
from ..protocol import engine
from ..protocol.exceptions import BulkOperationError, ConcurrencyConflictError, MissingKeyError, MutationPolicyError
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
from ..protocol.retry import DEFAULT_RETRY, RetryConfig
from ..protocol.store import APPEND_ONLY, WRITE_ONCE, Store
from ..protocol.versions import ABSENT, ANY, PreconditionFailed
from .adapter import SubclassStore
from .html import store_html
from .settings import Settings
from .value_io import copy_to_path

__all__ = ["NonEmptyPersiDictKey", "PersiDict", "PersiDictKey", "StoreDict", "reopen"]

PersiDictKey: TypeAlias = SafeStrTuple | Sequence[str] | str
"""A key or a key prefix: a ``SafeStrTuple``, a sequence of strings or one string; may be empty (a prefix)."""
NonEmptyPersiDictKey: TypeAlias = NonEmptySafeStrTuple | Sequence[str] | str
"""An item key: a ``NonEmptySafeStrTuple``, a sequence of strings or one string; never empty."""

_Default = TypeVar("_Default")

_ITER_LABELS = frozenset({"keys", "values", "timestamps"})
_DEFAULT_RETRIES: Any = object()
"""``transform_item``'s default ``n_retries``: the store's ``RetryConfig`` decides (a time budget)."""


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


def check_format(serialization_format: Any, base_class_for_values: type | None) -> None:
    """Refuse a format name that is not a safe string, or a text format without a ``str`` base class."""
    if not isinstance(serialization_format, str):
        raise TypeError(f"serialization_format must be a str, got {type(serialization_format).__name__}")
    if len(serialization_format) == 0:
        raise ValueError("serialization_format must not be empty")
    if contains_unsafe_chars(serialization_format):
        raise ValueError(f"serialization_format {serialization_format!r} contains unsafe characters")
    if base_class_for_values is not None and not isinstance(base_class_for_values, type):
        raise TypeError(f"base_class_for_values must be a type or None, got {base_class_for_values!r}")
    holds_text = base_class_for_values is not None and issubclass(base_class_for_values, str)
    if not holds_text and values_held(serialization_format) == "str":
        raise ValueError(
            f"serialization_format {serialization_format!r} needs a str base_class_for_values; "
            f"without one use one of {formats_for_any_value()}"
        )


class PersiDict(MutableMapping[NonEmptySafeStrTuple, ValueType], Generic[ValueType]):
    """A persistent dict: keys are tuples of safe strings, each value lives on its own.

    Subclasses provide storage (0.x's seven abstract methods); this class
    provides the dict API, jokers, the append-only policy, value checks and
    the ETag-based conditional operations.
    """

    _is_a_persidict = True
    """Marks every store class (``_validate_value`` refuses stores as values)."""

    _retry: RetryConfig = DEFAULT_RETRY

    def __init__(
        self,
        *,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        serialization_format: str = "pkl",
    ) -> None:
        check_format(serialization_format, base_class_for_values)
        self._append_only = bool(append_only)
        self.base_class_for_values = base_class_for_values
        self.serialization_format = serialization_format

    @property
    def append_only(self) -> bool:
        """True when items can be added but never changed or deleted."""
        return self._append_only

    @property
    def _items(self) -> Store:
        """The versioned store every derived method works on (a 0.x subclass: its own methods)."""
        store = self.__dict__.get("_store")
        if store is None:
            store = self.__dict__["_store"] = SubclassStore(self)
        return store

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

    # --- 0.x's abstract primitives ---------------------------------------------------
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

    def get_subdict(self, prefix_key: PersiDictKey) -> PersiDict[ValueType]:
        """A dict of the same kind holding the items whose keys start with ``prefix_key``."""
        raise NotImplementedError(f"{type(self).__name__} has no subdicts")

    # --- value checks and jokers (0.x's protocol for subclasses) --------------------------
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
        if self.append_only:
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
        rounds = self._retry.rounds()
        for _ in rounds:
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
        raise ConcurrencyConflictError(key, rounds.attempts)  # deleted as often as we looked

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
        raise MissingKeyError(key)

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
            self._items.delete(to_nonempty_key(key))
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

    # --- files as values (docs/big-values.md#files-as-values) ----------------------------------
    def put_file(self, key: NonEmptyPersiDictKey, path: str | os.PathLike[str], *,
                 expected_etag: ETagIfExists | None = None) -> ETagValue:
        """Store the bytes of the local file ``path`` as the key's stored object, as they are (streamed,
        never loaded whole on local folders); the new ETag.

        ``d[key]`` then decodes them with the store's format.  With ``expected_etag`` (an ETag, or
        ``ITEM_NOT_AVAILABLE``: only if absent) the write happens only if the key is at that version,
        atomically where the store is; otherwise ``ConcurrencyConflictError`` and nothing is written.
        """
        key = to_nonempty_key(key)
        expected = ANY if expected_etag is None else ABSENT if expected_etag is ITEM_NOT_AVAILABLE else str(
            expected_etag)
        with open(path, "rb") as file:  # a missing or unreadable file fails here, before anything is written
            try:
                return ETagValue(self._items.write_file(key, file, expected))
            except PreconditionFailed:
                raise ConcurrencyConflictError(key, 1) from None  # only a conditional write gets here

    def get_file(self, key: NonEmptyPersiDictKey, path: str | os.PathLike[str]) -> ETagValue:
        """Write the key's stored bytes to the local file ``path`` atomically (a temporary file in its
        folder, then renamed); the ETag of what was written.  ``KeyError`` if the key is absent."""
        file, version = self._items.open_file(to_nonempty_key(key))
        with file:
            copy_to_path(file, path)
        return ETagValue(version.etag)

    def open(self, key: NonEmptyPersiDictKey, mode: str = "rb") -> IO[bytes]:
        """A read-only binary file object of the key's stored bytes (close it, or use ``with``).

        Its ``etag`` attribute is the version it reads.  Local folders open the value's file
        itself, S3 reads it in ranges (``ValueReplacedError`` if another writer replaces it after
        part of it was read); other stores fetch the bytes when it is opened.
        """
        if mode != "rb":
            raise ValueError(f"a stored value opens read-only in binary mode ('rb'), not {mode!r}")
        file, version = self._items.open_file(to_nonempty_key(key))
        file.etag = ETagValue(version.etag)  # type: ignore[attr-defined]  # io objects take attributes
        return file

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
        this call: a key's ETag and write time are read together (one version),
        and the delete is conditional on that ETag (on S3, a rewrite of identical
        bytes keeps its ETag and cannot be told apart).  Up to 16 keys are checked
        and deleted at once (two requests each on object stores); a storage
        failure is raised after the other keys were done.
        """
        self._check_append_only()
        store = self._items
        old = [key for key, written in self.keys_and_timestamps() if written < timestamp]

        def delete(key: NonEmptySafeStrTuple) -> bool:
            try:
                version = store.stat(key)  # the ETag and the write time of one version
            except KeyError:
                return False  # deleted meanwhile
            if version.timestamp >= timestamp:  # rewritten since the listing
                return False
            deleted = self.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=ETagValue(version.etag))
            return deleted.condition_was_satisfied

        with ThreadPoolExecutor(max_workers=16) as pool:
            return sum(pool.map(delete, old))

    def subdicts(self) -> dict[str, PersiDict[ValueType]]:
        """A subdict for every first key component."""
        return {key[0]: self.get_subdict(key[0]) for key in self.keys()}

    # --- conditional operations (protocol/engine.py, over self._items) -----------------
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
        engine.require_retrieve_mode(retrieve_value)
        return engine.get_item_if(self._items, to_nonempty_key(key), condition, expected_etag, retrieve_value)

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
        A write-once store has no conditional writes: ``MutationPolicyError``.
        """
        store = self._items
        if store.policy == WRITE_ONCE:
            raise MutationPolicyError(WRITE_ONCE)
        engine.require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        if not isinstance(value, Joker):
            self._validate_value(value)
        return engine.set_item_if(store, key, value, condition, expected_etag, retrieve_value, self._retry)

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
        engine.require_retrieve_mode(retrieve_value)
        key = to_nonempty_key(key)
        return engine.setdefault_if(self._items, key, default_value, condition, expected_etag, retrieve_value,
                                    self._retry, self._validate_value)

    def discard_if(
        self, key: NonEmptyPersiDictKey, *, condition: ETagConditionFlag, expected_etag: ETagIfExists
    ) -> ConditionalOperationResult[ValueType]:
        """Delete ``key`` only if ``condition`` holds, in one atomic step."""
        return engine.discard_if(self._items, to_nonempty_key(key), condition, expected_etag, self._retry)

    def transform_item(
        self,
        key: NonEmptyPersiDictKey,
        *,
        transformer: TransformingFunction[ValueType],
        n_retries: int | None = _DEFAULT_RETRIES,
    ) -> OperationResult[ValueType]:
        """Read-modify-write ``key`` with optimistic retries until no one else interferes.

        ``transformer`` gets the current value (``ITEM_NOT_AVAILABLE`` if absent)
        and returns the new one, ``KEEP_CURRENT`` or ``DELETE_CURRENT``; it may
        run several times.  By default the store's ``RetryConfig`` bounds the
        retries (a time budget, so a hot key shared by many workers just
        works); ``n_retries=k`` gives up after ``1 + k`` attempts, ``None``
        never.  Giving up raises ``ConcurrencyConflictError``, and then nothing
        was written.
        """
        key = to_nonempty_key(key)
        if n_retries is _DEFAULT_RETRIES:
            rounds = self._retry.rounds()
        else:
            count = engine.normalize_n_retries(n_retries)
            rounds = self._retry.rounds(count, forever=count is None)
        return engine.transform_item(key, transformer, get_item_if=self.get_item_if, set_item_if=self.set_item_if,
                                     discard_if=self.discard_if, rounds=rounds)

    # --- coordination (persidict.coordination, the layer above; imported on first use) --------
    def lease(self, name: Any, ttl: float = 30.0, *, timeout: float | None = None, poll: float = 1.0,
              keep_alive: bool = True, allow_non_atomic: bool = False) -> Any:
        """An exclusive lease on ``name`` among every process sharing this store, with a fencing token.

        Waits (up to ``timeout`` seconds) while another process holds it;
        renewed in the background every ``ttl / 3`` unless ``keep_alive=False``;
        released by ``with store.lease(...) as lease:`` on exit.  Refuses a
        store whose server ignores conditional writes (see ``check_conditions``)
        unless ``allow_non_atomic``.  Details: docs/coordination.md.
        """
        # The coordination layer stands on this class; it is imported here, on use, not at import.
        from ..coordination.conditions import require_atomic
        from ..coordination.leases import acquire, lease_key

        require_atomic(self, "a lease", allow_non_atomic=allow_non_atomic)
        held = acquire(self, lease_key(name), ttl, timeout=timeout, poll=poll)
        return held.keep_alive() if keep_alive else held

    def check_conditions(self, *, refresh: bool = False) -> Any:
        """Probe (once per endpoint and process) whether the server honours conditional writes and deletes.

        A handful of requests on a scratch key under the root, removed after;
        a failing store gets ``atomic_conditions = False``.  Returns a
        ``ConditionsReport``.  Details: docs/coordination.md#check.
        """
        from ..coordination.conditions import check_conditions

        return check_conditions(self, refresh=refresh)


class StoreDict(PersiDict[ValueType]):
    """A PersiDict over a ``Store``, described by its ``Settings``: every store class of persidict.

    The store does the work (and enforces the append-only and write-once
    policies below every method); the settings give ``get_params()``,
    pickles, ``repr`` and subdicts.  Subclasses are thin constructors: they
    build a store and settings from their parameters and call ``_open``.
    """

    _store: Store
    _settings: Settings

    def _open(self, store: Store, settings: Settings, *, base_class_for_values: type | None,
              serialization_format: str, retry: RetryConfig | None = None) -> None:
        """Set the dict up on ``store`` (the constructors' last step, and a child's only one)."""
        self._store = store
        self._settings = settings
        self._retry = retry or DEFAULT_RETRY
        self._append_only = store.append_only
        self.base_class_for_values = base_class_for_values
        self.serialization_format = serialization_format

    def _derived(self, store: Store, settings: Settings) -> Self:
        """A dict of this class on ``store`` (a child of this one's), without running a constructor."""
        child = object.__new__(type(self))
        child.__dict__.update(self.__dict__)
        child._store = store
        child._settings = settings
        return child

    @property
    def _items(self) -> Store:
        return self._store

    @property
    def atomic_conditions(self) -> bool:
        """Whether conditional operations are atomic against every other writer."""
        return self._store.atomic_conditions

    # --- settings ---------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor arguments that reopen this store, sorted by name."""
        return self._settings.get_params()

    def __repr__(self) -> str:
        """The class and its parameters, with every credential shown as ``'***'``."""
        return repr(self._settings)

    def get_subdict(self, prefix_key: PersiDictKey) -> Self:
        """The items whose keys start with ``prefix_key``, as a dict of the same class.

        A store on a location derives the child from its store's child (no
        reopening); a store built on other stores (a wrapper) is built again
        by its constructor over their subdicts.
        """
        prefix = SafeStrTuple(prefix_key)
        if self._settings.location is None:
            return self._settings.cls(**self._settings.below(prefix, "").params)  # type: ignore[no-any-return]
        if not prefix.strings:
            return self._derived(self._store, self._settings)
        settings = self._settings.below(prefix, self._store.relative_path(prefix))
        return self._derived(self._store.child(prefix), settings)

    # --- primitives --------------------------------------------------------------------
    def __getitem__(self, key: NonEmptyPersiDictKey) -> ValueType:
        return self._store.get(to_nonempty_key(key))  # type: ignore[no-any-return]

    def __setitem__(self, key: NonEmptyPersiDictKey, value: Any) -> None:
        key = to_nonempty_key(key)
        if value is KEEP_CURRENT:
            return
        if value is DELETE_CURRENT:
            self.discard(key)
            return
        self._validate_value(value)
        self._store.write(key, value, ANY)

    def __delitem__(self, key: NonEmptyPersiDictKey) -> None:
        self._store.delete(to_nonempty_key(key))

    def __contains__(self, key: object) -> bool:
        return self._store.exists(to_nonempty_key(key))

    def __len__(self) -> int:
        return self._store.count()

    def timestamp(self, key: NonEmptyPersiDictKey) -> float:
        """POSIX time of the key's last write, from the storage's metadata."""
        return self._store.stat(to_nonempty_key(key)).timestamp

    def etag(self, key: NonEmptyPersiDictKey) -> ETagValue:
        """The key's version string, from the storage's metadata."""
        return ETagValue(self._store.stat(to_nonempty_key(key)).etag)

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        labels = validate_iter_request(result_type)
        if "values" in labels:
            return self._with_values(labels)
        listing = self._store.list(with_timestamps="timestamps" in labels)
        if "timestamps" not in labels:
            return (key for key, _ in listing)
        if "keys" not in labels:
            return (timestamp for _, timestamp in listing)
        return listing

    def _with_values(self, labels: frozenset[str]) -> Iterator[Any]:
        for key, value, version in self._store.read_all():  # a key deleted while listed is skipped
            row = tuple(item for label, item in (("keys", key), ("values", value), ("timestamps", version.timestamp))
                        if label in labels)
            yield row[0] if len(row) == 1 else row

    # --- bulk operations: concurrent (and batched where the API allows) on object stores ---
    def get_many(self, keys: Iterable[NonEmptyPersiDictKey], default: Any = None) -> list[Any]:
        """The values of ``keys`` in order, ``default`` for an absent key; fetched concurrently on object stores."""
        found = self._store.read_many([to_nonempty_key(key) for key in keys])
        return [default if entry is None else entry[0] for entry in found]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store many items: every value is checked first (``TypeError`` before anything is
        written), then they are written concurrently on object stores.  Items that fail
        are named in one ``BulkOperationError``; the others are written."""
        writes: dict[NonEmptySafeStrTuple, Any] = {}
        for raw_key, value in _pairs_of(other, kwargs):
            key = to_nonempty_key(raw_key)
            if isinstance(value, Joker):
                self[key] = value  # KEEP_CURRENT / DELETE_CURRENT: their own semantics, one by one
                continue
            self._validate_value(value)
            writes[key] = value
        self._raise_failures("update", self._store.write_many(writes.items()))

    def clear(self) -> None:
        """Delete every item (of this format, under this root); batched where the storage allows."""
        self._check_append_only()
        self._raise_failures("clear", self._store.clear())

    def _raise_failures(self, operation: str, failures: dict[NonEmptySafeStrTuple, Exception]) -> None:
        """One error naming every key a bulk operation could not do (nothing is dropped silently).

        Refusals of an append-only store are a ``MutationPolicyError``, as one by one.
        """
        if not failures:
            return
        first = next(iter(failures.values()))
        if self.append_only and all(isinstance(error, (PreconditionFailed, MutationPolicyError))
                                    for error in failures.values()):
            refusal = MutationPolicyError(first.policy if isinstance(first, MutationPolicyError) else APPEND_ONLY)
            refusal.failures = dict(failures)  # type: ignore[attr-defined]
            raise refusal
        raise BulkOperationError(dict(failures), backend=self._store.backend_name, operation=operation) from first


def _pairs_of(other: Any, kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
    """The items of ``update``'s arguments, read as ``dict.update`` reads them."""
    if isinstance(other, Mapping):
        pairs = list(other.items())
    elif hasattr(other, "keys"):
        pairs = [(key, other[key]) for key in other.keys()]  # noqa: SIM118  # dict.update calls keys()
    else:
        pairs = list(other)
    return pairs + list(kwargs.items())
