"""Cache coherence of MutableDictCached: outside writes heal on read, validation transfers no value.

Runs on every registered ``world`` (see conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from persidict import ETAG_IS_THE_SAME, NEVER_RETRIEVE, MutableDictCached

from .wrapper_helpers import (
    CURRENT,
    KEY,
    NEW,
    OLDER,
    VNR,
    check_after,
    main_etag_of,
    spy_on,
)


# --- cache coherence ----------------------------------------------------------------------
def _count_main_getitem(monkeypatch: pytest.MonkeyPatch, main: Any) -> list[Any]:
    """Count ``main[key]`` calls (class-level patch, filtered to this one object)."""
    calls: list[Any] = []
    original = type(main).__getitem__

    def counting(self: Any, key: Any) -> Any:
        if self is main:
            calls.append(key)
        return original(self, key)

    monkeypatch.setattr(type(main), "__getitem__", counting)
    return calls


STORE_API = ("read", "get", "stat", "exists", "write", "delete", "read_many", "write_many", "delete_many",
             "list", "count")
"""The versioned-store protocol the cache layer uses to reach main (docs/architecture.md#the-store-protocol)."""


def test_unchanged_value_costs_one_conditional_read_without_value(world, monkeypatch):
    w = world.mutable()
    w[KEY] = CURRENT
    log = spy_on(w.main_dict._items, *STORE_API)
    getitem_calls = _count_main_getitem(monkeypatch, w.main_dict)
    for _ in range(3):
        assert w[KEY] == CURRENT
    assert log.names() == ["read"] * 3 and getitem_calls == []
    for _args, kwargs, (value, version) in log.of("read"):
        assert kwargs["unless_etag"] == main_etag_of(world.etag_cache, KEY) == version.etag
        assert value is VNR  # nothing was transferred


@pytest.mark.parametrize("outside", ["overwrite", "delete", "delete_and_recreate"])
def test_outside_writes_are_healed_on_read(world, outside):
    w = world.mutable()
    w[KEY] = OLDER
    assert w[KEY] == OLDER
    other = world.open_main()  # a second object (another process) writing to main directly
    if outside == "overwrite":
        other[KEY] = CURRENT
    elif outside == "delete":
        del other[KEY]
    else:
        del other[KEY]
        other[KEY] = CURRENT
    if KEY in other:
        assert main_etag_of(world.etag_cache, KEY) != other.etag(KEY)  # the cached ETag is stale until the next read
    log = spy_on(w.main_dict._items, *STORE_API)
    if outside == "delete":
        with pytest.raises(KeyError):
            w[KEY]
        assert KEY not in world.data_cache and KEY not in world.etag_cache
    else:
        assert w[KEY] == CURRENT
        [(_, _, (value, _version))] = log.of("read")
        assert value == CURRENT  # one read: validation and fetch together
    assert log.names() == ["read"]
    if outside != "delete":
        assert world.data_cache[KEY] == CURRENT and main_etag_of(world.etag_cache, KEY) == other.etag(KEY)
        assert w.etag(KEY) == other.etag(KEY)
    check_after(world)


def test_two_wrappers_on_one_main_stay_coherent(world):
    # Each wrapper has its own caches, as two machines would.
    first = world.mutable()
    data_cache, etag_cache = world.new_caches(name="second-cache")
    second = MutableDictCached(main_dict=world.open_main(), data_cache=data_cache, etag_cache=etag_cache)
    first[KEY] = OLDER
    assert second[KEY] == OLDER
    second[KEY] = CURRENT
    assert first[KEY] == CURRENT
    first.transform_item(KEY, transformer=lambda value: NEW)
    assert second[KEY] == NEW
    del second[KEY]
    assert KEY not in first and first.get(KEY) is None


def test_never_retrieve_failure_leaves_stale_caches_alone(world):
    w = world.mutable()
    w[KEY] = OLDER
    cached_etag = main_etag_of(world.etag_cache, KEY)
    world.open_main()[KEY] = CURRENT
    r = w.set_item_if(KEY, value=NEW, condition=ETAG_IS_THE_SAME, expected_etag=cached_etag,
                      retrieve_value=NEVER_RETRIEVE)
    assert not r.condition_was_satisfied and r.new_value is VNR
    assert world.data_cache[KEY] == OLDER and main_etag_of(world.etag_cache, KEY) == cached_etag  # untouched, stale
    assert w[KEY] == CURRENT  # and healed by the next read
    assert main_etag_of(world.etag_cache, KEY) == world.open_main().etag(KEY)


def test_failed_conditional_write_caches_the_real_value(world):
    w = world.mutable()
    w[KEY] = OLDER
    stale = w.etag(KEY)
    world.open_main()[KEY] = CURRENT
    r = w.set_item_if(KEY, value=NEW, condition=ETAG_IS_THE_SAME, expected_etag=stale)
    assert not r.condition_was_satisfied and r.new_value == CURRENT
    real = world.open_main().etag(KEY)
    assert r.actual_etag == real
    assert world.data_cache[KEY] == CURRENT and main_etag_of(world.etag_cache, KEY) == real  # never NEW
    assert world.open_main()[KEY] == CURRENT
