"""AppendOnlyDictCached (docs/concurrency.md#trusted-cache): a trusted read-through cache over an AO main."""

from __future__ import annotations

import copy

import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    AppendOnlyDictCached,
    LocalDict,
    MutationPolicyError,
)

from .wrapper_helpers import INA, VNR, assert_ina_result, assert_pickles_unless_in_memory


# --- construction ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [{}, None, "x", LocalDict])
def test_arguments_must_be_persidicts(bad):
    with pytest.raises(TypeError):
        AppendOnlyDictCached(main_dict=bad, data_cache=LocalDict(append_only=True))
    with pytest.raises(TypeError):
        AppendOnlyDictCached(main_dict=LocalDict(append_only=True), data_cache=bad)


def test_both_must_be_append_only():
    with pytest.raises(ValueError):
        AppendOnlyDictCached(main_dict=LocalDict(), data_cache=LocalDict(append_only=True))
    with pytest.raises(ValueError):
        AppendOnlyDictCached(main_dict=LocalDict(append_only=True), data_cache=LocalDict())


def test_value_classes_must_match():
    with pytest.raises(ValueError):
        AppendOnlyDictCached(main_dict=LocalDict(append_only=True, base_class_for_values=int),
                             data_cache=LocalDict(append_only=True))


def test_wrapper_takes_its_settings_from_main():
    main = LocalDict(append_only=True, base_class_for_values=str, serialization_format="txt")
    w = AppendOnlyDictCached(main_dict=main,
                             data_cache=LocalDict(append_only=True, base_class_for_values=str))
    assert (w.append_only, w.base_class_for_values, w.serialization_format) == (True, str, "txt")
    with pytest.raises(TypeError):
        w["n"] = 1


# --- the cache is trusted for reads; listing comes from main ----------------------------------
def test_cache_hits_are_trusted(world):
    w = world.append_only()
    w.data_cache["cache_only"] = "ghost"
    assert "cache_only" in w and w["cache_only"] == "ghost"  # main is not asked
    assert len(w) == 0 and list(w.keys()) == [] and not w  # listing: main only
    with pytest.raises(KeyError):
        w.etag("cache_only")
    with pytest.raises(KeyError):
        w.timestamp("cache_only")


def test_misses_are_copied_into_the_cache(world):
    w = world.append_only()
    main = w.main_dict
    main["a", "b"] = 1
    assert ("a", "b") not in w.data_cache
    assert ("a", "b") in w and ("a", "b") not in w.data_cache  # `in` does not copy
    assert w["a", "b"] == 1 and w.data_cache["a", "b"] == 1
    assert w["a", "b"] == 1
    with pytest.raises(KeyError):
        w["missing"]
    assert "missing" not in w


def test_len_iteration_timestamp_and_etag_come_from_main(world):
    w = world.append_only()
    w["x"] = 1
    w["y", "z"] = 2
    main = w.main_dict
    assert len(w) == 2 and dict(w.items()) == {("x",): 1, ("y", "z"): 2}
    assert w.etag("x") == main.etag("x") and w.timestamp("x") == main.timestamp("x")
    assert sorted(w._generic_iter({"timestamps"})) == sorted(ts for _, ts in main.keys_and_timestamps())


# --- writes ---------------------------------------------------------------------------------
def test_setitem_inserts_into_main_and_cache(world):
    w = world.append_only()
    w["k"] = "v"
    assert w.main_dict["k"] == "v" and w.data_cache["k"] == "v"
    with pytest.raises(MutationPolicyError) as info:
        w["k"] = "other"
    assert info.value.policy == "append-only"
    assert w.main_dict["k"] == "v" and w.data_cache["k"] == "v" and w["k"] == "v"


def test_jokers(world):
    w = world.append_only()
    w["k"] = KEEP_CURRENT
    assert "k" not in w.main_dict
    w["k"] = 1
    w["k"] = KEEP_CURRENT
    assert w["k"] == 1
    for key in ("k", "missing"):
        with pytest.raises(MutationPolicyError):
            w[key] = DELETE_CURRENT
    assert w["k"] == 1


def test_removals_are_refused_and_the_rest_behaves_as_on_any_append_only_store(world):
    w = world.append_only()
    w["k"] = 1
    refused = [
        lambda: w.__delitem__("k"),
        lambda: w.__delitem__("missing"),
        lambda: w.discard_if("k", condition=ANY_ETAG, expected_etag=INA),
        lambda: w.discard("k"), lambda: w.pop("k"), w.popitem, w.clear,
    ]
    for call in refused:
        with pytest.raises(MutationPolicyError) as info:
            call()
        assert info.value.policy == "append-only"
    # What never replaces or deletes is a result, as on every append-only store (docs/concurrency.md).
    assert_ina_result(w.discard_if("missing", condition=ETAG_IS_THE_SAME, expected_etag="nothing"), False)
    assert w.transform_item("k", transformer=lambda current: KEEP_CURRENT).new_value == 1
    assert w.transform_item("missing", transformer=lambda current: 1).new_value == 1
    assert w["k"] == 1 and w.main_dict["missing"] == 1


