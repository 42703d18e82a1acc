"""The dict protocol every store offers (docs/concepts.md#key-normalization, docs/concepts.md#dict-api)."""

from __future__ import annotations

import time

import pytest

from persidict import (
    DELETE_CURRENT,
    KEEP_CURRENT,
    NonEmptySafeStrTuple,
    SafeStrTuple,
)

from ..conftest import storage_of
from .contract_helpers import foreign_value, holds_none, plain_value, stored_plain_value


def test_set_get_contains_len_del(d, raw_bytes):
    assert len(d) == 0
    assert "k" not in d
    d["k"] = plain_value(1)
    assert "k" in d
    assert d["k"] == plain_value(1)
    assert len(d) == 1
    assert raw_bytes(d, "k")  # something really is stored
    d["k"] = plain_value(2)
    assert d["k"] == plain_value(2)
    assert len(d) == 1
    del d["k"]
    assert "k" not in d
    assert len(d) == 0
    with pytest.raises(FileNotFoundError):
        raw_bytes(d, "k")


def test_keys_map_to_paths_in_the_storage(d, fmt):
    keys = [("a",), ("b", "c"), ("b", "d", "e")]
    for i, key in enumerate(keys):
        d[key] = plain_value(i)
    paths = {key: storage_of(d).key_to_path(key) for key in keys}
    assert len(set(paths.values())) == len(keys)
    for i, key in enumerate(keys):
        assert paths[key].endswith("." + fmt)
        assert storage_of(d).fs.isfile(paths[key])
        assert stored_plain_value(d, key) == plain_value(i)
    d.discard(("b", "c"))
    assert not storage_of(d).fs.exists(paths[("b", "c")])
    assert storage_of(d).fs.isfile(paths[("b", "d", "e")])
    d.clear()
    assert not any(storage_of(d).fs.exists(p) for p in paths.values())


def test_a_second_object_sees_the_same_storage(make_dict):
    first, second = make_dict(), make_dict()
    first["shared"] = plain_value(7)
    assert second["shared"] == plain_value(7)
    del second["shared"]
    assert "shared" not in first


@pytest.mark.parametrize("form", ["str", "tuple", "list", "safe_str_tuple", "non_empty"])
@pytest.mark.insert_only
def test_key_forms_address_one_item(d, form):
    key = {"str": "a", "tuple": ("a",), "list": ["a"], "safe_str_tuple": SafeStrTuple("a"),
           "non_empty": NonEmptySafeStrTuple("a")}[form]
    d[key] = plain_value(1)
    assert d["a"] == plain_value(1)
    assert d[("a",)] == plain_value(1)
    assert key in d
    assert list(d.keys()) == [("a",)]


@pytest.mark.insert_only
def test_nested_key_sequences_are_flattened(d):
    d[("a", ("b", "c"))] = plain_value(5)
    assert d[("a", "b", "c")] == plain_value(5)
    assert d[["a", ["b", ["c"]]]] == plain_value(5)
    assert d[SafeStrTuple("a", "b") + ("c",)] == plain_value(5)
    assert list(d.keys()) == [("a", "b", "c")]


@pytest.mark.insert_only
def test_keys_that_differ_only_in_case_are_distinct(d):
    names = ["aaAA", "AAaa", "AAAA", "aaaa", "aAaA"]
    for i, name in enumerate(names):
        d[name] = plain_value(i)
    assert len(d) == len(names)
    for i, name in enumerate(names):
        assert d[name] == plain_value(i)
    assert sorted(k[0] for k in d.keys()) == sorted(names)


@pytest.mark.insert_only
def test_dotted_and_symbol_keys_are_ordinary_keys(d):
    names = [".hidden", "..name", "a.b", "...", "~", "-", "=", "(x)", "_", "a~b=c(d)-e_f"]
    for i, name in enumerate(names):
        d[("dir", name)] = plain_value(i)
        d[name] = plain_value(-i)
    assert len(d) == 2 * len(names)
    for i, name in enumerate(names):
        assert d[("dir", name)] == plain_value(i)
        assert d[name] == plain_value(-i)


@pytest.mark.insert_only
def test_long_component_and_deep_key(d):
    long_name = "x" * 200
    deep = tuple(f"level{i}" for i in range(12))
    d[long_name] = plain_value(1)
    d[deep] = plain_value(2)
    assert d[long_name] == plain_value(1)
    assert d[deep] == plain_value(2)
    assert set(d.keys()) == {(long_name,), deep}


