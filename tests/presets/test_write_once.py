"""WriteOnceDict (docs/stores.md#writeoncedict): the first write wins, later ones are ignored or checked."""

from __future__ import annotations

import copy
import os
import pickle
import random
from typing import Any

import pytest

from persidict import (
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    KEEP_CURRENT,
    FileDirDict,
    LocalDict,
    MutationPolicyError,
    OperationResult,
    WriteOnceDict,
)

from .wrapper_helpers import INA, VNR, CountingLocalDict, assert_ina_result


def make(p: Any = None, **store_options: Any) -> WriteOnceDict:
    return WriteOnceDict(wrapped_dict=CountingLocalDict(append_only=True, **store_options), p_consistency_checks=p)


def counts(d: WriteOnceDict) -> tuple[int, int, int]:
    return d.consistency_checks_attempted, d.consistency_checks_passed, d.consistency_checks_failed


# --- construction ------------------------------------------------------------------
def test_default_wrapped_dict_is_an_append_only_file_dir_dict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = WriteOnceDict()
    assert isinstance(d.wrapped_dict, FileDirDict) and d.wrapped_dict.append_only
    assert d.base_dir == os.path.join(str(tmp_path), "__file_dir_dict__")  # forwarded attribute
    assert d.p_consistency_checks == 0.0 and d.append_only is True


def test_wrapper_copies_format_and_value_class():
    d = make(serialization_format="json", base_class_for_values=int)
    assert (d.serialization_format, d.base_class_for_values, d.append_only) == ("json", int, True)
    d["n"] = 1
    with pytest.raises(TypeError):
        d["s"] = "text"
    with pytest.raises(TypeError):
        d["p"] = LocalDict()


@pytest.mark.parametrize("wrapped", [{}, "dir", 42, LocalDict])
def test_wrapped_dict_must_be_a_persidict(wrapped):
    with pytest.raises(TypeError):
        WriteOnceDict(wrapped_dict=wrapped)


def test_wrapped_dict_must_be_append_only():
    with pytest.raises(ValueError):
        WriteOnceDict(wrapped_dict=LocalDict())


@pytest.mark.parametrize("p", [-0.01, 1.01, 2, float("nan"), float("inf"), KEEP_CURRENT])
def test_bad_probabilities_at_init_are_value_errors(p):
    with pytest.raises(ValueError):
        make(p)


@pytest.mark.parametrize("p", ["0.5", [0.5], object()])
def test_non_numeric_probabilities_are_type_errors(p):
    with pytest.raises(TypeError):
        make(p)


def test_probability_setter():
    d = make(None)
    assert d.p_consistency_checks == 0.0
    d.p_consistency_checks = 0.25
    d.p_consistency_checks = KEEP_CURRENT  # after init: keeps the current value
    assert d.p_consistency_checks == 0.25
    d.p_consistency_checks = None
    assert d.p_consistency_checks == 0.0
    d.p_consistency_checks = 1
    assert d.p_consistency_checks == 1.0
    with pytest.raises(ValueError):
        d.p_consistency_checks = 1.5
    assert d.p_consistency_checks == 1.0


def test_counters_are_read_only():
    d = make(1)
    for name in ("consistency_checks_attempted", "consistency_checks_passed", "consistency_checks_failed"):
        with pytest.raises(AttributeError):
            setattr(d, name, 5)


# --- first write wins ----------------------------------------------------------------
def test_repeated_writes_are_ignored():
    d = make()
    d["k"] = "first"
    etag, timestamp = d.etag("k"), d.timestamp("k")
    d["k"] = "second"  # p == 0: ignored, never read back
    assert d["k"] == "first" and (d.etag("k"), d.timestamp("k")) == (etag, timestamp)
    assert d.wrapped_dict.getitem_calls == 1 and counts(d) == (0, 0, 0)


