"""Local stores against the raw filesystem, a raw dict and diskcache, plus LocalDict scaling."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench_common import VALUE, Row, Settings, best, time_call
from bench_contenders import (
    Contender,
    DiskcacheContender,
    PersiContender,
    RawDictContender,
    RawFilesContender,
)

import persidict

__all__ = ["run_local", "run_scaling"]

SECTION = "local"
PEER = "diskcache.Cache"
WARM_KEYS = [f"warm_{i}" for i in range(10)]


@dataclass
class Entry:
    """A contender with the key counts it is measured with."""

    contender: Contender
    keys: int  # keys written per repeat
    increments: int
    raw: str | None  # name of its raw baseline (None for baselines and the peer)
    is_store: bool  # a row of the table (stores and the peer), not only a baseline


@contextmanager
def temporary_root() -> Iterator[str]:
    """A fresh folder under /tmp, removed afterwards."""
    root = tempfile.mkdtemp(prefix="persidict-bench-", dir="/tmp")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_entries(root: str, settings: Settings) -> list[Entry]:
    """The seven contenders, each in its own folder below ``root``."""
    sync_n, n = settings.sync_keys, settings.keys
    sync_inc, inc = max(20, sync_n // 2), max(200, min(n // 5, 2000))

    def folder(name: str) -> str:
        return os.path.join(root, name)

    return [
        Entry(
            PersiContender(
                "FileDirDict(fsync=True)", "fsync", persidict.FileDirDict(base_dir=folder("fdd_sync"), fsync=True)
            ),
            sync_n,
            sync_inc,
            "raw files (fsync)",
            True,
        ),
        Entry(RawFilesContender("raw files (fsync)", folder("raw_sync"), fsync=True), sync_n, sync_inc, None, False),
        Entry(
            PersiContender(
                "FileDirDict(fsync=False)",
                "no-fsync",
                persidict.FileDirDict(base_dir=folder("fdd_nosync"), fsync=False),
            ),
            n,
            inc,
            "raw files (no fsync)",
            True,
        ),
        Entry(RawFilesContender("raw files (no fsync)", folder("raw_nosync"), fsync=False), n, inc, None, False),
        Entry(PersiContender("LocalDict()", "memory", persidict.LocalDict()), n, inc * 5, "raw dict of pickles", True),
        Entry(RawDictContender("raw dict of pickles"), n, inc * 5, None, False),
        Entry(DiskcacheContender(PEER, folder("diskcache")), n, inc, None, True),
    ]


def fill_up(entry: Entry, keys: list[str], root: str) -> None:
    """Give an fsync contender the same keys the others hold, written without fsync (listings only)."""
    contender = entry.contender
    if isinstance(contender, RawFilesContender) and contender.fsync:
        RawFilesContender("filler", contender.folder, fsync=False).set_many(keys)
    elif isinstance(contender, PersiContender) and isinstance(contender.store, persidict.FileDirDict):
        store = contender.store
        if store.fsync:
            filler: persidict.FileDirDict[object] = persidict.FileDirDict(base_dir=store.base_dir, fsync=False)
            PersiContender("filler", "no-fsync", filler).set_many(keys)


Timings = dict[str, dict[str, float]]  # operation -> contender name -> best seconds


def measure(entries: list[Entry], repeats: int, work: Callable[[Entry, int], Callable[[], object]]) -> dict[str, float]:
    """Best seconds per contender for one operation, the contenders interleaved in every repeat."""
    samples: dict[str, list[float]] = {e.contender.name: [] for e in entries}
    for repeat in range(repeats):
        for entry in entries:
            samples[entry.contender.name].append(time_call(work(entry, repeat)))
    return {name: best(times) for name, times in samples.items()}


def new_keys(entry: Entry, repeat: int) -> list[str]:
    """The fresh keys a contender writes in one repeat of 'set (new keys)'."""
    return [f"r{repeat}_{i}" for i in range(entry.keys)]


def run_operations(entries: list[Entry], settings: Settings, root: str) -> tuple[Timings, dict[str, int]]:
    """Time every operation on every contender; also return the key count each listing saw."""
    repeats = settings.repeats
    for entry in entries:  # warm-up: imports, folders, caches, first-write costs
        entry.contender.set_many(WARM_KEYS)
        entry.contender.get_many(WARM_KEYS)
        entry.contender.increment(3)
        entry.contender.list_keys()
    timings: Timings = {}
    timings["set (new keys)"] = measure(entries, repeats, lambda e, r: lambda: e.contender.set_many(new_keys(e, r)))
    timings["set (overwrite)"] = measure(entries, repeats, lambda e, r: lambda: e.contender.set_many(new_keys(e, 0)))
    timings["get"] = measure(
        entries, max(repeats, 5), lambda e, r: lambda: e.contender.get_many(new_keys(e, r % repeats))
    )
    timings["transform_item (+1)"] = measure(entries, repeats, lambda e, r: lambda: e.contender.increment(e.increments))
    all_keys = [f"r{r}_{i}" for r in range(repeats) for i in range(settings.keys)]
    for entry in entries:
        fill_up(entry, all_keys, root)
    counts = {e.contender.name: e.contender.length() for e in entries}
    timings["len"] = measure(entries, max(repeats, 5), lambda e, r: e.contender.length)
    timings["keys() listing"] = measure(entries, max(repeats, 5), lambda e, r: e.contender.list_keys)
    return timings, counts


def ops_per_call(entry: Entry, operation: str, count: int) -> int:
    """How many operations one timed call performs (listings count one per key)."""
    if operation.startswith("set") or operation == "get":
        return entry.keys
    if operation.startswith("transform"):
        return entry.increments
    if operation == "keys() listing":
        return count
    return 1


TARGET_RATIOS = {"set (new keys)": 0.9, "set (overwrite)": 0.9, "get": 0.7}
LOCALDICT_TARGETS = {"set (new keys)": 200_000, "set (overwrite)": 200_000, "get": 300_000}


def target_for(entry: Entry, operation: str, rate: float, vs_raw: float | None) -> tuple[str, bool | None]:
    """The target text and whether it is met, for rows that have a target."""
    name = entry.contender.name
    if name.startswith("FileDirDict") and operation in TARGET_RATIOS and vs_raw is not None:
        goal = TARGET_RATIOS[operation]
        return f">= {goal}x raw", vs_raw >= goal
    if name == "LocalDict()" and operation in LOCALDICT_TARGETS:
        goal = LOCALDICT_TARGETS[operation]
        return f">= {goal // 1000}k ops/s", rate >= goal
    return "", None


def rate_of(entry: Entry, operation: str, seconds: float, count: int) -> float:
    """Operations per second of one contender for one operation."""
    return ops_per_call(entry, operation, count) / seconds


def build_rows(entries: list[Entry], timings: Timings, counts: dict[str, int]) -> list[Row]:
    """Rows for the stores and the peer, with ratios to their raw baseline and to diskcache."""
    by_name = {e.contender.name: e for e in entries}
    rows: list[Row] = []
    for entry in sorted((e for e in entries if e.is_store), key=lambda e: e.contender.name == PEER):
        name = entry.contender.name
        for operation, seconds in timings.items():
            rates = {n: rate_of(by_name[n], operation, seconds[n], counts[n]) for n in by_name}
            rate = rates[name]
            vs_raw = rate / rates[entry.raw] if entry.raw else None
            vs_peer = rate / rates[PEER] if name != PEER else None
            target, meets = target_for(entry, operation, rate, vs_raw)
            note = ""
            if operation in ("len", "keys() listing"):
                note = f"{counts[name]:,} keys; {seconds[name] * 1e3:.1f} ms per call"
            elif operation.startswith("transform"):
                note = "one counter key, uncontended"
            rows.append(
                Row(SECTION, name, operation, rate, 1 / rate, vs_raw, vs_peer, target=target, meets=meets, note=note)
            )
    return rows


def run_local(settings: Settings) -> list[Row]:
    """The local section of the table."""
    with temporary_root() as root:
        entries = make_entries(root, settings)
        try:
            timings, counts = run_operations(entries, settings, root)
        finally:
            for entry in entries:
                entry.contender.close()
        return build_rows(entries, timings, counts)


def scaling_rates(contender: Contender, size: int, ops: int, repeats: int) -> tuple[float, float]:
    """Set (overwrite) and get ops/s over random keys of ``contender`` once it holds ``size`` keys."""
    keys = [f"k{i}" for i in range(size)]
    contender.set_many(keys)
    sample = random.Random(size).choices(keys, k=ops)
    contender.get_many(sample[:1000])  # warm-up
    set_seconds = best([time_call(lambda: contender.set_many(sample)) for _ in range(repeats)])
    get_seconds = best([time_call(lambda: contender.get_many(sample)) for _ in range(repeats)])
    return ops / set_seconds, ops / get_seconds


def run_scaling(settings: Settings) -> list[Row]:
    """LocalDict (and a raw dict, for reference) set and get at two store sizes, and the slowdown."""
    small, large = settings.scaling_sizes
    repeats = max(settings.repeats, 5)
    makers: dict[str, Callable[[], Contender]] = {
        "LocalDict()": lambda: PersiContender("LocalDict()", "memory", persidict.LocalDict()),
        "raw dict of pickles": lambda: RawDictContender("raw dict of pickles"),
    }
    rows: list[Row] = []
    for name, make in makers.items():
        rates = {size: scaling_rates(make(), size, settings.scaling_ops, repeats) for size in (small, large)}
        for index, operation in enumerate(("set (overwrite, random key)", "get (random key)")):
            for size in (small, large):
                rate = rates[size][index]
                rows.append(Row("scaling", name, f"{operation} @ {size:,} keys", rate, 1 / rate))
            slowdown = rates[small][index] / rates[large][index]
            is_store = name == "LocalDict()"
            rows.append(
                Row(
                    "scaling",
                    name,
                    f"{operation.split(' ')[0]}: slowdown {small:,} -> {large:,} keys",
                    value=f"{slowdown:.2f}x",
                    target="<= 1.2x" if is_store else "",
                    meets=slowdown <= 1.2 if is_store else None,
                    note="" if is_store else "reference: CPU-cache effects any dict shows",
                )
            )
    return rows


def run_rewrites(settings: Settings) -> list[Row]:
    """Writing a present key again through WriteOnceDict (append-only, fsync=True) vs one raw ``os.stat``.

    Content-addressed results are written again and again; the target is the
    cost of one metadata check: no temporary file, no fsync.
    """
    n, repeats = settings.sync_keys, max(settings.repeats, 5)
    with temporary_root() as root:
        store = persidict.FileDirDict(base_dir=os.path.join(root, "once"), append_only=True, fsync=True)
        once = persidict.WriteOnceDict(wrapped_dict=store, p_consistency_checks=0)
        keys = [f"result_{i}" for i in range(n)]
        for key in keys:
            once[key] = VALUE
        paths = [store.key_to_path(key) for key in keys]

        def rewrite() -> None:
            for key in keys:
                once[key] = VALUE

        def raw_stat() -> None:
            for path in paths:
                os.stat(path)

        rewrite_s = best([time_call(rewrite) for _ in range(repeats)]) / n
        stat_s = best([time_call(raw_stat) for _ in range(repeats)]) / n
    ratio = stat_s / rewrite_s
    return [
        Row("rewrite", "raw os.stat", "stat of the value's file", 1 / stat_s, stat_s),
        Row(
            "rewrite",
            "WriteOnceDict(FileDirDict(fsync=True))",
            "write a present key again",
            1 / rewrite_s,
            rewrite_s,
            vs_raw=ratio,
            target=">= 0.2x (one stat + Python)",
            meets=ratio >= 0.2,
            note="no temporary file, no fsync",
        ),
    ]
