"""Races the backend tests share: two writers inserting one key, a writer replacing a value while it is read."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from typing import Any

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, PersiDict


def race_an_insert(stores: list[PersiDict[Any]], values: list[Any], key: str = "k") -> int:
    """Let ``stores[i]`` insert ``values[i]`` under ``key`` at the same moment; the index of the winner.

    Asserts what a race of inserts must end in on every backend: exactly one
    writer mutated the value, the stored value is the winner's, and the loser
    knows it lost to that very version (its ``actual_etag`` is the winner's
    resulting ETag, which is the key's ETag now).
    """
    barrier = threading.Barrier(len(stores))
    results: list[Any] = [None] * len(stores)

    def insert(index: int) -> None:
        barrier.wait(timeout=60)
        results[index] = stores[index].setdefault_if(
            key, default_value=values[index], condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE)

    threads = [threading.Thread(target=insert, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    winners = [i for i, result in enumerate(results) if result is not None and result.value_was_mutated]
    assert len(winners) == 1, results
    winner = winners[0]
    assert stores[-1][key] == values[winner]
    current = stores[0].etag(key)
    for index, result in enumerate(results):
        if index != winner:
            assert result.actual_etag == results[winner].resulting_etag == current
    return winner


class Pickled:
    """A decoder as a backend's ``read_decoded`` takes it (what a store's codec is), pickle underneath."""

    def from_bytes(self, data: bytes) -> Any:
        return pickle.loads(data)

    def from_file(self, file: Any) -> Any:
        return pickle.load(file)


class ReplacedWhileRead(Pickled):
    """A decoder that reads a little, has another writer replace the value (``times`` times), then reads on."""

    def __init__(self, replace: Callable[[int], object], times: int) -> None:
        self.replace, self.times, self.calls = replace, times, 0

    def from_file(self, file: Any) -> Any:
        self.calls += 1
        if self.calls <= self.times:
            file.read(10)
            self.replace(self.calls)
            file.read()  # the rest: its ranges meet the new version
            raise AssertionError("a replaced version was read to its end")
        return super().from_file(file)
