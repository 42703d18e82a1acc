"""Leases: one holder per name among every process sharing a store, with fencing tokens.

A lease is taken by insert-if-absent of a ``LeaseRecord`` at its key, or by
compare-and-swap over a record that may be replaced (released, expired, or
held by a dead process of this host).  Each take writes the previous token
plus one, so tokens strictly increase per name across every takeover; a
release leaves a tombstone that keeps the last token.  ``renew()`` and
``check()`` are one request each and raise ``LeaseLost`` once another holder
took the lease; ``keep_alive()`` renews from a background thread.

The resource a lease protects should check ``lease.token`` (see
``fencing.py``): a holder paused past its expiry (a GC pause, a stopped VM)
still believes it holds the lease, and only the token tells it apart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..core.front import PersiDict
from ..keys.tuples import NonEmptySafeStrTuple, key_text, to_nonempty_key
from ..protocol.exceptions import PersiDictError
from ..protocol.flags import (
    ALWAYS_RETRIEVE,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    NEVER_RETRIEVE,
    ConditionalOperationResult,
    ETagValue,
)
from .records import LeaseRecord

__all__ = ["LEASE_PREFIX", "Lease", "LeaseLost", "LeaseTimeout", "acquire", "lease_key", "take", "waits"]

_log = logging.getLogger("persidict.coordination")

LEASE_PREFIX = "persidict~leases"
"""The first key component of ``store.lease(name)``'s records: a valid key no other part of persidict uses."""

Encoder = Callable[[LeaseRecord], Any]
"""Turns a lease record into the value stored at its key."""

FIRST_WAIT = 0.01
"""Seconds a waiter first sleeps; the wait then grows 1.5x per read, up to ``poll``."""


class LeaseLost(PersiDictError, RuntimeError):
    """The lease is no longer ours: another process took it (or it was deleted), or it expired."""


class LeaseTimeout(PersiDictError, TimeoutError):
    """The lease stayed held by another process for longer than the caller would wait."""


def lease_key(name: Any) -> NonEmptySafeStrTuple:
    """The key of ``store.lease(name)``'s record: ``(LEASE_PREFIX, *name)``."""
    parts = (name,) if isinstance(name, str) else tuple(to_nonempty_key(name).strings)
    return to_nonempty_key((LEASE_PREFIX, *parts))


def waits(poll: float) -> Iterator[float]:
    """Jittered sleeps that grow 1.5x from ``FIRST_WAIT`` up to ``poll`` seconds."""
    delay = min(FIRST_WAIT, poll)
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(delay * 1.5, poll)


class Lease:
    """A lease this process holds on one key of a store (see the module's docstring).

    ``token`` is the fencing token; ``renew()`` extends the lease, ``check()``
    asks the store whether it is still ours, ``release()`` gives it up.  Used
    as a context manager it is released on exit (and its keeper stopped).
    ``encode`` turns the record into the value stored (JSON text by default;
    memoize stores its own ``Lease`` records, of the same fields).
    """

    def __init__(self, store: PersiDict[Any], key: NonEmptySafeStrTuple, record: LeaseRecord,
                 etag: ETagValue, ttl: float, encode: Encoder = LeaseRecord.text) -> None:
        self.store, self.key, self.ttl, self._encode = store, key, ttl, encode
        self._record, self._etag = record, etag
        self._lost: str | None = None
        self._lock = threading.RLock()
        self._keeper: _Keeper | None = None

    def __repr__(self) -> str:
        return f"<Lease {key_text(self.key)} token={self.token} owner={self._record.owner}>"

    @property
    def token(self) -> int:
        """The fencing token: higher than that of every earlier holder of this name."""
        return self._record.token

    @property
    def owner(self) -> str:
        return self._record.owner

    @property
    def expires_at(self) -> float:
        """When the lease expires unless renewed (wall clock, as last written)."""
        return self._record.expires_at

    @property
    def etag(self) -> ETagValue | None:
        """The ETag of our lease record (None once lost or released)."""
        return None if self._lost else self._etag

    def _raise_if_lost(self) -> None:
        if self._lost:
            raise LeaseLost(f"the lease {key_text(self.key)} (token {self.token}) is no longer ours: {self._lost}")

    def _mark_lost(self, why: str) -> None:
        self._lost = self._lost or why
        _log.warning("lease %s (token %d) lost: %s", key_text(self.key), self.token, why)

    def renew(self, ttl: float | None = None) -> None:
        """Extend the lease to ``ttl`` (default: the lease's) seconds from now; ``LeaseLost`` if it is not ours."""
        with self._lock:
            self._raise_if_lost()
            record = self._record.renewed(self.ttl if ttl is None else ttl)
            result = self.store.set_item_if(self.key, value=self._encode(record), condition=ETAG_IS_THE_SAME,
                                            expected_etag=self._etag, retrieve_value=NEVER_RETRIEVE)
            if not result.condition_was_satisfied:
                self._mark_lost("another process took it")
                self._raise_if_lost()
            self._record, self._etag = record, result.resulting_etag  # type: ignore[assignment]

    def check(self) -> None:
        """Ask the store (one request) whether the lease is still ours and unexpired; ``LeaseLost`` if not."""
        with self._lock:
            self._raise_if_lost()
            try:
                current = self.store.etag(self.key)
            except KeyError:
                current = None
            if current != self._etag:
                self._mark_lost("another process took it" if current is not None else "its record was deleted")
            elif self._record.expires_at <= time.time():
                raise LeaseLost(f"the lease {key_text(self.key)} (token {self.token}) expired; renew it")
            self._raise_if_lost()

    def keep_alive(self, every: float | None = None) -> Lease:
        """Renew from a background thread every ``every`` seconds (default ``ttl / 3``) until released."""
        with self._lock:
            if self._keeper is None:
                self._keeper = _Keeper(self, self.ttl / 3 if every is None else every)
        return self

    def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop()

    def release(self, *, keep_token: bool = True) -> bool:
        """Give the lease up; whether it was still ours.

        ``keep_token`` (default) leaves a tombstone that carries the token to
        the next holder; ``False`` deletes the record (the next token restarts at 1).
        A storage failure is logged, not raised: the lease then expires in time.
        """
        self._stop_keeper()
        if keep_token:
            return _quietly(lambda: self.replace(self._encode(self._record.tombstone())))
        with self._lock:
            if self._lost:
                return False
            self._lost = "released"
            return _quietly(lambda: self.store.discard_if(
                self.key, condition=ETAG_IS_THE_SAME, expected_etag=self._etag).condition_was_satisfied)

    def replace(self, value: Any) -> bool:
        """Write ``value`` in place of the lease if it is still ours (memoize: the result); whether it was."""
        self._stop_keeper()
        with self._lock:
            if self._lost:
                return False
            result = self.store.set_item_if(self.key, value=value, condition=ETAG_IS_THE_SAME,
                                            expected_etag=self._etag, retrieve_value=NEVER_RETRIEVE)
            self._lost = "released"
            return result.condition_was_satisfied

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _quietly(self.release)


