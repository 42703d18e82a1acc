"""The pure rules of the conditional operations: conditions, rule R, result shapes, retry budgets.

Each is specified in the concurrency contract, docs/concurrency.md (rule R: docs/concurrency.md#rule-r).
"""

from __future__ import annotations

from typing import Any

from .flags import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    ConditionalOperationResult,
    ETagConditionFlag,
    ETagIfExists,
    RetrieveValueFlag,
)

__all__ = [
    "CONFLICT_ATTEMPTS",
    "absent_result",
    "condition_holds",
    "normalize_n_retries",
    "require_retrieve_mode",
    "should_retrieve",
]

CONFLICT_ATTEMPTS = 16
"""Check-and-write rounds before one conditional operation gives up on a key others keep changing."""


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


def absent_result(satisfied: bool) -> ConditionalOperationResult[Any]:
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
