"""Bounded retries with jittered exponential backoff for transient storage errors."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRANSIENT_ATTEMPTS = 6
"""Attempts for errors that are usually transient (about half a second in all)."""


def backoff_delay(attempt: int, base: float = 0.01, cap: float = 0.2) -> float:
    """Jittered exponential delay before retry number ``attempt`` (0-based)."""
    return random.uniform(base, min(cap, base * 2 ** (attempt + 1)))


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
