"""Big values: a 256 MiB float64 array and a 256 MiB two-column DataFrame, set and got, against
``pickle.dump``/``pickle.load`` of the same value to a file in the same run.

Every operation runs in a fresh child process, which reports its time and its peak resident
memory beyond what it held before (``VmHWM`` of ``/proc/self/status``, reset through
``/proc/self/clear_refs`` just before the operation; for a get, the value it got is
subtracted).  A store kind is a row of ``STORES``: a function that opens a store in a folder
(another engineer adds S3 with its raw ``pipe``/``cat`` beside ``RAW``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_common import Row

MIB = 1 << 20
KINDS = ("array", "DataFrame")
OPERATIONS = ("set", "get")


def open_local(folder: str) -> Any:
    """The local store measured: ``FileDirDict(fsync=False)`` (raw pickle.dump does not fsync either)."""
    from persidict import FileDirDict

    return FileDirDict(base_dir=os.path.join(folder, "store"), fsync=False)


STORES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "local": ("FileDirDict(fsync=False)", open_local),
}
"""Store kinds measured: name -> (label in the table, opener of a store in a folder)."""


def make_value(kind: str, mib: int) -> Any:
    """A float64 array of ``mib`` MiB, or a DataFrame of two float64 columns of ``mib / 2`` MiB each."""
    import numpy as np

    count = mib * MIB // 8
    if kind == "array":
        return np.arange(count, dtype=np.float64)
    import pandas as pd

    half = np.arange(count // 2, dtype=np.float64)
    return pd.DataFrame({"a": half, "b": half * 2})


def value_bytes(value: Any) -> int:
    """The memory a value holds (its buffers)."""
    if hasattr(value, "memory_usage"):
        return int(value.memory_usage(deep=True).sum())
    return int(value.nbytes)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} is not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS


def measure_in_child(spec: dict[str, Any]) -> dict[str, float]:
    """Run one operation in this (fresh) process: its seconds and peak memory beyond the value."""
    path, store_kind, operation = spec["path"], spec["store"], spec["operation"]
    store = None if store_kind == "raw" else STORES[store_kind][1](spec["folder"])
    # Warm up: unpickling a DataFrame imports pyarrow (its column index); that is no copy of the value.
    pickle.loads(pickle.dumps(make_value(spec["kind"], 1), protocol=5))
    value = make_value(spec["kind"], spec["mib"]) if operation == "set" else None
    if operation == "set" and store is not None:
        store.discard("value")  # a fresh key, as the raw baseline writes a fresh file
    elif operation == "set":
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    gc.collect()
    os.sync()  # the previous run's dirty pages written back: no write starts behind another's writeback
    before = _status_kib("VmRSS") * 1024
    _reset_peak()
    started = time.perf_counter()
    result = _operate(store, operation, path, value)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM") * 1024
    size = value_bytes(result if operation == "get" else value)
    held = size if operation == "get" else 0
    return {"seconds": seconds, "size": size, "extra": max(0, peak - before - held)}


def _operate(store: Any, operation: str, path: str, value: Any) -> Any:
    if store is None and operation == "set":
        with open(path, "wb") as file:
            pickle.dump(value, file, protocol=5)
        return None
    if store is None:
        with open(path, "rb") as file:
            return pickle.load(file)
    if operation == "set":
        store["value"] = value
        return None
    return store["value"]


def _child(spec: dict[str, Any]) -> dict[str, float]:
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH", "")]))
    completed = subprocess.run([sys.executable, os.path.abspath(__file__), json.dumps(spec)],
                               capture_output=True, text=True, env=env, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The fastest of several fresh processes, with the highest peak memory any of them had."""
    fastest = min(runs, key=lambda run: run["seconds"])
    return {**fastest, "extra": max(run["extra"] for run in runs)}


def _interleaved(spec: dict[str, Any], contenders: tuple[str, str], repeats: int) -> list[dict[str, float]]:
    """Each contender's best run, raw and store taking turns (so both meet the same load)."""
    runs: dict[str, list[dict[str, float]]] = {contender: [] for contender in contenders}
    for _ in range(repeats):
        for contender in contenders:
            runs[contender].append(_child({**spec, "store": contender}))
    return [_best(runs[contender]) for contender in contenders]


def _row(label: str, kind: str, operation: str, mib: int, mine: dict[str, float], raw: dict[str, float]) -> Row:
    speed, raw_speed = mine["size"] / mine["seconds"] / 1e6, raw["size"] / raw["seconds"] / 1e6
    ratio = speed / raw_speed
    extra = mine["extra"] / mine["size"]
    return Row(
        section="bigvalues", store=label, operation=f"{operation} {mib} MiB {kind}",
        rate=1 / mine["seconds"], seconds_per_op=mine["seconds"], vs_raw=ratio,
        value=f"{speed:,.0f} MB/s, +{extra:.2f}x RSS",
        target=">= 0.8x raw, <= +0.1x RSS", meets=ratio >= 0.8 and extra <= 0.1,
        note=f"raw pickle: {raw_speed:,.0f} MB/s, +{raw['extra'] / raw['size']:.2f}x RSS",
    )


def run_big_values(mib: int = 256, repeats: int = 3, stores: tuple[str, ...] = ("local",)) -> list[Row]:
    """Set and get of an array and a DataFrame of ``mib`` MiB in each store kind, beside raw pickle."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="persidict-bigvalues-") as folder:
        for kind in KINDS:
            for store_kind in stores:
                for operation in OPERATIONS:  # set first: the get reads what it wrote
                    spec = {"path": os.path.join(folder, "raw.pkl"), "folder": folder,
                            "operation": operation, "kind": kind, "mib": mib}
                    raw, mine = _interleaved(spec, ("raw", store_kind), repeats)
                    rows.append(_row(STORES[store_kind][0], kind, operation, mib, mine, raw))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure_in_child(json.loads(sys.argv[1]))))
