"""A hot key just works: many threads incrementing one counter with ``transform_item`` at the default
settings all finish, and the count is exact (docs/concurrency.md#retries).

The default suite runs each case a few times; ``pytest -m many_runs tests/core/test_hot_keys.py``
runs the 20 consecutive runs the retry policy is chosen for.  (S3 and spawn processes: the
``benchmarks/bench_hot_keys.py`` table.)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from persidict import ITEM_NOT_AVAILABLE, FileDirDict, LocalDict, PersiDict

CALLS_PER_WORKER = 25


def _increment(current: Any) -> int:
    return 1 if current is ITEM_NOT_AVAILABLE else current + 1


def _hammer(store: PersiDict[Any], workers: int) -> list[BaseException]:
    """``workers`` threads x 25 increments of one key; the errors they met."""
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(CALLS_PER_WORKER):
            try:
                store.transform_item("hot", transformer=_increment)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _store(kind: str, folder: Path) -> PersiDict[Any]:
    return LocalDict() if kind == "memory" else FileDirDict(folder, fsync=False)


def _runs(kind: str, workers: int, runs: int, tmp_path: Path) -> None:
    for run in range(runs):
        store = _store(kind, tmp_path / f"run{run}")
        errors = _hammer(store, workers)
        assert errors == [], f"run {run}: {errors[:3]}"
        assert store["hot"] == workers * CALLS_PER_WORKER, f"run {run}"


@pytest.mark.parametrize("workers", [4, 8, 16])
@pytest.mark.parametrize("kind", ["local", "memory"])
def test_threads_on_one_key_finish_exact(kind: str, workers: int, tmp_path: Path) -> None:
    _runs(kind, workers, 2, tmp_path)


@pytest.mark.many_runs
@pytest.mark.parametrize("workers", [4, 8, 16])
@pytest.mark.parametrize("kind", ["local", "memory"])
def test_threads_on_one_key_finish_exact_twenty_times_in_a_row(kind: str, workers: int, tmp_path: Path) -> None:
    _runs(kind, workers, 20, tmp_path)
