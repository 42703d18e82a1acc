"""The cost of a cached call through ``persidict.memoize``, against a plain call and joblib.Memory.

Each contender calls a no-op function with the same argument ``settings.keys``
times after one warm-up call, so every timed call is a cache hit: what is
measured is the overhead memoization adds to a function whose result is
already stored (digesting the arguments and reading the result record).

Run standalone with ``python benchmarks/bench_memoize.py [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import Row, Settings, best, render_table, time_call

__all__ = ["run_memoize"]

SECTION = "memoize"
OPERATION = "cached call of a no-op"
ARGUMENT = (12345, "parameters", 0.5)


def noop(x: int, label: str, scale: float) -> None:
    """The memoized body: does nothing, so a cached call costs only the memoization."""


@contextmanager
def temporary_root() -> Iterator[str]:
    """A fresh folder, removed afterwards."""
    root = tempfile.mkdtemp(prefix="persidict-bench-memoize-")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def contenders(root: str) -> dict[str, Callable[..., None]]:
    """The plain function, memoize on two stores, and joblib.Memory, each warmed by one call."""
    import joblib

    from persidict import FileDirDict, LocalDict
    from persidict.pipelines.memoize import memoize

    functions: dict[str, Callable[..., None]] = {
        "plain function call": noop,
        "memoize(LocalDict())": memoize(LocalDict())(noop),
        "memoize(FileDirDict())": memoize(FileDirDict(base_dir=os.path.join(root, "persidict")))(noop),
        "joblib.Memory (peer)": joblib.Memory(location=os.path.join(root, "joblib"), verbose=0).cache(noop),
    }
    for function in functions.values():
        function(*ARGUMENT)  # computes and stores the result: the timed calls are hits
    return functions


def seconds_per_call(function: Callable[..., None], calls: int, repeats: int) -> float:
    """The best time of one call over ``repeats`` runs of ``calls`` calls."""

    def loop() -> None:
        for _ in range(calls):
            function(*ARGUMENT)

    return best([time_call(loop) for _ in range(repeats)]) / calls


def run_memoize(settings: Settings) -> list[Row]:
    """One row per contender: cached calls per second, and for memoize its rate against joblib's."""
    calls = settings.keys
    with temporary_root() as root:
        functions = contenders(root)
        seconds = {name: seconds_per_call(function, calls, settings.repeats) for name, function in functions.items()}
    plain, peer = seconds["plain function call"], seconds["joblib.Memory (peer)"]
    rows = []
    for name, per_call in seconds.items():
        row = Row(SECTION, name, OPERATION, 1 / per_call, per_call)
        if name.startswith("memoize"):
            row.value = f"{peer / per_call:.1f}x joblib's rate"
        if name != "plain function call":
            overhead = (per_call - plain) * 1e6
            row.note = f"{overhead:.1f} µs over a plain call; {calls:,} calls, best of {settings.repeats}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure with run.py's settings (``--quick`` and the size options work) and print the rows."""
    from run import parse_args, settings_from

    print(render_table(run_memoize(settings_from(parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
