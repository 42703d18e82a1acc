"""The conditional operations, written once over the ``Store`` protocol.

``get_item_if``, ``set_item_if``, ``setdefault_if`` and ``discard_if`` are
each one conditional request where the store allows it (a write or delete
carrying the expected version), and otherwise rounds of "read the version,
check, act under that version" that repeat when another writer got in between.
So every conditional operation is exactly as atomic as the store's
preconditions (``Store.atomic_conditions``).

The rules are those of the concurrency contract (docs/concurrency.md): the
conditions, rule R (docs/concurrency.md#rule-r: when a result carries the
value), the result shapes, and the append-only rules (an unmet condition is
a result, a met one that would replace or delete is a ``MutationPolicyError``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..keys.tuples import NonEmptySafeStrTuple
from .exceptions import ConcurrencyConflictError, MutationPolicyError
from .flags import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
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
)
from .retry import RetryConfig, Rounds
from .store import APPEND_ONLY, Store
from .versions import ABSENT, Expected, PreconditionFailed

__all__ = [
    "absent_result",
    "condition_holds",
    "discard_if",
    "get_item_if",
    "normalize_n_retries",
    "read_versioned",
    "require_retrieve_mode",
    "set_item_if",
    "setdefault_if",
    "should_retrieve",
    "transform_item",
]

Key = NonEmptySafeStrTuple
Result = ConditionalOperationResult[Any]


# --- the pure rules ----------------------------------------------------------------------
def condition_holds(condition: ETagConditionFlag, expected: Any, actual: ETagIfExists) -> bool:
    """Evaluate an ETag condition (``ITEM_NOT_AVAILABLE`` stands for an absent key)."""
    if condition is ANY_ETAG:
        return True
    if condition is ETAG_IS_THE_SAME:
        return bool(expected == actual)
    if condition is ETAG_HAS_CHANGED:
        return bool(expected != actual)
    raise ValueError(f"condition must be ANY_ETAG, ETAG_IS_THE_SAME, or ETAG_HAS_CHANGED, got {condition!r}")


def require_retrieve_mode(retrieve_value: Any) -> None:
    """Reject anything but the three retrieval-mode flags."""
    if not isinstance(retrieve_value, RetrieveValueFlag):
        raise TypeError(f"retrieve_value must be a RetrieveValueFlag, got {retrieve_value!r}")


def should_retrieve(retrieve_value: RetrieveValueFlag, expected: Any, actual: ETagIfExists) -> bool:
    """Rule R (docs/concurrency.md#rule-r): fetch unless NEVER, or IF_ETAG_CHANGED with an up-to-date ETag."""
    if retrieve_value is ALWAYS_RETRIEVE:
        return True
    if retrieve_value is NEVER_RETRIEVE:
        return False
    return bool(expected != actual)


def absent_result(satisfied: bool) -> Result:
    """The result shape for a key that is absent before and after the call."""
    return ConditionalOperationResult(satisfied, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)


def normalize_n_retries(n_retries: Any) -> int | None:
    """``None`` means unbounded; anything else must convert to a non-negative int."""
    if n_retries is None:
        return None
    try:
        count = int(n_retries)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"n_retries must be an int or None, got {n_retries!r}") from exc
    if count < 0:
        raise ValueError(f"n_retries must be >= 0, got {count}")
    return count


def _precondition(actual: ETagIfExists) -> Expected:
    """The precondition that pins what was seen: ``ABSENT`` or its ETag."""
    return ABSENT if actual is ITEM_NOT_AVAILABLE else actual  # type: ignore[return-value]


# --- reads ---------------------------------------------------------------------------------
def read_versioned(
    store: Store, key: Key, expected: Any, retrieve_value: RetrieveValueFlag
) -> tuple[ETagIfExists, Any]:
    """The key's ETag (INA if absent) and, by rule R, its value (else VNR): one store call.

    A version only, a read, or a read that skips an unchanged value.
    """
    try:
        if retrieve_value is NEVER_RETRIEVE:
            return ETagValue(store.stat(key).etag), VALUE_NOT_RETRIEVED
        if retrieve_value is ALWAYS_RETRIEVE or not isinstance(expected, str):
            value, version = store.read(key)  # a present key's ETag always differs from INA: fetch
        else:
            value, version = store.read(key, unless_etag=expected)
    except KeyError:
        return ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE
    return ETagValue(version.etag), value


