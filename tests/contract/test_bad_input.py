"""Bad keys, bad values and bad options: clear errors, and nothing written anywhere (2.4, 3.1, 7)."""

from __future__ import annotations

import pytest

from persidict import (
    ANY_ETAG,
    DELETE_CURRENT,
    KEEP_CURRENT,
    LocalDict,
    SafeStrTuple,
)

from ..conftest import storage_of
from .contract_helpers import INA, plain_value, store_root

BAD_KEYS = {
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "parent": "../x",
    "slash": "a/b",
    "leading_slash": "/etc",
    "backslash": "..\\x",
    "unicode": "ключ",
    "space": "a b",
    "percent": "%2e%2e",
    "nul": "a\x00b",
    "newline": "a\nb",
    "too_long": "x" * 254,
    "int": 123,
    "none": None,
    "float": 1.5,
    "bytes": b"abc",
    "dict": {"a": plain_value(1)},
    "set": {"a"},
    "empty_tuple": (),
    "empty_list": [],
    "nested_empty": [[]],
    "dotdot_first": ("..", "escape"),
    "dotdot_later": ("a", "..", "b"),
    "dot_last": ("a", "."),
    "int_component": ("ok", 1),
    "none_component": ("ok", None),
    "slash_component": ("ok", "x/y"),
    "empty_safe_str_tuple": SafeStrTuple(),
}

OPERATIONS = {
    "setitem": lambda d, k: d.__setitem__(k, plain_value(1)),
    "setitem_keep": lambda d, k: d.__setitem__(k, KEEP_CURRENT),
    "setitem_delete": lambda d, k: d.__setitem__(k, DELETE_CURRENT),
    "getitem": lambda d, k: d[k],
    "contains": lambda d, k: k in d,
    "get": lambda d, k: d.get(k),
    "delitem": lambda d, k: d.__delitem__(k),
    "discard": lambda d, k: d.discard(k),
    "pop": lambda d, k: d.pop(k, None),
    "setdefault": lambda d, k: d.setdefault(k, plain_value(1)),
    "timestamp": lambda d, k: d.timestamp(k),
    "etag": lambda d, k: d.etag(k),
    "get_with_etag": lambda d, k: d.get_with_etag(k),
    "get_item_if": lambda d, k: d.get_item_if(k, condition=ANY_ETAG, expected_etag=INA),
    "set_item_if": lambda d, k: d.set_item_if(k, value=plain_value(1), condition=ANY_ETAG, expected_etag=INA),
    "setdefault_if": lambda d, k: d.setdefault_if(k, default_value=plain_value(1), condition=ANY_ETAG,
                                                  expected_etag=INA),
    "discard_if": lambda d, k: d.discard_if(k, condition=ANY_ETAG, expected_etag=INA),
    "transform_item": lambda d, k: d.transform_item(k, transformer=lambda v: plain_value(1)),
    "update": lambda d, k: d.update([(k, plain_value(1))]),
}


@pytest.fixture
def seeded(d):
    d["existing"] = plain_value(0)
    d[("dir", "existing")] = plain_value(0)
    return d


@pytest.mark.parametrize("op", sorted(OPERATIONS))
@pytest.mark.insert_only
def test_bad_keys_are_refused_and_nothing_is_written(seeded, storage_snapshot, op):
    before = storage_snapshot(seeded)
    accepted = []
    for key_id, key in sorted(BAD_KEYS.items()):
        try:
            OPERATIONS[op](seeded, key)
        except (TypeError, ValueError):
            continue
        accepted.append(key_id)
        assert storage_snapshot(seeded) == before, f"{op} with key {key_id} wrote something"
    assert accepted == [], f"{op} accepted bad keys: {accepted}"
    assert storage_snapshot(seeded) == before
    assert seeded["existing"] == plain_value(0)
    assert len(seeded) == 2


@pytest.mark.parametrize("key", ["~", "...", ".hidden", "..x", "x..", "-", "=", "(a)", "a.b",
                                 ("~", "~"), ("...", "..."), ("tmp", ".__tmp__x")])
@pytest.mark.insert_only
def test_suspicious_but_valid_keys_stay_inside_the_root(d, storage_snapshot, key):
    before = storage_snapshot(d)
    d[key] = plain_value(1)
    new_entries = storage_snapshot(d) - before
    assert new_entries, "the write must be visible in the storage"
    root = store_root(d)
    assert storage_of(d).key_to_path(key).startswith(root + "/")
    for entry in new_entries:
        path = entry[0]
        # inside the root, or a folder on the way to it
        assert path == root or path.startswith(root + "/") or root.startswith(path + "/"), path
    assert d[key] == plain_value(1)
    assert list(d.keys()) == [SafeStrTuple(key)]


