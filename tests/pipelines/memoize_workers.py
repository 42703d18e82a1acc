"""Bodies and process targets for test_memoize.py, importable by spawned processes.

The memoized bodies live here, at module level, so that every process keys
them by the same identity (``tests.pipelines.memoize_workers.<name>``).  They count
their executions in a FileDirDict on the test's folder, atomically
(``transform_item``), so a test can tell how often a body really ran in
any process.
"""

from __future__ import annotations

import datetime
import decimal
import os
import time
import uuid
from pathlib import PurePosixPath
from typing import Any

from persidict import ITEM_NOT_AVAILABLE, FileDirDict, PersiDict
from persidict.pipelines.memoize import memoize


def _counter(counter_dir: str) -> FileDirDict[int]:
    return FileDirDict(base_dir=counter_dir, fsync=False)


def count_execution(counter_dir: str) -> int:
    """Add one to the execution count kept in ``counter_dir``; the new count."""
    result = _counter(counter_dir).transform_item(
        "executions", transformer=lambda n: 1 if n is ITEM_NOT_AVAILABLE else n + 1, n_retries=None
    )
    assert isinstance(result.new_value, int)
    return result.new_value


def executions(counter_dir: str) -> int:
    """How many times bodies counting in ``counter_dir`` have started."""
    return _counter(counter_dir).get("executions", 0)


def slow_square(x: int, counter_dir: str, pause: float = 0.3) -> int:
    """x * x, after ``pause`` seconds (so that concurrent callers find the body running)."""
    count_execution(counter_dir)
    time.sleep(pause)
    return x * x


def crash_first_time(x: int, counter_dir: str) -> int:
    """x * x, except that the first execution kills its process in the middle of the body."""
    if count_execution(counter_dir) == 1:
        os._exit(1)
    return x * x


def call_slow_square(store: PersiDict[Any], x: int, counter_dir: str, barrier: Any, results: Any) -> None:
    """Process target: wait at the barrier with the others, then call the memoized ``slow_square``."""
    square = memoize(store, lease=30.0, poll=0.05)(slow_square)
    if barrier is not None:
        barrier.wait(timeout=120)
    results.put((os.getpid(), square(x, counter_dir)))


def claim_then_crash(store: PersiDict[Any], x: int, counter_dir: str) -> None:
    """Process target: claim the key of ``crash_first_time(x)`` with a 1 s lease and die in its body."""
    memoize(store, lease=1.0, poll=0.05)(crash_first_time)(x, counter_dir)


def double_unless_blocked(x: int, flag_dir: str) -> int:
    """2 * x; while ``flag_dir/block`` exists, it first waits (up to ten minutes) for the file to go."""
    deadline = time.monotonic() + 600
    while os.path.exists(os.path.join(flag_dir, "block")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return 2 * x


def claim_and_block(store: PersiDict[Any], x: int, flag_dir: str) -> None:
    """Process target: claim the key of ``double_unless_blocked(x)`` with a ten-minute lease, and block."""
    memoize(store, lease=600.0)(double_unless_blocked)(x, flag_dir)


def sample_arguments() -> tuple[Any, ...]:
    """Arguments whose iteration order depends on the hash seed (sets and dicts of str), among others."""
    words = [f"word{i}" for i in range(40)]
    return (
        set(words),
        frozenset(words[::3]),
        {w: i for i, w in enumerate(reversed(words))},
        [1, 1.0, True, "1", b"1", None, -0.0, float("nan"), 2**100, 3 + 4j],
        (datetime.datetime(2024, 5, 6, 7, 8, 9, 10), datetime.date(2024, 1, 2), datetime.timedelta(seconds=90)),
        (decimal.Decimal("1.50"), uuid.UUID(int=12345), PurePosixPath("/data/x.csv")),
    )


def sample_key() -> str:
    """The memoize digest of ``sample_arguments()`` (printed by the subprocesses of the stability test)."""
    from persidict import LocalDict

    def probe(*args: Any) -> None:
        """Only its key is used."""

    return memoize(LocalDict(), name="probe")(probe).key(*sample_arguments())[-1]


if __name__ == "__main__":
    print(sample_key())
