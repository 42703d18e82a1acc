"""Big stores: a ``FileDirDict(fsync=False)`` of N keys in 100 sub-folders (default 200,000;
``--big-store-keys 1000000`` for the million), against the raw limits measured in the same run:

- ``keys()`` against an ``os.scandir`` walk of the same tree (per file);
- ``len()`` against the same walk, and against persidict 0.309.0's ``len()`` on the same folder
  (its own interpreter, ``.venvs/persidict-0.309.0``, run as a black box): the first count on
  this machine (no record of an earlier one); of a fresh store object, as a new process counts
  (folders unchanged since this machine's record of the last count are not listed); and again
  on the same object;
- ``values()`` and ``items()`` against reading every file with ``open().read()`` + ``pickle.loads``
  (per item);
- ``d[k]`` of random keys, against the same at 1,000 keys (the slowdown a big store causes).

The store is filled by naming its files directly (the names come from ``key_to_path``): each
folder's first value is written, the others are hard links to it, so a million keys cost a
minute of directory entries, not gigabytes of writes (listings and reads see ordinary files).
"""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_common import VALUE, Row, best, machine_cache, time_call

FOLDERS = 100
REFERENCE_PYTHON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venvs",
                                "persidict-0.309.0", "bin", "python")
_REFERENCE_LEN = "import sys, time; from persidict import FileDirDict; d = FileDirDict(base_dir=sys.argv[1]); " \
                 "t = time.perf_counter(); n = len(d); print(n, time.perf_counter() - t)"


def key_of(i: int) -> tuple[str, str]:
    return f"folder{i % FOLDERS}", f"key{i}"


def fill(folder: str, count: int) -> Any:
    """A FileDirDict(fsync=False) in ``folder`` holding ``count`` keys, its files written directly."""
    from persidict import FileDirDict

    d = FileDirDict(base_dir=folder, fsync=False)
    firsts: dict[str, str] = {}  # folder -> its first file, which the others are hard links to
    for i in range(count):
        path = d.key_to_path(key_of(i))
        parent = os.path.dirname(path)
        if parent not in firsts:
            d[key_of(i)] = VALUE  # records the layout, creates the folder
            firsts[parent] = path
        else:
            os.link(firsts[parent], path)  # a name of its own, no data written: a million in a minute
    return d


def raw_walk(folder: str, suffix: str = ".pkl") -> int:
    """The raw limit of a listing: an ``os.scandir`` walk counting the files that end in ``suffix``."""
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                count += raw_walk(entry.path, suffix)
            elif entry.name.endswith(suffix):
                count += 1
    return count


def count_keys(d: Any) -> int:
    """How many keys ``d.keys()`` lists (the listing timed)."""
    return sum(1 for _ in d.keys())  # noqa: SIM118  # keys() is what is measured


def raw_read_all(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as file:
            pickle.loads(file.read())


def reference_len(folder: str) -> float | None:
    """Seconds persidict 0.309.0 takes for ``len()`` of the store (None without its venv)."""
    if not os.path.exists(REFERENCE_PYTHON):
        return None
    timings = []
    for _ in range(3):
        env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}  # its own persidict
        out = subprocess.run([REFERENCE_PYTHON, "-c", _REFERENCE_LEN, folder], capture_output=True, text=True,
                             check=True, cwd=tempfile.gettempdir(), env=env).stdout.split()
        timings.append(float(out[1]))
    return min(timings)


def get_rate(d: Any, count: int, ops: int, repeats: int) -> float:
    """``d[k]`` per second over ``ops`` random keys of the ``count`` stored."""
    rng = random.Random(7)
    keys = [key_of(rng.randrange(count)) for _ in range(ops)]

    def work() -> None:
        for key in keys:
            d[key]

    return ops / best([time_call(work) for _ in range(repeats)])


def _timed(function: Callable[[], object], repeats: int) -> float:
    return best([time_call(function) for _ in range(repeats)])


