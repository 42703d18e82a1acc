"""A cache folder bounded by ``max_bytes`` (docs/stores.md#bounded-caches): several processes share one
limit, and the folder never holds more than ``max_bytes`` plus the one value being written."""

from __future__ import annotations

import multiprocessing
import os
import random
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict, MutableDictCached
from persidict.backends.budget import BUDGET_NAME

MAX_BYTES = 64 * 1024
LARGEST_VALUE = 4000
OPERATIONS = 2500  # per process: 10,000 in all
PICKLE_OVERHEAD = 64


def folder_bytes(folder: str) -> int:
    """The bytes stored below ``folder`` (values, ETags, records, writes in progress), each file once
    (a write lands by ``link``: for a moment the value has two names); not the budget's own index."""
    sizes: dict[int, int] = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name.startswith(BUDGET_NAME):
                continue
            try:
                status = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue  # evicted or renamed while we counted
            sizes[status.st_ino] = status.st_size
    return sum(sizes.values())


def _reads_and_writes(main_folder: str, cache_dir: str, seed: int) -> int:
    """Random reads and writes through a bounded cache; the most bytes the cache folder ever held."""
    cached = FsspecDict(main_folder).with_local_cache(cache_dir, max_bytes=MAX_BYTES)
    rng = random.Random(seed)
    most = 0
    for _ in range(OPERATIONS):
        key = f"k{rng.randrange(80)}"
        if rng.random() < 0.5:
            cached[key] = bytes(rng.randrange(100, LARGEST_VALUE))
        else:
            cached.get(key)
        most = max(most, folder_bytes(cache_dir))
    return most


@pytest.mark.processes
def test_four_processes_never_let_the_folder_exceed_the_budget(tmp_path: Path) -> None:
    main_folder, cache_dir = str(tmp_path / "main"), str(tmp_path / "cache")
    FsspecDict(main_folder)["k0"] = b""  # create the main store once
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        peaks = pool.starmap(_reads_and_writes, [(main_folder, cache_dir, seed) for seed in range(4)])
    assert max(peaks) <= MAX_BYTES + LARGEST_VALUE + PICKLE_OVERHEAD, peaks
    assert folder_bytes(cache_dir) <= MAX_BYTES


def test_hits_are_served_from_the_cache_and_refreshed_after_eviction(tmp_path: Path) -> None:
    main = FsspecDict(str(tmp_path / "main"))
    cached = main.with_local_cache(tmp_path / "cache", max_bytes=16 * 1024)
    assert isinstance(cached, MutableDictCached)
    for index in range(40):
        cached[f"k{index}"] = bytes(1000) + bytes([index])
    assert folder_bytes(str(tmp_path / "cache")) <= 16 * 1024
    assert all(cached[f"k{index}"][-1] == index for index in range(40))  # evicted ones come from main


def test_the_least_recently_used_value_goes_first(tmp_path: Path) -> None:
    # Three values and the index fit; a fourth does not.
    store: FileDirDict[Any] = FileDirDict(tmp_path, max_bytes=80_000, fsync=False)
    for name in ("a", "b", "c"):
        store[name] = bytes(20_000)
    assert store["a"] == bytes(20_000)  # a is now the most recently used
    store["d"] = bytes(20_000)  # over the budget: b, the least recently used, goes
    assert set(map(tuple, store.keys())) == {("a",), ("c",), ("d",)}
    assert (tmp_path / BUDGET_NAME).is_file() and store.get_params()["max_bytes"] == 80_000


def test_a_budget_must_be_a_positive_int(tmp_path: Path) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_bytes"):
            FileDirDict(tmp_path, max_bytes=bad)