@pytest.mark.insert_only
def test_missing_key_raises_keyerror_with_normalized_key(d):
    for key in ["missing", ("a", "missing"), ["b", "c"]]:
        with pytest.raises(KeyError) as info:
            d[key]
        assert isinstance(info.value.args[0], NonEmptySafeStrTuple)
        assert info.value.args[0] == NonEmptySafeStrTuple(key)


@pytest.mark.insert_only
def test_missing_key_error_is_chained_from_the_storage_error(d, store_kind):
    with pytest.raises(KeyError) as info:
        d["missing"]
    if store_kind.local_files:
        assert isinstance(info.value.__cause__, FileNotFoundError)


@pytest.mark.insert_only
def test_store_class_is_generic(d):
    assert type(d)[int] is not None
    assert type(d)[str] is not None


@pytest.mark.parametrize("method", ["__delitem__", "timestamp", "etag"])
def test_other_missing_key_errors_are_keyerror(d, method):
    d["present"] = plain_value(1)
    with pytest.raises(KeyError) as info:
        getattr(d, method)(["dir", "missing"])
    assert info.value.args[0] == NonEmptySafeStrTuple("dir", "missing")
    assert d["present"] == plain_value(1)


def test_a_key_and_a_longer_key_share_a_name(d):
    d["a"] = plain_value(1)
    d[("a", "b")] = plain_value(2)
    d[("a", "b", "c")] = plain_value(3)
    assert (d["a"], d[("a", "b")], d[("a", "b", "c")]) == (plain_value(1), plain_value(2), plain_value(3))
    assert len(d) == 3
    del d[("a", "b")]
    assert d["a"] == plain_value(1) and d[("a", "b", "c")] == plain_value(3)
    assert ("a", "b") not in d


@pytest.mark.insert_only
def test_components_that_look_like_extensions(d, fmt):
    names = [f"x.{fmt}", f"y.{fmt}.{fmt}", "z.pkl", "w.json", "v.txt", f".{fmt}"]
    for i, name in enumerate(names):
        d[name] = plain_value(i)
        d[(name, "inner")] = plain_value(-i)
    assert sorted(tuple(k) for k in d.keys()) == sorted(
        [(n,) for n in names] + [(n, "inner") for n in names])
    for i, name in enumerate(names):
        assert d[name] == plain_value(i) and d[(name, "inner")] == plain_value(-i)


def test_emptied_store_looks_empty(d):
    d[("a", "b", "c")] = plain_value(1)
    d[("a", "d")] = plain_value(2)
    del d[("a", "b", "c")]
    d.discard(("a", "d"))
    assert len(d) == 0
    assert not d
    assert list(d.keys()) == []
    assert d.random_key() is None
    assert d.subdicts() == {}
    assert d.oldest_keys() == []


@pytest.mark.insert_only
def test_get(d):
    assert d.get("missing") is None
    sentinel = object()
    assert d.get("missing", sentinel) is sentinel
    d["k"] = plain_value(3)
    assert d.get("k") == plain_value(3)
    assert d.get("k", sentinel) == plain_value(3)


@pytest.mark.parametrize("bad_key", [123, None, "", "a/b"])
@pytest.mark.insert_only
def test_get_and_contains_do_not_swallow_bad_keys(d, bad_key):
    with pytest.raises((TypeError, ValueError)):
        d.get(bad_key)
    with pytest.raises((TypeError, ValueError)):
        bad_key in d  # noqa: B015


@pytest.mark.insert_only
def test_setdefault_missing_stores_and_returns_the_default_object(d):
    default = plain_value(1)
    assert d.setdefault("k", default) is default
    assert d["k"] == default


@pytest.mark.insert_only
def test_setdefault_existing_returns_stored_value(make_dict):
    d = make_dict()
    d["k"] = plain_value(1)
    assert d.setdefault("k", plain_value(2)) == plain_value(1)
    assert d["k"] == plain_value(1)


@pytest.mark.insert_only
def test_setdefault_without_default_stores_none(d):
    if not holds_none(d):  # a format that holds only arrays, tables or text: refused, nothing written
        with pytest.raises(TypeError):
            d.setdefault("k")
        assert "k" not in d
        return
    assert d.setdefault("k") is None
    assert "k" in d
    assert d["k"] is None


