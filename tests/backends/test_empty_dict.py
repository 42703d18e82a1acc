"""EmptyDict: the null store (docs/stores.md#emptydict, docs/concepts.md#key-normalization)."""

from __future__ import annotations

import copy
import pickle

import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    EmptyDict,
    LocalDict,
    MutationPolicyError,
    OperationResult,
    PersiDict,
)

INA = ITEM_NOT_AVAILABLE
INVALID_KEYS = [(), ("",), ("ok", 1), 123, b"bytes", "a/b", ".."]
RETRIEVE_MODES = [ALWAYS_RETRIEVE, NEVER_RETRIEVE, IF_ETAG_CHANGED]
# (condition, expected_etag, satisfied against an absent key): docs/concurrency.md#condition-table.
CONDITIONS = [
    (ANY_ETAG, INA, True),
    (ANY_ETAG, "some-etag", True),
    (ETAG_IS_THE_SAME, INA, True),
    (ETAG_IS_THE_SAME, "some-etag", False),
    (ETAG_HAS_CHANGED, INA, False),
    (ETAG_HAS_CHANGED, "some-etag", True),
]


def _assert_ina_shape(r, satisfied):
    assert r.condition_was_satisfied is satisfied
    assert r.actual_etag is INA
    assert r.resulting_etag is INA
    assert r.new_value is INA
    assert r.value_was_mutated is False


@pytest.fixture
def e():
    return EmptyDict()


# --- construction ----------------------------------------------------------------------


def test_is_a_persidict_with_the_base_constructor():
    e = EmptyDict(append_only=True, base_class_for_values=str, serialization_format="txt")
    assert isinstance(e, PersiDict)
    assert e.append_only is True
    assert e.get_params() == {
        "append_only": True,
        "base_class_for_values": str,
        "serialization_format": "txt",
    }
    assert list(e.get_params()) == sorted(e.get_params())
    with pytest.raises(ValueError):
        EmptyDict(serialization_format="txt")  # exotic format without a str base class
    with pytest.raises(TypeError):
        EmptyDict(base_class_for_values="int")
    with pytest.raises(TypeError):
        EmptyDict(root="x")  # keyword-only, declared explicitly: no catch-all


def test_repr_copy_and_pickle(e):
    assert repr(e) == "EmptyDict(append_only=False, base_class_for_values=None, serialization_format='pkl')"
    c = copy.copy(e)
    assert type(c) is EmptyDict and c is not e and c == e
    assert pickle.loads(pickle.dumps(e)) == e and copy.deepcopy(e) == e


# --- reads -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k", ("a", "b"), 123, (), b"bytes", "bad/key"])
def test_contains_and_get_do_not_validate_the_key(e, key):
    assert (key in e) is False
    assert e.get(key) is None
    sentinel = object()
    assert e.get(key, sentinel) is sentinel


@pytest.mark.parametrize("key", ["k", ("a", "b")])
def test_getitem_delitem_timestamp_raise_key_error_with_the_raw_key(e, key):
    for action in (lambda: e[key], lambda: e.__delitem__(key), lambda: e.timestamp(key)):
        with pytest.raises(KeyError) as info:
            action()
        assert info.value.args[0] == key
    with pytest.raises(KeyError):
        e.etag(key)


def test_length_iteration_and_sampling_are_empty(e):
    e["k"] = 1
    assert len(e) == 0
    assert not e
    assert list(e) == []
    assert list(e.keys()) == []
    assert list(e.values()) == []
    assert list(e.items()) == []
    assert list(e.keys_and_timestamps()) == []
    assert list(e.values_and_timestamps()) == []
    assert list(e.items_and_timestamps()) == []
    assert e.random_key() is None
    assert e.oldest_keys() == [] and e.newest_keys(max_n=3) == []
    assert e.oldest_values() == [] and e.newest_values() == []
    assert e.subdicts() == {}
    assert str(e) == "{}"


def test_iterators_still_validate_result_type(e):
    with pytest.raises(TypeError):
        e._generic_iter(["keys"])
    with pytest.raises(ValueError):
        e._generic_iter(set())
    with pytest.raises(ValueError):
        e._generic_iter({"keys", "bogus"})
    assert list(e._generic_iter({"timestamps"})) == []


# --- writes ------------------------------------------------------------------------------


def test_writes_are_validated_then_discarded():
    e = EmptyDict(base_class_for_values=int)
    e["k"] = 5
    e["a", "b"] = True  # subclass of int accepted
    assert "k" not in e and len(e) == 0
    with pytest.raises(KeyError):
        e["k"]
    with pytest.raises(TypeError, match="int"):
        e["k"] = "not an int"
    with pytest.raises(TypeError):
        e["k"] = LocalDict()  # a PersiDict is never a value
    with pytest.raises((TypeError, ValueError)):
        e[123] = 5  # a real value normalizes the key


def test_keep_current_is_a_no_op_even_for_an_invalid_key(e):
    # EmptyDict does not normalize the key before the KEEP_CURRENT shortcut (as in persidict 0.x).
    e["k"] = KEEP_CURRENT
    e[123] = KEEP_CURRENT
    assert len(e) == 0


def test_delete_current(e):
    e["k"] = DELETE_CURRENT
    ao = EmptyDict(append_only=True)
    with pytest.raises(MutationPolicyError) as info:
        ao["k"] = DELETE_CURRENT
    assert info.value.policy == "append-only"
    ao["k"] = 1  # inserting is allowed (and discarded)
    ao["k"] = 2  # the "existing" key does not exist: never an overwrite
    assert len(ao) == 0


