"""Iteration, timestamps, random_key and oldest/newest (docs/concepts.md#dict-api, docs/concepts.md#timestamps)."""

from __future__ import annotations

import collections
import random
import types

import pytest

from persidict import SafeStrTuple

from ..conftest import storage_of
from .contract_helpers import plain_value, store_root

CONTENT = {("a",): 1, ("b", "c"): 2, ("b", "d", "e"): 3, ("f",): 4}


@pytest.fixture
def filled(d):
    for key, value in CONTENT.items():
        d[key] = value
    return d


@pytest.mark.parametrize(
    "method", ["keys", "values", "items", "keys_and_timestamps", "values_and_timestamps",
               "items_and_timestamps", "__iter__"])
@pytest.mark.insert_only
def test_iteration_methods_return_generators(filled, method):
    result = getattr(filled, method)()
    assert isinstance(result, types.GeneratorType)
    with pytest.raises(TypeError):
        len(result)


@pytest.mark.insert_only
def test_keys_values_items(filled):
    keys = list(filled.keys())
    assert sorted(tuple(k) for k in keys) == sorted(CONTENT)
    assert all(isinstance(k, SafeStrTuple) for k in keys)
    assert sorted(tuple(k) for k in filled) == sorted(CONTENT)
    assert sorted(filled.values()) == sorted(CONTENT.values())
    assert dict(filled.items()) == CONTENT
    assert len(filled) == len(CONTENT)


@pytest.mark.insert_only
def test_timestamped_iterators_agree_with_timestamp(filled):
    kts = dict(filled.keys_and_timestamps())
    assert {tuple(k) for k in kts} == set(CONTENT)
    for key, ts in kts.items():
        assert isinstance(ts, float)
        assert ts == pytest.approx(filled.timestamp(key), abs=1e-3)
    vts = sorted(filled.values_and_timestamps())
    assert [v for v, _ in vts] == sorted(CONTENT.values())
    for key, value, ts in filled.items_and_timestamps():
        assert CONTENT[tuple(key)] == value
        assert ts == pytest.approx(kts[key], abs=1e-3)


@pytest.mark.insert_only
def test_generic_iter_labels(filled):
    assert sorted(tuple(k) for k in filled._generic_iter({"keys"})) == sorted(CONTENT)
    assert sorted(filled._generic_iter({"values"})) == sorted(CONTENT.values())
    stamps = list(filled._generic_iter({"timestamps"}))
    assert len(stamps) == len(CONTENT) and all(isinstance(t, float) for t in stamps)
    for labels in ({"values", "keys"}, {"keys", "values"}):
        pairs = list(filled._generic_iter(labels))
        assert all(len(p) == 2 for p in pairs)
        assert {tuple(k): v for k, v in pairs} == CONTENT
    for k, ts in filled._generic_iter({"timestamps", "keys"}):
        assert isinstance(k, SafeStrTuple) and isinstance(ts, float)
    for v, ts in filled._generic_iter({"timestamps", "values"}):
        assert v in CONTENT.values() and isinstance(ts, float)
    triples = list(filled._generic_iter({"timestamps", "values", "keys"}))
    assert {tuple(k): v for k, v, _ in triples} == CONTENT
    assert all(isinstance(ts, float) for _, _, ts in triples)


@pytest.mark.parametrize("bad", [["keys"], ("keys",), "keys", {"keys": 1}, None],
                         ids=["list", "tuple", "str", "dict", "none"])
@pytest.mark.insert_only
def test_generic_iter_requires_a_set(filled, bad):
    with pytest.raises(TypeError):
        list(filled._generic_iter(bad))


@pytest.mark.parametrize("bad", [set(), {"bogus"}, {"keys", "bogus"},
                                 {"keys", "values", "timestamps", "extra"}])
@pytest.mark.insert_only
def test_generic_iter_rejects_bad_labels(filled, bad):
    with pytest.raises(ValueError):
        list(filled._generic_iter(bad))


