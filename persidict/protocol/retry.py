"""One retry policy for every loop: ``RetryConfig``.

A store tries again in two situations: the storage failed in a way that
may pass (a sync client holding a file, throttling, a lost connection), or
another writer won a compare-and-swap race (``transform_item``, ``setdefault``,
the conditional operations' check-and-write rounds).  Both wait with the same
full-jitter exponential backoff, and both are bounded by attempts or by time,
as ``RetryConfig`` says.  (obstore's ``RetryConfig`` is the model.)

The defaults are chosen so that a hot key just works: 16 processes incrementing
one counter with ``transform_item`` all finish (benchmarks/bench_hot_keys.py),
because a conflict loop gives up only after ``conflict_timeout`` seconds of
lost races, not after a handful of attempts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["DEFAULT_RETRY", "RetryConfig", "Rounds"]


@dataclass(frozen=True)
class RetryConfig:
    """How persidict retries: backoff, and the budgets of conflict loops and transient errors.

    Attributes:
        init_backoff: the first wait's upper bound, in seconds; each wait is
            uniform in ``[0, min(max_backoff, init_backoff * backoff_base**n)]``
            before retry ``n`` (full jitter: contenders spread out at once).
        max_backoff: the cap of one wait.
        backoff_base: the growth of the bound per retry.
        conflict_timeout: seconds a conflict loop keeps trying when the caller
            set no count (``transform_item(..., n_retries=k)`` sets one).
        max_conflict_retries: retries of a conflict loop beyond the first
            attempt; ``None``: bounded by ``conflict_timeout`` alone.
        transient_attempts: attempts of a local operation that failed for a
            reason that passes (a ``PermissionError`` from a virus scanner).
        request_attempts: sends of one request to a remote store whose
            answers keep getting lost (5xx, resets, timeouts; a request that
            cannot connect gets at most 3: a dead endpoint fails fast).  Every
            send is safe: reads are idempotent and every change is reconciled.
            Throttling (503 SlowDown) is retried until the store's ``timeout``.

    Example:
        >>> policy = RetryConfig(conflict_timeout=5.0)
        >>> 0.0 <= policy.backoff(3) <= 8 * policy.init_backoff
        True
    """

    init_backoff: float = 0.02
    max_backoff: float = 1.0
    backoff_base: float = 2.0
    conflict_timeout: float = 120.0
    max_conflict_retries: int | None = None
    transient_attempts: int = 6
    request_attempts: int = 5

    def __post_init__(self) -> None:
        for name in ("init_backoff", "max_backoff", "conflict_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"RetryConfig.{name} must be a number >= 0, got {value!r}")
        if not self.backoff_base >= 1:
            raise ValueError(f"RetryConfig.backoff_base must be >= 1, got {self.backoff_base!r}")
        if self.max_conflict_retries is not None and self.max_conflict_retries < 0:
            raise ValueError(f"RetryConfig.max_conflict_retries must be >= 0 or None, got {self.max_conflict_retries}")
        for name in ("transient_attempts", "request_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"RetryConfig.{name} must be >= 1, got {getattr(self, name)}")

    def backoff(self, retry: int) -> float:
        """A jittered wait before retry number ``retry`` (0-based)."""
        return random.uniform(0.0, min(self.max_backoff, self.init_backoff * self.backoff_base**retry))

    def rounds(self, max_retries: int | None = None, *, forever: bool = False) -> Rounds:
        """The attempts of one conflict loop (``Rounds``): the policy's budget, ``max_retries``
        retries after the first attempt (a caller's ``n_retries``), or ``forever``."""
        if forever:
            return Rounds(self, None, None)
        if max_retries is not None:
            return Rounds(self, max_retries, None)
        return Rounds(self, self.max_conflict_retries, time.monotonic() + self.conflict_timeout)

    def call(self, operation: Callable[..., T], transient: tuple[type[BaseException], ...], *args: Any) -> T:
        """``operation(*args)``, tried again on a ``transient`` error up to ``transient_attempts`` times in all.

        The arguments are passed through rather than bound first: local folders call this on every
        read and write, where building a ``functools.partial`` would be a cost of its own.
        """
        for attempt in range(self.transient_attempts - 1):
            try:
                return operation(*args)
            except transient:
                time.sleep(self.backoff(attempt))
        return operation(*args)


class Rounds:
    """The attempts of one conflict loop: iterate over it, waiting (with backoff) before every
    attempt after the first; once it stops, ``attempts`` says how many there were."""

    def __init__(self, config: RetryConfig, max_retries: int | None, deadline: float | None) -> None:
        self._config = config
        self._max_retries = max_retries
        self._deadline = deadline
        self.attempts = 0

    def __iter__(self) -> Iterator[int]:
        while True:
            if self.attempts:
                if self._max_retries is not None and self.attempts > self._max_retries:
                    return
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    return
                time.sleep(self._config.backoff(self.attempts - 1))
            self.attempts += 1
            yield self.attempts


DEFAULT_RETRY = RetryConfig()
"""The policy of every store that was given none."""
