"""transform_item and the pop built on it (docs/concurrency.md#transform-item, docs/concurrency.md#retries)."""

from __future__ import annotations

import time

import pytest

from persidict import (
    DELETE_CURRENT,
    KEEP_CURRENT,
    ConcurrencyConflictError,
    NonEmptySafeStrTuple,
    OperationResult,
    RetryConfig,
)

from .contract_helpers import INA, next_value, number_of, plain_value


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    """Cap the retry back-off so conflict tests stay fast (the waits are not under test)."""
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: real_sleep(min(seconds, 0.002)))


def test_transformer_gets_ina_for_a_missing_key_and_inserts(make_dict):
    d = make_dict()
    seen = []

    def init(current):
        seen.append(current)
        return plain_value(1)

    r = d.transform_item("k", transformer=init)
    assert isinstance(r, OperationResult)
    assert seen == [INA]
    assert r.new_value == plain_value(1)
    assert r.resulting_etag == make_dict().etag("k")
    assert make_dict()["k"] == plain_value(1)


def test_transformer_gets_the_current_value(d):
    d["k"] = plain_value(1)
    seen = []

    def bump(current):
        seen.append(current)
        return next_value(current)

    r = d.transform_item("k", transformer=bump)
    assert seen == [plain_value(1)]
    assert r.new_value == plain_value(2)
    assert d["k"] == plain_value(2)
    assert r.resulting_etag == d.etag("k")


def test_identity_transformer_still_writes(d, tick):
    d["k"] = plain_value(1)
    e = d.etag("k")
    tick()
    r = d.transform_item("k", transformer=lambda v: v)
    assert r.resulting_etag != e
    assert r.resulting_etag == d.etag("k")
    assert d["k"] == plain_value(1)


@pytest.mark.insert_only
def test_keep_current_keeps_etag_and_returns_value(d):
    d["k"] = plain_value(1)
    e = d.etag("k")
    r = d.transform_item("k", transformer=lambda v: KEEP_CURRENT)
    assert r.resulting_etag == e
    assert r.new_value == plain_value(1)
    assert d.etag("k") == e


@pytest.mark.insert_only
def test_keep_current_on_missing_key(d):
    r = d.transform_item("k", transformer=lambda v: KEEP_CURRENT)
    assert r.resulting_etag is INA and r.new_value is INA
    assert "k" not in d


def test_delete_current(d):
    d["k"] = plain_value(1)
    r = d.transform_item("k", transformer=lambda v: DELETE_CURRENT)
    assert r.resulting_etag is INA and r.new_value is INA
    assert "k" not in d
    r = d.transform_item("k", transformer=lambda v: DELETE_CURRENT)
    assert r.resulting_etag is INA and r.new_value is INA


def _interfering(make_dict, key, conflicts):
    """A transformer that lets another writer change the key on its first ``conflicts`` calls."""
    other = make_dict()
    calls = []

    def transformer(current):
        calls.append(current)
        if len(calls) <= conflicts:
            other[key] = plain_value(1000 + len(calls))
        return plain_value(1) if current is INA else next_value(current)

    return transformer, calls


@pytest.mark.parametrize("n_retries", [0, 1, 2])
def test_retries_exhausted_raise_conflict(make_dict, n_retries):
    d = make_dict()
    d["k"] = plain_value(0)
    transformer, calls = _interfering(make_dict, "k", conflicts=100)
    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("k", transformer=transformer, n_retries=n_retries)
    assert len(calls) == n_retries + 1
    assert info.value.attempts == n_retries + 1
    assert info.value.key == NonEmptySafeStrTuple("k")
    assert str(info.value).startswith(f"other writers kept changing key 'k': gave up after {n_retries + 1} "
                                      "attempt(s), nothing was written. Call again, let it retry longer")
    assert isinstance(info.value, RuntimeError)
    assert d["k"] == plain_value(1000 + n_retries + 1)  # the other writer's last value stands