# --- conditional operations delegate to main, the cache learns ------------------------------------
def test_failed_keep_current_caches_the_fetched_value(world):
    w = world.append_only()
    w.main_dict["k"] = "v"
    r = w.set_item_if("k", value=KEEP_CURRENT, condition=ETAG_IS_THE_SAME, expected_etag="mismatch")
    assert not r.condition_was_satisfied and r.new_value == "v"
    assert w.data_cache["k"] == "v"


def test_failed_insert_does_not_touch_the_cache(world):
    w = world.append_only()
    w.main_dict["k"] = "v"
    r = w.setdefault_if("k", default_value="other", condition=ANY_ETAG, expected_etag=INA,
                        retrieve_value=NEVER_RETRIEVE)
    assert r.new_value is VNR and not r.value_was_mutated
    r = w.set_item_if("k", value="other", condition=ETAG_IS_THE_SAME, expected_etag=INA,
                      retrieve_value=NEVER_RETRIEVE)
    assert not r.condition_was_satisfied and r.new_value is VNR  # AO insert-if-absent: no exception
    assert "k" not in w.data_cache and w.main_dict["k"] == "v"


def test_satisfied_overwrite_raises_and_changes_nothing(world):
    w = world.append_only()
    w["k"] = "v"
    etag = w.etag("k")
    for condition, expected in ((ANY_ETAG, INA), (ETAG_IS_THE_SAME, etag), (ETAG_HAS_CHANGED, INA)):
        with pytest.raises(MutationPolicyError):
            w.set_item_if("k", value="new", condition=condition, expected_etag=expected)
        with pytest.raises(MutationPolicyError):
            w.set_item_if("k", value=DELETE_CURRENT, condition=condition, expected_etag=expected)
    assert w["k"] == "v" and w.main_dict["k"] == "v" and w.etag("k") == etag


def test_successful_inserts_and_reads_fill_the_cache(world):
    w = world.append_only()
    r = w.set_item_if("a", value=1, condition=ETAG_IS_THE_SAME, expected_etag=INA)
    assert r.condition_was_satisfied and r.new_value == 1 and r.resulting_etag == w.etag("a")
    assert w.data_cache["a"] == 1
    r = w.setdefault_if("b", default_value=2, condition=ANY_ETAG, expected_etag=INA)
    assert r.value_was_mutated and w.data_cache["b"] == 2
    w.main_dict["c"] = 3
    r = w.get_item_if("c", condition=ANY_ETAG, expected_etag=INA, retrieve_value=ALWAYS_RETRIEVE)
    assert r.new_value == 3 and w.data_cache["c"] == 3
    w.main_dict["d"] = 4
    r = w.get_item_if("d", condition=ANY_ETAG, expected_etag=w.etag("d"))
    assert r.new_value is VNR and "d" not in w.data_cache
    assert_ina_result(w.get_item_if("none", condition=ANY_ETAG, expected_etag=INA), True)
    assert_ina_result(w.set_item_if("none", value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=INA), True)
    assert w.get_with_etag("d").new_value == 4 and w.data_cache["d"] == 4
    assert w.setdefault("e", 5) == 5 and w.setdefault("e", 6) == 5


def test_errors_pass_through_unchanged(world):
    w = world.append_only()
    with pytest.raises(TypeError):
        w.get_item_if("k", condition=ANY_ETAG, expected_etag=INA, retrieve_value="always")
    with pytest.raises(ValueError):
        w.set_item_if("k", value=1, condition="any", expected_etag=INA)
    with pytest.raises(TypeError):
        w.setdefault_if("k", default_value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    for bad in ("", ("a", ".."), 12):
        with pytest.raises((TypeError, ValueError)):
            w[bad] = 1
        with pytest.raises((TypeError, ValueError)):
            bad in w  # noqa: B015


# --- params, subdicts, pickling -----------------------------------------------------------------------
def test_params_copy_subdict_and_pickling(world):
    w = world.append_only()
    params = w.get_params()
    assert list(params) == ["data_cache", "main_dict"]
    assert params["main_dict"] is w.main_dict and params["data_cache"] is w.data_cache
    rebuilt = AppendOnlyDictCached(**params)
    assert rebuilt.get_params() == params and rebuilt == w and copy.copy(w) == w
    w["p", "k"] = 1
    sub = w.get_subdict("p")
    assert isinstance(sub, AppendOnlyDictCached) and sub["k"] == 1 and len(sub) == 1
    sub["j"] = 2
    assert w["p", "j"] == 2 and w.data_cache["p", "j"] == 2
    assert set(w.subdicts()) == {"p"}
    assert_pickles_unless_in_memory(w)
