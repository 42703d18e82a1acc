"""The lease protocol: one claimer per key among every process sharing a store.

A key is claimed by insert-if-absent of a ``Lease`` (or by compare-and-swap
over a record the claimer may replace: an expired lease, a dead claimer's
lease, an expired result).  While the work runs, a ``LeaseKeeper`` renews the
lease from a background thread every ``seconds / 3`` by compare-and-swap on
the lease's own ETag, so a long computation is never taken over; ``stop()``
says whether the lease is still ours.  A lease that is not renewed expires.

A claimer that died on this host is recognised at once: its lease names the
host (hostname, boot id and pid namespace, so two containers that share a
hostname are not one host), the pid and the process's start time (so a pid
the system reused for another process does not pass for the claimer).  Such
a lease is taken over without waiting for it to expire.

Nothing here knows what the lease protects: memoize (``function.py``) stores
its result under the same key when done.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from ...core.front import PersiDict
from ...keys.tuples import NonEmptySafeStrTuple, key_text
from ...protocol.exceptions import PersiDictError
from ...protocol.flags import (
    ALWAYS_RETRIEVE,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    ConditionalOperationResult,
    ETagIfExists,
)
from .records import Lease

__all__ = ["LeaseKeeper", "claim", "claimer_is_dead", "lease_is_over", "new_lease", "release", "waits"]

_log = logging.getLogger("persidict.pipelines.memoize")

FIRST_WAIT = 0.01
"""Seconds a waiter first sleeps; the wait then grows 1.5x per read, up to ``poll``."""


# --- who holds a lease ----------------------------------------------------------------------


def _read(path: str) -> str:
    """A small system file's text, '' if there is none (not Linux, no permission)."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return ""


@functools.cache
def host_identity() -> str:
    """This host as leases name it: hostname, boot id and pid namespace (the last two on Linux).

    Two containers with one hostname have different pid namespaces, and a
    rebooted machine a new boot id: neither can mistake the other's pids for its own.
    """
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return "|".join((socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), namespace))


def process_started(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, from /proc); '' where unknown."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else ""


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped (signal 0 still reaches a zombie)."""
    fields = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


def process_is_gone(pid: int, started: str) -> bool:
    """Whether process ``pid`` of this host has ended (or its pid now belongs to another process).

    POSIX only: on Windows ``os.kill`` would terminate the process, so there
    nothing is ever declared gone (leases expire as usual).
    """
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    if _is_zombie(pid):
        return True
    return bool(started) and process_started(pid) not in ("", started)


def claimer_is_dead(lease: Lease) -> bool:
    """Whether ``lease`` was taken by a process of this host that no longer runs."""
    return bool(lease.host) and lease.host == host_identity() and process_is_gone(lease.pid, lease.started)


@functools.cache
def _this_process_started(pid: int) -> str:
    """This process's start time, computed once per pid (a forked child has its own)."""
    return process_started(pid)


def new_lease(seconds: float) -> Lease:
    """A fresh lease for this process, valid for ``seconds``."""
    pid = os.getpid()
    owner = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:12]}"
    return Lease(owner, time.time() + seconds, host_identity(), pid, _this_process_started(pid))


def renewed(lease: Lease, seconds: float) -> Lease:
    """``lease`` extended to ``seconds`` from now."""
    return Lease(lease.owner, time.time() + seconds, lease.host, lease.pid, lease.started)


# --- claiming -------------------------------------------------------------------------------


def claim(
    store: PersiDict[Any], key: NonEmptySafeStrTuple, lease: Lease, seen: ConditionalOperationResult[Any]
) -> ConditionalOperationResult[Any]:
    """Write ``lease`` if the key still holds what ``seen`` read (absent, or the version seen).

    Exactly one of several callers that saw the same version wins; the
    result of a refused claim carries what is there now.
    """
    expected = ITEM_NOT_AVAILABLE if seen.new_value is ITEM_NOT_AVAILABLE else seen.actual_etag
    return store.set_item_if(
        key, value=lease, condition=ETAG_IS_THE_SAME, expected_etag=expected, retrieve_value=ALWAYS_RETRIEVE
    )


def lease_is_over(lease: Lease) -> str | None:
    """Why ``lease`` may be taken over ('expired', 'its claimer died'), or None while it is live."""
    if lease.expires_at <= time.time():
        return "expired"
    if claimer_is_dead(lease):
        return f"its claimer (pid {lease.pid} on this host) is dead"
    return None


def waits(poll: float) -> Iterator[float]:
    """Jittered sleeps that grow 1.5x from ``FIRST_WAIT`` up to ``poll`` seconds."""
    delay = min(FIRST_WAIT, poll)
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 1.5, poll)


def release(store: PersiDict[Any], key: NonEmptySafeStrTuple, etag: ETagIfExists | None) -> None:
    """Delete our lease (if we still hold it) so that another caller claims the key; failures are logged."""
    if etag is None:
        return
    try:
        store.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=etag)
    except PersiDictError:
        _log.warning("memoize: releasing the lease of %s failed; it expires in time", key_text(key), exc_info=True)


# --- keeping a lease ------------------------------------------------------------------------


class LeaseKeeper:
    """Renews one claim's lease from a background thread until stopped.

    ``stop()`` returns the lease's current ETag, or None if the lease was lost
    (another caller took it over, or it was deleted).
    """

    def __init__(
        self, store: PersiDict[Any], key: NonEmptySafeStrTuple, lease: Lease, seconds: float, etag: ETagIfExists
    ) -> None:
        self._store, self._key, self._lease, self._seconds = store, key, lease, seconds
        self._etag = etag
        self._lost = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"persidict-lease-{lease.owner}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._seconds / 3) and self._renew():
            pass

    def _renew(self) -> bool:
        """Extend the lease by CAS on its ETag; False once it is lost (a storage failure retries next time)."""
        try:
            result = self._store.set_item_if(
                self._key,
                value=renewed(self._lease, self._seconds),
                condition=ETAG_IS_THE_SAME,
                expected_etag=self._etag,
                retrieve_value=NEVER_RETRIEVE,
            )
        except PersiDictError:
            _log.warning("memoize: renewing the lease of %s failed; retrying", key_text(self._key), exc_info=True)
            return True
        if not result.condition_was_satisfied:
            _log.warning("memoize: the lease of %s was taken over while its body ran", key_text(self._key))
            self._lost = True
            return False
        self._etag = result.resulting_etag
        return True

    def stop(self) -> ETagIfExists | None:
        """Stop renewing (waiting for a renewal in flight); the lease's ETag, or None if it was lost."""
        self._stopping.set()
        self._thread.join()
        return None if self._lost else self._etag
