"""Tasks that dask worker processes run on a store they received as an argument (importable by spawn)."""

from __future__ import annotations

import os
import time
from typing import Any

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, PersiDict

WORK_SECONDS = 0.05
"""How long the work on one claimed item takes: long enough for the two tasks of an item to overlap."""


def _plus_one(value: Any) -> int:
    return 1 if value is ITEM_NOT_AVAILABLE else value + 1


def result_of(item: int) -> dict[str, int]:
    """The work's result for ``item`` (deterministic, so the client can check what it reads)."""
    return {"item": item, "square": item * item}


def claim_and_work(store: PersiDict[Any], item: int, task: str) -> dict[str, Any]:
    """Claim ``item`` by insert-if-absent; if this task won, do the work and store its result.

    Every task counts itself in ``("counters", "tasks")``; the owner of an item
    counts it in ``("counters", "items")``.  Returns what this task saw.
    """
    claim = store.setdefault_if(
        ("claims", str(item)), default_value=task, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE
    )
    store.transform_item(("counters", "tasks"), transformer=_plus_one, n_retries=None)
    owned = claim.value_was_mutated
    if owned:
        time.sleep(WORK_SECONDS)
        store["results", str(item)] = result_of(item)
        store.transform_item(("counters", "items"), transformer=_plus_one, n_retries=None)
    return {"item": item, "task": task, "owned": owned, "claimed_by": claim.new_value, "pid": os.getpid()}
