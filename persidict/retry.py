"""Bounded retries with jittered exponential backoff for transient storage errors."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRANSIENT_ATTEMPTS = 6
"""Attempts for errors that are usually transient (about half a second in all)."""


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
