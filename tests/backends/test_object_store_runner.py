"""ObjectStoreBackend's request runner and reconciliation, on an in-memory fake cloud.

``FakeBackend`` (``tests/backends/fake_cloud.py``) implements the SDK hooks a
cloud module supplies over a dict of objects, and plays a script of faults per
hook.  So each rule of ``_run`` is tested on its own, with no network: what is
retried and how often, what is reconciled, what each failure becomes, and that
every call ends by its deadline.

A second backend on the same ``FakeCloud`` plays another process;
``FakeCloud.meanwhile`` lands its change as a hook is entered (between a lost
answer and the read that reconciles it, for example).  Mixed sequences of
faults are in ``test_lost_answer_sequences.py``.
"""

from __future__ import annotations

import errno
import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from persidict import BackendError, FsspecDict
from persidict.backends import lineage as lineage_module
from persidict.backends.lineage import ABSENT_MARK, LINEAGE_BUDGET, Lineages, Verdict, shared_lineages
from persidict.backends.object_store import UNREACHABLE_ATTEMPTS, Outcome
from persidict.protocol.retry import DEFAULT_RETRY, RetryConfig
from persidict.protocol.versions import ABSENT, ANY, PreconditionFailed, Version

from .fake_cloud import BOUND, BUCKET, NAME, PATH, ROOT, FakeBackend, FakeCloud, FakeFS, short_pauses, write_on_top

LOST_ANSWER_SENDS = DEFAULT_RETRY.request_attempts
"""Sends of a request whose answers keep getting lost (the default policy's)."""


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
    """Another writer on the same cloud (another process): the fault script is not for it."""
    return FakeBackend(cloud, scripted=False)


@pytest.fixture(autouse=True)
def _short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    short_pauses(monkeypatch)


