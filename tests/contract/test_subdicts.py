"""get_subdict and subdicts (docs/concepts.md#dict-api)."""

from __future__ import annotations

import pytest

from persidict import ANY_ETAG, ETAG_IS_THE_SAME, SafeStrTuple

from .contract_helpers import INA, foreign_value, plain_value


@pytest.fixture
def tree(d):
    d[("a", "x")] = plain_value(1)
    d[("a", "y", "z")] = plain_value(2)
    d[("b", "x")] = plain_value(3)
    d["top"] = plain_value(4)
    return d


@pytest.mark.insert_only
def test_subdict_sees_keys_below_its_prefix(tree):
    sub = tree.get_subdict("a")
    assert type(sub) is type(tree)
    assert dict(sub.items()) == {("x",): plain_value(1), ("y", "z"): plain_value(2)}
    assert len(sub) == 2
    assert sub["x"] == plain_value(1)
    assert ("y", "z") in sub
    assert "top" not in sub


@pytest.mark.insert_only
def test_prefix_forms(tree):
    for prefix in ["a", ("a",), ["a"], SafeStrTuple("a")]:
        assert dict(tree.get_subdict(prefix).items()) == {("x",): plain_value(1), ("y", "z"): plain_value(2)}
    deep = tree.get_subdict(("a", "y"))
    assert dict(deep.items()) == {("z",): plain_value(2)}
    assert dict(tree.get_subdict("a").get_subdict("y").items()) == {("z",): plain_value(2)}


def test_writes_and_deletes_are_visible_both_ways(tree):
    sub = tree.get_subdict("a")
    sub["new"] = plain_value(5)
    assert tree[("a", "new")] == plain_value(5)
    tree[("a", "other")] = plain_value(6)
    assert sub["other"] == plain_value(6)
    del sub["x"]
    assert ("a", "x") not in tree
    del tree[("a", "other")]
    assert "other" not in sub
    assert sub.etag("new") == tree.etag(("a", "new"))
    assert sub.timestamp("new") == pytest.approx(tree.timestamp(("a", "new")), abs=1e-3)


def test_conditional_ops_through_a_subdict(tree):
    sub = tree.get_subdict("b")
    e = tree.etag(("b", "x"))
    r = sub.set_item_if("x", value=plain_value(30), condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert r.condition_was_satisfied
    assert tree[("b", "x")] == plain_value(30)
    assert tree.etag(("b", "x")) == r.resulting_etag
    stale = tree.set_item_if(("b", "x"), value=plain_value(31), condition=ETAG_IS_THE_SAME, expected_etag=e)
    assert not stale.condition_was_satisfied


@pytest.mark.insert_only
def test_missing_prefix_gives_an_empty_subdict(tree):
    sub = tree.get_subdict(("nothing", "here"))
    assert len(sub) == 0
    assert list(sub.keys()) == []
    assert sub.get_with_etag("k").new_value is INA
    sub["k"] = plain_value(7)
    assert tree[("nothing", "here", "k")] == plain_value(7)


def test_empty_prefix_is_the_same_root(tree):
    for prefix in [(), [], SafeStrTuple()]:
        same = tree.get_subdict(prefix)
        assert type(same) is type(tree)
        assert dict(same.items()) == dict(tree.items())
        same["via_empty"] = plain_value(8)
        assert tree["via_empty"] == plain_value(8)
        del tree["via_empty"]
        assert "via_empty" not in same


@pytest.mark.insert_only
def test_subdict_keeps_options(make_dict):
    base = type(plain_value(1))
    d = make_dict(append_only=True, base_class_for_values=base)
    sub = d.get_subdict("p")
    assert sub.append_only is True
    assert sub.base_class_for_values is base
    assert sub.serialization_format == d.serialization_format
    with pytest.raises(TypeError):
        sub["k"] = foreign_value()
    sub["k"] = plain_value(1)
    with pytest.raises(TypeError):
        sub["k"] = plain_value(2)
    assert d[("p", "k")] == plain_value(1)


@pytest.mark.insert_only
def test_subdicts(tree):
    subs = tree.subdicts()
    assert set(subs) == {"a", "b", "top"}
    assert all(isinstance(name, str) for name in subs)
    assert all(type(s) is type(tree) for s in subs.values())
    assert dict(subs["a"].items()) == {("x",): plain_value(1), ("y", "z"): plain_value(2)}
    assert dict(subs["b"].items()) == {("x",): plain_value(3)}
    assert len(subs["top"]) == 0  # a leaf's name is also a (empty) prefix


def test_subdict_clear_only_clears_the_subtree(tree):
    tree.get_subdict("a").clear()
    assert dict(tree.items()) == {("b", "x"): plain_value(3), ("top",): plain_value(4)}


def test_subdict_etags_do_not_collide_with_parent(tree):
    sub = tree.get_subdict("a")
    sub["x"] = plain_value(10)
    r = tree.set_item_if(("a", "x"), value=plain_value(11), condition=ANY_ETAG, expected_etag=INA)
    assert sub.etag("x") == r.resulting_etag
    assert sub["x"] == plain_value(11)


@pytest.mark.parametrize("bad_prefix", [123, None, "", "..", "a/b", ("a", "..")])
@pytest.mark.insert_only
def test_bad_prefix(tree, bad_prefix):
    with pytest.raises((TypeError, ValueError)):
        tree.get_subdict(bad_prefix)


@pytest.mark.insert_only
def test_subdict_params_rebuild_the_subdict(tree):
    sub = tree.get_subdict(("a", "y"))
    rebuilt = type(sub)(**sub.get_params())
    assert dict(rebuilt.items()) == {("z",): plain_value(2)}
    assert rebuilt == sub
    rebuilt["w"] = plain_value(9)
    assert tree[("a", "y", "w")] == plain_value(9)
