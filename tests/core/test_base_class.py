"""The base-class algorithms of PersiDict (docs/concepts.md#dict-api, docs/concurrency.md#versioned-primitives).

Every concrete store overrides the conditional operations for atomicity, so
the base algorithms run only on third-party subclasses and wrappers. Here
they run on ``DictBacked``, a minimal subclass over a plain dict that counts
its primitive calls: this is where call counts are pinned.
"""

from __future__ import annotations

import copy
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from persidict.jokers_and_status_flags import EXECUTION_IS_COMPLETE

import persidict
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
    VALUE_NOT_RETRIEVED,
    ConcurrencyConflictError,
    FileDirDict,
    LocalDict,
    MutationPolicyError,
    NonEmptySafeStrTuple,
    OperationResult,
    PersiDict,
)

INA = ITEM_NOT_AVAILABLE
VNR = VALUE_NOT_RETRIEVED
LABELS = ("keys", "values", "timestamps")


class DictBacked(PersiDict[Any]):
    """A PersiDict over a plain dict: key -> (value, timestamp, version number)."""

    def __init__(
        self,
        *,
        store: dict | None = None,
        append_only: bool = False,
        base_class_for_values: type | None = None,
        serialization_format: str = "pkl",
    ) -> None:
        super().__init__(
            append_only=append_only,
            base_class_for_values=base_class_for_values,
            serialization_format=serialization_format,
        )
        self.store = {} if store is None else store
        self.calls: Counter[str] = Counter()

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["store"] = self.store
        return dict(sorted(params.items()))

    def _bump(self, key: NonEmptySafeStrTuple, value: Any) -> None:
        version = 1 + max((v for _, _, v in self.store.values()), default=0)
        self.store[key] = (value, time.time() + version * 1e-3, version)

    def __getitem__(self, key: Any) -> Any:
        self.calls["getitem"] += 1
        key = NonEmptySafeStrTuple(key)
        try:
            value = self.store[key][0]
        except KeyError:
            raise KeyError(key) from None
        return self._check_read_value(value)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.calls["setitem"] += 1
        key = NonEmptySafeStrTuple(key)
        if self._process_setitem_args(key, value) is EXECUTION_IS_COMPLETE:  # persidict 0.x's protocol
            return
        if self.append_only and key in self.store:
            raise MutationPolicyError("append-only")
        self._bump(key, value)

    def __delitem__(self, key: Any) -> None:
        self.calls["delitem"] += 1
        self._check_append_only()
        key = NonEmptySafeStrTuple(key)
        if key not in self.store:
            raise KeyError(key)
        del self.store[key]

    def __contains__(self, key: object) -> bool:
        self.calls["contains"] += 1
        return NonEmptySafeStrTuple(key) in self.store

    def __len__(self) -> int:
        self.calls["len"] += 1
        return len(self.store)

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        if not isinstance(result_type, set):
            raise TypeError("result_type must be a set")
        if not result_type or not result_type <= set(LABELS):
            raise ValueError("bad labels")
        wanted = [label for label in LABELS if label in result_type]

        def generate() -> Iterator[Any]:
            for key, (value, ts, _) in list(self.store.items()):
                row = {"keys": key, "values": value, "timestamps": ts}
                items = tuple(row[label] for label in wanted)
                yield items[0] if len(items) == 1 else items

        return generate()

    def timestamp(self, key: Any) -> float:
        key = NonEmptySafeStrTuple(key)
        try:
            return self.store[key][1]
        except KeyError:
            raise KeyError(key) from None

    def etag(self, key: Any) -> str:
        self.calls["etag"] += 1
        key = NonEmptySafeStrTuple(key)
        try:
            return f"v{self.store[key][2]}"
        except KeyError:
            raise KeyError(key) from None


class NoContains(DictBacked):
    def __contains__(self, key: object) -> bool:
        raise AssertionError("__contains__ must not be called")


