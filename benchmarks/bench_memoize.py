"""The costs of ``persidict.memoize``: a cached call, the code fingerprint, and keying a DataFrame.

* Cached call: each contender calls a no-op function with the same argument
  ``settings.keys`` times after one warm-up call, so every timed call is a
  cache hit: what is measured is the overhead memoization adds to a function
  whose result is already stored (checking the code fingerprint's bindings,
  digesting the arguments and reading the result record).
* Code fingerprint of a 200-line function (and its two helpers), for a new
  function object (a freshly imported module): (a) source never seen on this
  machine (an empty per-machine code cache, so it is parsed, normalized and
  written), (b) source seen by an earlier process (what a restarted kernel or
  a worker pays: the in-memory caches are emptied, the code cache on disk is
  warm), (c) source seen by this process (a re-run cell), against the raw
  limit (``ast.parse`` of the function's source alone), normalizing its tree
  alone and joblib's own source check (``get_func_code`` and a hash of it);
  then (d) the per-call check of a fingerprint already computed.  The code
  cache lives in a temporary folder, never in ``~/.cache``.
* Keying a 10^6-row DataFrame (int, float, string and categorical columns, a
  datetime index): against the raw limit (SHA-256 of its column buffers) and
  ``joblib.hash`` (the peer).

Run standalone with ``python benchmarks/bench_memoize.py [--quick]``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import Row, Settings, best, machine_cache, render_table, time_call

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
    """Every row of this section: cached calls, the code fingerprint, the key of a DataFrame."""
    return run_cached_calls(settings) + run_fingerprint(settings) + run_frame_key(settings)


def run_cached_calls(settings: Settings) -> list[Row]:
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


# --- the code fingerprint -------------------------------------------------------------------

FINGERPRINT_SECTION = "memoize: code"
LINES = 200


def long_function_source(lines: int = LINES) -> str:
    """A module with a ``lines``-line function in ordinary style: branches, loops, calls of two helpers."""
    body = ['def pipeline(rows, threshold=0.5):', '    """Summarize rows."""', "    totals = {}", "    count = 0"]
    step = 0
    while len(body) < lines - 1:
        step += 1
        body += [
            f"    for row in rows[{step}:]:  # pass {step}",
            f"        if row.get('score', 0) > threshold * {step}:",
            f"            totals['s{step}'] = totals.get('s{step}', 0) + clean(row['value']) * SCALE",
            "        else:",
            f"            count += weigh(row, {step})",
        ]
    body.append("    return totals, count")
    helpers = "SCALE = 3\n\ndef clean(x):\n    return abs(x)\n\ndef weigh(row, k):\n    return len(row) + k\n\n"
    return helpers + "\n".join(body[:lines]) + "\n"


def fresh_function(folder: str, source: str, *, new_text: bool = True) -> Any:
    """``pipeline`` from a newly written and imported module: new code objects and a new file.

    ``new_text`` puts a unique comment in the function, so that no cache of its text helps either
    (the code is the same: only parsing and normalizing are measured).
    """
    name = f"bench_fp_{uuid.uuid4().hex}"
    path = os.path.join(folder, f"{name}.py")
    if new_text:
        source = source.replace("    totals = {}", f"    totals = {{}}  # {name}")
    with open(path, "w") as file:
        file.write(source)
    a_day_ago = time.time() - 86400  # written before this process started, as a module usually is
    os.utime(path, (a_day_ago, a_day_ago))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pipeline


def _best_of(repeats: int, make: Callable[[], Any], measure: Callable[[Any], object]) -> float:
    """The best time of ``measure(make())`` over ``repeats`` fresh subjects (``make`` is not timed)."""
    samples = []
    for _ in range(repeats):
        subject = make()
        samples.append(time_call(functools.partial(measure, subject)))
    return best(samples)


def as_in_a_new_process() -> None:
    """Forget the source texts this process normalized: what a new process (kernel restart, worker) starts with.

    The per-machine code cache on disk is left as it is.
    """
    from persidict.pipelines.memoize import source

    source._BY_TEXT.clear()
    source._PARSED.clear()


def run_fingerprint(settings: Settings) -> list[Row]:
    """The first fingerprint of a 200-line function (never seen; seen by an earlier process; a re-run cell),
    against ast.parse, normalizing alone and joblib; then the per-call check."""
    from persidict.pipelines.memoize.code import fingerprint

    repeats = max(5, settings.repeats * 4)
    with temporary_root() as root, machine_cache(os.path.join(root, "cache")):
        fresh = lambda **options: fresh_function(root, long_function_source(), **options)  # noqa: E731

        def never_seen() -> Any:
            """New text, and an empty code cache: even the helpers' texts are new to it."""
            os.environ["PERSIDICT_CACHE_DIR"] = tempfile.mkdtemp(dir=root)
            as_in_a_new_process()
            return fresh()

        def seen_by_an_earlier_process() -> Any:
            as_in_a_new_process()
            return fresh(new_text=False)

        cold = _best_of(repeats, never_seen, fingerprint)
        fingerprint(fresh(new_text=False))  # the code cache now holds this text
        warm = _best_of(repeats, seen_by_an_earlier_process, fingerprint)
        rerun = _best_of(repeats, lambda: fresh(new_text=False), fingerprint)
        parse, normalize, peer = _references(repeats, fresh)
        check = _check_per_call(settings, fresh())
    note = f"best of {repeats}; raw = ast.parse of the function alone ({parse * 1e3:.2f} ms)"
    return [
        _fingerprint_row("memoize fingerprint (never-seen source)", "first ever: parse, normalize, write to cache",
                         cold, note, value=f"normalize alone: {normalize * 1e3:.2f} ms; joblib's source check: "
                                          f"{peer * 1e3:.2f} ms", raw=parse),
        _fingerprint_row("memoize fingerprint (seen source)", "first in a new process (kernel restart, worker)",
                         warm, note + "; read from the per-machine code cache", raw=parse),
        _fingerprint_row("memoize fingerprint (same source)", "new function object (a re-run cell)", rerun, note,
                         raw=parse),
        _fingerprint_row("memoize fingerprint (cached)", "per-call check of its bindings", check,
                         f"{settings.keys:,} calls"),
    ]