def _quietly(action: Any) -> bool:
    """Run a release; a storage failure is logged (the lease then expires in time) and counts as False."""
    try:
        return bool(action())
    except PersiDictError:
        _log.warning("releasing a lease failed; it expires in time", exc_info=True)
        return False


class _Keeper:
    """Renews one lease from a daemon thread until stopped or lost (a storage failure retries next time)."""

    def __init__(self, lease: Lease, every: float) -> None:
        self._lease, self._every = lease, every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"persidict-lease-{lease.owner}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self._lease.renew()
            except LeaseLost:
                return
            except PersiDictError:
                _log.warning("renewing the lease %s failed; retrying", key_text(self._lease.key), exc_info=True)

    def stop(self) -> None:
        """Stop renewing (waiting for a renewal in flight)."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def take(store: PersiDict[Any], key: NonEmptySafeStrTuple, ttl: float, seen: ConditionalOperationResult[Any],
         encode: Encoder = LeaseRecord.text) -> tuple[Lease | None, ConditionalOperationResult[Any]]:
    """Write a new lease at ``key`` if it still holds what ``seen`` read (absent, or that version).

    The caller has decided that what ``seen`` read may be replaced.  Exactly
    one of several callers that saw the same version wins; a refusal returns
    None and what is there now.  The token is one more than that of the lease
    replaced (1 over anything else).
    """
    previous = LeaseRecord.parse(seen.new_value)
    record = LeaseRecord.fresh(ttl, (previous.token if previous else 0) + 1)
    expected = ITEM_NOT_AVAILABLE if seen.new_value is ITEM_NOT_AVAILABLE else seen.actual_etag
    result = store.set_item_if(key, value=encode(record), condition=ETAG_IS_THE_SAME, expected_etag=expected,
                               retrieve_value=ALWAYS_RETRIEVE)
    if not result.condition_was_satisfied:
        return None, result
    return Lease(store, key, record, result.resulting_etag, ttl, encode), result  # type: ignore[arg-type]


def try_acquire(store: PersiDict[Any], key: NonEmptySafeStrTuple, ttl: float,
                seen: ConditionalOperationResult[Any] | None = None) -> tuple[Lease | None, LeaseRecord | None]:
    """Take the lease at ``key`` if it is free (absent, released, expired, dead holder): the lease, or
    None and the live lease that holds it.  ``TypeError`` if the key holds something else than a lease."""
    seen = seen or store.get_with_etag(key)
    while True:
        current = LeaseRecord.parse(seen.new_value)
        if seen.new_value is not ITEM_NOT_AVAILABLE and current is None:
            raise TypeError(f"{key_text(key)} holds a {type(seen.new_value).__name__}, not a lease")
        if current is not None and current.why_over() is None:
            return None, current
        lease, seen = take(store, key, ttl, seen)
        if lease is not None:
            return lease, None


def acquire(store: PersiDict[Any], key: NonEmptySafeStrTuple, ttl: float, *,
            timeout: float | None = None, poll: float = 1.0) -> Lease:
    """Take the lease at ``key``, waiting (up to ``timeout`` seconds; None: for ever) while another holds it."""
    if not ttl > 0 or not poll > 0:
        raise ValueError(f"ttl and poll must be positive numbers of seconds, got ttl={ttl!r}, poll={poll!r}")
    deadline = None if timeout is None else time.monotonic() + timeout
    pauses = waits(poll)
    while True:
        lease, holder = try_acquire(store, key, ttl)
        if lease is not None:
            return lease
        if deadline is not None and time.monotonic() >= deadline:
            raise LeaseTimeout(f"the lease {key_text(key)} is held by {holder.owner if holder else '?'}; "
                               f"waited {timeout} s")
        pause = next(pauses)
        time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
