"""Bulk reads within a budget of bytes: many values fetched at once, handed over in order as they arrive.

``values()``, ``items()``, ``get_many()`` and copies read many values from an
object store concurrently.  Counting values does not bound memory (256 values
of 300 MB each are 77 GB), so the reader counts bytes: a fetch starts only
while the bytes held (values fetched and not yet handed over, the one being
handed over included, plus the expected size of those in flight) leave room
for one more value of the largest size seen so far.  The first fetch goes
alone, since nothing is known about sizes yet; whatever the sizes, a fetch
always starts when nothing is held or in flight, so one value larger than
the budget is still read (alone).

A value is released from the count when the consumer asks for the next one,
so memory stays below the budget plus the value the consumer has decoded.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["read_within_budget"]

T = TypeVar("T")

MAX_PENDING = 256
"""Values fetched ahead of the consumer at most, however small (each costs a thread's future)."""


class _Budget(Generic[T]):
    """The bytes a bulk read holds, and whether one more fetch fits (fetches end on other threads)."""

    def __init__(self, budget: int, size_of: Callable[[T], int], concurrency: int) -> None:
        self.budget = budget
        self.size_of = size_of
        self.concurrency = concurrency
        self.held = 0  # bytes of values fetched and not yet released
        self.in_flight = 0  # fetches not yet done
        self.largest: int | None = None  # the largest value seen: the guess for each fetch in flight
        self._lock = threading.Lock()

    def fits(self) -> bool:
        with self._lock:
            if self.held == 0 and self.in_flight == 0:
                return True
            if self.largest is None or self.in_flight >= self.concurrency:
                return False  # sizes unknown yet: the first fetch goes alone
            return self.held + (self.in_flight + 1) * self.largest <= self.budget

    def start(self, pool: ThreadPoolExecutor, fetch: Callable[[str], T], path: str) -> Future[T]:
        with self._lock:
            self.in_flight += 1
        future = pool.submit(fetch, path)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[T]) -> None:
        size = 0 if future.cancelled() or future.exception() else self.size_of(future.result())
        with self._lock:
            self.in_flight -= 1
            self.held += size
            self.largest = size if self.largest is None else max(self.largest, size)

    def release(self, result: T) -> None:
        with self._lock:
            self.held -= self.size_of(result)


def read_within_budget(
    fetch: Callable[[str], T],
    paths: Sequence[str],
    *,
    budget: int,
    size_of: Callable[[T], int],
    concurrency: int,
) -> Iterator[T]:
    """``fetch(path)`` for every path, from ``concurrency`` threads, yielded in order within ``budget`` bytes."""
    if not paths:
        return
    state: _Budget[T] = _Budget(budget, size_of, concurrency)
    pending: collections.deque[Future[T]] = collections.deque()
    pool = ThreadPoolExecutor(min(concurrency, len(paths)))
    started = 0
    try:
        for _ in paths:
            while started < len(paths) and len(pending) < MAX_PENDING and state.fits():
                pending.append(state.start(pool, fetch, paths[started]))
                started += 1
            result = pending.popleft().result()
            yield result
            state.release(result)  # the consumer asked for the next one: this one is its business now
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