@pytest.mark.parametrize("joker", [KEEP_CURRENT, DELETE_CURRENT], ids=["keep", "delete"])
@pytest.mark.insert_only
def test_setdefault_rejects_jokers_even_if_key_exists(d, joker):
    with pytest.raises(TypeError):
        d.setdefault("missing", joker)
    assert "missing" not in d
    d["k"] = plain_value(1)
    with pytest.raises(TypeError):
        d.setdefault("k", joker)
    assert d["k"] == plain_value(1)


@pytest.mark.insert_only
def test_setdefault_wrong_type_default(make_dict):
    d = make_dict(base_class_for_values=type(plain_value(1)))
    d["k"] = plain_value(1)
    assert d.setdefault("k", foreign_value()) == plain_value(1)
    with pytest.raises(TypeError):
        d.setdefault("missing", foreign_value())
    assert "missing" not in d


def test_pop(d):
    d["k"] = plain_value(1)
    assert d.pop("k") == plain_value(1)
    assert "k" not in d
    sentinel = object()
    assert d.pop("k", sentinel) is sentinel
    assert d.pop("k", None) is None
    with pytest.raises(KeyError) as info:
        d.pop("k")
    assert isinstance(info.value.args[0], NonEmptySafeStrTuple)
    assert info.value.args[0] == ("k",)


@pytest.mark.insert_only
def test_pop_with_two_defaults_is_a_typeerror(d):
    d["k"] = plain_value(1)
    with pytest.raises(TypeError):
        d.pop("k", plain_value(1), plain_value(2))
    assert d["k"] == plain_value(1)


def test_popitem(d):
    d["a"] = plain_value(1)
    d[("b", "c")] = plain_value(2)
    seen = {}
    for _ in range(2):
        key, value = d.popitem()
        seen[key] = value
    assert seen == {("a",): plain_value(1), ("b", "c"): plain_value(2)}
    assert len(d) == 0
    with pytest.raises(KeyError) as info:
        d.popitem()
    assert info.value.args[0] == "dictionary is empty"


def _forbid(monkeypatch, store, name):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"{name} must not be called")

    monkeypatch.setattr(type(store), name, forbidden)


def test_pop_popitem_do_not_call_contains(d, monkeypatch):
    d["a"] = plain_value(1)
    d["b"] = plain_value(2)
    _forbid(monkeypatch, d, "__contains__")
    assert d.pop("a") == plain_value(1)
    assert d.pop("a", "dflt") == "dflt"
    assert d.popitem() == (("b",), plain_value(2))
    with pytest.raises(KeyError):
        d.popitem()


def test_discard_and_delete_if_exists(d):
    d["a"] = plain_value(1)
    d["b"] = plain_value(2)
    assert d.discard("a") is True
    assert "a" not in d
    assert d.discard("a") is False
    assert d.delete_if_exists("b") is True
    assert d.delete_if_exists("b") is False
    assert len(d) == 0


def test_clear(make_dict):
    d = make_dict()
    for i in range(5):
        d[("x", f"k{i}")] = plain_value(i)
    d["top"] = plain_value(0)
    d.clear()
    assert len(d) == 0
    assert list(d.keys()) == []
    assert len(make_dict()) == 0
    d.clear()  # clearing an empty store is fine
    d["again"] = plain_value(1)
    assert d["again"] == plain_value(1)


def test_clear_leaves_other_formats_alone(make_dict, fmt):
    other_fmt = "json" if fmt == "pkl" else "pkl"
    d, other = make_dict(), make_dict(serialization_format=other_fmt)
    d["k"] = plain_value(1)
    other["k"] = plain_value(2)
    other["only_other"] = plain_value(3)
    d.clear()
    assert len(d) == 0
    assert other["k"] == plain_value(2)
    assert len(other) == 2


@pytest.mark.insert_only
def test_formats_are_separate_namespaces(make_dict, fmt):
    other_fmt = "json" if fmt == "pkl" else "pkl"
    d, other = make_dict(), make_dict(serialization_format=other_fmt)
    d["k"] = plain_value(1)
    assert "k" not in other
    assert len(other) == 0
    other["k"] = plain_value(2)
    assert d["k"] == plain_value(1)
    assert list(d.keys()) == [("k",)]


