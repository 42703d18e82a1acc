"""A self-test of conditional writes: does the server really honour If-None-Match and If-Match?

Every guarantee of leases, the work queue and memoize rests on the server
checking a write's or a delete's precondition atomically.  Some
S3-compatible servers accept the headers and ignore them, which breaks
those guarantees silently.  ``check_conditions(store)`` finds out with a
handful of requests on a scratch key under the store's root (removed
after): an insert-if-absent over an existing value, and a write and a
delete with a stale ETag, must each be refused; a write with the current
ETag must pass.  The verdict is remembered per endpoint (one probe per
process) and a store that fails gets ``atomic_conditions = False``.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from ..core.front import PersiDict
from ..keys.tuples import to_nonempty_key
from ..protocol.exceptions import PersiDictError
from ..protocol.store import Store
from ..protocol.versions import ABSENT, PreconditionFailed

__all__ = ["PROBE_PREFIX", "ConditionsReport", "NonAtomicStoreError", "check_conditions", "endpoint_of",
           "require_atomic"]

PROBE_PREFIX = "persidict~probe"
"""The first key component of the probe's scratch keys."""


class NonAtomicStoreError(PersiDictError, RuntimeError):
    """The store does not check preconditions atomically: leases, queues and memoize would not be safe on it."""


@dataclass(frozen=True)
class ConditionsReport:
    """What the probe found on one endpoint: ``atomic``, and in words what the server did."""

    endpoint: str
    atomic: bool
    finding: str
    requests: int
    """Conditional requests the probe sent (the scratch key's cleanup not counted)."""

    def __str__(self) -> str:
        verdict = "atomic" if self.atomic else "not atomic"
        return f"{self.endpoint}: {verdict}: {self.finding} ({self.requests} requests)"


_REMEMBERED: dict[str, ConditionsReport] = {}
_LOCK = threading.Lock()


def _innermost(store: Store) -> Store:
    while hasattr(store, "inner"):
        store = store.inner
    return store


def endpoint_of(d: PersiDict[Any]) -> str:
    """What the probe's verdict is remembered by: the backend, its server's URL and its bucket."""
    store = _innermost(d._items)
    backend = getattr(store, "backend", None)
    if backend is None:
        return f"{type(store).__name__}@{id(store)}"  # an in-process store: its own endpoint
    if store.backend_name in ("filesystem", "memory"):
        return store.backend_name  # one kind of file locks per host, one memory per process
    options = dict(getattr(getattr(backend, "fs", None), "storage_options", None) or {})
    url = options.get("endpoint_url") or (options.get("client_kwargs") or {}).get("endpoint_url")
    url = url or options.get("account_name") or "default"
    return f"{store.backend_name}:{url}/{getattr(backend, 'bucket', '')}"


class _Probe:
    """The probe's requests on one scratch key, counted; the key is removed whatever happens."""

    def __init__(self, store: Store) -> None:
        self.store, self.sent, self.removed = store, 0, False
        self.key = to_nonempty_key((PROBE_PREFIX, uuid.uuid4().hex))

    def write(self, value: str, expected: Any) -> str:
        self.sent += 1
        return self.store.write(self.key, value, expected)

    def refused(self, action: Any) -> bool:
        """Whether ``action`` (one conditional request) raised ``PreconditionFailed``."""
        try:
            action()
        except PreconditionFailed:
            return True
        return False

    def delete(self, expected: Any) -> None:
        self.sent += 1
        self.store.delete(self.key, expected)
        self.removed = True

    def run(self) -> tuple[bool, str]:
        """(atomic, what the server did); stops at the first wrong answer."""
        try:
            first = self.write("probe-1", ABSENT)
        except TypeError:  # a format that holds no text (arrays, tables): nothing to probe with
            self.sent, self.removed = 0, True
            return self.store.atomic_conditions, "not probed: the store's format holds no text; trusted as declared"
        if not self.refused(lambda: self.write("probe-2", ABSENT)):
            return False, "it overwrote an existing value despite If-None-Match: * (insert-if-absent)"
        try:
            second = self.write("probe-3", first)
        except PreconditionFailed:
            return False, "it refused a write carrying the current ETag in If-Match"
        if not self.refused(lambda: self.write("probe-4", first)):
            return False, "it accepted a write whose If-Match named a replaced ETag"
        if not self.refused(lambda: self.delete(first)):
            return False, "it deleted a value whose ETag did not match If-Match"
        self.delete(second)
        return True, "it refused every write and delete whose condition failed, and accepted the others"

    def clean(self) -> None:
        """Remove the scratch key if the probe stopped before removing it."""
        if not self.removed:
            with contextlib.suppress(KeyError):
                self.store.delete(self.key)


def _probe(store: Store) -> tuple[bool, str, int]:
    """Run the probe on ``store`` (a fresh scratch key); (atomic, what the server did, requests sent)."""
    probe = _Probe(store)
    try:
        atomic, finding = probe.run()
    finally:
        probe.clean()
    return atomic, finding, probe.sent


def check_conditions(d: PersiDict[Any], *, refresh: bool = False) -> ConditionsReport:
    """Probe (or recall) whether ``d``'s server honours conditional writes and deletes.

    A failing store gets ``atomic_conditions = False``.  A store that
    declares no atomic conditions (a 0.x subclass, a folder without file
    locks) is not probed: it fails at once.
    """
    store = d._items
    endpoint = endpoint_of(d)
    if store.policy is not None:  # its scratch key could not be removed: nothing to probe with
        return ConditionsReport(endpoint, False, f"the store is {store.policy}; coordination needs a mutable one", 0)
    if not store.atomic_conditions and endpoint not in _REMEMBERED:
        return ConditionsReport(endpoint, False, "the store does not declare atomic conditional operations", 0)
    with _LOCK:
        report = None if refresh else _REMEMBERED.get(endpoint)
        if report is None:
            report = ConditionsReport(endpoint, *_probe(store))
            if report.requests:  # a store that could not be probed says nothing of its endpoint
                _REMEMBERED[endpoint] = report
    if not report.atomic:
        store.atomic_conditions = False
    return report


def require_atomic(d: PersiDict[Any], what: str, *, allow_non_atomic: bool = False) -> None:
    """Refuse (``NonAtomicStoreError``) to run ``what`` on a store whose conditions are not atomic."""
    if allow_non_atomic:
        return
    report = check_conditions(d)
    if not report.atomic:
        raise NonAtomicStoreError(
            f"{what} needs atomic conditional writes, and {report.endpoint} failed the check: {report.finding}. "
            "Two processes could then both believe they won. Pass allow_non_atomic=True to proceed anyway."
        )