def _fingerprint_row(store: str, operation: str, seconds: float, note: str, *, value: str | None = None,
                     raw: float | None = None) -> Row:
    return Row(FINGERPRINT_SECTION, store, f"{LINES} lines: {operation}", None, seconds,
               vs_raw=raw / seconds if raw else None, value=value, target="< 1 ms", meets=seconds < 1e-3, note=note)


def _references(repeats: int, fresh: Callable[..., Any]) -> tuple[float, float, float]:
    """Seconds of ``ast.parse`` of the function alone, of normalizing its tree alone, and of joblib's source check."""
    from joblib.func_inspect import get_func_code

    from persidict.pipelines.memoize.source import normalize

    source = long_function_source()
    function_text = textwrap.dedent(source[source.index("def pipeline"):])
    parse = _best_of(repeats, lambda: function_text, ast.parse)
    normalize_alone = _best_of(repeats, lambda: ast.parse(function_text).body[0], normalize)
    peer = _best_of(repeats, fresh, lambda f: hashlib.md5(get_func_code(f)[0].encode()).digest())
    return parse, normalize_alone, peer


def _check_per_call(settings: Settings, function: Any) -> float:
    """Seconds of the check a memoized function makes on each call that its fingerprint still holds."""
    from persidict import LocalDict
    from persidict.pipelines.memoize import memoize

    memoized = memoize(LocalDict())(function)
    assert memoized.code_version  # computed once; the timed calls check its bindings
    calls = settings.keys
    seconds = best([time_call(lambda: [memoized.code_version for _ in range(calls)]) for _ in range(settings.repeats)])
    return seconds / calls


# --- keying a DataFrame ---------------------------------------------------------------------

FRAME_ROWS = 10**6


def big_frame(rows: int) -> Any:
    """A DataFrame of ``rows`` rows: int, float, Arrow-backed string and categorical columns, a datetime index."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    words = np.array([f"word{k}" for k in range(100)], dtype=object)
    return pd.DataFrame(
        {
            "i": rng.integers(0, 1000, rows),
            "x": rng.random(rows),
            "s": pd.array(words[rng.integers(0, 100, rows)], dtype="str"),
            "c": pd.Categorical.from_codes(rng.integers(0, 3, rows), ["a", "b", "c"]),
        },
        index=pd.date_range("2024-01-01", periods=rows, freq="s"),
    )


def raw_buffer_hash(frame: Any) -> bytes:
    """The raw limit: SHA-256 of every column's value buffers (what an exact content key must read)."""
    import numpy as np

    digest = hashlib.sha256(np.ascontiguousarray(frame.index.asi8).view(np.uint8))
    for name in ("i", "x"):
        digest.update(np.ascontiguousarray(frame[name].to_numpy()).view(np.uint8))
    for chunk in frame["s"].array.__arrow_array__().chunks:
        for buffer in chunk.buffers():
            if buffer is not None:
                digest.update(buffer)
    digest.update(np.ascontiguousarray(frame["c"].cat.codes.to_numpy()).view(np.uint8))
    return digest.digest()


def run_frame_key(settings: Settings) -> list[Row]:
    """memoize's key of a 10^6-row DataFrame, against hashing its buffers and joblib.hash."""
    import joblib

    from persidict import LocalDict
    from persidict.pipelines.memoize import memoize

    frame = big_frame(FRAME_ROWS // 10 if settings.quick else FRAME_ROWS)
    memoized = memoize(LocalDict())(noop_frame)
    memoized.key(frame)  # warm: imports and the code fingerprint
    ours = best([time_call(lambda: memoized.key(frame)) for _ in range(settings.repeats)])
    raw = best([time_call(lambda: raw_buffer_hash(frame)) for _ in range(settings.repeats)])
    peer = best([time_call(lambda: joblib.hash(frame)) for _ in range(settings.repeats)])
    return [Row(FINGERPRINT_SECTION, "memoize key of a DataFrame", f"{len(frame):,} rows, 4 columns", None, ours,
                vs_raw=raw / ours, value=f"{peer / ours:.1f}x joblib.hash's rate ({peer * 1e3:.0f} ms)",
                note="raw = SHA-256 of the column buffers; the key is the same in every process")]


def noop_frame(data: Any) -> None:
    """A body keyed by a DataFrame argument."""


def main(argv: list[str] | None = None) -> int:
    """Measure with run.py's settings (``--quick`` and the size options work) and print the rows."""
    from run import parse_args, settings_from

    print(render_table(run_memoize(settings_from(parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
