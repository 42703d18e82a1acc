"""Measure persidict against the raw limits and diskcache; print one table.

Run as ``python benchmarks/run.py`` (about 11 minutes on 2 cores) or
``python benchmarks/run.py --quick`` (about a minute).  Nothing is asserted:
the script only measures and prints, with each target beside its figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import VALUE, Row, Settings, render_table
from bench_import import run_import
from bench_local import run_local, run_rewrites, run_scaling

import persidict

SECTIONS = ("local", "rewrite", "memoize", "scaling", "import", "s3", "hotkeys", "bigvalues", "bigvalues_s3",
            "bigvalues_cloud", "bigstore")


def settings_from(args: argparse.Namespace) -> Settings:
    """Sizes for a quick or a full run; ``--keys``/``--sync-keys``/``--repeats`` override them."""
    quick = args.quick
    return Settings(
        quick=quick,
        keys=args.keys or (2_000 if quick else 10_000),
        sync_keys=args.sync_keys or (100 if quick else 300),
        repeats=args.repeats or 3,
        scaling_sizes=(10_000, 100_000),
        scaling_ops=20_000 if quick else 50_000,
        import_runs=7,
        s3_timed_ops=50 if quick else 200,
        s3_len_keys=2_500,
        s3_bulk_keys=200 if quick else 1_000,
        s3_bulk_repeats=2 if quick else 3,
        big_mib=args.big_mib or (64 if quick else 256),
        big_store_keys=args.big_store_keys or (20_000 if quick else 200_000),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about one minute")
    parser.add_argument("--keys", type=int, help="keys written per repeat to each non-fsync store (10,000)")
    parser.add_argument("--sync-keys", type=int, help="keys written per repeat with fsync=True (300)")
    parser.add_argument("--repeats", type=int, help="repeats per measurement; the best is kept (3)")
    parser.add_argument("--big-mib", type=int, help="size of the big values, in MiB (256; quick: 64)")
    parser.add_argument("--big-store-keys", type=int,
                        help="keys in the big store (200,000; quick: 20,000; 1000000 for the million)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    return parser.parse_args(argv)


def _section(name: str, settings: Settings) -> tuple[list[Row], list[str]]:
    """One section's rows and footnotes (its module is imported only when it runs)."""
    if name == "local":
        return run_local(settings), []
    if name == "rewrite":
        return run_rewrites(settings), []
    if name == "scaling":
        return run_scaling(settings), []
    if name == "import":
        import_rows, note = run_import(settings)
        return import_rows, [note]
    if name == "memoize":
        from bench_memoize import run_memoize

        return run_memoize(settings), []
    if name == "bigvalues":
        from bench_big_values import run_big_values

        return run_big_values(mib=settings.big_mib, repeats=settings.repeats), []
    if name == "bigstore":
        from bench_big_store import run_big_store

        return run_big_store(count=settings.big_store_keys, repeats=settings.repeats), []
    if name == "hotkeys":
        from bench_hot_keys import run_hot_keys

        return run_hot_keys(runs=2 if settings.quick else 20), []
    if name == "bigvalues_s3":
        from bench_big_values_s3 import run_big_values_s3

        return run_big_values_s3(settings), []
    if name == "bigvalues_cloud":
        from bench_big_values_cloud import run_big_values_cloud

        return run_big_values_cloud(settings), []
    from bench_s3 import run_s3

    return run_s3(settings), []


def run_sections(settings: Settings, only: list[str] | None) -> tuple[list[Row], list[str]]:
    """Every section asked for, in order, with progress on stderr; returns rows and extra footnotes."""
    rows: list[Row] = []
    notes: list[str] = []
    for section in SECTIONS:
        if only and section not in only:
            continue
        started = time.perf_counter()
        print(f"[bench] {section} ...", file=sys.stderr, flush=True)
        section_rows, section_notes = _section(section, settings)
        rows += section_rows
        notes += section_notes
        print(f"[bench] {section} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows, notes


def footnotes(settings: Settings, extra: list[str]) -> str:
    """What the columns mean and how the figures were taken."""
    import pickle

    import diskcache

    mode = "quick" if settings.quick else "full"
    small, large = settings.scaling_sizes
    lines = [
        (
            f"persidict {persidict.__version__}, Python {platform.python_version()}, "
            f"diskcache {diskcache.__version__}, "
            f"{os.cpu_count()} CPUs, {mode} run, best of {settings.repeats}+ repeats (contenders interleaved in every "
            "repeat; garbage collector paused while timing)."
        ),
        f"Value: {VALUE!r} ({len(pickle.dumps(VALUE))} bytes pickled), the same for every store and baseline.",
        (
            "vs raw: store ops/s / raw-limit ops/s at the same durability, measured in this run. Raw files: "
            "O_CREAT|O_EXCL hidden temp file, os.write, [os.fsync], close, os.replace, [fsync of the folder]; "
            "get = open().read() + pickle.loads; len/keys = os.scandir walk. Raw memory: a dict of pickle.dumps bytes. "
            "Raw transform = raw get + raw set of the counter (no locking)."
        ),
        (
            "vs diskcache: store ops/s / diskcache.Cache ops/s for the same operation. diskcache runs with its "
            "defaults: SQLite in WAL mode with synchronous=NORMAL, so a commit is not fsynced before set() returns "
            "(safe against a process crash, may lose the latest writes on power loss): compare it with "
            "FileDirDict(fsync=False) for like-for-like durability. Its transform is get+set in cache.transact()."
        ),
        (
            f"Keys: set (new keys) writes {settings.keys:,} fresh keys per repeat ({settings.sync_keys:,} with "
            "fsync=True); overwrite and get use the first repeat's keys. len and keys() run with every store holding "
            "the same keys (the fsync stores topped up without fsync); keys() ops/s and time/op are per key listed."
        ),
        (
            f"Scaling: overwrite and get of random existing keys in stores holding {small:,} and {large:,} keys; "
            "slowdown = rate at the small size / rate at the large size."
        ),
        (
            "S3: a moto server (bench_s3_server.py) in a child process, so its CPU does not share the client's "
            "interpreter lock; a WSGI middleware around its app counts the requests. Raw s3fs = one get_object / "
            "put_object through the same s3fs client plus pickle. The bulk test adds "
            f"{settings.s3_latency_s * 1000:.0f} ms before every request; its notes give the CPU each side spent "
            "and the peak of requests in flight."
        ),
        (
            "MISS marks a figure that misses its target; nothing is asserted. Write rates on virtual disks swing "
            "widely between runs: read the ratios, not the absolute figures."
        ),
    ]
    return "\n".join(f"- {line}" for line in lines + extra)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    settings = settings_from(args)
    started = time.perf_counter()
    rows, notes = run_sections(settings, args.only)
    print(render_table(rows))
    print()
    print(footnotes(settings, notes))
    print(f"- Total run time: {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
