"""append_only=True: inserts work, every mutation of an existing item is refused (3.3, 4.6)."""

from __future__ import annotations

import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    KEEP_CURRENT,
    MutationPolicyError,
)

from .contract_helpers import INA, VNR, next_value, plain_value, store_options


@pytest.fixture
def ao(make_dict):
    d = make_dict(append_only=True)
    d["k"] = plain_value(1)
    return d


def _assert_intact(ao, raw_bytes, before):
    assert (ao["k"], ao.etag("k"), raw_bytes(ao, "k")) == before


@pytest.fixture
def before(ao, raw_bytes):
    return ao["k"], ao.etag("k"), raw_bytes(ao, "k")


def test_flag(make_dict):
    assert make_dict(append_only=True).append_only is True
    assert make_dict().append_only is False
    with pytest.raises(AttributeError):
        make_dict().append_only = True


def test_insert_works_and_overwrite_is_refused(ao, raw_bytes, before):
    ao["new"] = plain_value(2)
    assert ao["new"] == plain_value(2)
    with pytest.raises(MutationPolicyError) as info:
        ao["k"] = plain_value(2)
    assert info.value.policy == "append-only"
    assert str(info.value) == "append-only"
    assert isinstance(info.value, TypeError)
    with pytest.raises(MutationPolicyError):
        ao["k"] = plain_value(1)  # even with an equal value
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.insert_only
def test_overwrite_is_refused_through_a_second_object(make_dict, ao, raw_bytes, before):
    other = make_dict(append_only=True)
    with pytest.raises(MutationPolicyError):
        other["k"] = plain_value(5)
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.parametrize("operation", [
    "del", "clear", "discard", "delete_if_exists", "pop", "pop_default", "popitem",
    "delete_current", "update", "ior",
])
def test_mutations_are_refused(ao, raw_bytes, before, operation):
    actions = {
        "del": lambda: ao.__delitem__("k"),
        "clear": ao.clear,
        "discard": lambda: ao.discard("k"),
        "delete_if_exists": lambda: ao.delete_if_exists("k"),
        "pop": lambda: ao.pop("k"),
        "pop_default": lambda: ao.pop("k", None),
        "popitem": ao.popitem,
        "delete_current": lambda: ao.__setitem__("k", DELETE_CURRENT),
        "update": lambda: ao.update({"k": plain_value(9)}),
        "ior": lambda: ao.__ior__({"k": plain_value(9)}),
    }
    with pytest.raises(MutationPolicyError) as info:
        actions[operation]()
    assert info.value.policy == "append-only"
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.parametrize("operation", ["del", "clear", "discard", "delete_if_exists", "pop",
                                       "pop_default", "popitem", "delete_current"])
@pytest.mark.insert_only
def test_policy_is_checked_before_existence(make_dict, operation):
    d = make_dict(append_only=True)
    actions = {
        "del": lambda: d.__delitem__("missing"),
        "clear": d.clear,
        "discard": lambda: d.discard("missing"),
        "delete_if_exists": lambda: d.delete_if_exists("missing"),
        "pop": lambda: d.pop("missing"),
        "pop_default": lambda: d.pop("missing", None),
        "popitem": d.popitem,
        "delete_current": lambda: d.__setitem__("missing", DELETE_CURRENT),
    }
    with pytest.raises(MutationPolicyError):
        actions[operation]()
    assert len(d) == 0


def test_keep_current_is_allowed(ao, raw_bytes, before):
    ao["k"] = KEEP_CURRENT
    ao["missing"] = KEEP_CURRENT
    assert "missing" not in ao
    r = ao.set_item_if("k", value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=INA,
                       retrieve_value=ALWAYS_RETRIEVE)
    assert r.condition_was_satisfied and r.new_value == plain_value(1)
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.insert_only
def test_setdefault_and_update_with_new_keys(ao):
    assert ao.setdefault("k", plain_value(5)) == plain_value(1)
    assert ao.setdefault("n1", plain_value(5)) == plain_value(5)
    ao.update({"n2": plain_value(6)})
    ao |= {"n3": plain_value(7)}
    assert {tuple(k) for k in ao.keys()} == {("k",), ("n1",), ("n2",), ("n3",)}


@pytest.mark.parametrize("cond,expected", [("ANY_ETAG", "ina"), ("ETAG_IS_THE_SAME", "e0"),
                                           ("ETAG_HAS_CHANGED", "ina"), ("ETAG_HAS_CHANGED", "stale")])
