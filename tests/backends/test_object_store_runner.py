"""ObjectStoreBackend's request runner and reconciliation, on an in-memory fake cloud.

``FakeBackend`` implements the SDK hooks a cloud module supplies (``_get``,
``_head``, ``_put_object``, ``_delete_object``, ``_list_page``, the bucket
calls and the error table ``_outcome``) over a dict of objects with
counter-made ETags.  It honours preconditions like a real cloud (412 for an
unmet one, 404 for a missing object) and takes a script of faults per hook
(``FakeCloud.fail``): an answer lost after or before the change was applied,
a refusal (throttling), no connection, a missing bucket, a denial, a request
that never answers.  So each rule of ``_run`` is tested on its own, with no
network: what is retried and how often, what is reconciled, what each
failure becomes, and that every call ends by its deadline.

A second backend on the same ``FakeCloud`` plays another process; actions
queued with ``between_attempts`` run in the pause between two attempts of a
request (the runner's back-off sleep), where another writer's change lands.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import fsspec.asyn
import pytest

from persidict import BackendError, FsspecDict
from persidict.backends import lineage as lineage_module
from persidict.backends import object_store
from persidict.backends.lineage import LINEAGE_LENGTH, Lineages
from persidict.backends.object_store import LOST_ANSWER_ATTEMPTS, UNREACHABLE_ATTEMPTS, ObjectStoreBackend, Outcome
from persidict.protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version

BUCKET = "fake-bucket-42"
ROOT = f"{BUCKET}/store"
PATH = f"{ROOT}/k.pkl"
NAME = "store/k.pkl"
"""The object name of ``PATH`` inside the bucket."""
BOUND = 10.0
"""A generous upper bound on a call cut by a short deadline (slow CI machines)."""


# --- the fake cloud -----------------------------------------------------------------------------------
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
        self._faults: dict[str, list[str]] = defaultdict(list)
        self._etags = itertools.count(1)

    def fail(self, hook: str, *faults: str) -> None:
        """Script the next calls of ``hook`` ("get", "head", "put", "delete", "list", ...), one fault each."""
        self._faults[hook].extend(faults)

    def count(self, hook: str) -> int:
        return sum(1 for called, _ in self.calls if called == hook)

    async def enter(self, hook: str, name: str = "") -> str | None:
        """Log the call and play its fault: raise it now, hang, or return "lost_after" for the hook to raise."""
        self.calls.append((hook, name))
        fault = self._faults[hook].pop(0) if self._faults[hook] else None
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

    def __init__(self, cloud: FakeCloud, root: str = ROOT) -> None:
        super().__init__(FakeFS(), root)
        self.cloud = cloud

    def _outcome(self, exc: BaseException) -> Outcome:
        return exc.outcome if isinstance(exc, CloudError) else Outcome.FAILED

    def _existing(self, name: str) -> Stored:
        stored = self.cloud.objects.get(name)
        if stored is None:
            raise NotFound(name)
        return stored

    async def _get(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version, Any]:
        fault = await self.cloud.enter("get", name)
        stored = self._existing(name)
        if fault == "lost_after":
            raise Lost(f"lost_after: get {name}")
        version = Version(stored.etag, stored.timestamp)
        return (None if if_none_match == stored.etag else stored.data), version, dict(stored.metadata)

    async def _head(self, name: str) -> tuple[Version, Any]:
        fault = await self.cloud.enter("head", name)
        stored = self._existing(name)
        if fault == "lost_after":
            raise Lost(f"lost_after: head {name}")
        return Version(stored.etag, stored.timestamp), dict(stored.metadata)

    async def _put_object(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        fault = await self.cloud.enter("put", name)
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
        if fault == "lost_after":
            raise Lost(f"lost_after: put {name}")
        return etag

    async def _delete_object(self, name: str, expected: Expected) -> None:
        fault = await self.cloud.enter("delete", name)
        current = self._existing(name)
        if isinstance(expected, str) and current.etag != expected:
            raise Conflict(f"412: {name} is at {current.etag}, not {expected}")
        del self.cloud.objects[name]
        self.cloud.applied.append(("delete", name))
        if fault == "lost_after":
            raise Lost(f"lost_after: delete {name}")

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


# --- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def backend(cloud: FakeCloud) -> FakeBackend:
    """Our backend: the process whose answers get lost."""
    return FakeBackend(cloud)


@pytest.fixture
def other(cloud: FakeCloud) -> FakeBackend:
    """Another writer on the same cloud (another process)."""
    return FakeBackend(cloud)


@pytest.fixture(autouse=True)
def between_attempts(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], Any]]:
    """Actions to run, in order, one per pause between two attempts; back-off made short."""
    monkeypatch.setattr(object_store, "FIRST_BACKOFF", 0.001)
    monkeypatch.setattr(object_store, "MAX_BACKOFF", 0.005)
    actions: list[Callable[[], Any]] = []

    def pause(seconds: float) -> None:
        if actions:
            actions.pop(0)()
        time.sleep(seconds)

    monkeypatch.setattr(object_store, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pause))
    return actions


def _id_of(stored: Stored) -> str:
    return stored.metadata["persidict-write"]


# --- lost answers of conditional writes are reconciled -----------------------------------------------------
def test_an_insert_applied_before_its_answer_was_lost_reports_success(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Lost after applying, the resend meets its own write (412): the put succeeds with OUR write's ETag."""
    cloud.fail("put", "lost_after")
    etag = backend.put(PATH, b"ours", ABSENT)
    assert etag == cloud.objects[NAME].etag
    assert cloud.objects[NAME].data == b"ours"
    assert cloud.count("put") == 2 and cloud.applied == [("put", NAME)]  # sent twice, applied once
    assert cloud.count("head") == 1  # one look at the metadata decided it


