"""Coordination without a database: leases with fencing tokens, a work queue, a check of the server.

Above ``core/`` (it uses the dict API: conditional writes and ETags), beside
``pipelines/`` (whose memoize claims its keys with these leases).

* ``processes.py``: which process holds a lease, and whether it still runs;
* ``records.py``: a lease as stored (JSON text with its fencing token);
* ``leases.py``: taking, renewing, checking and releasing a lease;
* ``conditions.py``: the self-test of conditional writes (``check_conditions``);
* ``queue.py``: ``WorkQueue``, tasks claimed under leases, done exactly once.
"""

from __future__ import annotations

from .conditions import ConditionsReport, NonAtomicStoreError, check_conditions
from .leases import LEASE_PREFIX, Lease, LeaseLost, LeaseTimeout
from .queue import Progress, Task, WorkQueue
from .records import LeaseRecord

__all__ = ["LEASE_PREFIX", "ConditionsReport", "Lease", "LeaseLost", "LeaseRecord", "LeaseTimeout",
           "NonAtomicStoreError", "Progress", "Task", "WorkQueue", "check_conditions"]
