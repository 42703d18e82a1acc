"""A dask.distributed cluster of worker processes shares one store on S3 (a moto server).

40 tasks over 20 work items (each item submitted twice, so its two tasks race
for it) run on ``LocalCluster(processes=True, n_workers=2, threads_per_worker=2)``:
four tasks at a time, in two processes, each opening the store it received as
an argument.  Every item is claimed by exactly one task (insert-if-absent with
``setdefault_if``), the counters every task updates with ``transform_item`` end
exact, and the client reads every result.

``distributed`` is imported inside the test, under ``_pickling_left_as_found``:
on import it registers tblib's reducers for every exception class in
``copyreg`` (process-wide), and pickles of exceptions written afterwards would
need tblib to load, which is no test's business but this one's.
"""

from __future__ import annotations

import copyreg
import importlib
import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from persidict import FsspecDict

from ..servers.moto_s3 import MotoS3
from .dask_workers import claim_and_work, result_of

ITEMS = 20
TASKS = 2 * ITEMS
WAIT = 60  # seconds for all the tasks: only a hang reaches it


@contextmanager
def _pickling_left_as_found() -> Iterator[None]:
    """Undo, on exit, whatever the block registered in ``copyreg``'s dispatch table."""
    registered = dict(copyreg.dispatch_table)
    try:
        yield
    finally:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(registered)


def _run_on_a_cluster(store: FsspecDict) -> list[dict[str, Any]]:
    """Run every task on a two-process LocalCluster and return what each saw."""
    distributed = importlib.import_module("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    ) as cluster, distributed.Client(cluster, timeout=WAIT) as client:
        futures = [
            client.submit(claim_and_work, store, task // 2, f"task-{task}", pure=False) for task in range(TASKS)
        ]
        distributed.wait(futures, timeout=WAIT)
        return list(client.gather(futures))


@pytest.mark.processes
@pytest.mark.timeout(180)
def test_dask_process_workers_claim_each_item_once_and_count_exactly(moto_s3: MotoS3) -> None:
    store = FsspecDict(f"s3://{moto_s3.new_bucket_name()}/work", storage_options=moto_s3.storage_options())
    with _pickling_left_as_found():
        seen = _run_on_a_cluster(store)

    assert len(seen) == TASKS
    owners = Counter(record["item"] for record in seen if record["owned"])
    assert owners == Counter(range(ITEMS)), "every item is owned by exactly one task"
    for record in seen:  # the losers saw the winner's claim
        assert record["claimed_by"] == store["claims", str(record["item"])]
        assert record["owned"] == (record["claimed_by"] == record["task"])
    pids = {record["pid"] for record in seen}
    assert os.getpid() not in pids and len(pids) == 2, "the tasks ran in both worker processes"

    assert store["counters", "tasks"] == TASKS
    assert store["counters", "items"] == ITEMS
    results = store.get_subdict("results")
    assert len(results) == ITEMS
    assert {int(key[0]): value for key, value in results.items()} == {item: result_of(item) for item in range(ITEMS)}
