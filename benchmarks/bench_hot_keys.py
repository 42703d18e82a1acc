"""Hot keys: 4, 8 and 16 workers incrementing one counter with ``transform_item`` at the default settings.

Threads and spawn processes, on a local folder, in memory (threads) and on S3
(the counting moto server); each case runs ``runs`` times in a row.  A row
reports whether every run ended exact with no ``ConcurrencyConflictError``,
and the increments per second of the slowest run.  The raw limit is one worker
doing the same increments alone (no contention): the ratio is the price of
sharing the key.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench_common import Row
from bench_s3 import counting_moto_server, open_store

import persidict

CALLS = 25
WORKER_COUNTS = (4, 8, 16)


def _increment(current: Any) -> int:
    return 1 if current is persidict.ITEM_NOT_AVAILABLE else current + 1


def _work(store: persidict.PersiDict[Any]) -> Counter[str]:
    """25 increments; the errors they raised, by type (any error is a failure of the case)."""
    failures: Counter[str] = Counter()
    for _ in range(CALLS):
        try:
            store.transform_item("hot", transformer=_increment)
        except Exception as exc:
            failures[type(exc).__name__] += 1
    return failures


def _in_threads(store: persidict.PersiDict[Any], workers: int) -> Counter[str]:
    results: list[Counter[str]] = []
    threads = [threading.Thread(target=lambda: results.append(_work(store))) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(results, Counter())


def _process_work(params: dict[str, Any], cls: type) -> Counter[str]:
    return _work(cls(**params))


def _in_processes(store: persidict.PersiDict[Any], workers: int) -> Counter[str]:
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return sum(pool.starmap(_process_work, [(store.get_params(), type(store))] * workers), Counter())


def _case(make: Callable[[], persidict.PersiDict[Any]], run: Callable[..., Counter[str]], workers: int,
          runs: int) -> tuple[Counter[str], float]:
    """The errors of all ``runs`` (a wrong final count included), and the slowest run's increments per second."""
    errors: Counter[str] = Counter()
    slowest = float("inf")
    for _ in range(runs):
        store = make()
        start = time.perf_counter()
        errors += run(store, workers)
        elapsed = time.perf_counter() - start
        if store["hot"] != workers * CALLS:
            errors["wrong count"] += 1
        slowest = min(slowest, workers * CALLS / elapsed)
    return errors, slowest


def _rows(name: str, make: Callable[[], persidict.PersiDict[Any]], modes: dict[str, Callable[..., int]],
          runs: int) -> list[Row]:
    alone = _case(make, _in_threads, 1, 1)[1]
    rows = []
    for mode, run in modes.items():
        for workers in WORKER_COUNTS:
            errors, rate = _case(make, run, workers, runs)
            failed = ", ".join(f"{count} {name}" for name, count in errors.items())
            rows.append(Row("hot keys", name, f"{workers} {mode} x {CALLS} transform_item(+1), {runs} runs",
                            rate=rate, vs_raw=rate / alone, value=failed or "exact",
                            target="exact, no ConcurrencyConflictError", meets=not errors,
                            note="rate: the slowest run; raw: one worker alone"))
    return rows


def run_hot_keys(runs: int = 20) -> list[Row]:
    """Every hot-key case, ``runs`` consecutive runs each (S3: a quarter as many, each request costs ms)."""
    folder = tempfile.mkdtemp(prefix="persidict-hot-")
    counter = iter(range(10**9))

    def local() -> persidict.PersiDict[Any]:
        return persidict.FileDirDict(f"{folder}/{next(counter)}", fsync=False)

    both = {"threads": _in_threads, "processes": _in_processes}
    rows = _rows("FileDirDict(fsync=False)", local, both, runs)
    rows += _rows("LocalDict()", persidict.LocalDict, {"threads": _in_threads}, runs)
    with counting_moto_server() as server:
        rows += _rows("S3 (moto)", lambda: open_store(server.url, f"hot/{next(counter)}"), both, max(1, runs // 4))
    return rows