def test_p1_checks_every_repeat_without_extra_reads():
    d = make(1)
    d["k"] = [1, 2]
    d["k"] = [1, 2]
    d["k"] = [1, 2]
    assert counts(d) == (2, 2, 0)
    with pytest.raises(MutationPolicyError) as info:
        d["k"] = [1, 3]
    assert info.value.policy == "write-once" and str(info.value) == "write-once"
    assert counts(d) == (3, 2, 1)
    # One read per write: it finds the key absent (the first) or present and brings the value to compare.
    assert d.wrapped_dict.getitem_calls == 4
    assert d["k"] == [1, 2]


def test_partial_checks_are_gated_by_random_random():
    d = make(0.5)
    d["k"] = 1
    random.seed(0)  # random.random() == 0.844... >= 0.5: no check, no read
    d["k"] = 2
    assert counts(d) == (0, 0, 0) and d.wrapped_dict.getitem_calls == 0
    random.seed(4)  # random.random() == 0.236... < 0.5: one read, one check
    with pytest.raises(MutationPolicyError, match="write-once"):
        d["k"] = 2
    assert counts(d) == (1, 0, 1) and d.wrapped_dict.getitem_calls == 1
    random.seed(4)
    d["k"] = 1
    assert counts(d) == (2, 1, 1) and d.wrapped_dict.getitem_calls == 2


def test_partial_checks_use_the_module_random(monkeypatch):
    draws = iter([0.9, 0.1, 0.29, 0.3])
    monkeypatch.setattr(random, "random", lambda: next(draws))
    d = make(0.3)
    d["k"] = "v"
    for _ in range(4):
        d["k"] = "v"
    assert counts(d) == (2, 2, 0) and d.wrapped_dict.getitem_calls == 2


def test_p0_never_reads(monkeypatch):
    monkeypatch.setattr(random, "random", lambda: pytest.fail("random.random() must not be drawn"))
    d = make(0)
    d["k"] = 1
    d["k"] = 2
    assert d.wrapped_dict.getitem_calls == 0 and counts(d) == (0, 0, 0)


def test_checks_compare_serialized_bytes():
    d = make(1, serialization_format="json")
    d["k"] = {"a": (1, 2)}
    d["k"] = {"a": (1, 2)}
    with pytest.raises(MutationPolicyError):
        d["k"] = {"a": [1, 2]}  # equal as JSON lists would be, but a tuple is tagged differently
    with pytest.raises(MutationPolicyError):
        d["k"] = {"a": (1, 2.0)}  # 2 == 2.0, but the bytes and the types differ
    assert counts(d) == (3, 1, 2)


def test_equal_values_whose_bytes_differ_pass_the_check():
    # A set is written in its iteration order, which depends on its history (and, for
    # strings, on the process's hash seed): equal sets may give different bytes.
    d = make(1, serialization_format="pkl")
    first, second = set(), set()
    first.add(1), first.add(9)  # 1 and 9 share a slot of a small set's table:
    second.add(9), second.add(1)  # the one added first comes first
    assert first == second and pickle.dumps(first) != pickle.dumps(second)
    d["k"] = {"s": first}
    d["k"] = {"s": second}
    assert counts(d) == (1, 1, 0)


