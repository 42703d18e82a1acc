"""Functions that worker processes run on stores they received as arguments (importable by spawn)."""

from __future__ import annotations

from typing import Any

from persidict import ITEM_NOT_AVAILABLE, PersiDict


def increment(store: PersiDict[Any], key: str, times: int) -> int:
    """Add one to ``store[key]`` ``times`` times; return how many calls returned."""
    for _ in range(times):
        store.transform_item(key, transformer=_plus_one, n_retries=None)
    return times


def _plus_one(value: Any) -> int:
    return 1 if value is ITEM_NOT_AVAILABLE else value + 1


def write_and_describe(store: PersiDict[Any], key: str, value: Any) -> tuple[str, Any]:
    """Write ``store[key] = value`` in the worker; return the class name it arrived as and what it reads back."""
    store[key] = value
    return type(store).__name__, store[key]