def get_item_if(
    store: Store, key: Key, condition: ETagConditionFlag, expected: ETagIfExists, retrieve_value: RetrieveValueFlag
) -> Result:
    """Read ``key``, reporting whether ``condition`` holds against ``expected``."""
    actual, value = read_versioned(store, key, expected, retrieve_value)
    satisfied = condition_holds(condition, expected, actual)
    if actual is ITEM_NOT_AVAILABLE:
        return absent_result(satisfied)
    return ConditionalOperationResult(satisfied, actual, actual, value)


def _unchanged(
    store: Store, key: Key, satisfied: bool, expected: Any, actual: ETagValue, retrieve_value: RetrieveValueFlag
) -> Result:
    """Report a present key the call leaves as it is, fetching its value by rule R."""
    if not should_retrieve(retrieve_value, expected, actual):
        return ConditionalOperationResult(satisfied, actual, actual, VALUE_NOT_RETRIEVED)
    fresh, value = read_versioned(store, key, expected, ALWAYS_RETRIEVE)
    if fresh is ITEM_NOT_AVAILABLE:
        return absent_result(satisfied)  # deleted meanwhile
    return ConditionalOperationResult(satisfied, fresh, fresh, value)


def _refused_write(store: Store, key: Key, expected: Any, retrieve_value: RetrieveValueFlag) -> Result:
    """The result of a refused ``ETAG_IS_THE_SAME`` write: one read, by rule R."""
    actual, value = read_versioned(store, key, expected, retrieve_value)
    if actual is ITEM_NOT_AVAILABLE:
        return absent_result(False)
    return ConditionalOperationResult(False, actual, actual, value)


# --- writes --------------------------------------------------------------------------------
def _is_direct_write(store: Store, expected: Any) -> bool:
    """Whether ``ETAG_IS_THE_SAME`` with ``expected`` is one conditional write (append-only: inserts)."""
    return expected is ITEM_NOT_AVAILABLE or (isinstance(expected, str) and not store.append_only)


def set_item_if(
    store: Store,
    key: Key,
    value: Any,
    condition: ETagConditionFlag,
    expected: ETagIfExists,
    retrieve_value: RetrieveValueFlag,
    retry: RetryConfig,
) -> Result:
    """Write ``value`` (or apply a joker) to ``key`` only if ``condition`` holds, in one atomic step.

    The value was validated by the caller.
    """
    is_joker = isinstance(value, Joker)
    if not is_joker and condition is ETAG_IS_THE_SAME and _is_direct_write(store, expected):
        try:  # one conditional write; only if it is refused is the key read
            etag = store.write(key, value, _precondition(expected))
        except PreconditionFailed:
            return _refused_write(store, key, expected, retrieve_value)
        return ConditionalOperationResult(True, expected, ETagValue(etag), value)
    rounds = retry.rounds()
    for _ in rounds:
        actual = read_versioned(store, key, expected, NEVER_RETRIEVE)[0]
        satisfied = condition_holds(condition, expected, actual)
        if satisfied and value is DELETE_CURRENT and store.append_only:
            raise MutationPolicyError(APPEND_ONLY)
        if actual is ITEM_NOT_AVAILABLE and (not satisfied or is_joker):
            return absent_result(satisfied)
        if not satisfied or value is KEEP_CURRENT:
            return _unchanged(store, key, satisfied, expected, actual, retrieve_value)  # type: ignore[arg-type]
        if store.append_only and actual is not ITEM_NOT_AVAILABLE:
            raise MutationPolicyError(APPEND_ONLY)
        try:
            if value is DELETE_CURRENT:
                store.delete(key, _precondition(actual))
                return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
            etag = store.write(key, value, _precondition(actual))
        except (PreconditionFailed, KeyError):
            continue  # changed between our look and our write: look again
        return ConditionalOperationResult(True, actual, ETagValue(etag), value)
    raise ConcurrencyConflictError(key, rounds.attempts)


