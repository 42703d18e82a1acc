"""The command line's coordination commands: ``persidict check URL`` and ``persidict queue URL``.

``check`` runs the self-test of conditional writes on the store's server
(exit status 1 if it is not atomic); ``queue`` shows a work queue's counts,
following them with a progress bar until every task is closed (``--once``:
print them and stop).  The table of commands in ``cli.py`` lists both.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["check", "check_arguments", "queue", "queue_arguments"]


def _store(args: argparse.Namespace) -> Any:
    from .cli import _spec, open_store  # the shared option handling; cli imports this module lazily too

    return open_store(_spec(args, args.url), create=False)


def check(args: argparse.Namespace) -> int:
    """Probe the server of the store at URL; 0 if it honours conditional writes, 1 if not."""
    from ..coordination.conditions import check_conditions

    report = check_conditions(_store(args), refresh=True)
    if args.json:
        print(json.dumps({"endpoint": report.endpoint, "atomic": report.atomic, "finding": report.finding,
                          "requests": report.requests}))
    else:
        print(report)
    return 0 if report.atomic else 1


def queue(args: argparse.Namespace) -> int:
    """Show the counts of the work queue NAME in the store at URL (following them unless ``--once``)."""
    from ..coordination.queue import WorkQueue
    from ..coordination.watching import watch

    work = WorkQueue(_store(args), args.name, allow_non_atomic=True)  # reading counts needs no atomicity
    progress = work.progress() if args.once or args.json else watch(work, poll=args.poll)
    counts = {"total": progress.total, "done": progress.done, "failed": progress.failed,
              "running": progress.claimed, "pending": progress.pending}
    print(json.dumps(counts) if args.json else "  ".join(f"{name} {count}" for name, count in counts.items()))
    return 0


def check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="a local folder, or any fsspec URL (s3://bucket/prefix, ...)")
    parser.add_argument("--json", action="store_true", help='print {"endpoint", "atomic", "finding", "requests"}')


def queue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="the store that holds the queue")
    parser.add_argument("--name", default="queue", help="the queue's name (its key prefix; default: queue)")
    parser.add_argument("--once", action="store_true", help="print the counts once instead of following them")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="seconds between two looks")
    parser.add_argument("--json", action="store_true",
                        help='print {"total", "done", "failed", "running", "pending"} once, as JSON')