# --- refused mutations -----------------------------------------------------------------
@pytest.mark.parametrize("value", [1, KEEP_CURRENT, DELETE_CURRENT])
@pytest.mark.parametrize("present", [True, False])
def test_set_item_if_is_always_refused(value, present):
    d = make()
    if present:
        d["k"] = 1
    with pytest.raises(MutationPolicyError, match="write-once"):
        d.set_item_if("k", value=value, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(MutationPolicyError, match="write-once"):
        d.set_item_if("k", value=value, condition="not a condition", expected_etag=INA, retrieve_value="bad")


def test_deletes_are_refused():
    d = make()
    d["k"] = 1
    with pytest.raises(MutationPolicyError, match="write-once"):
        del d["k"]
    for refused in (lambda: d.discard("k"), lambda: d.delete_if_exists("k"), lambda: d.pop("k"),
                    lambda: d.pop("missing", None), d.popitem, d.clear):
        with pytest.raises(MutationPolicyError) as info:
            refused()
        assert info.value.policy == "append-only"
    with pytest.raises(MutationPolicyError, match="append-only"):
        d["k"] = DELETE_CURRENT
    with pytest.raises(MutationPolicyError, match="append-only"):
        d["missing"] = DELETE_CURRENT
    assert d["k"] == 1 and len(d) == 1


def test_keep_current_is_a_no_op():
    d = make(1)
    d["k"] = KEEP_CURRENT
    assert "k" not in d
    d["k"] = 1
    d["k"] = KEEP_CURRENT
    assert counts(d) == (0, 0, 0) and d["k"] == 1


# --- base algorithms over the wrapper -------------------------------------------------------
def test_conditional_reads_and_inserts():
    d = make()
    r = d.setdefault_if("k", default_value=7, condition=ETAG_IS_THE_SAME, expected_etag=INA)
    assert r.condition_was_satisfied and r.actual_etag is INA and r.new_value == 7
    assert r.resulting_etag == d.etag("k")
    again = d.setdefault_if("k", default_value=8, condition=ANY_ETAG, expected_etag=INA)
    assert again.new_value == 7 and not again.value_was_mutated
    got = d.get_item_if("k", condition=ETAG_HAS_CHANGED, expected_etag=d.etag("k"))
    assert not got.condition_was_satisfied and got.new_value is VNR
    assert d.get_with_etag("k").new_value == 7
    assert_ina_result(d.get_item_if("nope", condition=ANY_ETAG, expected_etag=INA), True)
    assert d.setdefault("k", 9) == 7 and d.setdefault("new", 9) == 9


def test_discard_if():
    d = make()
    d["k"] = 1
    with pytest.raises(MutationPolicyError):
        d.discard_if("k", condition=ANY_ETAG, expected_etag=INA)
    r = d.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag="other")
    assert not r.condition_was_satisfied and r.new_value is VNR
    assert_ina_result(d.discard_if("missing", condition=ANY_ETAG, expected_etag=INA), True)
    assert d["k"] == 1


def test_transform_item():
    d = make()
    with pytest.raises(MutationPolicyError, match="write-once"):
        d.transform_item("absent", transformer=lambda current: 1)
    assert "absent" not in d
    d["k"] = 1
    with pytest.raises(MutationPolicyError, match="write-once"):
        d.transform_item("k", transformer=lambda current: current + 1)
    assert d.transform_item("k", transformer=lambda current: KEEP_CURRENT) == OperationResult(d.etag("k"), 1)
    assert d.transform_item("absent", transformer=lambda current: KEEP_CURRENT) == OperationResult(INA, INA)


# --- delegation, etag, forwarding ------------------------------------------------------------
def test_reads_delegate_to_the_wrapped_dict():
    d = make()
    d.wrapped_dict["a", "b"] = 1  # written around the wrapper
    d["c"] = 2
    assert ("a", "b") in d and d["a", "b"] == 1 and len(d) == 2
    assert dict(d.items()) == {("a", "b"): 1, ("c",): 2}
    assert sorted(ts for ts in d._generic_iter({"timestamps"})) == sorted(
        ts for _, ts in d.wrapped_dict.keys_and_timestamps())
    assert d.timestamp("c") == d.wrapped_dict.timestamp("c")
    with pytest.raises(KeyError):
        d["missing"]