def setdefault_if(
    store: Store,
    key: Key,
    default_value: Any,
    condition: ETagConditionFlag,
    expected: ETagIfExists,
    retrieve_value: RetrieveValueFlag,
    retry: RetryConfig,
    validate: Callable[[Any], None],
) -> Result:
    """Insert ``default_value`` if ``key`` is absent and ``condition`` holds; never overwrite.

    It looks first, so a present key (a write-once result written again) costs
    one read of its version and no write; ``validate`` checks the value only
    when it is about to be written.
    """
    rounds = retry.rounds()
    for _ in rounds:
        actual, value = read_versioned(store, key, expected, retrieve_value)
        if actual is not ITEM_NOT_AVAILABLE:
            return ConditionalOperationResult(condition_holds(condition, expected, actual), actual, actual, value)
        if not condition_holds(condition, expected, ITEM_NOT_AVAILABLE):
            return absent_result(False)
        validate(default_value)
        try:
            etag = store.write(key, default_value, ABSENT)
        except PreconditionFailed:
            continue  # inserted by someone else since we looked
        return ConditionalOperationResult(True, ITEM_NOT_AVAILABLE, ETagValue(etag), default_value)
    raise ConcurrencyConflictError(key, rounds.attempts)


def discard_if(
    store: Store, key: Key, condition: ETagConditionFlag, expected: ETagIfExists, retry: RetryConfig
) -> Result:
    """Delete ``key`` only if ``condition`` holds, in one atomic step."""
    if condition is ETAG_IS_THE_SAME and isinstance(expected, str) and not store.append_only:
        try:
            store.delete(key, expected)
        except (PreconditionFailed, KeyError):
            pass  # not that version: report what is there below
        else:
            return ConditionalOperationResult(True, expected, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
    rounds = retry.rounds()
    for _ in rounds:
        actual = read_versioned(store, key, expected, NEVER_RETRIEVE)[0]
        satisfied = condition_holds(condition, expected, actual)
        if actual is ITEM_NOT_AVAILABLE:
            return absent_result(satisfied)
        if not satisfied:
            return ConditionalOperationResult(False, actual, actual, VALUE_NOT_RETRIEVED)
        if store.append_only:
            raise MutationPolicyError(APPEND_ONLY)
        try:
            store.delete(key, actual)  # type: ignore[arg-type]
        except (PreconditionFailed, KeyError):
            continue
        return ConditionalOperationResult(True, actual, ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
    raise ConcurrencyConflictError(key, rounds.attempts)


def transform_item(
    key: Key,
    transformer: Callable[[Any], Any],
    *,
    get_item_if: Callable[..., Result],
    set_item_if: Callable[..., Result],
    discard_if: Callable[..., Result],
    rounds: Rounds,
) -> OperationResult[Any]:
    """Read-modify-write ``key`` through the three given operations, until no one else interferes.

    The operations are a dict's own methods, so a class that overrides one
    (a cache that learns from every result) sees every step.  ``rounds`` is an
    ``Rounds`` (``RetryConfig.rounds``): it waits between attempts and ends
    when the budget is spent.
    """
    need_read = True
    current: Any = ITEM_NOT_AVAILABLE
    actual: ETagIfExists = ITEM_NOT_AVAILABLE
    for _ in rounds:
        if need_read:
            read = get_item_if(key, condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE,
                               retrieve_value=ALWAYS_RETRIEVE)
            current, actual = read.new_value, read.actual_etag
        new_value = transformer(current)
        if new_value is KEEP_CURRENT:
            return OperationResult(actual, current)
        if new_value is DELETE_CURRENT:
            if discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=actual).condition_was_satisfied:
                return OperationResult(ITEM_NOT_AVAILABLE, ITEM_NOT_AVAILABLE)
            need_read = True
            continue
        written = set_item_if(
            key, value=new_value, condition=ETAG_IS_THE_SAME, expected_etag=actual, retrieve_value=ALWAYS_RETRIEVE
        )
        if written.condition_was_satisfied:
            return OperationResult(written.resulting_etag, new_value)
        current, actual = written.new_value, written.actual_etag
        need_read = False
    raise ConcurrencyConflictError(key, rounds.attempts)