def _per_item_row(operation: str, count: int, seconds: float, raw_seconds: float, target: str,
                  meets: bool | None, note: str) -> Row:
    return Row(section="bigstore", store="FileDirDict(fsync=False)", operation=f"{operation} @ {count:,} keys",
               rate=count / seconds, seconds_per_op=seconds / count, vs_raw=raw_seconds / seconds,
               target=target, meets=meets, note=note)


def _fresh(d: Any) -> Any:
    """A new store object on the same folder: nothing remembered (a new process's first call)."""
    return type(d)(**d.get_params())


def run_big_store(count: int = 200_000, repeats: int = 3, get_ops: int = 20_000) -> list[Row]:
    """The rows of the big-store section (see the module's docstring)."""
    from persidict.backends.local_counts import FolderCounts

    with tempfile.TemporaryDirectory(prefix="persidict-bigstore-") as root, \
            machine_cache(os.path.join(root, "cache")):
        small = fill(os.path.join(root, "small"), 1_000)
        d = fill(os.path.join(root, "big"), count)
        time.sleep(FolderCounts.SETTLE_SECONDS)  # a results folder left alone: its folders' counts can be kept
        walk = _timed(lambda: raw_walk(d.base_dir), repeats)
        keys = _timed(lambda: count_keys(_fresh(d)), repeats)  # a fresh store: cold
        with machine_cache(""):
            first_length = _timed(lambda: len(_fresh(d)), repeats)  # no record of an earlier count
        len(d)  # this machine's record of the count
        fresh_length = _timed(lambda: len(_fresh(d)), repeats)  # a new process: stats checked against it
        length = _timed(lambda: len(d), repeats)  # again: the folders unchanged since are not listed again
        reference = reference_len(d.base_dir)
        paths = [d.key_to_path(key) for key in d]
        raw_read = _timed(lambda: raw_read_all(paths), 1)
        values = _timed(lambda: sum(1 for _ in _fresh(d).values()), 1)
        items = _timed(lambda: sum(1 for _ in _fresh(d).items()), 1)
        small_rate, big_rate = get_rate(small, 1_000, get_ops, repeats), get_rate(d, count, get_ops, repeats)
    read_note = f"raw open().read() + pickle.loads: {raw_read / count * 1e6:.2f} µs per file"
    return [
        _per_item_row("keys()", count, keys, walk, ">= 0.3x raw walk", walk / keys >= 0.3,
                      f"raw scandir walk: {walk / count * 1e6:.2f} µs per file"),
        _per_item_row("values()", count, values, raw_read, "bounded by the raw read", None, read_note),
        _per_item_row("items()", count, items, raw_read, "bounded by the raw read", None, read_note),
        _len_row("len(), first on this machine", count, first_length, walk, reference),
        _len_row("len(), a fresh store (a new process)", count, fresh_length, walk, reference),
        _len_row("len() again, folders unchanged", count, length, walk, reference),
        Row(section="bigstore", store="FileDirDict(fsync=False)", operation=f"get (random key) @ {count:,} keys",
            rate=big_rate, seconds_per_op=1 / big_rate, value=f"{small_rate / big_rate:.2f}x slower than @ 1,000",
            target="<= 1.5x", meets=small_rate / big_rate <= 1.5, note=f"@ 1,000 keys: {small_rate:,.0f}/s"),
    ]


def _len_row(operation: str, count: int, seconds: float, walk: float, reference: float | None) -> Row:
    return Row(section="bigstore", store="FileDirDict(fsync=False)", operation=f"{operation} @ {count:,} keys",
               seconds_per_op=seconds, vs_raw=walk / seconds,
               value="" if reference is None else f"0.309.0: {reference * 1e3:,.0f} ms",
               target="no slower than 0.309.0", meets=None if reference is None else seconds <= reference,
               note=f"raw walk {walk * 1e3:,.0f} ms")
