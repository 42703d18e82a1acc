"""RetryConfig, the one retry policy (docs/concurrency.md#retries): backoff, budgets and their validation."""

from __future__ import annotations

import time

import pytest

from persidict import RetryConfig


def test_backoff_is_full_jitter_below_a_growing_capped_bound() -> None:
    policy = RetryConfig(init_backoff=0.01, backoff_base=2.0, max_backoff=0.05)
    for retry in range(8):
        bound = min(0.05, 0.01 * 2**retry)
        samples = [policy.backoff(retry) for _ in range(200)]
        assert all(0.0 <= sample <= bound for sample in samples)
        assert max(samples) > bound / 2  # spread over the whole window, not pinned near 0


def test_rounds_count_retries_after_the_first_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    rounds = RetryConfig().rounds(3)
    assert list(rounds) == [1, 2, 3, 4] and rounds.attempts == 4 and len(waits) == 3


def test_the_policy_budget_is_time_unless_it_sets_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    clock = iter(range(1000))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    timed = RetryConfig(conflict_timeout=5.0).rounds()
    assert len(list(timed)) < 10  # stops once 5 (fake) seconds passed
    counted = RetryConfig(max_conflict_retries=2).rounds()
    assert len(list(counted)) == 3


def test_forever_never_stops_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    rounds = iter(RetryConfig(conflict_timeout=0.0, max_conflict_retries=0).rounds(forever=True))
    assert [next(rounds) for _ in range(50)][-1] == 50


def test_transient_errors_are_tried_again_up_to_the_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise PermissionError("held by a virus scanner")
        return "done"

    assert RetryConfig(transient_attempts=3).call(flaky, (PermissionError,)) == "done"
    calls.clear()
    with pytest.raises(PermissionError):
        RetryConfig(transient_attempts=2).call(flaky, (PermissionError,))
    assert len(calls) == 2


@pytest.mark.parametrize("bad", [{"init_backoff": -1}, {"max_backoff": "1"}, {"conflict_timeout": -0.5},
                                 {"backoff_base": 0.5}, {"max_conflict_retries": -1}, {"transient_attempts": 0},
                                 {"request_attempts": 0}])
def test_bad_settings_are_refused_when_the_policy_is_made(bad: dict) -> None:
    with pytest.raises(ValueError, match="RetryConfig"):
        RetryConfig(**bad)