class ScriptedETags(DictBacked):
    """ETags come from a script (``None`` = keep counting up): simulates writers racing a read."""

    def __init__(self, script: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.script = list(script) if script is not None else None
        self.n = 0

    def etag(self, key: Any) -> str:
        self.calls["etag"] += 1
        NonEmptySafeStrTuple(key)
        if self.script is None:
            self.n += 1
            return f"moving-{self.n}"
        return self.script.pop(0)


K = NonEmptySafeStrTuple("k")


@pytest.fixture
def d() -> DictBacked:
    return DictBacked()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """transform_item's backoff, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", lambda s: recorded.append(s))
    return recorded


# --- abstract class, copy ---------------------------------------------------------------------


def test_abstract_class_cannot_be_instantiated():
    with pytest.raises(TypeError):
        PersiDict()

    class Incomplete(PersiDict):
        def __getitem__(self, key):
            return 1

    with pytest.raises(TypeError):
        Incomplete()


def test_copy_on_the_bare_base_raises_not_implemented(monkeypatch):
    # The base cannot be instantiated; lift the abstract check to reach __copy__ itself.
    monkeypatch.setattr(PersiDict, "__abstractmethods__", frozenset())
    bare = PersiDict()
    with pytest.raises((NotImplementedError, TypeError)) as info:
        copy.copy(bare)
    assert isinstance(info.value, NotImplementedError)  # the bare abstract class cannot be copied
    with pytest.raises(NotImplementedError):
        bare.get_subdict("p")


def test_copy_of_a_subclass_shares_storage(d):
    d["k"] = 1
    c = copy.copy(d)
    assert type(c) is DictBacked and c is not d
    assert c.get_params() == d.get_params()
    c["j"] = 2
    assert d["j"] == 2
    deep = copy.deepcopy(d)  # a store is a handle: deepcopy opens the same storage, as copy does
    assert type(deep) is DictBacked and deep is not d
    deep["i"] = 3
    assert d["i"] == 3


def test_default_etag_is_the_formatted_timestamp():
    class TimestampETag(DictBacked):
        etag = PersiDict.etag

    t = TimestampETag()
    t["k"] = 1
    assert t.etag("k") == f"{t.timestamp('k'):.6f}"
    with pytest.raises(KeyError):
        t.etag("missing")


# --- versioned reads of a 0.x subclass (SubclassStore.read) ---------------------------------------


def test_one_stale_read_costs_exactly_four_etag_calls():
    s = ScriptedETags(["e1", "e2", "e2", "e2"])
    s["k"] = "value"
    s.calls.clear()
    value, version = s._items.read(K)
    etag = version.etag
    assert (value, etag) == ("value", "e2")
    assert s.calls["etag"] == 4
    assert s.calls["getitem"] == 2


def test_get_with_etag_uses_the_same_retry():
    s = ScriptedETags(["e1", "e2", "e2", "e2"])
    s["k"] = "value"
    s.calls.clear()
    r = s.get_with_etag("k")
    assert (r.new_value, r.actual_etag, r.resulting_etag) == ("value", "e2", "e2")
    assert s.calls["etag"] == 4


def test_always_moving_etags_raise_after_three_attempts():
    s = ScriptedETags(None)
    s["k"] = "value"
    s.calls.clear()
    with pytest.raises(ConcurrencyConflictError) as info:
        s._items.read(K)
    assert info.value.attempts == 3
    assert info.value.key == K
    assert str(info.value).startswith("other writers kept changing key ")
    assert "gave up after 3 attempt(s), nothing was written" in str(info.value)
    assert s.calls["etag"] == 6
    assert s.calls["getitem"] == 3


def test_get_value_and_etag_of_a_missing_key_raises_key_error(d):
    with pytest.raises(KeyError):
        d._items.read(K)


def test_stable_read_costs_two_etag_calls(d):
    d["k"] = 1
    d.calls.clear()
    assert d._items.read(K) == (1, (d.etag("k"), 0.0))
    assert d.calls["etag"] == 3  # two inside, one in the assertion


# --- no __contains__ in pop, popitem, discard_if ---------------------------------------------------


def test_pop_popitem_discard_if_never_call_contains(sleeps):
    n = NoContains()
    n["a"] = 1
    n["b"] = 2
    n["c"] = 3
    assert n.pop("a") == 1
    assert n.pop("missing", "default") == "default"
    with pytest.raises(KeyError) as info:
        n.pop("missing")
    assert info.value.args[0] == NonEmptySafeStrTuple("missing")
    key, value = n.popitem()
    assert (key, value) in {(("b",), 2), (("c",), 3)}
    rest = "c" if key == ("b",) else "b"
    r = n.discard_if(rest, condition=ETAG_IS_THE_SAME, expected_etag="stale")
    assert not r.condition_was_satisfied
    r = n.discard_if(rest, condition=ETAG_IS_THE_SAME, expected_etag=n.etag(rest))
    assert r.condition_was_satisfied
    r = n.discard_if("missing", condition=ANY_ETAG, expected_etag=INA)
    assert r.new_value is INA
    with pytest.raises(KeyError):
        n.popitem()
    assert n.store == {}


@pytest.mark.parametrize("store_type", ["FileDirDict", "LocalDict"])
def test_stores_pop_popitem_discard_if_never_call_contains(store_type, tmp_path, monkeypatch):
    store = FileDirDict(base_dir=tmp_path, fsync=False) if store_type == "FileDirDict" else LocalDict()
    store["a"] = 1
    store["b"] = 2

    def forbidden(self, key):
        raise AssertionError("__contains__ must not be called")

    monkeypatch.setattr(type(store).__mro__[1], "__contains__", forbidden)
    monkeypatch.setattr(type(store), "__contains__", forbidden, raising=False)
    assert store.pop("a") == 1
    assert store.pop("a", None) is None
    assert store.popitem() == (("b",), 2)
    store["c"] = 3
    assert store.discard_if("c", condition=ANY_ETAG, expected_etag=INA).condition_was_satisfied
    with pytest.raises(KeyError):
        store.popitem()


def test_popitem_moves_on_when_a_key_vanishes(sleeps):
    class Vanishing(DictBacked):
        def _generic_iter(self, result_type):
            keys = list(super()._generic_iter(result_type))
            # Another process deletes the first key after it was listed.
            first = keys[0] if not isinstance(keys[0], tuple) else keys[0][0]
            self.store.pop(NonEmptySafeStrTuple(first), None)
            return iter(keys)

    v = Vanishing()
    v["a"] = 1
    v["b"] = 2
    key, value = v.popitem()
    assert (key, value) == (("b",), 2)


def test_pop_checks_policy_and_arity_first():
    ao = DictBacked(append_only=True)
    with pytest.raises(MutationPolicyError):
        ao.pop("missing", "default")
    with pytest.raises(MutationPolicyError):
        ao.popitem()
    d = DictBacked()
    with pytest.raises(TypeError, match="pop expected at most 2 arguments, got 3"):
        d.pop("k", 1, 2)


# --- transform_item retries -------------------------------------------------------------------------


class Rival:
    """A transformer that also lets a rival write the key each time it runs (a forced conflict)."""

    def __init__(self, store: DictBacked, interfere_times: int | None = None, result: Any = "mine"):
        self.store = store
        self.interfere_times = interfere_times
        self.result = result
        self.calls: list[Any] = []

    def __call__(self, current: Any) -> Any:
        self.calls.append(current)
        if self.interfere_times is None or len(self.calls) <= self.interfere_times:
            self.store._bump(K, f"rival-{len(self.calls)}")
        return self.result


def _assert_backoff(sleeps: list[float]) -> None:
    # Bounded backoff between attempts (docs/concurrency.md#transform-item). The exact schedule (the
    # reference's uniform(0.01, 0.2) * 1.75**i, or a capped full jitter) is not pinned.
    for s in sleeps:
        assert 0 <= s <= 5


@pytest.mark.parametrize("n_retries,calls", [(0, 1), (1, 2), (2, 3), (2.7, 3), ("3", 4)])
def test_transform_item_gives_up_after_n_retries(d, sleeps, n_retries, calls):
    d["k"] = "start"
    rival = Rival(d)
    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("k", transformer=rival, n_retries=n_retries)
    assert len(rival.calls) == calls
    assert info.value.attempts == calls
    assert info.value.key == K
    assert len(sleeps) == calls - 1
    _assert_backoff(sleeps)
    assert d["k"].startswith("rival-")


def test_transform_item_conflict_resolved_within_budget_succeeds(d, sleeps):
    d["k"] = "start"
    rival = Rival(d, interfere_times=2)
    r = d.transform_item("k", transformer=rival, n_retries=2)
    assert isinstance(r, OperationResult)
    assert len(rival.calls) == 3
    assert rival.calls[0] == "start"
    assert rival.calls[1:] == ["rival-1", "rival-2"]  # each retry sees the value that won
    assert r.new_value == "mine"
    assert r.resulting_etag == d.etag("k")
    assert d["k"] == "mine"
    assert len(sleeps) == 2


def test_transform_item_unbounded_retries(d, sleeps):
    rival = Rival(d, interfere_times=9)
    r = d.transform_item("k", transformer=rival, n_retries=None)
    assert len(rival.calls) == 10
    assert rival.calls[0] is INA
    assert r.new_value == "mine"
    assert len(sleeps) == 9


def test_transform_item_delete_current_retries_on_conflict(d, sleeps):
    d["k"] = "start"
    rival = Rival(d, interfere_times=1, result=DELETE_CURRENT)
    r = d.transform_item("k", transformer=rival, n_retries=1)
    assert (r.resulting_etag, r.new_value) == (INA, INA)
    assert len(rival.calls) == 2
    assert K not in d.store
    rival = Rival(d, result=DELETE_CURRENT)
    d["k"] = "again"
    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("k", transformer=rival, n_retries=0)
    assert info.value.attempts == 1


@pytest.mark.parametrize("bad,error", [(-1, ValueError), ("bad", TypeError), (object(), TypeError)])
def test_transform_item_rejects_bad_n_retries(d, bad, error):
    calls = []
    with pytest.raises(error):
        d.transform_item("k", transformer=lambda v: calls.append(v) or 1, n_retries=bad)
    assert calls == []


def test_transform_item_keep_and_delete_on_missing_key(d, sleeps):
    seen = []
    r = d.transform_item("k", transformer=lambda v: seen.append(v) or KEEP_CURRENT)
    assert (r.resulting_etag, r.new_value) == (INA, INA)
    r = d.transform_item("k", transformer=lambda v: seen.append(v) or DELETE_CURRENT)
    assert (r.resulting_etag, r.new_value) == (INA, INA)
    assert seen == [INA, INA]
    d["k"] = 5
    e = d.etag("k")
    r = d.transform_item("k", transformer=lambda v: KEEP_CURRENT)
    assert (r.resulting_etag, r.new_value) == (e, 5)
    r = d.transform_item("k", transformer=lambda v: v)  # identity still writes
    assert r.resulting_etag != e
    assert sleeps == []


def test_transform_item_goes_through_the_instances_set_item_if(sleeps):
    seen = []

    class Spy(DictBacked):
        def set_item_if(self, key, **kwargs):
            seen.append(sorted(kwargs))
            return super().set_item_if(key, **kwargs)

    s = Spy()
    s.transform_item("k", transformer=lambda v: 1)
    assert seen == [["condition", "expected_etag", "retrieve_value", "value"]]


def test_transform_item_on_append_only(sleeps):
    ao = DictBacked(append_only=True)
    assert ao.transform_item("k", transformer=lambda v: 1).new_value == 1
    with pytest.raises(MutationPolicyError):
        ao.transform_item("k", transformer=lambda v: v + 1)
    with pytest.raises(MutationPolicyError):
        ao.transform_item("k", transformer=lambda v: DELETE_CURRENT)
    assert ao["k"] == 1


# --- conditional operations: the base truth tables (docs/concurrency.md#truth-tables) -------------------------

CONDITION_CASES = [  # condition, expected ("E0", INA or "other"), satisfied when present, when absent
    (ANY_ETAG, "E0", True, True),
    (ANY_ETAG, INA, True, True),
    (ANY_ETAG, "other", True, True),
    (ETAG_IS_THE_SAME, "E0", True, None),
    (ETAG_IS_THE_SAME, INA, False, True),
    (ETAG_IS_THE_SAME, "other", False, False),
    (ETAG_HAS_CHANGED, "E0", False, None),
    (ETAG_HAS_CHANGED, INA, True, False),
    (ETAG_HAS_CHANGED, "other", True, True),
]
MODES = [ALWAYS_RETRIEVE, NEVER_RETRIEVE, IF_ETAG_CHANGED]


def _rule_r(mode, expected, actual, value):
    if mode is ALWAYS_RETRIEVE:
        return value
    if mode is NEVER_RETRIEVE:
        return VNR
    return VNR if expected == actual else value


def _present(d) -> tuple[str, Any]:
    d["k"] = "stored"
    return d.etag("k"), "stored"


def _expected(token, e0):
    return e0 if token == "E0" else token


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("condition,token,sat_present,_", CONDITION_CASES)
def test_get_item_if_present(d, condition, token, sat_present, _, mode):
    e0, value = _present(d)
    expected = _expected(token, e0)
    d.calls.clear()
    r = d.get_item_if("k", condition=condition, expected_etag=expected, retrieve_value=mode)
    assert r.condition_was_satisfied is sat_present
    assert (r.actual_etag, r.resulting_etag) == (e0, e0)
    assert r.new_value == _rule_r(mode, expected, e0, value)
    if r.new_value is VNR:
        assert d.calls["getitem"] == 0  # a corrupt value would not even be read


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("condition,token,sat_present,_", CONDITION_CASES)
def test_set_item_if_present(d, condition, token, sat_present, _, mode):
    e0, value = _present(d)
    expected = _expected(token, e0)
    r = d.set_item_if("k", value="new", condition=condition, expected_etag=expected, retrieve_value=mode)
    assert r.condition_was_satisfied is sat_present
    assert r.actual_etag == e0
    if sat_present:
        assert r.new_value == "new"
        assert r.resulting_etag == d.etag("k") != e0
        assert d["k"] == "new"
    else:
        assert r.resulting_etag == e0
        assert r.new_value == _rule_r(mode, expected, e0, value)
        assert d["k"] == "stored"


@pytest.mark.parametrize("condition,token,sat_present,_", CONDITION_CASES)
def test_set_item_if_jokers_present(d, condition, token, sat_present, _):
    e0, value = _present(d)
    expected = _expected(token, e0)
    r = d.set_item_if("k", value=KEEP_CURRENT, condition=condition, expected_etag=expected,
                      retrieve_value=ALWAYS_RETRIEVE)
    assert (r.condition_was_satisfied, r.actual_etag, r.resulting_etag, r.new_value) == (sat_present, e0, e0, value)
    r = d.set_item_if("k", value=DELETE_CURRENT, condition=condition, expected_etag=expected,
                      retrieve_value=NEVER_RETRIEVE)
    if sat_present:
        assert (r.actual_etag, r.resulting_etag, r.new_value) == (e0, INA, INA)
        assert r.value_was_mutated
        assert K not in d.store
    else:
        assert (r.actual_etag, r.resulting_etag, r.new_value) == (e0, e0, VNR)
        assert d["k"] == value


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("condition,token,sat_present,_", CONDITION_CASES)
def test_setdefault_if_present_never_writes(d, condition, token, sat_present, _, mode):
    e0, value = _present(d)
    expected = _expected(token, e0)
    r = d.setdefault_if("k", default_value="default", condition=condition, expected_etag=expected,
                        retrieve_value=mode)
    assert r.condition_was_satisfied is sat_present
    assert (r.actual_etag, r.resulting_etag) == (e0, e0)
    assert r.new_value == _rule_r(mode, expected, e0, value)
    assert d["k"] == "stored"


@pytest.mark.parametrize("condition,token,sat_present,_", CONDITION_CASES)
def test_discard_if_present(d, condition, token, sat_present, _):
    e0, _value = _present(d)
    r = d.discard_if("k", condition=condition, expected_etag=_expected(token, e0))
    assert r.condition_was_satisfied is sat_present
    assert r.actual_etag == e0
    if sat_present:
        assert (r.resulting_etag, r.new_value) == (INA, INA)
        assert K not in d.store
    else:
        assert (r.resulting_etag, r.new_value) == (e0, VNR)
        assert K in d.store


ABSENT_CASES = [(c, t, sa) for c, t, _, sa in CONDITION_CASES if sa is not None]


@pytest.mark.parametrize("condition,token,sat_absent", ABSENT_CASES)
def test_all_operations_on_an_absent_key(d, condition, token, sat_absent):
    def ina(r):
        assert (r.actual_etag, r.resulting_etag, r.new_value) == (INA, INA, INA)
        assert r.condition_was_satisfied is sat_absent
        assert not r.value_was_mutated

    for mode in MODES:
        ina(d.get_item_if("k", condition=condition, expected_etag=token, retrieve_value=mode))
    ina(d.set_item_if("k", value=KEEP_CURRENT, condition=condition, expected_etag=token))
    ina(d.set_item_if("k", value=DELETE_CURRENT, condition=condition, expected_etag=token))
    ina(d.discard_if("k", condition=condition, expected_etag=token))
    assert d.store == {}
    r = d.set_item_if("k", value="v", condition=condition, expected_etag=token)
    if sat_absent:
        assert (r.actual_etag, r.resulting_etag, r.new_value) == (INA, d.etag("k"), "v")
        assert r.value_was_mutated
        del d["k"]
    else:
        ina(r)
    r = d.setdefault_if("k", default_value="dv", condition=condition, expected_etag=token)
    if sat_absent:
        assert (r.actual_etag, r.resulting_etag, r.new_value) == (INA, d.etag("k"), "dv")
    else:
        ina(r)
        assert d.store == {}


def test_write_success_returns_the_object_passed_in(d):
    value = ["a", "list"]
    r = d.set_item_if("k", value=value, condition=ANY_ETAG, expected_etag=INA, retrieve_value=NEVER_RETRIEVE)
    assert r.new_value is value
    default = {"x": 1}
    r = d.setdefault_if("j", default_value=default, condition=ANY_ETAG, expected_etag=INA)
    assert r.new_value is default


def test_failed_set_item_if_racing_a_delete_gives_an_ina_result():
    class DeletedMidway(DictBacked):
        def __getitem__(self, key):
            self.store.clear()  # another process deletes the key right before we read it
            return super().__getitem__(key)

    d = DeletedMidway()
    d["k"] = "v"
    r = d.set_item_if("k", value="new", condition=ETAG_IS_THE_SAME, expected_etag="stale",
                      retrieve_value=ALWAYS_RETRIEVE)
    assert r.condition_was_satisfied is False
    assert (r.actual_etag, r.resulting_etag, r.new_value) == (INA, INA, INA)


def test_conditional_ops_validate_flags(d):
    with pytest.raises(TypeError):
        d.get_item_if("k", condition=ANY_ETAG, expected_etag=INA, retrieve_value="always")
    with pytest.raises(TypeError):
        d.set_item_if("k", value=1, condition=ANY_ETAG, expected_etag=INA, retrieve_value=None)
    with pytest.raises(ValueError, match="condition must be"):
        d.get_item_if("k", condition="same", expected_etag=INA)
    with pytest.raises(TypeError):
        d.setdefault_if("k", default_value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    d["k"] = 1
    with pytest.raises(TypeError):  # a joker default is rejected even when the key exists
        d.setdefault_if("k", default_value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)


def test_append_only_conditional_writes():
    ao = DictBacked(append_only=True)
    r = ao.set_item_if("k", value=1, condition=ETAG_IS_THE_SAME, expected_etag=INA)
    assert r.condition_was_satisfied and ao["k"] == 1
    r = ao.set_item_if("k", value=2, condition=ETAG_IS_THE_SAME, expected_etag=INA)
    assert not r.condition_was_satisfied and ao["k"] == 1
    with pytest.raises(MutationPolicyError):
        ao.set_item_if("k", value=2, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(MutationPolicyError):
        ao.set_item_if("k", value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(MutationPolicyError):  # base class: even for an absent key
        ao.set_item_if("absent", value=DELETE_CURRENT, condition=ANY_ETAG, expected_etag=INA)
    with pytest.raises(MutationPolicyError):
        ao.discard_if("k", condition=ANY_ETAG, expected_etag=INA)
    assert ao.discard_if("absent", condition=ANY_ETAG, expected_etag=INA).new_value is INA
    r = ao.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag="stale")
    assert not r.condition_was_satisfied
    r = ao.set_item_if("k", value=KEEP_CURRENT, condition=ANY_ETAG, expected_etag=INA,
                       retrieve_value=ALWAYS_RETRIEVE)
    assert r.new_value == 1
    assert ao["k"] == 1


# --- setdefault, random_key, equality, ordering --------------------------------------------------------


def test_setdefault_rejects_jokers_even_when_the_key_exists(d):
    for joker in (KEEP_CURRENT, DELETE_CURRENT):
        with pytest.raises(TypeError):
            d.setdefault("k", joker)
    d["k"] = 1
    for joker in (KEEP_CURRENT, DELETE_CURRENT):
        with pytest.raises(TypeError):
            d.setdefault("k", joker)
    assert d["k"] == 1


def test_setdefault_semantics():
    d = DictBacked(base_class_for_values=int)
    default = 7
    assert d.setdefault("k", default) is default
    assert d.setdefault("k", "wrong type ignored when present") == 7
    with pytest.raises(TypeError):
        d.setdefault("j", "wrong type on a missing key")
    n = DictBacked()
    assert n.setdefault("none") is None
    assert NonEmptySafeStrTuple("none") in n.store


def test_random_key_repeats_after_seeding(d):
    for i in range(10):
        d[f"k{i}"] = i
    random.seed(42)
    first = [d.random_key() for _ in range(30)]
    random.seed(42)
    second = [d.random_key() for _ in range(30)]
    assert first == second
    assert len(set(first)) > 1
    assert DictBacked().random_key() is None


def test_random_key_uses_the_stdlib_random(d, monkeypatch):
    for i in range(3):
        d[f"k{i}"] = i
    draws = []

    def fake_random():
        draws.append(1)
        return 0.0  # always below 1/seen: the last key wins

    monkeypatch.setattr(random, "random", fake_random)
    assert d.random_key() == ("k2",)
    assert len(draws) == 3


def test_random_key_is_roughly_uniform(d):
    n_keys, n_draws = 5, 5000
    for i in range(n_keys):
        d[f"k{i}"] = i
    random.seed(1234)
    counts = Counter(d.random_key() for _ in range(n_draws))
    assert len(counts) == n_keys
    for count in counts.values():
        assert abs(count - n_draws / n_keys) < 0.15 * n_draws / n_keys


def test_equality_with_same_params_reads_nothing(d):
    d["k"] = 1
    other = DictBacked(store=d.store)
    d.calls.clear()
    other.calls.clear()
    assert d == other
    assert d.calls["getitem"] == other.calls["getitem"] == 0
    assert d == {"k": 1}
    assert d != {"k": 2}
    assert d != {"k": 1, "j": 2}
    assert d != {}
    assert (d == 5) is False
    assert d.__eq__(5) is NotImplemented
    assert d.__ne__(5) is NotImplemented


def test_bool_never_calls_len(d):
    assert not d
    d["k"] = 1
    assert d
    assert d.calls["len"] == 0


def test_oldest_and_newest(d):
    for i in range(4):
        d[f"k{i}"] = i
    assert d.oldest_keys() == [(f"k{i}",) for i in range(4)]
    assert d.newest_keys(max_n=2) == [("k3",), ("k2",)]
    assert d.oldest_values(max_n=1) == [0]
    assert d.newest_values() == [3, 2, 1, 0]
    assert d.oldest_keys(max_n=0) == [] and d.newest_keys(max_n=-1) == []


def test_subdicts_on_the_base_need_get_subdict(d):
    d["a", "b"] = 1
    with pytest.raises(NotImplementedError):
        d.subdicts()
    assert DictBacked().subdicts() == {}


def test_ior_and_update(d):
    assert (d.__ior__({"a": 1})) is d
    d |= {"b": 2}
    assert d.update([("c", 3)], e=5) is None
    assert dict(d.items()) == {("a",): 1, ("b",): 2, ("c",): 3, ("e",): 5}
    with pytest.raises(TypeError, match="non-Mapping"):
        d |= [("x", 1)]
    with pytest.raises(TypeError):
        d | {"x": 1}


def test_keep_and_delete_current_through_setitem(d):
    d["k"] = 1
    e = d.etag("k")
    d["k"] = KEEP_CURRENT
    d["missing"] = KEEP_CURRENT
    assert d.etag("k") == e and "missing" not in d
    d["k"] = DELETE_CURRENT
    d["k"] = DELETE_CURRENT  # silent on a missing key
    assert d.store == {}
    with pytest.raises(TypeError):
        d["k"] = LocalDict()


def test_base_class_for_values_on_read():
    d = DictBacked(base_class_for_values=int)
    d.store[NonEmptySafeStrTuple("bad")] = ("not an int", 1.0, 1)
    with pytest.raises(TypeError, match="int"):
        d["bad"]
    with pytest.raises(TypeError, match="int"):
        d.get_with_etag("bad")
    assert list(d.keys()) == [("bad",)]


def test_public_module_exposes_the_base_class():
    assert persidict.PersiDict is PersiDict


def test_append_only_policy_in_dict_methods():
    ao = DictBacked(append_only=True)
    with pytest.raises(MutationPolicyError):
        ao["absent"] = DELETE_CURRENT  # checked before existence
    with pytest.raises(MutationPolicyError):
        ao.clear()  # even when empty
    with pytest.raises(MutationPolicyError):
        ao.discard("absent")
    with pytest.raises(MutationPolicyError):
        ao.delete_if_exists("absent")
    ao["k"] = 1
    with pytest.raises(MutationPolicyError):
        ao["k"] = 2
    with pytest.raises(MutationPolicyError):
        del ao["k"]
    ao["k"] = KEEP_CURRENT
    assert ao["k"] == 1


def test_clear_discards_every_key(d):
    for i in range(5):
        d[f"k{i}"] = i
    d.clear()
    assert d.store == {}
    assert d.calls["delitem"] == 5