def test_clear_discard_setdefault():
    e = EmptyDict(base_class_for_values=int)
    e.clear()
    EmptyDict(append_only=True).clear()  # a no-op even when append-only
    assert e.discard("k") is False
    assert e.delete_if_exists("k") is False
    wrong_type = "not validated"
    assert e.setdefault("k", wrong_type) is wrong_type
    assert e.setdefault("k") is None
    assert "k" not in e


def test_pop_and_popitem(e):
    assert e.pop("k", "default") == "default"
    with pytest.raises(KeyError):
        e.pop("k")
    with pytest.raises(KeyError):
        e.popitem()


def test_equality(e):
    assert e == EmptyDict()
    assert e == {}
    assert e != {"a": 1}
    assert e == LocalDict()
    assert e == EmptyDict(serialization_format="json")  # other params: contents compared, both empty
    assert e != 5


def test_update_and_ior(e):
    e.update({"a": 1}, b=2)
    e |= {"c": 3}
    assert len(e) == 0
    with pytest.raises(TypeError):
        e |= [("d", 4)]


# --- conditional operations ----------------------------------------------------------------


@pytest.mark.parametrize("condition,expected,satisfied", CONDITIONS)
@pytest.mark.parametrize("mode", RETRIEVE_MODES)
def test_get_item_if(e, condition, expected, satisfied, mode):
    r = e.get_item_if("k", condition=condition, expected_etag=expected, retrieve_value=mode)
    _assert_ina_shape(r, satisfied)


@pytest.mark.parametrize("condition,expected,satisfied", CONDITIONS)
@pytest.mark.parametrize("value", [1, KEEP_CURRENT, DELETE_CURRENT])
def test_set_item_if(e, condition, expected, satisfied, value):
    r = e.set_item_if("k", value=value, condition=condition, expected_etag=expected)
    _assert_ina_shape(r, satisfied)
    assert "k" not in e


@pytest.mark.parametrize("condition,expected,satisfied", CONDITIONS)
def test_setdefault_if(e, condition, expected, satisfied):
    r = e.setdefault_if("k", default_value=1, condition=condition, expected_etag=expected,
                        retrieve_value=ALWAYS_RETRIEVE)
    _assert_ina_shape(r, satisfied)


@pytest.mark.parametrize("condition,expected,satisfied", CONDITIONS)
def test_discard_if(e, condition, expected, satisfied):
    _assert_ina_shape(e.discard_if("k", condition=condition, expected_etag=expected), satisfied)


def test_get_with_etag(e):
    _assert_ina_shape(e.get_with_etag("k"), True)


def test_set_item_if_checks_retrieve_mode_and_value():
    e = EmptyDict(base_class_for_values=int)
    with pytest.raises(TypeError):
        e.set_item_if("k", value=1, condition=ANY_ETAG, expected_etag=INA, retrieve_value="always")
    with pytest.raises(TypeError, match="int"):
        e.set_item_if("k", value="str", condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(TypeError):
        e.set_item_if("k", value=LocalDict(), condition=ANY_ETAG, expected_etag=INA)


def test_set_item_if_delete_current_on_append_only():
    ao = EmptyDict(append_only=True)
    with pytest.raises(MutationPolicyError):
        ao.set_item_if("k", value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    r = ao.set_item_if("k", value=1, condition=ETAG_IS_THE_SAME, expected_etag=INA)
    _assert_ina_shape(r, True)


def test_retrieve_mode_is_checked(e):
    with pytest.raises(TypeError):
        e.get_item_if("k", condition=ANY_ETAG, expected_etag=INA, retrieve_value=True)
    with pytest.raises(TypeError):
        e.setdefault_if("k", default_value=1, condition=ANY_ETAG, expected_etag=INA, retrieve_value=None)


def test_setdefault_if_rejects_jokers(e):
    for joker in (KEEP_CURRENT, DELETE_CURRENT):
        with pytest.raises(TypeError):
            e.setdefault_if("k", default_value=joker, condition=ANY_ETAG, expected_etag=INA)


def test_invalid_condition_raises_value_error(e):
    with pytest.raises(ValueError):
        e.get_item_if("k", condition="same", expected_etag=INA)
    with pytest.raises(ValueError):
        e.discard_if("k", condition=None, expected_etag=INA)


@pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
def test_conditional_operations_validate_the_key(e, key):
    calls = [
        lambda: e.get_item_if(key, condition=ANY_ETAG, expected_etag=INA),
        lambda: e.set_item_if(key, value=1, condition=ANY_ETAG, expected_etag=INA),
        lambda: e.setdefault_if(key, default_value=1, condition=ANY_ETAG, expected_etag=INA),
        lambda: e.discard_if(key, condition=ANY_ETAG, expected_etag=INA),
        lambda: e.transform_item(key, transformer=lambda v: v),
    ]
    for call in calls:
        with pytest.raises((TypeError, ValueError)):
            call()


def test_transform_item_never_calls_the_transformer(e):
    calls = []

    def transformer(v):
        calls.append(v)
        return 1

    r = e.transform_item("k", transformer=transformer)
    assert isinstance(r, OperationResult)
    assert r.resulting_etag is INA and r.new_value is INA
    assert e.transform_item(("a", "b"), transformer=transformer, n_retries=None).new_value is INA
    assert calls == []


# --- subdicts --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["p", ("p", "q"), (), "anything"])
def test_get_subdict_is_an_empty_dict_with_the_same_params(prefix):
    e = EmptyDict(append_only=True, base_class_for_values=int, serialization_format="json")
    sub = e.get_subdict(prefix)
    assert type(sub) is EmptyDict
    assert sub.get_params() == e.get_params()
    assert sub is not e
    assert len(sub) == 0