@pytest.mark.insert_only
def test_satisfied_overwrite_through_set_item_if_is_refused(ao, raw_bytes, before, cond, expected):
    condition = {"ANY_ETAG": ANY_ETAG, "ETAG_IS_THE_SAME": ETAG_IS_THE_SAME,
                 "ETAG_HAS_CHANGED": ETAG_HAS_CHANGED}[cond]
    etag = {"ina": INA, "e0": ao.etag("k"), "stale": "stale-etag"}[expected]
    with pytest.raises(MutationPolicyError):
        ao.set_item_if("k", value=plain_value(2), condition=condition, expected_etag=etag)
    with pytest.raises(MutationPolicyError):
        ao.set_item_if("k", value=DELETE_CURRENT, condition=condition, expected_etag=etag)
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.parametrize("cond", ["ANY_ETAG", "ETAG_IS_THE_SAME", "ETAG_HAS_CHANGED_REAL"])
def test_satisfied_insert_through_set_item_if(make_dict, cond):
    d = make_dict(append_only=True)
    condition, expected = {"ANY_ETAG": (ANY_ETAG, INA), "ETAG_IS_THE_SAME": (ETAG_IS_THE_SAME, INA),
                           "ETAG_HAS_CHANGED_REAL": (ETAG_HAS_CHANGED, "some-etag")}[cond]
    r = d.set_item_if("k", value=plain_value(1), condition=condition, expected_etag=expected)
    assert r.condition_was_satisfied and r.value_was_mutated
    assert r.resulting_etag == d.etag("k")
    assert d["k"] == plain_value(1)


def test_insert_if_absent_on_existing_key_is_unsatisfied(ao, raw_bytes, before):
    r = ao.set_item_if("k", value=plain_value(2), condition=ETAG_IS_THE_SAME, expected_etag=INA,
                       retrieve_value=ALWAYS_RETRIEVE)
    assert not r.condition_was_satisfied
    assert r.actual_etag == before[1] and r.resulting_etag == before[1]
    assert r.new_value == plain_value(1)
    _assert_intact(ao, raw_bytes, before)


def test_unsatisfied_writes_give_results_not_errors(ao, raw_bytes, before):
    """An unmet condition on an append-only store is a plain unsatisfied result (docs/concurrency.md#append-only)."""
    stale = "stale-etag"
    r = ao.set_item_if("k", value=plain_value(2), condition=ETAG_IS_THE_SAME, expected_etag=stale)
    assert not r.condition_was_satisfied and r.new_value == plain_value(1)
    r = ao.set_item_if("k", value=DELETE_CURRENT, condition=ETAG_IS_THE_SAME, expected_etag=stale)
    assert not r.condition_was_satisfied and r.resulting_etag == before[1]
    r = ao.set_item_if("k", value=plain_value(2), condition=ETAG_HAS_CHANGED, expected_etag=before[1])
    assert not r.condition_was_satisfied and r.new_value is VNR
    r = ao.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag=stale)
    assert not r.condition_was_satisfied and r.new_value is VNR
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.insert_only
def test_delete_current_on_absent_key_is_refused(make_dict):
    d = make_dict(append_only=True)
    with pytest.raises(MutationPolicyError):
        d.set_item_if("missing", value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    assert len(d) == 0


@pytest.mark.parametrize("cond", ["ANY_ETAG", "ETAG_IS_THE_SAME", "ETAG_HAS_CHANGED"])
@pytest.mark.insert_only
def test_satisfied_discard_if_is_refused(ao, raw_bytes, before, cond):
    condition, expected = {"ANY_ETAG": (ANY_ETAG, INA), "ETAG_IS_THE_SAME": (ETAG_IS_THE_SAME, before[1]),
                           "ETAG_HAS_CHANGED": (ETAG_HAS_CHANGED, INA)}[cond]
    with pytest.raises(MutationPolicyError):
        ao.discard_if("k", condition=condition, expected_etag=expected)
    _assert_intact(ao, raw_bytes, before)


@pytest.mark.insert_only
def test_discard_if_on_absent_key_is_a_normal_result(make_dict):
    d = make_dict(append_only=True)
    r = d.discard_if("missing", condition=ANY_ETAG, expected_etag=INA)
    assert r.condition_was_satisfied and r.actual_etag is INA and r.new_value is INA


@pytest.mark.insert_only
def test_setdefault_if(ao, raw_bytes, before):
    r = ao.setdefault_if("k", default_value=plain_value(5), condition=ANY_ETAG, expected_etag=INA)
    assert not r.value_was_mutated and r.new_value == plain_value(1)
    r = ao.setdefault_if("new", default_value=plain_value(5), condition=ETAG_IS_THE_SAME, expected_etag=INA)
    assert r.value_was_mutated and ao["new"] == plain_value(5)
    _assert_intact(ao, raw_bytes, before)


def test_transform_item(ao, raw_bytes, before):
    r = ao.transform_item("new", transformer=lambda v: plain_value(1) if v is INA else next_value(v))
    assert r.new_value == plain_value(1) and ao["new"] == plain_value(1)
    with pytest.raises(MutationPolicyError):
        ao.transform_item("new", transformer=next_value)
    assert ao["new"] == plain_value(1)
    with pytest.raises(MutationPolicyError):
        ao.transform_item("k", transformer=lambda v: DELETE_CURRENT)
    r = ao.transform_item("k", transformer=lambda v: KEEP_CURRENT)
    assert r.new_value == plain_value(1) and r.resulting_etag == before[1]
    _assert_intact(ao, raw_bytes, before)


def test_append_only_in_params_and_copy(make_dict, ao):
    import copy

    assert store_options(ao)["append_only"] is True
    clone = copy.copy(ao)
    assert clone.append_only is True
    with pytest.raises(MutationPolicyError):
        clone["k"] = plain_value(0)
