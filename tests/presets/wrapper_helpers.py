"""Helpers shared by the wrapper tests: call spies, a counting store, the truth tables.

The truth tables: docs/concurrency.md#truth-tables.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    LocalDict,
)

# The truth tables and rule R (docs/concurrency.md#truth-tables) are shared with the contract suite.
from ..contract.contract_helpers import (  # noqa: F401 - re-exported for the wrapper tests
    ABSENT_CASES,
    CASES,
    CONDITIONS,
    PRESENT_CASES,
    SATISFIED,
    assert_ina_result,
    assert_same_value,
    retrieved,
)

INA = ITEM_NOT_AVAILABLE
VNR = VALUE_NOT_RETRIEVED

KEY = ("dir", "key")
OLDER, CURRENT, NEW = ({"n": n, "items": [n, n + 1], "label": f"v{n}"} for n in range(3))


MODES = {"ALWAYS_RETRIEVE": ALWAYS_RETRIEVE, "NEVER_RETRIEVE": NEVER_RETRIEVE, "IF_ETAG_CHANGED": IF_ETAG_CHANGED}


class CallLog:
    """Records calls made to the methods ``spy_on`` wrapped."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = []

    def names(self) -> list[str]:
        return [name for name, *_ in self.calls]

    def of(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any], Any]]:
        return [(args, kwargs, result) for called, args, kwargs, result in self.calls if called == name]


def spy_on(store: Any, *names: str) -> CallLog:
    """Wrap the named (non-dunder) methods of ``store`` so every call and its result (or the exception
    it raised) is logged."""
    log = CallLog()
    for name in names:
        original = getattr(store, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            try:
                result = _original(*args, **kwargs)
            except Exception as exc:
                log.calls.append((_name, args, kwargs, exc))
                raise
            log.calls.append((_name, args, kwargs, result))
            return result

        setattr(store, name, spy)
    return log


class CountingLocalDict(LocalDict):
    """A LocalDict that counts the values read from it: ``get`` and ``read`` of its store, which every
    read reaches, through this dict or a layer over it (``getitem_calls``, the name of 0.x's tests)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.getitem_calls = 0
        store = self._items
        for name in ("get", "read"):
            original = getattr(store, name)

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.getitem_calls += 1
                return _original(*args, **kwargs)

            setattr(store, name, counted)


def main_etag_of(etag_cache: Any, key: Any) -> str | None:
    """Main's ETag that an ETag cache holds for ``key`` (an entry binds it to its copy's own version:
    docs/concurrency.md#cache-sync-rule), or None if it holds none."""
    entry = etag_cache.get(key)
    return None if entry is None else str(entry).partition("\n")[0]


# --- the cached-contract suite: key states and cache checks ---------------------
def prepare(world: Any, w: Any, case: str, prep: str) -> tuple[Any, Any]:
    """Put KEY into the state ``case`` names; return ``(expected_etag, E0)`` (E0 is main's ETag or INA)."""
    w[KEY] = OLDER
    main = world.open_main()
    stale = main.etag(KEY)
    writer = w if prep == "wrapper" else main
    if case in ABSENT_CASES:
        del writer[KEY]
        return (INA if case == "absent_ina" else stale), INA
    writer[KEY] = CURRENT
    e0 = main.etag(KEY)
    assert e0 != stale
    return {"present_e0": e0, "present_ina": INA, "present_stale": stale}[case], e0


def assert_caches_truthful(world: Any, key: Any = KEY) -> None:
    """A cached value filed under main's current ETag must be main's value (checked without healing reads)."""
    main = world.open_main()
    cached_etag = main_etag_of(world.etag_cache, key)
    if key not in main or cached_etag is None or cached_etag != main.etag(key):
        return
    if key in world.data_cache:
        assert world.data_cache[key] == main[key]


def assert_reads_match_main(world: Any, key: Any = KEY) -> None:
    """A fresh wrapper over the same caches reads exactly what main holds."""
    main = world.open_main()
    w = world.mutable()
    if key in main:
        assert w[key] == main[key]
        assert w.etag(key) == main.etag(key)
    else:
        with pytest.raises(KeyError):
            w[key]
        assert key not in w


def check_after(world: Any) -> None:
    assert_caches_truthful(world)
    assert_reads_match_main(world)


def assert_unchanged(result: Any, satisfied: bool, e0: Any, want_value: Any) -> None:
    assert result.condition_was_satisfied is satisfied
    assert result.actual_etag == e0
    assert result.resulting_etag == e0
    assert_same_value(result.new_value, want_value)
    assert result.value_was_mutated is False


def assert_pickles_unless_in_memory(w: Any) -> None:
    """A wrapper pickles as the stores it is made of; one of them in a process's memory refuses."""
    parts = list(w.get_params().values())
    if any(isinstance(part, LocalDict) for part in parts):
        with pytest.raises(TypeError, match="memory"):
            pickle.dumps(w)
    else:
        clone = pickle.loads(pickle.dumps(w))
        assert type(clone) is type(w) and clone == w
    assert copy.deepcopy(w) == w
