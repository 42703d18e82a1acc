"""Equality, get_params, repr, copy and pickling.

See docs/concepts.md#equality and docs/concepts.md#parameters-copies-and-pickling.
"""

from __future__ import annotations

import copy
import pickle

import pytest

from persidict import LocalDict

from .contract_helpers import foreign_value, plain_value, store_options


def test_get_params_is_sorted_and_rebuilds_the_store(make_dict):
    base = type(plain_value(1))
    d = make_dict(base_class_for_values=base)
    params = d.get_params()
    assert isinstance(params, dict)
    assert list(params) == sorted(params)
    options = store_options(d)
    assert {"append_only", "base_class_for_values", "serialization_format"} <= set(options)
    assert options["append_only"] is False
    assert options["base_class_for_values"] is base
    assert options["serialization_format"] == make_dict.format
    d["k"] = plain_value(1)
    rebuilt = type(d)(**params)
    assert rebuilt.get_params() == params
    assert rebuilt["k"] == plain_value(1)
    rebuilt["k2"] = plain_value(2)
    assert d["k2"] == plain_value(2)


def test_attributes(make_dict):
    base = type(plain_value(1))
    d = make_dict(base_class_for_values=base)
    assert d.base_class_for_values is base
    assert d.serialization_format == make_dict.format
    assert d.append_only is False


@pytest.mark.insert_only
def test_repr_names_every_parameter_and_no_secret(d):
    text = repr(d)
    assert text.startswith(type(d).__name__ + "(") and text.endswith(")")
    for name in d.get_params():
        assert f"{name}=" in text
    options = d.get_params().get("storage_options") or {}
    for name in ("key", "secret", "token", "account_key", "connection_string", "credential"):
        if options.get(name):
            assert repr(options[name]) not in text and f"'{name}': '***'" in text


def test_copy_shares_storage(d):
    d["k"] = plain_value(1)
    for clone in (copy.copy(d), d.__copy__()):
        assert clone is not d
        assert type(clone) is type(d)
        assert clone.get_params() == d.get_params()
        assert clone["k"] == plain_value(1)
        clone["via_copy"] = plain_value(2)
        assert d["via_copy"] == plain_value(2)
        del d["via_copy"]
        assert "via_copy" not in clone


@pytest.mark.insert_only
def test_stores_pickle_by_their_params(d, store_kind):
    # A pickled store is the parameters that reopen it, never its content (docs/pipelines.md#stores-travel-to-workers);
    # a store in one process's memory refuses, saying why.
    d["k"] = plain_value(1)
    if "memory" in store_kind.id:
        with pytest.raises(TypeError, match="memory"):
            pickle.dumps(d)
    else:
        clone = pickle.loads(pickle.dumps(d))
        assert type(clone) is type(d) and clone.get_params() == d.get_params()
        clone["k2"] = plain_value(2)  # the same storage
        assert d["k2"] == plain_value(2) and clone["k"] == plain_value(1)
    twin = copy.deepcopy(d)
    assert type(twin) is type(d) and twin is not d and twin["k"] == plain_value(1)
    twin["k3"] = plain_value(3)
    assert d["k3"] == plain_value(3), "deepcopy gives another object on the same storage, like copy"


@pytest.mark.insert_only
def test_same_params_are_equal_without_reading(make_dict, monkeypatch):
    d, other = make_dict(), make_dict()
    d["k"] = plain_value(1)
    assert d == d

    def forbidden(*args, **kwargs):
        raise AssertionError("content must not be read")

    for name in ("__getitem__", "__iter__", "keys", "items", "_generic_iter", "__len__"):
        monkeypatch.setattr(type(d), name, forbidden)
    assert d == other
    assert not (d != other)


@pytest.mark.insert_only
def test_equality_with_plain_dicts(d):
    assert d == {}
    d["a"] = plain_value(1)
    v = plain_value
    d[("b", "c")] = v(5)
    assert d == {"a": v(1), ("b", "c"): v(5)}
    assert d == {("a",): v(1), ("b", "c"): v(5)}
    assert d != {"a": v(1)}
    assert d != {"a": v(1), ("b", "c"): v(5), "extra": v(3)}
    assert d != {"a": v(2), ("b", "c"): v(5)}
    assert d != {"a": v(1), "zz": v(5)}
    assert d != {"a/b": v(1), ("b", "c"): v(5)}  # an invalid key compares unequal, no error
    assert d != {}


@pytest.mark.insert_only
def test_equality_with_non_mappings(d):
    d["a"] = plain_value(1)
    assert d.__eq__(5) is NotImplemented
    assert d != 5
    assert d != [("a", 1)]
    assert d != None  # noqa: E711 (__ne__ is under test)
    assert not (d == "a")  # noqa: SIM201 (__eq__ is under test)


@pytest.mark.insert_only
def test_equality_across_stores_and_formats(make_dict, fmt):
    d = make_dict()
    d["a"] = plain_value(1)
    d[("b", "c")] = plain_value(2)
    other_fmt = "json" if fmt == "pkl" else "pkl"
    same_storage_other_format = make_dict(serialization_format=other_fmt, base_class_for_values=None)
    assert d != same_storage_other_format  # different params, different content
    same_storage_other_format["a"] = plain_value(1)
    same_storage_other_format[("b", "c")] = plain_value(2)
    assert d == same_storage_other_format
    local = LocalDict(serialization_format="dill")
    local.update({"a": plain_value(1), ("b", "c"): plain_value(2)})
    assert d == local and local == d
    local["a"] = plain_value(3)
    assert d != local and local != d


@pytest.mark.store_kinds_with("holds_any_value")
@pytest.mark.insert_only
def test_equality_of_different_options_on_same_storage_compares_content(make_dict):
    d = make_dict()
    d["a"] = plain_value(1)
    typed = make_dict(base_class_for_values=type(plain_value(1)))
    assert d == typed
    d["b"] = foreign_value()
    assert d != typed  # reading "b" through typed fails: unequal, no exception