@pytest.mark.insert_only
def test_iteration_ignores_foreign_files(make_dict, fmt):
    d = make_dict()
    d[("sub", "k")] = 1
    d["top"] = 2
    folder = storage_of(d).key_to_path(("sub", "k")).rsplit("/", 1)[0]
    root = store_root(d)
    for path in [f"{folder}/junk.tmp", f"{folder}/.DS_Store", f"{root}/note.txt",
                 f"{root}/backup.{fmt}.bak", f"{root}/.gitkeep", f"{folder}/noextension"]:
        storage_of(d).fs.pipe_file(path, b"not a value")
    other = make_dict(serialization_format="json" if fmt == "pkl" else "pkl")
    other["foreign"] = 3
    fresh = make_dict()
    assert len(fresh) == 2
    assert dict(fresh.items()) == {("sub", "k"): 1, ("top",): 2}
    assert sorted(fresh.values()) == [1, 2]
    assert {tuple(k) for k, _ in fresh.keys_and_timestamps()} == {("sub", "k"), ("top",)}


def test_items_skip_keys_deleted_mid_iteration(make_dict):
    d, other = make_dict(), make_dict()
    for i in range(10):
        d[f"k{i}"] = i
    it = d.items()
    first_key, first_value = next(it)
    assert d[first_key] == first_value
    other.clear()
    rest = list(it)  # must not raise
    for key, value in rest:
        assert value == int(key[0][1:])


@pytest.mark.insert_only
def test_random_key(d):
    assert d.random_key() is None
    d["only"] = 1
    assert d.random_key() == ("only",)
    assert isinstance(d.random_key(), SafeStrTuple)
    for key in ["a", ("b", "c"), ("b", "d")]:
        d[key] = 2
    expected = {("only",), ("a",), ("b", "c"), ("b", "d")}
    counts = collections.Counter(tuple(d.random_key()) for _ in range(400))
    assert set(counts) == expected
    assert min(counts.values()) >= 50  # 100 expected each


@pytest.mark.insert_only
def test_random_key_repeats_after_seed(d):
    for i in range(6):
        d[("g", f"k{i}")] = i
    random.seed(42)
    first = [d.random_key() for _ in range(15)]
    random.seed(42)
    second = [d.random_key() for _ in range(15)]
    assert first == second
    assert len(set(map(tuple, first))) > 1


@pytest.fixture
def aged(d, tick):
    """Four keys written in a known order, with distinct timestamps."""
    order = [("k0",), ("x", "k1"), ("k2",), ("x", "y", "k3")]
    for i, key in enumerate(order):
        d[key] = plain_value(i)
        tick()
    return d, order


@pytest.mark.insert_only
def test_oldest_and_newest_keys(aged):
    d, order = aged
    assert d.oldest_keys() == order
    assert d.newest_keys() == order[::-1]
    assert d.oldest_keys(max_n=None) == order
    assert d.oldest_keys(max_n=2) == order[:2]
    assert d.newest_keys(max_n=3) == order[::-1][:3]
    assert d.oldest_keys(max_n=100) == order
    for n in (0, -1, -5):
        assert d.oldest_keys(max_n=n) == []
        assert d.newest_keys(max_n=n) == []
        assert d.oldest_values(max_n=n) == []
        assert d.newest_values(max_n=n) == []
    assert isinstance(d.oldest_keys(), list)


@pytest.mark.insert_only
def test_oldest_and_newest_values(aged):
    d, order = aged
    values = [plain_value(i) for i in range(len(order))]
    assert d.oldest_values() == values
    assert d.newest_values() == values[::-1]
    assert d.oldest_values(max_n=1) == values[:1]
    assert d.newest_values(max_n=2) == values[::-1][:2]


def test_rewrite_makes_a_key_newest(aged):
    d, order = aged
    d[order[0]] = "rewritten"
    assert d.newest_keys(max_n=1) == [order[0]]
    assert d.oldest_keys(max_n=1) == [order[1]]


@pytest.mark.insert_only
def test_max_n_is_keyword_only(aged):
    d, _ = aged
    with pytest.raises(TypeError):
        d.oldest_keys(2)
    with pytest.raises(TypeError):
        d.newest_values(2)


@pytest.mark.insert_only
def test_empty_store_iterators(d):
    assert list(d.keys()) == []
    assert list(d.items_and_timestamps()) == []
    assert d.oldest_keys() == [] and d.newest_values() == []
    assert d.subdicts() == {}