# --- lost answers of conditional writes are reconciled -----------------------------------------------------
def test_an_insert_applied_before_its_answer_was_lost_reports_success(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Lost after applying: one read at once finds our write, and the put succeeds with OUR write's ETag."""
    cloud.fail("put", "lost_after")
    etag = backend.put(PATH, b"ours", ABSENT)
    assert etag == cloud.objects[NAME].etag
    assert cloud.objects[NAME].data == b"ours"
    assert cloud.count("put") == 1 and cloud.applied == [("put", NAME)]  # no resend was needed
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
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """Another writer read our version and wrote on top before we reconciled: still success, OUR ETag."""
    seen: list[Version] = []

    async def other_writes_on_top() -> None:
        seen.extend(await write_on_top(other, b"theirs"))

    cloud.fail("put", "lost_after")
    cloud.meanwhile("head", other_writes_on_top)  # lands between our lost answer and our look
    etag = backend.put(PATH, b"ours", ABSENT)
    assert etag == seen[0].etag  # the ETag our write produced ...
    assert cloud.objects[NAME].data == b"theirs" and cloud.objects[NAME].etag != etag  # ... not the current one


def test_a_request_lost_before_it_was_applied_is_simply_sent_again(backend: FakeBackend, cloud: FakeCloud) -> None:
    """Lost before applying: one read shows it did not land, and the resend is the first real write."""
    cloud.fail("put", "lost_before")
    etag = backend.put(PATH, b"ours", ABSENT)
    assert etag == cloud.objects[NAME].etag and cloud.objects[NAME].data == b"ours"
    assert cloud.count("put") == 2 and cloud.count("head") == 1
    assert cloud.applied == [("put", NAME)]


def test_our_write_pushed_out_of_a_full_lineage_is_unknown_never_refused(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """So many writes on top of ours that the chain no longer reaches it: an error that says so, never a refusal.

    (A refusal would make ``transform_item`` apply the call again.)
    """
    first = backend.put(PATH, b"v0", ABSENT)

    async def many_writes_on_top() -> None:
        await write_on_top(other, b"theirs", times=LINEAGE_BUDGET // 8)

    cloud.fail("put", "lost_after")
    cloud.meanwhile("head", many_writes_on_top)
    with pytest.raises(OSError, match="may have been applied") as caught:
        backend.put(PATH, b"ours", first)
    assert not isinstance(caught.value, PreconditionFailed)


def test_a_blind_overwrite_of_our_lost_write_leaves_the_outcome_unknown(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """Someone overwrote blindly (no lineage back to us) before we looked: an error that says it may have
    been applied, never a refusal."""

    async def blind_write() -> None:
        await other._put_written(NAME, b"blind", ANY, other._lineages.metadata_for(NAME, None, "blind-writer"))

    cloud.fail("put", "lost_after")
    cloud.meanwhile("head", blind_write)
    with pytest.raises(OSError, match="may have been applied") as caught:
        backend.put(PATH, b"ours", ABSENT)
    assert not isinstance(caught.value, PreconditionFailed)
    assert cloud.objects[NAME].data == b"blind"


def test_a_lost_insert_that_another_insert_beat_is_refused(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """The chain starts with another writer's insert: ours did not land, a definite refusal."""

    async def their_insert() -> None:
        await other._put_written(NAME, b"theirs", ABSENT, other._lineages.metadata_for(
            NAME, None, "their-insert", insert=True))

    cloud.fail("put", "lost_before")
    cloud.meanwhile("head", their_insert)
    with pytest.raises(PreconditionFailed):
        backend.put(PATH, b"ours", ABSENT)
    assert cloud.objects[NAME].data == b"theirs" and cloud.count("put") == 2


def test_a_lost_compare_and_swap_that_another_writer_beat_is_refused(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """The chain shows the version we expected replaced by someone else's write: a definite refusal."""
    first = backend.put(PATH, b"v0", ABSENT)

    async def their_swap() -> None:
        await write_on_top(other, b"theirs", times=3)

    cloud.fail("put", "lost_before")
    cloud.meanwhile("head", their_swap)
    with pytest.raises(PreconditionFailed):
        backend.put(PATH, b"ours", first)
    assert cloud.objects[NAME].data == b"theirs"


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
    """Lost after deleting: one read finds the object gone, so the delete succeeded."""
    etag = backend.put(PATH, b"v", ABSENT)
    cloud.fail("delete", "lost_after")
    backend.remove(PATH, etag)
    assert NAME not in cloud.objects
    assert cloud.count("delete") == 1 and cloud.applied.count(("delete", NAME)) == 1


def test_a_lost_conditional_delete_of_a_version_since_replaced_is_refused(
    backend: FakeBackend, other: FakeBackend, cloud: FakeCloud
) -> None:
    """Lost before deleting, and another writer replaced the version meanwhile: the chain proves a refusal."""
    etag = backend.put(PATH, b"v", ABSENT)

    async def their_swap() -> None:
        await write_on_top(other, b"theirs")

    cloud.fail("delete", "lost_before")
    cloud.meanwhile("head", their_swap)
    with pytest.raises(PreconditionFailed):
        backend.remove(PATH, etag)
    assert cloud.objects[NAME].data == b"theirs"


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
    """Lost answers are resent at most ``LOST_ANSWER_SENDS`` times in all."""
    cloud.fail("get", *["lost_before"] * (LOST_ANSWER_SENDS + 5))
    with pytest.raises(OSError) as caught:
        backend.read(PATH)
    assert not isinstance(caught.value, FileNotFoundError)
    assert cloud.count("get") == LOST_ANSWER_SENDS


@pytest.mark.parametrize("sends", [1, 2, 9])
def test_the_stores_retry_policy_sets_how_often_a_lost_answer_is_resent(
    backend: FakeBackend, cloud: FakeCloud, sends: int
) -> None:
    """``RetryConfig.request_attempts`` is the budget (one policy for the front and the backend)."""
    backend.retry = RetryConfig(init_backoff=0.001, request_attempts=sends)
    cloud.fail("get", *["lost_before"] * (sends + 5))
    with pytest.raises(OSError):
        backend.read(PATH)
    assert cloud.count("get") == sends


def test_a_write_whose_answers_keep_getting_lost_ends_with_a_definite_not_applied(
    backend: FakeBackend, cloud: FakeCloud
) -> None:
    """Each lost answer is checked at once; after the last one the error says what the check proved."""
    cloud.fail("put", *["lost_before"] * (LOST_ANSWER_SENDS + 5))
    with pytest.raises(OSError, match="checked: not applied") as caught:
        backend.put(PATH, b"v", ABSENT)
    assert "may have been applied" not in str(caught.value)
    assert cloud.count("put") == LOST_ANSWER_SENDS and cloud.count("head") == LOST_ANSWER_SENDS
    assert cloud.applied == []


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


def test_a_hung_write_is_cut_early_enough_to_check_it_was_not_applied(backend: FakeBackend, cloud: FakeCloud) -> None:
    """A write that never answers is cut with time left for one read, which settles it: not applied."""
    backend.timeout = 0.3
    cloud.fail("put", *["hang"] * 20)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer within .*checked: not applied"):
        backend.put(PATH, b"v", ABSENT)
    assert time.monotonic() - started < BOUND
    assert cloud.count("head") >= 1 and NAME not in cloud.objects


def test_a_write_whose_check_also_hangs_says_it_may_have_been_applied(backend: FakeBackend, cloud: FakeCloud) -> None:
    """When not even a read answers before the deadline, the outcome cannot be known, and the message says so."""
    backend.timeout = 0.3
    cloud.fail("put", *["hang"] * 20)
    cloud.fail("head", *["hang"] * 20)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"may have been applied .*no answer within"):
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


def test_a_lineage_keeps_the_last_versions_that_fit_its_budget(lineages: Lineages) -> None:
    """A chain of writers, each on top of the last: each write carries the newest versions within the budget."""
    etag: str | None = None
    history: list[str] = []
    for i in range(400):
        write_id = f"w{i:04d}"
        metadata = lineages.metadata_for("obj", etag, write_id, insert=etag is None)
        chain = metadata["lineage"]
        assert len(chain) <= LINEAGE_BUDGET
        entries = chain.split()
        assert entries == ([ABSENT_MARK] + history)[-len(entries):]  # the most recent versions, oldest first
        everything = [ABSENT_MARK, *history]
        assert entries == everything or len(" ".join(everything[-len(entries) - 1 :])) > LINEAGE_BUDGET  # no more fit
        etag = f"e{i:03d}"
        lineages.learn("obj", etag, metadata)
        history.append(f"{write_id}:{etag}")


def test_a_verdict_finds_our_write_in_the_object_or_its_chain(lineages: Lineages) -> None:
    """Our id as the object's own: its ETag; in its chain: the ETag recorded there (even after others wrote)."""
    assert lineages.verdict("mine", "e4", "e5", {"id": "mine", "lineage": "a:e4"}) == (Verdict.APPLIED, "e5")
    chain = {"id": "theirs", "lineage": "+ a:e1 mine:e2 b:e3"}
    assert lineages.verdict("mine", "e1", "e4", chain) == (Verdict.APPLIED, "e2")


@pytest.mark.parametrize(
    ("expected", "insert", "etag", "metadata", "verdict"),
    [
        pytest.param("e2", False, "e2", {"id": "b", "lineage": "+ a:e1"}, Verdict.NOT_YET, id="cas-still-there"),
        pytest.param("e1", False, "e3", {"id": "c", "lineage": "a:e1 b:e2"}, Verdict.REFUSED, id="cas-beaten"),
        pytest.param("e1", False, "e3", {"id": "c", "lineage": "-:e1"}, Verdict.REFUSED, id="cas-beaten-unknown-id"),
        pytest.param("e0", False, "e3", {"id": "c", "lineage": "a:e1 b:e2"}, Verdict.UNKNOWN, id="cas-out-of-chain"),
        pytest.param("e1", False, "e3", {"id": "c"}, Verdict.UNKNOWN, id="cas-after-a-blind-write"),
        pytest.param(None, True, "e1", {"id": "a", "lineage": "+"}, Verdict.REFUSED, id="insert-beaten"),
        pytest.param(None, True, "e2", {"id": "b", "lineage": "a:e1"}, Verdict.UNKNOWN, id="insert-out-of-chain"),
        pytest.param(None, True, "e2", {"id": "b"}, Verdict.UNKNOWN, id="insert-after-a-blind-write"),
        pytest.param(None, False, "e2", {"id": "b", "lineage": "+ a:e1"}, Verdict.NOT_YET, id="blind-not-there"),
        pytest.param(None, True, "e2", None, Verdict.UNKNOWN, id="not-written-by-persidict"),
    ],
)
def test_a_verdict_without_our_write(
    lineages: Lineages, expected: str | None, insert: bool, etag: str, metadata: Any, verdict: Verdict
) -> None:
    """Not ours: refused only when the chain shows what we expected replaced by someone else's write."""
    assert lineages.verdict("mine", expected, etag, metadata, insert=insert) == (verdict, None)


def test_versions_learned_after_the_request_left_settle_what_the_stored_chain_no_longer_shows(
    lineages: Lineages,
) -> None:
    """Another thread read the versions in between: ours (applied) or another's on what we expected (refused)."""
    lineages.learn("obj", "e0", {"id": "z", "lineage": "+"})
    lineages.learn("obj", "e1", {"id": "a", "lineage": "+ z:e0"})  # the version our compare-and-swap replaces
    sent = lineages.mark("obj", "e1")
    assert sent == lineages.mark("obj", "e0") + 1 and lineages.mark("obj", None) == sent
    lineages.learn("obj", "e2", {"id": "mine", "lineage": "+ a:e1"})
    lineages.learn("obj", "e3", {"id": "b", "lineage": "+ a:e1 mine:e2"})
    stored = {"id": "z", "lineage": "x:e8 y:e9"}  # the chain moved on past both
    assert lineages.verdict("mine", "e1", "e10", stored) == (Verdict.UNKNOWN, None)
    assert lineages.verdict("mine", "e1", "e10", stored, seen_since=("obj", sent)) == (Verdict.APPLIED, "e2")
    assert lineages.verdict("late", "e1", "e10", stored, seen_since=("obj", sent)) == (Verdict.REFUSED, None)
    assert lineages.verdict("mine", "e1", "e10", stored, seen_since=("other", sent)) == (Verdict.UNKNOWN, None)


def test_chains_learned_before_the_replaced_version_prove_nothing(lineages: Lineages) -> None:
    """An earlier life of the object (e1 replaced, then deleted and stored again) must not read as a refusal."""
    lineages.learn("obj", "e2", {"id": "b", "lineage": "+ a:e1"})
    sent = lineages.mark("obj", "e1")  # never read in this life: the chains learned from now on count
    stored = {"id": "z", "lineage": "x:e8 y:e9"}
    assert lineages.verdict("mine", "e1", "e10", stored, seen_since=("obj", sent)) == (Verdict.UNKNOWN, None)


def test_stores_on_one_bucket_of_one_filesystem_learn_together() -> None:
    fs, other_fs = FakeFS(), FakeFS()
    first = shared_lineages(fs, "b1", "id", "lineage")
    assert shared_lineages(fs, "b1", "id", "lineage") is first
    assert shared_lineages(fs, "b2", "id", "lineage") is not first
    assert shared_lineages(other_fs, "b1", "id", "lineage") is not first


def test_a_write_records_what_it_replaces(lineages: Lineages) -> None:
    """A known version's chain is carried forward; an unknown one is named by its ETag; an insert by the mark."""
    lineages.learn("obj", "e1", {"id": "w1", "lineage": "+"})
    assert lineages.metadata_for("obj", "e1", "w2") == {"id": "w2", "lineage": "+ w1:e1"}
    assert lineages.metadata_for("obj", "e-unknown", "w3") == {"id": "w3", "lineage": "-:e-unknown"}
    assert lineages.metadata_for("obj", None, "w4", insert=True) == {"id": "w4", "lineage": ABSENT_MARK}
    assert lineages.metadata_for("obj", None, "w5") == {"id": "w5"}  # a blind write: it cannot know
    assert lineages.metadata_for("other", "e1", "w6") == {"id": "w6", "lineage": "-:e1"}


def test_versions_without_a_write_id_are_not_remembered(lineages: Lineages) -> None:
    """An object written by someone else than persidict (no id) has no chain to extend."""
    lineages.learn("obj", "e1", {"unrelated": "x"})
    lineages.learn("obj", "e2", None)
    assert lineages.metadata_for("obj", "e1", "w") == {"id": "w", "lineage": "-:e1"}
    assert lineages._seen == {}


def test_the_memory_of_lineages_is_bounded(lineages: Lineages, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MEMORY_SIZE`` versions the least recently seen are forgotten, never grown without bound."""
    monkeypatch.setattr(lineage_module, "MEMORY_SIZE", 4)
    for i in range(10):
        lineages.learn(f"obj{i}", "e", {"id": f"w{i}"})
        lineages.learn("obj0", "e", {"id": "w0"})  # seen again and again: kept
        assert len(lineages._seen) <= 4
    assert lineages.metadata_for("obj9", "e", "x") == {"id": "x", "lineage": "w9:e"}
    assert lineages.metadata_for("obj0", "e", "x") == {"id": "x", "lineage": "w0:e"}
    assert lineages.metadata_for("obj1", "e", "x") == {"id": "x", "lineage": "-:e"}


def test_a_chain_of_s3_versions_holds_44_and_gives_every_etag_back_exactly(lineages: Lineages) -> None:
    etags, ids, metadata = [], [], {}
    for i in range(100):
        write_id = Lineages.new_write_id()
        metadata = lineages.metadata_for("obj", etags[-1] if etags else None, write_id, insert=not etags)
        etags.append('"' + hashlib.md5(str(i).encode()).hexdigest() + '"')  # S3's ETag of a single PUT
        ids.append(write_id)
        lineages.learn("obj", etags[-1], {"id": write_id, **metadata})
    chain = lineages.chain_of(etags[-1], {"id": ids[-1], **metadata})
    assert len(metadata["lineage"]) <= LINEAGE_BUDGET and len(chain) >= 44
    assert chain == list(zip(ids, etags, strict=True))[-len(chain):]
    for back in (2, 30, 43):  # a lost answer that many writes ago: our ETag, exactly as S3 gave it
        assert lineages.verdict(ids[-back], etags[-back - 1], etags[-1], {"id": ids[-1], **metadata}) == (
            Verdict.APPLIED, etags[-back])


def test_chains_written_before_etags_were_compacted_still_read(lineages: Lineages) -> None:
    md5, multipart = '"' + "0123456789abcdef" * 2 + '"', '"' + "f" * 32 + '-3"'
    old = {"id": "theirs", "lineage": f"+ 00112233aabbccdd:{md5} mine:{multipart}"}
    assert lineages.verdict("00112233aabbccdd", None, '"x"', old, insert=True) == (Verdict.APPLIED, md5)
    assert lineages.verdict("mine", md5, '"x"', old) == (Verdict.APPLIED, multipart)
    lineages.learn("obj", multipart, {"id": "w", "lineage": f"a:{md5}"})
    assert lineages.metadata_for("obj", multipart, "x")["lineage"].split()[-1] == f"w:{multipart}"  # as it is


def test_write_ids_are_random_and_distinct() -> None:
    ids = {Lineages.new_write_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(ids)
