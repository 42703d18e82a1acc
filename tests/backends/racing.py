"""Two writers racing an insert-if-absent of one key: the shared part of the per-backend race tests."""

from __future__ import annotations

import threading
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