def test_a_compare_and_swap_applied_before_its_answer_was_lost_reports_success(
    backend: FakeBackend, cloud: FakeCloud
) -> None:
    """The same for ``If-Match``: the resend's 412 is our own write, found by its write id."""
    first = backend.put(PATH, b"v1", ABSENT)
    cloud.fail("put", "lost_after")
    etag = backend.put(PATH, b"v2", first)
    assert etag == cloud.objects[NAME].etag != first
    assert cloud.objects[NAME].data == b"v2"


def test_our_write_is_found_in_the_lineage_of_a_later_writer(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud, between_attempts: list[Callable[[], Any]]
) -> None:
    """Another writer read our version and wrote on top before we reconciled: still success, OUR ETag."""
    seen: list[Version] = []

    def other_writes_on_top() -> None:
        data, version = other.read_versioned(PATH)  # it sees our write (and learns its lineage)
        assert data == b"ours"
        seen.append(version)
        other.put(PATH, b"theirs", version.etag)

    cloud.fail("put", "lost_after")
    between_attempts.append(other_writes_on_top)
    etag = backend.put(PATH, b"ours", ABSENT)
    assert etag == seen[0].etag  # the ETag our write produced ...
    assert cloud.objects[NAME].data == b"theirs" and cloud.objects[NAME].etag != etag  # ... not the current one


