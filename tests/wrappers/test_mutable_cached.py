"""MutableDictCached (docs/concurrency.md#cache-sync-rule): what the contract suite does not already cover."""

from __future__ import annotations

from typing import Any

import pytest

from persidict import (
    ANY_ETAG,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    NEVER_RETRIEVE,
    ConditionalOperationResult,
    EmptyDict,
    LocalDict,
)
from persidict.wrappers import MutableDictCached

from .wrapper_helpers import INA, VNR, assert_ina_result, spy_on


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
def test_setitem_is_one_unconditional_write_and_records_its_etag():
    w = make()
    log = spy_on(w.main_dict, "set_item_if", "get_item_if", "etag")
    w["k"] = 1
    [(_args, kwargs, result)] = log.of("set_item_if")
    assert kwargs == {"value": 1, "condition": ANY_ETAG, "expected_etag": INA, "retrieve_value": NEVER_RETRIEVE}
    assert log.names() == ["set_item_if"]
    assert w.data_cache["k"] == 1 and w.etag_cache["k"] == result.resulting_etag == w.main_dict.etag("k")


def test_delete_purges_and_a_missing_key_leaves_caches_alone():
    w = make()
    w["k"] = 1
    del w["k"]
    assert "k" not in w.data_cache and "k" not in w.etag_cache
    w.data_cache["ghost"] = "stale"
    w.etag_cache["ghost"] = "e"
    with pytest.raises(KeyError):
        del w["ghost"]
    assert w.data_cache["ghost"] == "stale" and w.etag_cache["ghost"] == "e"
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
    log = spy_on(w.main_dict, "get_item_if")
    assert w["k"] == {"v": 1}
    [(_args, kwargs, result)] = log.of("get_item_if")
    assert kwargs["condition"] is ETAG_HAS_CHANGED and kwargs["expected_etag"] is INA
    assert result.new_value == {"v": 1}
    assert w.data_cache["k"] == {"v": 1} and w.etag_cache["k"] == w.main_dict.etag("k")


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
    log = spy_on(w.main_dict, "get_item_if")
    assert w["k"] == 5 and w["k"] == 5
    first, second = log.of("get_item_if")
    assert first[1]["condition"] is ETAG_HAS_CHANGED and first[1]["expected_etag"] is INA
    assert first[2].new_value == 5
    assert second[2].new_value is VNR


def test_etag_may_be_stale_until_the_next_read():
    w = make()
    w["k"] = 1
    old = w.etag("k")
    w.main_dict["k"] = 2
    assert w.etag("k") == old != w.main_dict.etag("k")
    assert w["k"] == 2 and w.etag("k") == w.main_dict.etag("k")


def test_etag_of_an_uncached_key_is_fetched_and_cached():
    w = make()
    w.main_dict["k"] = 1
    truth = w.main_dict.etag("k")
    log = spy_on(w.main_dict, "etag")
    assert w.etag("k") == truth == w.etag_cache["k"]
    assert w.etag("k") == truth
    assert len(log.of("etag")) == 1  # the second call answered from the cache
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


# --- the sync rule, case by case ----------------------------------------------------------------
class _Scripted(LocalDict):
    """A main dict whose get_item_if returns a scripted result (to reach every branch of the rule)."""

    scripted: ConditionalOperationResult[Any] | None = None

    def get_item_if(self, key: Any, **kwargs: Any) -> Any:
        return self.scripted


def _scripted_wrapper() -> MutableDictCached:
    w = MutableDictCached(main_dict=_Scripted(), data_cache=LocalDict(), etag_cache=LocalDict())
    w.data_cache["k"] = "cached"
    w.etag_cache["k"] = "e1"
    return w


def _sync_with(actual: Any, resulting: Any, value: Any) -> MutableDictCached:
    w = _scripted_wrapper()
    w.main_dict.scripted = ConditionalOperationResult(True, actual, resulting, value)
    w.get_item_if("k", condition=ANY_ETAG, expected_etag=INA)
    return w


def test_sync_rule_ina_drops_both_caches():
    for result in ((INA, INA, INA), ("e1", INA, INA), ("e1", "e1", INA)):
        w = _sync_with(*result)
        assert "k" not in w.data_cache and "k" not in w.etag_cache


def test_sync_rule_vnr_with_proven_mutation_drops_data_and_records_the_etag():
    w = _sync_with("e1", "e2", VNR)
    assert "k" not in w.data_cache and w.etag_cache["k"] == "e2"


def test_sync_rule_vnr_without_mutation_leaves_caches_alone():
    w = _sync_with("e9", "e9", VNR)  # even when they look stale
    assert w.data_cache["k"] == "cached" and w.etag_cache["k"] == "e1"


def test_sync_rule_real_value_refreshes_both():
    w = _sync_with("e1", "e3", "fresh")
    assert w.data_cache["k"] == "fresh" and w.etag_cache["k"] == "e3"


def test_transform_item_syncs_without_an_actual_etag():
    w = make()
    w["k"] = 1
    result = w.transform_item("k", transformer=lambda current: current * 10)
    assert result.new_value == 10 and w.data_cache["k"] == 10 and w.etag_cache["k"] == result.resulting_etag


# --- any PersiDict can be main ----------------------------------------------------------------------
def test_over_an_empty_dict_main():
    w = MutableDictCached(main_dict=EmptyDict(), data_cache=LocalDict(), etag_cache=LocalDict())
    w["k"] = 1  # swallowed by main: the caches must not keep it either
    assert "k" not in w and "k" not in w.data_cache and "k" not in w.etag_cache
    with pytest.raises(KeyError):
        w["k"]
    assert len(w) == 0
