"""The pipeline of `pipeline.ipynb` and `distributed.ipynb`: the functions worker processes run.

Worker processes started by ``spawn`` (process pools in Jupyter, dask's workers)
import the functions they run by module and name, and a function defined in a
notebook cell has no module they can import: so the workers' code lives here,
next to the notebooks, and the notebooks import it.  Every function takes the
store as an argument: a store pickles as the parameters that reopen it (a
folder, or a URL with its ``storage_options``), so each worker opens the same
storage, and swapping the store (a folder for S3) changes nothing here.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from tqdm import tqdm

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, PersiDict, WorkQueue, memoize
from persidict.pipelines.memoize import Lease

STEP_SECONDS = 0.25
"""How long the expensive step pretends to work on one item."""


def featurize(n: int) -> dict[str, int]:
    """The expensive step: statistics of the Collatz sequence that starts at ``n`` (slowed down)."""
    time.sleep(STEP_SECONDS)
    steps, peak, value = 0, n, n
    while value > 1:
        value = value // 2 if value % 2 == 0 else 3 * value + 1
        peak = max(peak, value)
        steps += 1
    return {"n": n, "steps": steps, "peak": peak}


def process(store: PersiDict[Any], n: int, crash_on: int | None = None) -> tuple[int, dict[str, int], bool]:
    """One pipeline task, run in a worker: ``featurize(n)`` memoized in ``store``.

    Returns ``(n, features, computed)``; ``computed`` says whether this call ran
    the expensive step (False: the result came from the store).  ``crash_on``
    simulates a crash: the worker process that claims that item dies while
    computing it (``os._exit``), leaving its memoize lease behind.
    """
    # The key holds featurize's code (and STEP_SECONDS, the constant it reads): edit them and it recomputes.
    memoized = memoize(store, lease=3.0, poll=0.5)(featurize)
    if n == crash_on:
        _die_while_computing(store, memoized.key(n))
    info = memoized.call_with_info(n)
    return n, info.value, info.computed


def _die_while_computing(store: PersiDict[Any], key: Any) -> None:
    """Kill this process as soon as ``key`` holds a claim (a Lease): as a killed job would, mid-computation."""

    def watch() -> None:
        while not isinstance(store.get(key), Lease):
            time.sleep(0.005)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run_pipeline(
    store: PersiDict[Any], items: Iterable[int], workers: int = 2, crash_on: int | None = None
) -> dict[int, dict[str, Any]]:
    """Run ``process`` on every item in a pool of spawned worker processes, with a progress bar.

    Returns what finished: ``{n: {"features": ..., "computed": bool}}``.  A
    worker that dies breaks the pool (``BrokenProcessPool``): the run stops and
    returns what finished before.
    """
    items = list(items)
    finished: dict[int, dict[str, Any]] = {}
    broken = False
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(process, store, n, crash_on) for n in items]
        with tqdm(total=len(items), desc="featurize", unit="item", ncols=80, file=sys.stdout) as bar:
            try:
                for future in as_completed(futures):
                    n, features, computed = future.result()
                    finished[n] = {"features": features, "computed": computed}
                    bar.update()
            except BrokenProcessPool:
                broken = True
    if broken:
        print(f"interrupted: a worker process died; {len(finished)} of {len(items)} items finished")
    return finished


def _plus_one(value: Any) -> int:
    return 1 if value is ITEM_NOT_AVAILABLE else value + 1


def claim_and_process(store: PersiDict[Any], n: int, task: str) -> tuple[int, str, bool]:
    """A task that may race with others on the same item: only the task that claims it does the work.

    The claim is an insert-if-absent: ``setdefault_if`` with ``ETAG_IS_THE_SAME``
    and ``ITEM_NOT_AVAILABLE`` writes ``("claims", n)`` only if no one has, so
    exactly one task, in any process on any machine, owns each item.  Every task
    counts itself in ``("counters", "tasks")``, and the owner of an item counts
    it in ``("counters", "items")``, with ``transform_item`` (an atomic
    read-modify-write, retried until it lands).  Returns ``(n, task, owned)``.
    """
    claim = store.setdefault_if(
        ("claims", str(n)), default_value=task, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE
    )
    store.transform_item(("counters", "tasks"), transformer=_plus_one, n_retries=None)
    if not claim.value_was_mutated:
        return n, task, False
    store["results", str(n)] = featurize(n)
    store.transform_item(("counters", "items"), transformer=_plus_one, n_retries=None)
    return n, task, True


def work_through(queue: WorkQueue, ttl: float = 30.0) -> int:
    """A dask task: claim the queue's tasks one at a time, featurize each, record its result; how many it recorded.

    Runs until no task is open.  A claim whose worker died is taken again after
    ``ttl`` (at once on the same machine), and each task's result is recorded
    once, whichever worker finishes it.
    """
    return queue.run(featurize, ttl=ttl, poll=0.2)