def test_update_accepts_all_mapping_forms(d):
    class KeysOnly:
        def keys(self):
            return ["ko"]

        def __getitem__(self, key):
            return plain_value(7)

    v = plain_value
    assert d.update({"a": v(1)}) is None
    d.update([("b", v(2)), (("c", "d"), v(3))])
    d.update((k, x) for k, x in [("e", v(4))])
    d.update({SafeStrTuple("f", "g"): v(5)})
    d.update(KeysOnly())
    d.update(h=v(6))
    d.update({"a": v(10)})
    assert dict(d.items()) == {("a",): v(10), ("b",): v(2), ("c", "d"): v(3), ("e",): v(4),
                               ("f", "g"): v(5), ("ko",): v(7), ("h",): v(6)}


@pytest.mark.insert_only
def test_update_from_another_store(make_dict, fmt, store_kind):
    from persidict import LocalDict

    source = LocalDict(serialization_format=fmt, **store_kind.options)
    source.update({"a": plain_value(1), ("b", "c"): plain_value(2)})
    d = make_dict()
    d.update(source)
    assert dict(d.items()) == {("a",): plain_value(1), ("b", "c"): plain_value(2)}


def test_inplace_or(make_dict):
    d = make_dict()
    d["a"] = plain_value(1)
    target = d
    d |= {"a": plain_value(2), "b": plain_value(3)}
    assert d is target
    assert dict(d.items()) == {("a",): plain_value(2), ("b",): plain_value(3)}
    from persidict import LocalDict

    source = LocalDict()
    source["c"] = plain_value(4)
    d |= source
    assert d["c"] == plain_value(4)


@pytest.mark.insert_only
def test_inplace_or_rejects_non_mappings_and_or_is_undefined(d):
    d["a"] = plain_value(1)
    with pytest.raises(TypeError):
        d |= [("b", plain_value(2))]
    assert "b" not in d
    with pytest.raises(TypeError):
        d | {"b": plain_value(2)}


@pytest.mark.insert_only
def test_bool_does_not_call_len(d, monkeypatch):
    _forbid(monkeypatch, d, "__len__")
    assert not d
    d["k"] = plain_value(1)
    assert d
    assert bool(d) is True


@pytest.mark.insert_only
def test_keep_current_on_missing_key_creates_nothing(d, raw_bytes):
    d["k"] = KEEP_CURRENT
    assert "k" not in d
    assert len(d) == 0
    with pytest.raises(FileNotFoundError):
        raw_bytes(d, "k")


@pytest.mark.insert_only
def test_keep_current_on_existing_key_changes_nothing(d, raw_bytes, tick):
    d["k"] = plain_value(1)
    before = (d["k"], d.timestamp("k"), d.etag("k"), raw_bytes(d, "k"))
    tick()
    d["k"] = KEEP_CURRENT
    assert (d["k"], d.timestamp("k"), d.etag("k"), raw_bytes(d, "k")) == before


def test_delete_current(d):
    d["k"] = plain_value(1)
    d["k"] = DELETE_CURRENT
    assert "k" not in d
    d["k"] = DELETE_CURRENT  # silent on a missing key
    assert "k" not in d
    assert len(d) == 0


def test_etag_contract(make_dict):
    d = make_dict()
    d["a"] = plain_value(1)
    d["b"] = plain_value(1)
    e = d.etag("a")
    assert isinstance(e, str) and e
    assert d.etag("a") == e
    assert make_dict().etag("a") == e
    d["b"] = plain_value(2)
    assert d.etag("a") == e  # independent per key
    d["a"] = plain_value(3)
    assert d.etag("a") != e
    with pytest.raises(KeyError):
        d.etag("missing")


def test_timestamp_is_posix_time_of_last_write(d, tick):
    before = time.time()
    d["k"] = plain_value(1)
    ts = d.timestamp("k")
    assert isinstance(ts, float)
    assert before - 2 <= ts <= time.time() + 2
    tick()
    d["k"] = plain_value(2)
    assert d.timestamp("k") > ts
    with pytest.raises(KeyError):
        d.timestamp("missing")


@pytest.mark.insert_only
def test_str_is_str_of_items(d):
    d["k"] = plain_value(1)
    assert str(d) == str(dict(d.items()))
