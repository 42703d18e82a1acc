"""Iteration, timestamps, random_key and oldest/newest (docs/concepts.md#dict-api, docs/concepts.md#timestamps)."""

from __future__ import annotations

import collections
import random
import types

import pytest

from persidict import SafeStrTuple

from ..conftest import storage_of
from .contract_helpers import number_of, plain_value, store_root

NUMBERS = {("a",): 1, ("b", "c"): 2, ("b", "d", "e"): 3, ("f",): 4}
"""The keys of ``filled`` and the numbers of their values (``plain_value(n)``)."""


def _content():
    return {key: plain_value(n) for key, n in NUMBERS.items()}


def _numbers(values):
    return sorted(map(number_of, values))


@pytest.fixture
def filled(d):
    d.update(_content())
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
    assert sorted(tuple(k) for k in keys) == sorted(NUMBERS)
    assert all(isinstance(k, SafeStrTuple) for k in keys)
    assert sorted(tuple(k) for k in filled) == sorted(NUMBERS)
    assert _numbers(filled.values()) == sorted(NUMBERS.values())
    assert dict(filled.items()) == _content()
    assert len(filled) == len(NUMBERS)


@pytest.mark.insert_only
def test_timestamped_iterators_agree_with_timestamp(filled):
    kts = dict(filled.keys_and_timestamps())
    assert {tuple(k) for k in kts} == set(NUMBERS)
    for key, ts in kts.items():
        assert isinstance(ts, float)
        assert ts == pytest.approx(filled.timestamp(key), abs=1e-3)
    assert _numbers(v for v, _ in filled.values_and_timestamps()) == sorted(NUMBERS.values())
    for key, value, ts in filled.items_and_timestamps():
        assert plain_value(NUMBERS[tuple(key)]) == value
        assert ts == pytest.approx(kts[key], abs=1e-3)


@pytest.mark.insert_only
def test_generic_iter_labels(filled):
    assert sorted(tuple(k) for k in filled._generic_iter({"keys"})) == sorted(NUMBERS)
    assert _numbers(filled._generic_iter({"values"})) == sorted(NUMBERS.values())
    stamps = list(filled._generic_iter({"timestamps"}))
    assert len(stamps) == len(NUMBERS) and all(isinstance(t, float) for t in stamps)
    for labels in ({"values", "keys"}, {"keys", "values"}):
        pairs = list(filled._generic_iter(labels))
        assert all(len(p) == 2 for p in pairs)
        assert {tuple(k): v for k, v in pairs} == _content()
    for k, ts in filled._generic_iter({"timestamps", "keys"}):
        assert isinstance(k, SafeStrTuple) and isinstance(ts, float)
    for v, ts in filled._generic_iter({"timestamps", "values"}):
        assert number_of(v) in NUMBERS.values() and isinstance(ts, float)
    triples = list(filled._generic_iter({"timestamps", "values", "keys"}))
    assert {tuple(k): v for k, v, _ in triples} == _content()
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
    d[("sub", "k")] = plain_value(1)
    d["top"] = plain_value(2)
    folder = storage_of(d).key_to_path(("sub", "k")).rsplit("/", 1)[0]
    root = store_root(d)
    note = "note.md" if fmt == "txt" else "note.txt"  # a text file of another format
    for path in [f"{folder}/junk.tmp", f"{folder}/.DS_Store", f"{root}/{note}",
                 f"{root}/backup.{fmt}.bak", f"{root}/.gitkeep", f"{folder}/noextension"]:
        storage_of(d).fs.pipe_file(path, b"not a value")
    other = make_dict(serialization_format="json" if fmt == "pkl" else "pkl")
    other["foreign"] = plain_value(3)
    fresh = make_dict()
    assert len(fresh) == 2
    assert dict(fresh.items()) == {("sub", "k"): plain_value(1), ("top",): plain_value(2)}
    assert _numbers(fresh.values()) == [1, 2]
    assert {tuple(k) for k, _ in fresh.keys_and_timestamps()} == {("sub", "k"), ("top",)}


def test_items_skip_keys_deleted_mid_iteration(make_dict):
    d, other = make_dict(), make_dict()
    for i in range(10):
        d[f"k{i}"] = plain_value(i)
    it = d.items()
    first_key, first_value = next(it)
    assert d[first_key] == first_value
    other.clear()
    rest = list(it)  # must not raise
    for key, value in rest:
        assert value == plain_value(int(key[0][1:]))


@pytest.mark.insert_only
def test_random_key(d):
    assert d.random_key() is None
    d["only"] = plain_value(1)
    assert d.random_key() == ("only",)
    assert isinstance(d.random_key(), SafeStrTuple)
    for key in ["a", ("b", "c"), ("b", "d")]:
        d[key] = plain_value(2)
    expected = {("only",), ("a",), ("b", "c"), ("b", "d")}
    counts = collections.Counter(tuple(d.random_key()) for _ in range(400))
    assert set(counts) == expected
    assert min(counts.values()) >= 50  # 100 expected each


@pytest.mark.insert_only
def test_random_key_repeats_after_seed(d):
    for i in range(6):
        d[("g", f"k{i}")] = plain_value(i)
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
    d[order[0]] = plain_value(9)
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
