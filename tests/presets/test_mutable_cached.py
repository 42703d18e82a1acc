"""MutableDictCached (docs/concurrency.md#cache-sync-rule): what the contract suite does not already cover."""

from __future__ import annotations

from typing import Any

import pytest

from persidict import (
    ETAG_IS_THE_SAME,
    EmptyDict,
    LocalDict,
    MutableDictCached,
    NonEmptySafeStrTuple,
)
from persidict.protocol.versions import ANY

from .wrapper_helpers import VNR, assert_ina_result, main_etag_of, spy_on


def make(**main_options: Any) -> MutableDictCached:
    return MutableDictCached(main_dict=LocalDict(**main_options), data_cache=LocalDict(),
                             etag_cache=LocalDict(serialization_format="etag", base_class_for_values=str))


# --- construction ---------------------------------------------------------------------
@pytest.mark.parametrize("position", ["main_dict", "data_cache", "etag_cache"])
@pytest.mark.parametrize("bad", [{}, None, "x", LocalDict])
def test_arguments_must_be_persidicts(position, bad):
    args = {"main_dict": LocalDict(), "data_cache": LocalDict(), "etag_cache": LocalDict(), position: bad}
    with pytest.raises(TypeError):
        MutableDictCached(**args)


@pytest.mark.parametrize("position", ["main_dict", "data_cache", "etag_cache"])
def test_no_argument_may_be_append_only(position):
    args = {"main_dict": LocalDict(), "data_cache": LocalDict(), "etag_cache": LocalDict(),
            position: LocalDict(append_only=True)}
    with pytest.raises(ValueError):
        MutableDictCached(**args)


def test_wrapper_takes_its_settings_from_main():
    w = make(serialization_format="json", base_class_for_values=dict)
    assert (w.append_only, w.base_class_for_values, w.serialization_format) == (False, dict, "json")


# --- writes keep the caches exact --------------------------------------------------------------
STORE_API = ("read", "get", "stat", "exists", "write", "delete")


def test_setitem_is_one_unconditional_write_and_records_its_etag():
    w = make()
    log = spy_on(w.main_dict._items, *STORE_API)
    w["k"] = 1
    [(args, _kwargs, etag)] = log.of("write")
    assert args[1:] == (1, ANY)
    assert log.names() == ["write"]
    assert w.data_cache["k"] == 1 and main_etag_of(w.etag_cache, "k") == etag == w.main_dict.etag("k")


def test_delete_purges_and_a_missing_key_purges_ghosts():
    w = make()
    w["k"] = 1
    del w["k"]
    assert "k" not in w.data_cache and "k" not in w.etag_cache
    w.data_cache["ghost"] = "stale"
    w.etag_cache["ghost"] = "e"
    with pytest.raises(KeyError):
        del w["ghost"]  # main says the key is absent: its copies go too
    assert "ghost" not in w.data_cache and "ghost" not in w.etag_cache
    assert w.discard("ghost") is False


def test_ghosts_are_invisible_to_in_len_and_iteration():
    w = make()
    w.data_cache["ghost"] = 1
    w.etag_cache["ghost"] = "e"
    assert "ghost" not in w and len(w) == 0 and list(w.items()) == []
    with pytest.raises(KeyError):
        w["ghost"]
    assert "ghost" not in w.data_cache and "ghost" not in w.etag_cache  # purged by the failed read


def test_discard_if_on_a_missing_key_purges_ghosts():
    w = make()
    w.data_cache["ghost"] = 1
    w.etag_cache["ghost"] = "e"
    assert_ina_result(w.discard_if("ghost", condition=ETAG_IS_THE_SAME, expected_etag="e"), False)
    assert "ghost" not in w.data_cache and "ghost" not in w.etag_cache


# --- reads -------------------------------------------------------------------------------------
def test_etag_cached_without_data_means_a_full_fetch():
    w = make()
    w["k"] = {"v": 1}
    w.data_cache.discard("k")
    log = spy_on(w.main_dict._items, *STORE_API)
    assert w["k"] == {"v": 1}
    [(_args, kwargs, (value, _version))] = log.of("read")
    assert kwargs["unless_etag"] is None and value == {"v": 1}  # one request, with the value
    assert log.names() == ["read"]
    assert w.data_cache["k"] == {"v": 1} and main_etag_of(w.etag_cache, "k") == w.main_dict.etag("k")


