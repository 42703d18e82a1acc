"""The dict API and transform_item through MutableDictCached, on every registered ``world``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from persidict import (
    ANY_ETAG,
    DELETE_CURRENT,
    KEEP_CURRENT,
    ConcurrencyConflictError,
    MutableDictCached,
    NonEmptySafeStrTuple,
    OperationResult,
    SafeStrTuple,
)

from .wrapper_helpers import (
    CURRENT,
    INA,
    KEY,
    NEW,
    OLDER,
    assert_pickles_unless_in_memory,
    check_after,
    main_etag_of,
)


# --- transform_item -------------------------------------------------------------------
def test_transform_item_increments_and_caches(world):
    w = world.mutable()
    seen: list[Any] = []

    def increment(current: Any) -> Any:
        seen.append(current)
        return 1 if current is INA else current + 1

    first = w.transform_item(KEY, transformer=increment)
    second = w.transform_item(KEY, transformer=increment)
    assert seen == [INA, 1]
    assert isinstance(second, OperationResult)
    assert second.new_value == 2 and second.resulting_etag == world.open_main().etag(KEY) != first.resulting_etag
    assert world.data_cache[KEY] == 2 and main_etag_of(world.etag_cache, KEY) == second.resulting_etag
    check_after(world)


def test_transform_item_keep_and_delete(world):
    w = world.mutable()
    assert w.transform_item(KEY, transformer=lambda current: KEEP_CURRENT) == OperationResult(INA, INA)
    assert w.transform_item(KEY, transformer=lambda current: DELETE_CURRENT) == OperationResult(INA, INA)
    w[KEY] = CURRENT
    e0 = w.etag(KEY)
    assert w.transform_item(KEY, transformer=lambda current: KEEP_CURRENT) == OperationResult(e0, CURRENT)
    assert w.transform_item(KEY, transformer=lambda current: DELETE_CURRENT) == OperationResult(INA, INA)
    assert KEY not in world.open_main()
    assert KEY not in world.data_cache and KEY not in world.etag_cache
    check_after(world)


def test_transform_item_sees_outside_value_and_retry_budget(world):
    w = world.mutable()
    w[KEY] = 1
    world.open_main()[KEY] = 10  # the cached 1 is now stale: transform must start from 10
    assert w.transform_item(KEY, transformer=lambda current: current + 1).new_value == 11
    calls = []

    def interfering(current: Any) -> Any:
        calls.append(current)
        world.open_main()[KEY] = len(calls) * 100  # someone else writes every time
        return current + 1

    with pytest.raises(ConcurrencyConflictError) as info:
        w.transform_item(KEY, transformer=interfering, n_retries=1)
    assert info.value.attempts == 2 and len(calls) == 2
    with pytest.raises(ValueError):
        w.transform_item(KEY, transformer=lambda c: c, n_retries=-1)
    with pytest.raises(TypeError):
        w.transform_item(KEY, transformer=lambda c: c, n_retries="bad")
    check_after(world)


# --- the dict API ---------------------------------------------------------------------
def test_basic_mapping(world):
    w = world.mutable()
    assert len(w) == 0 and not w and KEY not in w
    w[KEY] = CURRENT
    w["flat"] = OLDER
    assert w[KEY] == CURRENT and w["dir", "key"] == CURRENT and w[["dir", "key"]] == CURRENT
    assert w[SafeStrTuple("dir", "key")] == CURRENT and w["flat"] == OLDER
    assert len(w) == 2 and bool(w) and KEY in w
    assert sorted(map(tuple, w)) == [("dir", "key"), ("flat",)]
    assert all(isinstance(k, SafeStrTuple) for k in w.keys())
    assert dict(w.items()) == {("dir", "key"): CURRENT, ("flat",): OLDER}
    assert sorted(v["n"] for v in w.values()) == [0, 1]
    assert w == {("dir", "key"): CURRENT, ("flat",): OLDER} and w == world.open_main()
    assert w.get("missing", "dflt") == "dflt" and w.get(KEY) == CURRENT
    assert w.random_key() in {("dir", "key"), ("flat",)}
    assert len(list(w.keys_and_timestamps())) == 2 and len(list(w.items_and_timestamps())) == 2
    assert {type(ts) for ts in w._generic_iter({"timestamps"})} == {float}
    assert w.timestamp(KEY) == world.open_main().timestamp(KEY)
    assert set(w.oldest_keys()) == set(w.newest_keys()) == {("dir", "key"), ("flat",)}
    assert w.oldest_keys(max_n=0) == [] and len(w.newest_values(max_n=1)) == 1


def test_missing_keys_and_bad_keys(world):
    w = world.mutable()
    with pytest.raises(KeyError) as info:
        w["missing"]
    assert isinstance(info.value.args[0], NonEmptySafeStrTuple)
    for call in (lambda: w.timestamp("missing"), lambda: w.etag("missing")):
        with pytest.raises(KeyError):
            call()
    with pytest.raises(KeyError):
        del w["missing"]
    for bad in ("", "a/b", ("..",), 123):
        with pytest.raises((TypeError, ValueError)):
            w[bad] = 1
        with pytest.raises((TypeError, ValueError)):
            bad in w  # noqa: B015
        with pytest.raises((TypeError, ValueError)):
            w.get_item_if(bad, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(TypeError):
        w.get_item_if(KEY, condition=ANY_ETAG, expected_etag=INA, retrieve_value="always")
    with pytest.raises(ValueError):
        w.set_item_if(KEY, value=1, condition="any", expected_etag=INA)


def test_deletion_family(world):
    w = world.mutable()
    w.update({"a": 1, "b": 2, "c": 3, "d": 4})
    del w["a"]
    assert w.discard("b") is True and w.discard("b") is False
    assert w.delete_if_exists("c") is True
    assert w.pop("d") == 4 and w.pop("d", "dflt") == "dflt"
    with pytest.raises(KeyError):
        w.pop("d")
    w["e"] = 5
    assert w.popitem() == (("e",), 5)
    with pytest.raises(KeyError):
        w.popitem()
    w.update([("f", 6), ("g", 7)])
    w.clear()
    assert len(w) == 0 and len(world.open_main()) == 0
    assert len(world.data_cache) == 0 and len(world.etag_cache) == 0


def test_jokers_setdefault_update(world):
    w = world.mutable()
    w[KEY] = KEEP_CURRENT
    assert KEY not in w
    w[KEY] = CURRENT
    e0 = w.etag(KEY)
    w[KEY] = KEEP_CURRENT
    assert w.etag(KEY) == e0 == world.open_main().etag(KEY)
    w[KEY] = DELETE_CURRENT
    assert KEY not in w
    w[KEY] = DELETE_CURRENT  # silent on a missing key
    assert w.setdefault(KEY, CURRENT) is CURRENT and w.setdefault(KEY, NEW) == CURRENT
    assert w.setdefault("none") is None and w["none"] is None
    with pytest.raises(TypeError):
        w.setdefault("x", KEEP_CURRENT)
    with pytest.raises(TypeError):
        w.setdefault_if("x", default_value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    result = w.__ior__({"u": 1})
    assert result is w and w["u"] == 1
    with pytest.raises(TypeError):
        w |= [("v", 2)]
    assert w.update(x=1) is None and w["x"] == 1


def test_values_are_type_checked(world):
    typed = world.open_main(base_class_for_values=int)
    w = MutableDictCached(main_dict=typed, data_cache=world.data_cache, etag_cache=world.etag_cache)
    assert w.base_class_for_values is int
    w["n"] = True  # a subclass passes
    with pytest.raises(TypeError):
        w["s"] = "text"
    with pytest.raises(TypeError):
        w["p"] = world.open_main()
    world.open_main()["bad"] = "text"  # untyped writer
    with pytest.raises(TypeError, match="int"):
        w["bad"]


def test_etag_behaviour(world):
    w = world.mutable()
    w[KEY] = CURRENT
    e0 = w.etag(KEY)
    assert isinstance(e0, str) and e0 and e0 == w.etag(KEY) == world.open_main().etag(KEY)
    w["other"] = OLDER
    assert w.etag(KEY) == e0  # independent per key
    w[KEY] = NEW
    assert w.etag(KEY) != e0 and w.etag(KEY) == world.open_main().etag(KEY)


def test_subdicts(world):
    w = world.mutable()
    sub = w.get_subdict("dir")
    assert isinstance(sub, MutableDictCached) and len(sub) == 0
    w[KEY] = CURRENT
    assert sub["key"] == CURRENT
    sub["other"] = OLDER
    assert w["dir", "other"] == OLDER and world.open_main()["dir", "other"] == OLDER
    world.open_main()["dir", "key"] = NEW  # outside write is healed through the subdict
    assert sub["key"] == NEW
    del sub["other"]
    assert ("dir", "other") not in w
    assert set(w.subdicts()) == {"dir"}
    assert len(w.get_subdict("nothing_here")) == 0
    assert len(w.get_subdict([])) == len(w)


def test_params_copy_and_pickling(world):
    w = world.mutable()
    params = w.get_params()
    assert list(params) == ["data_cache", "etag_cache", "main_dict"]
    assert params["data_cache"] is world.data_cache and params["etag_cache"] is world.etag_cache
    twin = copy.copy(w)
    assert type(twin) is MutableDictCached and twin is not w and twin == w
    w[KEY] = CURRENT
    assert twin[KEY] == CURRENT
    assert repr(w).startswith("MutableDictCached(data_cache=")
    assert_pickles_unless_in_memory(w)
