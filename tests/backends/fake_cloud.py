"""A fake cloud for the request runner's tests: ``ObjectStoreBackend``'s SDK hooks over a dict.

``FakeBackend`` implements the hooks a cloud module supplies (``_get``,
``_head``, ``_put_object``, ``_delete_object``, ``_list_page``, the bucket
calls and the error table ``_outcome``) over a dict of objects with
counter-made ETags.  It honours preconditions like a real cloud (412 for an
unmet one, 404 for a missing object) and takes a script of faults per hook
(``FakeCloud.fail``): an answer lost after or before the change was applied,
or lost while the request is still in flight (``lost_late``: it lands just
before the next change request reaches the cloud, or never if none does), a
refusal (throttling), no connection, a missing bucket, a denial, a request
that never answers.  ``FakeCloud.meanwhile`` runs another writer's change
as a hook is entered; ``FakeCloud.writes`` lists the write ids of every
write applied, and ``applied`` every change.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import fsspec.asyn

from persidict.backends.base import StorageBackend
from persidict.backends.lineage import Lineages
from persidict.backends.object_store import ObjectStoreBackend, Outcome
from persidict.protocol.retry import RetryConfig
from persidict.protocol.versions import ABSENT, Expected, Version

BUCKET = "fake-bucket-42"
ROOT = f"{BUCKET}/store"
PATH = f"{ROOT}/k.pkl"
NAME = "store/k.pkl"
"""The object name of ``PATH`` inside the bucket."""
BOUND = 10.0
"""A generous upper bound on a call cut by a short deadline (slow CI machines)."""


class CloudError(Exception):
    """An error of the fake SDK; each subclass means one ``Outcome``."""

    outcome = Outcome.FAILED


class NotFound(CloudError):
    outcome = Outcome.NOT_FOUND


class Conflict(CloudError):
    outcome = Outcome.CONFLICT


class Lost(CloudError):
    outcome = Outcome.LOST


class Refused(CloudError):
    outcome = Outcome.REFUSED


class Unreachable(CloudError):
    outcome = Outcome.UNREACHABLE


class BucketMissing(CloudError):
    outcome = Outcome.BUCKET_MISSING


class Denied(CloudError):
    outcome = Outcome.DENIED


LOST_LATE = "lost_late"
"""A fault: the answer is lost at once, and the request lands later (before the next change of the object)."""

RAISED_BEFORE = {
    "lost_before": Lost,
    "refused": Refused,
    "unreachable": Unreachable,
    "bucket_missing": BucketMissing,
    "denied": Denied,
    "conflict": Conflict,
}
"""Faults that raise before the request does anything (``lost_after`` applies it first; ``hang`` never answers)."""


@dataclass
class Stored:
    data: bytes
    etag: str
    metadata: dict[str, str]
    timestamp: float


class FakeCloud:
    """Buckets of objects with counter-made ETags, a log of every hook call and a fault script per hook."""

    def __init__(self) -> None:
        self.buckets = {BUCKET}
        self.objects: dict[str, Stored] = {}
        self.calls: list[tuple[str, str]] = []
        self.applied: list[tuple[str, str]] = []
        self.writes: list[tuple[bytes, str]] = []
        """The data and ETag of every write applied, in order."""
        self.in_flight: list[Callable[[], None]] = []
        """Requests whose answers were lost while they were still in flight: they land before the next change."""
        self._faults: dict[str, list[str | None]] = defaultdict(list)
        self._meanwhile: dict[str, list[Callable[[], Awaitable[Any]]]] = defaultdict(list)
        self._etags = itertools.count(1)

    def fail(self, hook: str, *faults: str | None) -> None:
        """Script the next calls of ``hook`` ("get", "head", "put", "delete", "list", ...): one fault each, or None."""
        self._faults[hook].extend(faults)

    def meanwhile(self, hook: str, action: Callable[[], Awaitable[Any]]) -> None:
        """Run ``action`` (another writer's change) as the next call of ``hook`` starts."""
        self._meanwhile[hook].append(action)

    def count(self, hook: str) -> int:
        return sum(1 for called, _ in self.calls if called == hook)

    async def enter(self, hook: str, name: str = "", *, scripted: bool = True) -> str | None:
        """Log the call and play its fault: raise it now, hang, or return it for the hook to play.

        Calls of an unscripted backend (another writer) take no fault and run no ``meanwhile`` action.
        """
        self.calls.append((hook, name))
        if scripted and self._meanwhile[hook]:
            await self._meanwhile[hook].pop(0)()
        fault = self._faults[hook].pop(0) if scripted and self._faults[hook] else None
        if hook in ("put", "delete") and fault != "unreachable":
            while self.in_flight:  # a change in flight lands before the next one reaches the cloud
                self.in_flight.pop(0)()
        if fault == "hang":
            await asyncio.sleep(3600)
        if fault in RAISED_BEFORE:
            raise RAISED_BEFORE[fault](f"{fault}: {hook} {name}")
        if hook not in ("bucket_exists", "create_bucket") and BUCKET not in self.buckets:
            raise BucketMissing(f"no bucket: {hook} {name}")
        return fault

    def new_etag(self) -> str:
        return f'"etag-{next(self._etags)}"'


class FakeFS:
    """What the runner needs of an fsspec filesystem: a loop and ``storage_options`` (rebuilt after a fork)."""

    def __init__(self, **storage_options: Any) -> None:
        self.loop = fsspec.asyn.get_loop()
        self.storage_options = storage_options

    def unstrip_protocol(self, path: str) -> str:
        return f"fake://{path}"


class FakeBackend(ObjectStoreBackend):
    """The SDK hooks of a cloud module, on a ``FakeCloud``."""

    backend_name = "fake"

    def __init__(self, cloud: FakeCloud, root: str = ROOT, *, scripted: bool = True) -> None:
        super().__init__(FakeFS(), root)
        self.cloud = cloud
        self.scripted = scripted
        """False for another writer: the cloud's fault script and ``meanwhile`` actions are not for it."""

    def _outcome(self, exc: BaseException) -> Outcome:
        return exc.outcome if isinstance(exc, CloudError) else Outcome.FAILED

    def _existing(self, name: str) -> Stored:
        stored = self.cloud.objects.get(name)
        if stored is None:
            raise NotFound(name)
        return stored

    async def _get(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version, Any]:
        fault = await self.cloud.enter("get", name, scripted=self.scripted)
        stored = self._existing(name)
        if fault == "lost_after":
            raise Lost(f"lost_after: get {name}")
        version = Version(stored.etag, stored.timestamp)
        return (None if if_none_match == stored.etag else stored.data), version, dict(stored.metadata)

    async def _head(self, name: str) -> tuple[Version, Any]:
        fault = await self.cloud.enter("head", name, scripted=self.scripted)
        stored = self._existing(name)
        if fault == "lost_after":
            raise Lost(f"lost_after: head {name}")
        return Version(stored.etag, stored.timestamp), dict(stored.metadata)

    async def _put_object(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        fault = await self.cloud.enter("put", name, scripted=self.scripted)
        return self._changed(fault, f"put {name}", lambda: self._apply_put(name, data, expected, metadata))

    async def _delete_object(self, name: str, expected: Expected) -> None:
        fault = await self.cloud.enter("delete", name, scripted=self.scripted)
        self._changed(fault, f"delete {name}", lambda: self._apply_delete(name, expected))

    def _changed(self, fault: str | None, what: str, apply: Callable[[], Any]) -> Any:
        """Apply a change now (its answer then lost if ``lost_after``), or later if ``lost_late``."""
        if fault == LOST_LATE:
            self.cloud.in_flight.append(lambda: _quietly(apply))
            raise Lost(f"{LOST_LATE}: {what}")
        result = apply()
        if fault == "lost_after":
            raise Lost(f"lost_after: {what}")
        return result

    def _apply_put(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        current = self.cloud.objects.get(name)
        if expected is ABSENT and current is not None:
            raise Conflict(f"412: {name} exists")
        if isinstance(expected, str):
            if current is None:
                raise NotFound(f"404: {name} is missing")  # some clouds answer If-Match on a missing object so
            if current.etag != expected:
                raise Conflict(f"412: {name} is at {current.etag}, not {expected}")
        etag = self.cloud.new_etag()
        self.cloud.objects[name] = Stored(bytes(data), etag, dict(metadata), time.time())
        self.cloud.applied.append(("put", name))
        self.cloud.writes.append((bytes(data), etag))
        return etag

    def _apply_delete(self, name: str, expected: Expected) -> None:
        current = self._existing(name)
        if isinstance(expected, str) and current.etag != expected:
            raise Conflict(f"412: {name} is at {current.etag}, not {expected}")
        del self.cloud.objects[name]
        self.cloud.applied.append(("delete", name))

    async def _list_page(self, token: str | None) -> tuple[list[tuple[str, float]], str | None]:
        await self.cloud.enter("list", self.prefix)
        names = sorted(name for name in self.cloud.objects if name.startswith(self.prefix))
        start = int(token or 0)
        page = [(name, self.cloud.objects[name].timestamp) for name in names[start : start + 2]]
        return page, str(start + 2) if start + 2 < len(names) else None

    async def _bucket_exists(self) -> bool:
        await self.cloud.enter("bucket_exists")
        return self.bucket in self.cloud.buckets

    async def _create_bucket(self) -> None:
        await self.cloud.enter("create_bucket")
        self.cloud.buckets.add(self.bucket)


def _quietly(apply: Callable[[], Any]) -> None:
    """A change landing after its answer was lost: a failed precondition just means it did not apply."""
    try:
        apply()
    except CloudError:
        pass


async def write_on_top(other: FakeBackend, data: bytes, times: int = 1) -> list[Version]:
    """Another writer's compare-and-swaps, each on the version it has just read (as ``transform_item`` does).

    Returns the versions it wrote on; a swap that meets a change landing meanwhile reads again.
    """
    seen: list[Version] = []
    while len(seen) < times:
        _, version = await other._get_learning(NAME)  # it reads the version (and learns its lineage)
        metadata = other._lineages.metadata_for(NAME, version.etag, Lineages.new_write_id())
        try:
            await other._put_written(NAME, data, version.etag, metadata)
        except Conflict:
            continue
        seen.append(version)
    return seen


def short_pauses(monkeypatch: Any) -> None:
    """Make the runner's back-off pauses milliseconds long (a ``pytest.MonkeyPatch``)."""
    monkeypatch.setattr(StorageBackend, "retry", RetryConfig(init_backoff=0.001, max_backoff=0.005))