def _unserializable(codec):
    if codec == "safejson":
        return [object(), {1: "non-str key"}, {"nested": [object()]}, LocalDict,
                float("nan"), {"x": [float("inf")]}]
    if codec == "jsonpickle":  # it stores nearly anything; what it would lose is refused
        return [bytearray(b"lost"), {"nested": [bytearray(b"lost")]}, {"py/tuple": [1]}, {"f": lambda: 1}]
    if codec == "npy":  # an array of objects would need a pickle inside the .npy file
        import numpy as np

        return [np.array([1, None], dtype=object), np.ma.masked_array([1, 2], mask=[0, 1]), [1, 2]]
    if codec == "parquet":  # a column of mixed types has no Parquet type
        import pandas as pd

        return [pd.DataFrame({"mixed": [1, "a"]}), pd.Series([1]), {"a": [1]}]
    return [lambda x: x, {"nested": [lambda: 1]}, (i for i in range(3))]


@pytest.mark.insert_only
def test_unserializable_values_leave_the_previous_value(make_dict, codec, raw_bytes, storage_snapshot):
    d = make_dict()
    d["k"] = plain_value(1)
    before_raw, before_etag = raw_bytes(d, "k"), d.etag("k")
    before = storage_snapshot(d)
    for value in _unserializable(codec):
        with pytest.raises(TypeError):
            d["k"] = value
        with pytest.raises(TypeError):
            d["new"] = value
        with pytest.raises(TypeError):
            d.set_item_if("k", value=value, condition=ANY_ETAG, expected_etag=INA)
        with pytest.raises(TypeError):
            d.setdefault_if("new", default_value=value, condition=ANY_ETAG, expected_etag=INA)
        with pytest.raises(TypeError):
            d.setdefault("new", value)
        with pytest.raises(TypeError):
            d.transform_item("k", transformer=lambda v, value=value: value)
    assert storage_snapshot(d) == before  # no temporary files left behind either
    fresh = make_dict()
    assert fresh["k"] == plain_value(1)
    assert (raw_bytes(fresh, "k"), fresh.etag("k")) == (before_raw, before_etag)
    assert "new" not in fresh


@pytest.mark.insert_only
def test_wrong_base_class_leaves_the_previous_value(make_dict, raw_bytes, storage_snapshot):
    base = type(plain_value(1))
    d = make_dict(base_class_for_values=base)
    d["k"] = plain_value(1)
    before = storage_snapshot(d)
    for value in [v for v in ["str", 1, [1], None] if not isinstance(v, base)]:
        with pytest.raises(TypeError, match=base.__name__):
            d["k"] = value
        with pytest.raises(TypeError, match=base.__name__):
            d["new"] = value
    assert storage_snapshot(d) == before
    assert d["k"] == plain_value(1)


@pytest.mark.parametrize("bad_format", ["", "bad/ty%pe", "../etc", "\x00", "a b", "ключ", "pkl/"])
@pytest.mark.insert_only
def test_bad_serialization_format_is_a_valueerror(make_dict, bad_format):
    with pytest.raises(ValueError):
        make_dict(serialization_format=bad_format)


@pytest.mark.parametrize("bad_format", [123, b"pkl"], ids=["int", "bytes"])
@pytest.mark.insert_only
def test_non_str_serialization_format(make_dict, bad_format):
    with pytest.raises((TypeError, ValueError)):
        make_dict(serialization_format=bad_format)


@pytest.mark.parametrize("code_running_format", ["pkl", "dill"])
@pytest.mark.insert_only
def test_safe_json_with_a_format_that_runs_code_is_refused(make_dict, code_running_format):
    # safe_json=True promises that reading never runs code: a pickle store cannot keep it (docs/security.md).
    with pytest.raises(ValueError, match="safe_json"):
        make_dict(serialization_format=code_running_format, safe_json=True)


@pytest.mark.parametrize("bad_base", [5, "int", 0, object()], ids=["int", "str", "zero", "obj"])
@pytest.mark.insert_only
def test_base_class_must_be_a_type(make_dict, bad_base):
    with pytest.raises(TypeError):
        make_dict(base_class_for_values=bad_base)


@pytest.mark.insert_only
def test_bad_options_write_nothing(make_dict, storage_snapshot):
    d = make_dict()
    d["k"] = plain_value(1)
    before = storage_snapshot(d)
    for options in [{"serialization_format": "../x"}, {"base_class_for_values": 3},
                    {"serialization_format": "txt", "base_class_for_values": None}]:
        with pytest.raises((TypeError, ValueError)):
            make_dict(**options)
    assert storage_snapshot(d) == before
