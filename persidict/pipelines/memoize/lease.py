"""memoize's claims: the leases of ``persidict.coordination``, stored as memoize ``Lease`` records.

A key is claimed by taking a lease on it (insert-if-absent, or compare-and-
swap over a record the claimer may replace: an expired lease, a dead
claimer's lease, an expired result); the lease is renewed in the background
while the body runs, and replaced by the result when done.  The protocol is
the coordination layer's (``coordination/leases.py``); what is memoize's own
is the record stored while the body runs, a ``Lease`` (``records.py``) that
earlier releases wrote too, and the rule of what may be replaced
(``function.py``).
"""

from __future__ import annotations

from typing import Any

from ...coordination.leases import Lease as HeldLease
from ...coordination.leases import take
from ...coordination.processes import holder_is_gone, host_identity, process_started
from ...coordination.records import LeaseRecord
from ...core.front import PersiDict
from ...keys.tuples import NonEmptySafeStrTuple
from ...protocol.flags import ConditionalOperationResult
from .records import Lease

__all__ = ["HeldLease", "claim", "claimer_is_dead", "host_identity", "lease_is_over", "new_lease",
           "process_started"]


def as_record(lease: LeaseRecord) -> Lease:
    """The memoize record of a lease (what the store holds while the body runs)."""
    return Lease(lease.owner, lease.expires_at, lease.host, lease.pid, lease.started, lease.token)


def new_lease(seconds: float) -> Lease:
    """A fresh lease record for this process, valid for ``seconds``."""
    return as_record(LeaseRecord.fresh(seconds, 1))


def claimer_is_dead(lease: Lease) -> bool:
    """Whether ``lease`` was taken by a process of this host that no longer runs."""
    return holder_is_gone(lease.host, lease.pid, lease.started)


def lease_is_over(lease: Lease) -> str | None:
    """Why ``lease`` may be taken over ('expired', 'its holder died'), or None while it is live."""
    record = LeaseRecord.parse(lease)
    return "unreadable" if record is None else record.why_over()


def claim(store: PersiDict[Any], key: NonEmptySafeStrTuple, seconds: float,
          seen: ConditionalOperationResult[Any]) -> tuple[HeldLease | None, ConditionalOperationResult[Any]]:
    """Take the lease on ``key`` if it still holds what ``seen`` read; the lease (None if another won) and
    the result (a refusal carries what won)."""
    return take(store, key, seconds, seen, encode=as_record)
