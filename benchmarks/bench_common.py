"""Shared pieces of the benchmark: the value, timing helpers, result rows and the table."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "VALUE",
    "Row",
    "Settings",
    "format_seconds",
    "render_table",
    "time_call",
]


def make_value(target_size: int = 100) -> dict[str, object]:
    """A realistic small record, its name padded so that it pickles to about ``target_size`` bytes."""
    value: dict[str, object] = {"id": 12345, "name": "", "tags": ["a", "b"], "score": 0.5}
    base = len(pickle.dumps(value))
    value["name"] = "benchmark item " + "x" * max(0, target_size - base - 15)
    return value


VALUE = make_value()
"""The one value every store and every raw baseline writes and reads."""


@dataclass(frozen=True)
class Settings:
    """Sizes and repeat counts of one run (``--quick`` shrinks them)."""

    quick: bool
    keys: int  # keys per non-fsync local store
    sync_keys: int  # keys per fsync=True store (each write costs milliseconds)
    repeats: int
    scaling_sizes: tuple[int, int]
    scaling_ops: int
    import_runs: int
    s3_timed_ops: int
    s3_len_keys: int
    s3_bulk_keys: int
    s3_bulk_repeats: int
    s3_latency_s: float = 0.02
    big_mib: int = 256  # size of each big value (array, DataFrame)
    big_store_keys: int = 200_000  # keys in the big store


@contextlib.contextmanager
def machine_cache(folder: str) -> Iterator[None]:
    """persidict's per-machine cache (memoize's code, len()'s counts) in ``folder`` (``""``: off) while
    the block runs: never the user's own ``~/.cache``."""
    previous = os.environ.get("PERSIDICT_CACHE_DIR")
    os.environ["PERSIDICT_CACHE_DIR"] = folder
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PERSIDICT_CACHE_DIR"]
        else:
            os.environ["PERSIDICT_CACHE_DIR"] = previous


def time_call(function: Callable[[], object]) -> float:
    """Seconds one call of ``function`` takes (``perf_counter``, garbage collector paused, as ``timeit`` does)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def best(samples: list[float]) -> float:
    """The fastest of several timings of the same work."""
    return min(samples)


@dataclass
class Row:
    """One line of the result table: a store's rate for one operation, with its comparisons."""

    section: str
    store: str
    operation: str
    rate: float | None = None  # operations per second (None when the row is not a rate)
    seconds_per_op: float | None = None
    vs_raw: float | None = None
    vs_peer: float | None = None
    value: str | None = None  # a figure that is not a rate (request counts, ms, ratios)
    target: str = ""
    meets: bool | None = None
    note: str = ""


def format_seconds(seconds: float | None) -> str:
    """A duration in the most readable unit."""
    if seconds is None:
        return ""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def format_rate(rate: float | None) -> str:
    """Operations per second, with thousands separators."""
    if rate is None:
        return ""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:,.1f}"


def format_ratio(ratio: float | None) -> str:
    """A ratio such as ``0.93x``."""
    return "" if ratio is None else f"{ratio:.2f}x"


def _status(meets: bool | None) -> str:
    """The status cell: ok, MISS or empty when the row has no target."""
    return {True: "ok", False: "MISS", None: ""}[meets]


def render_table(rows: list[Row]) -> str:
    """All rows as one markdown table."""
    header = ["store", "operation", "ops/s", "time/op", "vs raw", "vs diskcache", "value", "target", "", "note"]
    lines = [header]
    for row in rows:
        lines.append(
            [
                row.store,
                row.operation,
                format_rate(row.rate),
                format_seconds(row.seconds_per_op),
                format_ratio(row.vs_raw),
                format_ratio(row.vs_peer),
                row.value or "",
                row.target,
                _status(row.meets),
                row.note,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)