def test_etag_is_the_wrapped_dicts_etag():
    # Forwarded (0.x computed its own from the timestamp): the ETag the wrapper hands
    # out must satisfy the wrapped store's own conditional operations, and vice versa.
    d = make()
    d["k"] = 1
    assert d.etag("k") == d.wrapped_dict.etag("k")
    inner = d.wrapped_dict.get_item_if("k", condition=ETAG_IS_THE_SAME, expected_etag=d.etag("k"))
    assert inner.condition_was_satisfied
    assert d.get_item_if("k", condition=ETAG_IS_THE_SAME,
                         expected_etag=d.wrapped_dict.etag("k")).condition_was_satisfied
    with pytest.raises(KeyError):
        d.etag("missing")


def test_unknown_attributes_are_forwarded():
    d = make()
    assert d.backend is d.wrapped_dict.backend
    with pytest.raises(AttributeError):
        d.no_such_attribute
    with pytest.raises(AttributeError):
        d.__no_such_dunder__
    bare = WriteOnceDict.__new__(WriteOnceDict)  # before __init__: no recursion, just AttributeError
    with pytest.raises(AttributeError):
        bare.backend


def test_params_copy_subdict_and_pickling():
    d = make(0.5)
    assert d.get_params() == {"p_consistency_checks": 0.5, "wrapped_dict": d.wrapped_dict}
    assert list(d.get_params()) == ["p_consistency_checks", "wrapped_dict"]
    twin = copy.copy(d)
    assert type(twin) is WriteOnceDict and twin == d and twin.wrapped_dict is d.wrapped_dict
    d["x", "y"] = 1
    sub = d.get_subdict("x")
    assert isinstance(sub, WriteOnceDict) and sub.p_consistency_checks == 0.5
    assert sub["y"] == 1 and sub.wrapped_dict.append_only
    sub["z"] = 2
    assert d["x", "z"] == 2
    with pytest.raises(TypeError, match="memory"):  # it wraps a LocalDict
        pickle.dumps(d)
    assert copy.deepcopy(d) == d


def test_pickles_by_params_over_shared_storage(tmp_path):
    d = WriteOnceDict(wrapped_dict=FileDirDict(base_dir=tmp_path, append_only=True, fsync=False),
                      p_consistency_checks=0.25)
    d["k"] = 1
    clone = pickle.loads(pickle.dumps(d))
    assert type(clone) is WriteOnceDict and clone.p_consistency_checks == 0.25 and clone["k"] == 1
    clone["j"] = 2
    assert d["j"] == 2


def test_over_a_file_dir_dict(tmp_path):
    d = WriteOnceDict(wrapped_dict=FileDirDict(base_dir=tmp_path, append_only=True, fsync=False),
                      p_consistency_checks=1)
    d["a", "b"] = {"x": 1}
    d["a", "b"] = {"x": 1}
    with pytest.raises(MutationPolicyError):
        d["a", "b"] = {"x": 2}
    assert d["a", "b"] == {"x": 1} and counts(d) == (2, 1, 1)
    assert d.base_dir == str(tmp_path)
    assert repr(d).startswith("WriteOnceDict(p_consistency_checks=1.0, wrapped_dict=FileDirDict(")


@pytest.mark.parametrize("write", ["setitem", "update", "ior", "setdefault", "update_kwargs"])
def test_no_public_method_goes_around_the_write_once_policy(write):
    # The policy is a layer of the store: every method that writes meets it, not only [] =.
    w = WriteOnceDict(wrapped_dict=LocalDict(append_only=True), p_consistency_checks=1)
    w["k"] = 1

    def again(value):
        {"setitem": lambda: w.__setitem__("k", value), "update": lambda: w.update({"k": value}),
         "ior": lambda: w.__ior__({"k": value}), "setdefault": lambda: w.setdefault("k", value),
         "update_kwargs": lambda: w.update(k=value)}[write]()

    again(1)  # the same value again: ignored, whichever method writes it
    assert w["k"] == 1
    if write != "setdefault":  # setdefault never writes a present key, so it never compares
        with pytest.raises(MutationPolicyError, match="write-once"):
            again(2)
    assert w["k"] == 1 and len(w) == 1
