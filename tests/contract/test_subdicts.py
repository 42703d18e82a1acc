"""get_subdict and subdicts (docs/concepts.md#dict-api)."""

from __future__ import annotations

import pytest

from persidict import ANY_ETAG, ETAG_IS_THE_SAME, SafeStrTuple

from .contract_helpers import INA


@pytest.fixture
def tree(d):
    d[("a", "x")] = 1
    d[("a", "y", "z")] = 2
    d[("b", "x")] = 3
    d["top"] = 4
    return d


@pytest.mark.insert_only
def test_subdict_sees_keys_below_its_prefix(tree):
    sub = tree.get_subdict("a")
    assert type(sub) is type(tree)
    assert dict(sub.items()) == {("x",): 1, ("y", "z"): 2}
    assert len(sub) == 2
    assert sub["x"] == 1
    assert ("y", "z") in sub
    assert "top" not in sub


@pytest.mark.insert_only
def test_prefix_forms(tree):
    for prefix in ["a", ("a",), ["a"], SafeStrTuple("a")]:
        assert dict(tree.get_subdict(prefix).items()) == {("x",): 1, ("y", "z"): 2}
    deep = tree.get_subdict(("a", "y"))
    assert dict(deep.items()) == {("z",): 2}
    assert dict(tree.get_subdict("a").get_subdict("y").items()) == {("z",): 2}


def test_writes_and_deletes_are_visible_both_ways(tree):
    sub = tree.get_subdict("a")
    sub["new"] = 5
    assert tree[("a", "new")] == 5
    tree[("a", "other")] = 6
    assert sub["other"] == 6
    del sub["x"]
    assert ("a", "x") not in tree
    del tree[("a", "other")]
    assert "other" not in sub
    assert sub.etag("new") == tree.etag(("a", "new"))
    assert sub.timestamp("new") == pytest.approx(tree.timestamp(("a", "new")), abs=1e-3)


def test_conditional_ops_through_a_subdict(tree):
    sub = tree.get_subdict("b")
    e = tree.etag(("b", "x"))
    r = sub.set_item_if("x", value=30, condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert r.condition_was_satisfied
    assert tree[("b", "x")] == 30
    assert tree.etag(("b", "x")) == r.resulting_etag
    stale = tree.set_item_if(("b", "x"), value=31, condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert not stale.condition_was_satisfied


@pytest.mark.insert_only
def test_missing_prefix_gives_an_empty_subdict(tree):
    sub = tree.get_subdict(("nothing", "here"))
    assert len(sub) == 0
    assert list(sub.keys()) == []
    assert sub.get_with_etag("k").new_value is INA
    sub["k"] = 7
    assert tree[("nothing", "here", "k")] == 7


def test_empty_prefix_is_the_same_root(tree):
    for prefix in [(), [], SafeStrTuple()]:
        same = tree.get_subdict(prefix)
        assert type(same) is type(tree)
        assert dict(same.items()) == dict(tree.items())
        same["via_empty"] = 8
        assert tree["via_empty"] == 8
        del tree["via_empty"]
        assert "via_empty" not in same


@pytest.mark.insert_only
def test_subdict_keeps_options(make_dict):
    d = make_dict(append_only=True, base_class_for_values=int)
    sub = d.get_subdict("p")
    assert sub.append_only is True
    assert sub.base_class_for_values is int
    assert sub.serialization_format == d.serialization_format
    with pytest.raises(TypeError):
        sub["k"] = "not an int"
    sub["k"] = 1
    with pytest.raises(TypeError):
        sub["k"] = 2
    assert d[("p", "k")] == 1


@pytest.mark.insert_only
def test_subdicts(tree):
    subs = tree.subdicts()
    assert set(subs) == {"a", "b", "top"}
    assert all(isinstance(name, str) for name in subs)
    assert all(type(s) is type(tree) for s in subs.values())
    assert dict(subs["a"].items()) == {("x",): 1, ("y", "z"): 2}
    assert dict(subs["b"].items()) == {("x",): 3}
    assert len(subs["top"]) == 0  # a leaf's name is also a (empty) prefix


def test_subdict_clear_only_clears_the_subtree(tree):
    tree.get_subdict("a").clear()
    assert dict(tree.items()) == {("b", "x"): 3, ("top",): 4}


def test_subdict_etags_do_not_collide_with_parent(tree):
    sub = tree.get_subdict("a")
    sub["x"] = 10
    r = tree.set_item_if(("a", "x"), value=11, condition=ANY_ETAG, expected_etag=INA)
    assert sub.etag("x") == r.resulting_etag
    assert sub["x"] == 11


@pytest.mark.parametrize("bad_prefix", [123, None, "", "..", "a/b", ("a", "..")])
@pytest.mark.insert_only
def test_bad_prefix(tree, bad_prefix):
    with pytest.raises((TypeError, ValueError)):
        tree.get_subdict(bad_prefix)


@pytest.mark.insert_only
def test_subdict_params_rebuild_the_subdict(tree):
    sub = tree.get_subdict(("a", "y"))
    rebuilt = type(sub)(**sub.get_params())
    assert dict(rebuilt.items()) == {("z",): 2}
    assert rebuilt == sub
    rebuilt["w"] = 9
    assert tree[("a", "y", "w")] == 9