def test_conflict_resolved_within_budget(make_dict):
    d = make_dict()
    d["k"] = plain_value(0)
    transformer, calls = _interfering(make_dict, "k", conflicts=2)
    r = d.transform_item("k", transformer=transformer, n_retries=2)
    assert len(calls) == 3
    assert calls[1] == plain_value(1001) and calls[2] == plain_value(1002)  # each retry sees the winner's value
    assert r.new_value == plain_value(1003)
    assert d["k"] == plain_value(1003)


def test_unbounded_retries(make_dict):
    d = make_dict()
    transformer, calls = _interfering(make_dict, "k", conflicts=4)
    r = d.transform_item("k", transformer=transformer, n_retries=None)
    assert len(calls) == 5
    assert r.new_value == plain_value(1005) and d["k"] == plain_value(1005)


def test_by_default_a_hot_key_outlasts_many_conflicts(make_dict):
    # The default budget is the store's RetryConfig, a time budget: 30 lost races in a row are nothing.
    d = make_dict()
    d["k"] = plain_value(0)
    transformer, calls = _interfering(make_dict, "k", conflicts=30)
    r = d.transform_item("k", transformer=transformer)
    assert len(calls) == 31 and r.new_value == plain_value(1031) and make_dict()["k"] == plain_value(1031)


def test_the_store_retry_policy_sets_the_default_budget(make_dict):
    d = make_dict(retry=RetryConfig(max_conflict_retries=6))
    d["k"] = plain_value(0)
    transformer, calls = _interfering(make_dict, "k", conflicts=100)
    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("k", transformer=transformer)
    assert len(calls) == 7 and info.value.attempts == 7


def test_zero_retries_without_conflict_succeeds(d):
    d["k"] = plain_value(1)
    r = d.transform_item("k", transformer=lambda v: plain_value(10 * number_of(v)), n_retries=0)
    assert r.new_value == plain_value(10) and d["k"] == plain_value(10) and r.resulting_etag == d.etag("k")


def test_n_retries_validation(d):
    d["k"] = plain_value(1)
    with pytest.raises(ValueError):
        d.transform_item("k", transformer=next_value, n_retries=-1)
    with pytest.raises(TypeError):
        d.transform_item("k", transformer=next_value, n_retries="bad")
    with pytest.raises(TypeError):
        d.transform_item("k", transformer=next_value, n_retries=object())
    assert d["k"] == plain_value(1)
    r = d.transform_item("k", transformer=next_value, n_retries=2.7)
    assert r.new_value == plain_value(2) and d["k"] == plain_value(2)


def test_float_n_retries_is_truncated(make_dict):
    d = make_dict()
    d["k"] = plain_value(0)
    transformer, calls = _interfering(make_dict, "k", conflicts=100)
    with pytest.raises(ConcurrencyConflictError) as info:
        d.transform_item("k", transformer=transformer, n_retries=1.9)
    assert len(calls) == 2 and info.value.attempts == 2


@pytest.mark.insert_only
def test_transformer_is_keyword_only(d):
    with pytest.raises(TypeError):
        d.transform_item("k", lambda v: plain_value(1))
    assert "k" not in d


def test_delete_conflict_is_retried(make_dict):
    d = make_dict()
    d["k"] = plain_value(0)
    other = make_dict()
    calls = []

    def delete_after_interference(current):
        calls.append(current)
        if len(calls) == 1:
            other["k"] = plain_value(5)
        return DELETE_CURRENT

    r = d.transform_item("k", transformer=delete_after_interference, n_retries=3)
    assert calls == [plain_value(0), plain_value(5)]
    assert r.resulting_etag is INA and r.new_value is INA
    assert "k" not in d


def test_pop_uses_current_value_even_with_a_default(make_dict):
    d = make_dict()
    d["k"] = plain_value(5)
    assert d.pop("k", "default") == plain_value(5)
    assert "k" not in make_dict()