def test_a_request_lost_before_it_was_applied_is_simply_sent_again(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Lost before applying: the resend is the first real write and succeeds on its own (no reconcile)."""
    cloud.fail("put", "lost_before")
    etag = backend.put(PATH, b"ours", ABSENT)
    assert etag == cloud.objects[NAME].etag and cloud.objects[NAME].data == b"ours"
    assert cloud.count("put") == 2 and cloud.count("head") == 0


def test_a_blind_overwrite_of_our_lost_write_is_a_precondition_failure(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud, between_attempts: list[Callable[[], Any]]
) -> None:
    """Someone overwrote blindly (no lineage back to us): the reconcile cannot claim it, PreconditionFailed."""
    cloud.fail("put", "lost_after")
    between_attempts.append(lambda: other.put(PATH, b"blind"))
    with pytest.raises(PreconditionFailed):
        backend.put(PATH, b"ours", ABSENT)
    assert cloud.objects[NAME].data == b"blind"


def test_a_precondition_that_really_failed_is_reported_after_a_lost_answer(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """Lost before applying, and the key was taken meanwhile by someone else: PreconditionFailed."""
    other.put(PATH, b"theirs", ABSENT)
    cloud.fail("put", "lost_before")
    with pytest.raises(PreconditionFailed):
        backend.put(PATH, b"ours", ABSENT)
    assert cloud.objects[NAME].data == b"theirs"


def test_a_conditional_delete_applied_before_its_answer_was_lost_reports_success(
    backend: FakeBackend, cloud: FakeCloud
) -> None:
    """Lost after deleting, the resend gets 404: the object is gone, so the delete succeeded."""
    etag = backend.put(PATH, b"v", ABSENT)
    cloud.fail("delete", "lost_after")
    backend.remove(PATH, etag)
    assert NAME not in cloud.objects
    assert cloud.count("delete") == 2 and cloud.applied.count(("delete", NAME)) == 1


def test_an_unconditional_delete_applied_before_its_answer_was_lost_reports_success(
    backend: FakeBackend, cloud: FakeCloud
) -> None:
    """The same without a precondition: a 404 on the resend is our own delete, not a missing key."""
    backend.put(PATH, b"v")
    cloud.fail("delete", "lost_after")
    backend.remove(PATH)
    assert NAME not in cloud.objects


def test_deleting_a_missing_object_is_file_not_found(backend: FakeBackend) -> None:
    """With no lost answer, a 404 means the key is absent."""
    with pytest.raises(FileNotFoundError):
        backend.remove(PATH)


def test_if_match_on_a_missing_object_is_a_precondition_failure(backend: FakeBackend) -> None:
    """A cloud's 404 for ``If-Match`` on a missing object: that version is gone too (PreconditionFailed)."""
    with pytest.raises(PreconditionFailed):
        backend.put(PATH, b"v", '"etag-999"')


# --- what is retried, and how often ---------------------------------------------------------------------
def test_refusals_are_retried_until_success(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Throttling (REFUSED) means not applied: the request is sent again until it goes through."""
    backend.put(PATH, b"v")
    cloud.fail("get", *["refused"] * 6)
    assert backend.read(PATH) == b"v"
    assert cloud.count("get") == 7


def test_a_refused_conditional_write_needs_no_reconcile(backend: FakeBackend, cloud: FakeCloud) -> None:
    """A refused insert was never applied: the resend is a plain first write."""
    cloud.fail("put", "refused", "refused")
    etag = backend.put(PATH, b"v", ABSENT)
    assert etag == cloud.objects[NAME].etag and cloud.applied == [("put", NAME)]
    assert cloud.count("head") == 0


def test_an_unreachable_service_gives_up_after_unreachable_attempts(backend: FakeBackend, cloud: FakeCloud) -> None:
    """No connection: ``UNREACHABLE_ATTEMPTS`` sends, then an OSError (not a missing key)."""
    cloud.fail("get", *["unreachable"] * (UNREACHABLE_ATTEMPTS + 5))
    with pytest.raises(OSError) as caught:
        backend.read(PATH)
    assert not isinstance(caught.value, FileNotFoundError)
    assert caught.value.errno == errno.EIO
    assert Outcome.UNREACHABLE.value in str(caught.value)
    assert cloud.count("get") == UNREACHABLE_ATTEMPTS


def test_answers_that_keep_getting_lost_give_up_after_lost_answer_attempts(
    backend: FakeBackend, cloud: FakeCloud
) -> None:
    """Lost answers are resent at most ``LOST_ANSWER_ATTEMPTS`` times in all."""
    cloud.fail("get", *["lost_before"] * (LOST_ANSWER_ATTEMPTS + 5))
    with pytest.raises(OSError) as caught:
        backend.read(PATH)
    assert not isinstance(caught.value, FileNotFoundError)
    assert cloud.count("get") == LOST_ANSWER_ATTEMPTS


def test_a_hung_request_is_cut_at_the_deadline(backend: FakeBackend, cloud: FakeCloud) -> None:
    """A service that never answers costs ``timeout`` seconds, then a TimeoutError saying so."""
    backend.put(PATH, b"v")
    backend.timeout = 0.3
    cloud.fail("get", "hang", "hang", "hang")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no answer within") as caught:
        backend.read(PATH)
    assert time.monotonic() - started < BOUND
    assert isinstance(caught.value, OSError)


def test_a_hung_conditional_write_says_it_may_have_been_applied(backend: FakeBackend, cloud: FakeCloud) -> None:
    """A write cut at its deadline cannot know whether it landed, and the message says so."""
    backend.timeout = 0.3
    cloud.fail("put", "hang", "hang", "hang")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer within .*may have been applied"):
        backend.put(PATH, b"v", ABSENT)
    assert time.monotonic() - started < BOUND


# --- what each failure becomes ----------------------------------------------------------------------------
def test_a_412_on_an_unconditional_write_is_a_plain_os_error(backend: FakeBackend, cloud: FakeCloud) -> None:
    """A precondition failure nobody asked for is a storage failure, not PreconditionFailed, and not retried."""
    cloud.fail("put", "conflict")
    with pytest.raises(OSError) as caught:
        backend.put(PATH, b"v", ANY)
    assert not isinstance(caught.value, PreconditionFailed)
    assert cloud.count("put") == 1


def test_a_412_on_a_read_is_a_plain_os_error(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Reads never carry a precondition: a 412 there is an OSError too."""
    backend.put(PATH, b"v")
    cloud.fail("get", "conflict")
    with pytest.raises(OSError):
        backend.read(PATH)


def test_a_missing_bucket_is_an_os_error_naming_it(backend: FakeBackend, cloud: FakeCloud) -> None:
    """A missing bucket is not a missing key: an OSError (not FileNotFoundError) that names the bucket."""
    cloud.fail("get", "bucket_missing")
    with pytest.raises(OSError, match=BUCKET) as caught:
        backend.read(PATH)
    assert not isinstance(caught.value, FileNotFoundError)
    cloud.buckets.clear()  # deleted for good: every primitive says so
    calls = (
        lambda: backend.stat(PATH),
        lambda: backend.put(PATH, b"v", ABSENT),
        lambda: list(backend.walk(".pkl", with_timestamps=False)),
    )
    for call in calls:
        with pytest.raises(OSError, match=BUCKET) as caught:
            call()
        assert not isinstance(caught.value, (FileNotFoundError, PreconditionFailed))


def test_a_denial_is_a_permission_error(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Access denied fails at once as PermissionError, not retried."""
    cloud.fail("put", "denied")
    with pytest.raises(PermissionError):
        backend.put(PATH, b"v")
    assert cloud.count("put") == 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda b: b.put(PATH, b"v", ""), id="put-empty-etag"),
        pytest.param(lambda b: b.remove(PATH, ""), id="remove-empty-etag"),
        pytest.param(lambda b: b.remove(PATH, ABSENT), id="remove-absent"),
    ],
)
def test_an_empty_expected_etag_fails_without_any_request(
    backend: FakeBackend, cloud: FakeCloud, call: Callable[[FakeBackend], Any]
) -> None:
    """No object's ETag is empty (and HTTP clients drop empty headers): PreconditionFailed, nothing sent."""
    with pytest.raises(PreconditionFailed):
        call(backend)
    assert cloud.calls == []


# --- the other primitives on the fake ------------------------------------------------------------------------
def test_listing_follows_pages_and_read_many_skips_vanished_objects(backend: FakeBackend, cloud: FakeCloud) -> None:
    """``walk`` reads every page (2 names each here); ``read_many`` gives None for an object deleted meanwhile."""
    for i in range(5):
        backend.put(f"{ROOT}/k{i}.pkl", b"%d" % i)
    backend.put(f"{ROOT}/other.json", b"x")
    listed = sorted(name for name, _ in backend.walk(".pkl", with_timestamps=False))
    assert listed == [f"k{i}.pkl" for i in range(5)]
    assert cloud.count("list") == 3
    backend.remove(f"{ROOT}/k1.pkl")
    rows = list(backend.read_many([f"{ROOT}/k{i}.pkl" for i in range(3)]))
    assert rows[1] is None
    assert rows[0] is not None and rows[0][1] == b"0" and rows[2] is not None and rows[2][1] == b"2"


def test_read_if_changed_sends_no_body_for_an_unchanged_object(backend: FakeBackend) -> None:
    """The conditional GET's answer: ``None`` bytes while the ETag matches, the bytes once it moved."""
    etag = backend.put(PATH, b"v1")
    assert backend.read_if_changed(PATH, etag) == (None, backend.stat(PATH))
    backend.put(PATH, b"v2")
    assert backend.read_if_changed(PATH, etag)[0] == b"v2"


def test_ensure_root_creates_a_missing_bucket_once(backend: FakeBackend, cloud: FakeCloud) -> None:
    """The bucket is checked (and created) once per backend."""
    cloud.buckets.clear()
    backend.ensure_root()
    backend.ensure_root()
    assert BUCKET in cloud.buckets
    assert (cloud.count("bucket_exists"), cloud.count("create_bucket")) == (1, 1)


# --- through a store ----------------------------------------------------------------------------------------------
def test_transform_item_over_lost_answers_applies_exactly_once(cloud: FakeCloud) -> None:
    """A store on the fake cloud: an increment whose write answer was lost is applied once, not twice."""
    d: FsspecDict[Any] = FsspecDict(FakeBackend(cloud))
    d["n"] = 0
    cloud.fail("put", "lost_after")
    result = d.transform_item("n", transformer=lambda v: v + 1)
    assert result.new_value == 1 and d["n"] == 1
    assert result.resulting_etag == d.etag("n")


def test_store_calls_end_as_backend_errors(cloud: FakeCloud) -> None:
    """Through the store's error boundary: an unreachable service and a hang are BackendError, chained."""
    d: FsspecDict[Any] = FsspecDict(FakeBackend(cloud), timeout=0.3)
    d["n"] = 0
    cloud.fail("get", *["unreachable"] * UNREACHABLE_ATTEMPTS)
    with pytest.raises(BackendError) as caught:
        d["n"]
    assert isinstance(caught.value.__cause__, OSError)
    cloud.fail("head", "hang", "hang", "hang")
    started = time.monotonic()
    with pytest.raises(BackendError, match="no answer within") as caught:
        d.etag("n")
    assert time.monotonic() - started < BOUND
    assert isinstance(caught.value.__cause__, TimeoutError)


# --- Lineages ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def lineages() -> Lineages:
    return Lineages("id", "lineage")


def test_a_lineage_keeps_only_the_last_versions(lineages: Lineages) -> None:
    """A chain of writers, each on top of the last: each write's lineage holds at most LINEAGE_LENGTH versions."""
    etag: str | None = None
    history: list[str] = []
    for i in range(3 * LINEAGE_LENGTH):
        write_id = f"w{i}"
        metadata = lineages.metadata_for("obj", etag, write_id)
        entries = metadata.get("lineage", "").split()
        assert len(entries) <= LINEAGE_LENGTH
        assert entries == history[-LINEAGE_LENGTH:]  # the most recent versions, oldest first
        etag = f"e{i}"
        lineages.learn("obj", etag, metadata)
        history.append(f"{write_id}:{etag}")
    assert len(history) > LINEAGE_LENGTH


def test_our_etag_finds_our_write_in_the_object_or_its_lineage(lineages: Lineages) -> None:
    """Our id as the object's own: its ETag; in its lineage: the ETag recorded there; elsewhere: None."""
    assert lineages.our_etag("mine", "e5", {"id": "mine"}) == "e5"
    lineage = {"id": "theirs", "lineage": "a:e1 mine:e2 b:e3"}
    assert lineages.our_etag("mine", "e4", lineage) == "e2"
    assert lineages.our_etag("nobody", "e4", lineage) is None
    assert lineages.our_etag("mine", "e4", None) is None
    assert lineages.our_etag("mine", "e4", {}) is None


def test_a_write_on_an_unseen_version_starts_a_new_lineage(lineages: Lineages) -> None:
    """Only versions this backend has read carry their lineage forward; blind writes carry none."""
    lineages.learn("obj", "e1", {"id": "w1"})
    assert lineages.metadata_for("obj", "e1", "w2") == {"id": "w2", "lineage": "w1:e1"}
    assert lineages.metadata_for("obj", "e-unknown", "w3") == {"id": "w3"}
    assert lineages.metadata_for("obj", None, "w4") == {"id": "w4"}
    assert lineages.metadata_for("other", "e1", "w5") == {"id": "w5"}


def test_versions_without_a_write_id_are_not_remembered(lineages: Lineages) -> None:
    """An object written by someone else than persidict (no id) has no lineage to extend."""
    lineages.learn("obj", "e1", {"unrelated": "x"})
    lineages.learn("obj", "e2", None)
    assert lineages.metadata_for("obj", "e1", "w") == {"id": "w"}
    assert lineages.metadata_for("obj", "e2", "w") == {"id": "w"}


def test_the_memory_of_lineages_is_bounded(lineages: Lineages, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MEMORY_SIZE`` versions the memory is forgotten, never grown without bound."""
    monkeypatch.setattr(lineage_module, "MEMORY_SIZE", 4)
    for i in range(10):
        lineages.learn(f"obj{i}", "e", {"id": f"w{i}"})
        assert len(lineages._seen) <= 4
    assert lineages.metadata_for("obj9", "e", "x") == {"id": "x", "lineage": "w9:e"}


def test_write_ids_are_random_and_distinct() -> None:
    ids = {Lineages.new_write_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(ids)