def test_etag_cached_without_data_on_a_deleted_key():
    w = make()
    w["k"] = 1
    w.data_cache.discard("k")
    del w.main_dict["k"]
    with pytest.raises(KeyError):
        w["k"]
    assert "k" not in w.etag_cache


def test_no_cached_etag_means_a_full_fetch():
    w = make()
    w.main_dict["k"] = 5
    log = spy_on(w.main_dict._items, *STORE_API)
    assert w["k"] == 5 and w["k"] == 5
    first, second = log.of("read")
    assert first[1]["unless_etag"] is None and first[2][0] == 5
    assert second[1]["unless_etag"] == main_etag_of(w.etag_cache, "k") and second[2][0] is VNR


def test_etag_and_timestamp_always_ask_main():
    w = make()
    w["k"] = 1
    w.main_dict["k"] = 2  # another writer
    assert w.etag("k") == w.main_dict.etag("k") != main_etag_of(w.etag_cache, "k")  # the copy is stale until read
    assert w.timestamp("k") == w.main_dict.timestamp("k")
    assert w["k"] == 2 and main_etag_of(w.etag_cache, "k") == w.main_dict.etag("k")
    with pytest.raises(KeyError):
        w.etag("missing")
    assert "missing" not in w.etag_cache


def test_etag_never_vouches_for_a_value_it_was_not_read_with():
    # A value cached without an ETag (an interrupted update, or a shared cache) must not
    # become "validated" when etag() caches main's current ETag.
    w = make()
    w.main_dict["k"] = "new"
    w.data_cache["k"] = "old"
    assert w.etag("k") == w.main_dict.etag("k")
    assert w["k"] == "new"


# --- what a read of main teaches the caches ------------------------------------------------------
def test_a_read_that_finds_the_key_absent_drops_both_copies():
    w = make()
    w["k"] = "cached"
    del w.main_dict["k"]
    with pytest.raises(KeyError):
        w["k"]
    assert "k" not in w.data_cache and "k" not in w.etag_cache


def test_an_unchanged_read_leaves_the_copies_alone():
    w = make()
    w["k"] = "cached"
    etag = main_etag_of(w.etag_cache, "k")
    w.data_cache.transform_item("k", transformer=lambda value: value)  # a new local version, same value
    assert w["k"] == "cached" and main_etag_of(w.etag_cache, "k") == etag


def test_a_changed_value_refreshes_both_copies():
    w = make()
    w["k"] = "cached"
    w.main_dict["k"] = "fresh"
    assert w.get_with_etag("k").new_value == "fresh"
    assert w.data_cache["k"] == "fresh" and main_etag_of(w.etag_cache, "k") == w.main_dict.etag("k")


def test_transform_item_syncs_without_an_actual_etag():
    w = make()
    w["k"] = 1
    result = w.transform_item("k", transformer=lambda current: current * 10)
    assert result.new_value == 10 and w.data_cache["k"] == 10
    assert main_etag_of(w.etag_cache, "k") == result.resulting_etag


# --- any PersiDict can be main ----------------------------------------------------------------------
def test_over_an_empty_dict_main():
    w = MutableDictCached(main_dict=EmptyDict(), data_cache=LocalDict(),
                          etag_cache=LocalDict(serialization_format="etag", base_class_for_values=str))
    w["k"] = 1  # swallowed by main: never served from the copies
    assert "k" not in w
    with pytest.raises(KeyError):
        w["k"]
    assert "k" not in w.data_cache and "k" not in w.etag_cache and len(w) == 0


def test_interleaved_refreshes_of_one_copy_never_serve_a_stale_value():
    # Two readers refresh the copies of one key at once: one writes its value last, the other its ETag.
    w = make()
    w["k"] = "old"
    old_etag = w.main_dict.etag("k")
    w.main_dict["k"] = "new"  # another writer
    new_etag = w.main_dict.etag("k")
    values, etags = w._store.values, w._store.etags
    new_copy = values.write(NonEmptySafeStrTuple("k"), "new")
    old_copy = values.write(NonEmptySafeStrTuple("k"), "old")  # the slower reader's value lands last...
    etags.write(NonEmptySafeStrTuple("k"), f"{old_etag}\n{old_copy}")
    etags.write(NonEmptySafeStrTuple("k"), f"{new_etag}\n{new_copy}")  # ...and the faster one's ETag
    assert w.data_cache["k"] == "old" and main_etag_of(w.etag_cache, "k") == new_etag
    assert w["k"] == "new"  # the pair does not belong together: fetched from main, never "old"
    assert w.data_cache["k"] == "new"
