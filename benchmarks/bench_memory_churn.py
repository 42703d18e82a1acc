"""Does a process that churns keys stay flat?  RSS growth over many set-and-delete cycles.

Each store runs in a child process of its own (a fresh interpreter, so one
store's memory never counts against another's): it warms up, reads its RSS
(``VmRSS`` in ``/proc/self/status``), then sets and deletes ``--keys`` unique
three-part keys (each in a folder of its own, the worst case for per-folder
tables), collects garbage and reads its RSS again.  The raw limit is a plain
dict doing the same with pickled bytes.  Target: at most 5 MiB of growth over
200,000 keys.  Nothing is asserted; the script prints a table::

    python benchmarks/bench_memory_churn.py            # 200,000 keys, about a minute
    python benchmarks/bench_memory_churn.py --keys 20000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

TARGET_MIB = 5.0
WARM_UP = 2_000
STORES = ("plain dict", "LocalDict", "FsspecDict memory://")


def rss_mib() -> float:
    """This process's resident set size (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def _open(store: str) -> tuple[MutableMapping[Any, Any], Callable[[Any], Any]]:
    """The mapping to churn, and how a value is put in it."""
    if store == "plain dict":
        return {}, pickle.dumps
    from persidict import FsspecDict, LocalDict

    if store == "LocalDict":
        return LocalDict(), lambda value: value
    return FsspecDict(f"memory://bench-churn-{os.getpid()}"), lambda value: value


def _churn(d: MutableMapping[Any, Any], wrap: Callable[[Any], Any], start: int, count: int) -> None:
    for i in range(start, start + count):
        key = ("tenant", f"job{i}", "result")
        d[key] = wrap(i)
        del d[key]


def child(store: str, keys: int) -> dict[str, float]:
    """Run in the child: RSS before and after churning ``keys`` keys, after a warm-up."""
    d, wrap = _open(store)
    _churn(d, wrap, -WARM_UP, WARM_UP)  # imports, first allocations, interned names
    gc.collect()
    before = rss_mib()
    _churn(d, wrap, 0, keys)
    gc.collect()
    return {"before": before, "after": rss_mib(), "left": float(len(d))}


def measure(store: str, keys: int) -> dict[str, float]:
    """Run ``child`` in a fresh interpreter and return its figures."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--child", store, "--keys", str(keys)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def table(keys: int) -> str:
    """The markdown table of every store's growth, with the raw limit beside it."""
    results = {store: measure(store, keys) for store in STORES}
    raw = results["plain dict"]["after"] - results["plain dict"]["before"]
    lines = [
        "| store | keys churned | RSS before (MiB) | RSS after (MiB) | growth (MiB) | minus raw (MiB) | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for store, r in results.items():
        growth = r["after"] - r["before"]
        verdict = "" if store == "plain dict" else ("ok" if growth <= TARGET_MIB else "MISS")
        lines.append(f"| {store} | {keys:,} | {r['before']:.1f} | {r['after']:.1f} | {growth:+.1f} | "
                     f"{growth - raw:+.1f} | <= {TARGET_MIB:g} MiB {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=200_000, help="unique keys set and deleted (200,000)")
    parser.add_argument("--child", choices=STORES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.keys)))
        return 0
    print(table(args.keys))
    print()
    print(f"- Python {sys.version.split()[0]}; each store in a fresh child process; RSS = VmRSS after gc.collect(); "
          f"{WARM_UP:,} keys churned first as a warm-up. Keys: ('tenant', 'job<i>', 'result'), each in a folder of "
          "its own.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
