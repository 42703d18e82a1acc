"""The costs of ``persidict.coordination``: a lease taken and released, a queue task claimed and done.

* Lease cycle: ``store.lease(name, keep_alive=False)`` then ``release()`` on
  one name, again and again (each cycle takes over the previous tombstone):
  one read and two conditional writes.  Raw limit: the two conditional writes
  alone (an insert-if-absent and a conditional delete of the same key).
  Peer, on a local folder: ``diskcache.Lock`` (a SQLite lock: one machine only,
  no fencing token, no expiry).
* Queue task: ``claim`` (without keep-alive) then ``done`` of a no-op task by
  one worker, over a queue of ``keys / 10`` tasks, against the same raw limit.

Run standalone with ``python benchmarks/bench_coordination.py [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import Row, Settings, best, render_table, time_call

__all__ = ["run_coordination"]

SECTION = "coordination"


@contextmanager
def temporary_root() -> Iterator[str]:
    """A fresh folder, removed afterwards."""
    root = tempfile.mkdtemp(prefix="persidict-bench-coordination-")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stores(root: str) -> dict[str, Any]:
    from persidict import FileDirDict, LocalDict

    return {"FileDirDict": FileDirDict(base_dir=os.path.join(root, "files"), fsync=False), "LocalDict": LocalDict()}


def raw_cycle(store: Any) -> Callable[[], None]:
    """The raw limit of one cycle: insert-if-absent, then a conditional delete on the ETag it returned."""
    from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, NEVER_RETRIEVE

    def cycle() -> None:
        written = store.set_item_if("raw", value="x", condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE,
                                    retrieve_value=NEVER_RETRIEVE)
        store.discard_if("raw", condition=ETAG_IS_THE_SAME, expected_etag=written.resulting_etag)

    return cycle


def per_op(action: Callable[[], None], count: int, repeats: int) -> float:
    """Seconds per call of ``action``, best of ``repeats`` runs of ``count`` calls."""
    return best([time_call(lambda: [action() for _ in range(count)]) for _ in range(repeats)]) / count


def lease_rows(settings: Settings) -> list[Row]:
    count = max(50, settings.keys // 20)
    rows = []
    with temporary_root() as root:
        for name, store in stores(root).items():
            store.check_conditions()  # once per endpoint, outside the timing
            ours = per_op(lambda store=store: store.lease("bench", keep_alive=False).release(), count, settings.repeats)
            raw = per_op(raw_cycle(store), count, settings.repeats)
            rows.append(Row(SECTION, name, "lease taken and released", 1 / ours, ours, vs_raw=raw / ours,
                            note=f"raw = insert-if-absent + conditional delete; {count:,} cycles"))
        import diskcache

        lock = diskcache.Lock(diskcache.Cache(os.path.join(root, "diskcache")), "bench")
        peer = per_op(lambda: (lock.acquire(), lock.release()), count, settings.repeats)
        rows[0].vs_peer = peer / (1 / rows[0].rate)  # type: ignore[operator]
        rows.append(Row(SECTION, "diskcache.Lock (peer)", "lock acquired and released", 1 / peer, peer,
                        note="SQLite, one machine, no token, no expiry"))
    return rows


def one_task(queue: Any) -> None:
    """One worker's step: claim a task (no keep-alive thread), record its result."""
    task = queue.claim(60, wait=False, keep_alive=False)
    assert task is not None
    queue.done(task, None)


def queue_rows(settings: Settings) -> list[Row]:
    from persidict import WorkQueue

    tasks = max(50, settings.keys // 10)
    rows = []
    with temporary_root() as root:
        for name, store in stores(root).items():
            queue = WorkQueue(store)
            queue.put_many(range(tasks))
            ours = per_op(lambda queue=queue: one_task(queue), tasks, 1)
            raw = per_op(raw_cycle(store), tasks, settings.repeats)
            rows.append(Row(SECTION, name, "queue task claimed and done", 1 / ours, ours, vs_raw=raw / ours,
                            note=f"one worker, {tasks:,} tasks; raw as above"))
    return rows


def run_coordination(settings: Settings) -> list[Row]:
    """Every row of this section."""
    return lease_rows(settings) + queue_rows(settings)


def main(argv: list[str] | None = None) -> int:
    """Measure with run.py's settings (``--quick`` and the size options work) and print the rows."""
    from run import parse_args, settings_from

    print(render_table(run_coordination(settings_from(parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
