"""Mixed fault sequences: a lost answer is never forgotten, whatever comes after it.

A request runner that remembers a lost answer only until the next attempt
is throttled or cannot connect would report a write that happened as refused
(lost, then refused or unreachable, then 412).  Here every short script of
faults, on the change itself and on the read that checks it, runs against
an insert, a compare-and-swap, a conditional delete, a plain delete and a
blind write on the fake cloud (``fake_cloud.py``), as a grid and as
hypothesis scripts, and the answer must match what the cloud really did:

- returned: our change was applied exactly once (a write: with its ETag; a
  blind write's resend may meet its own request still in flight, and the same
  bytes land twice);
- ``PreconditionFailed``: ours was not applied (never, alone on the key);
- any other ``OSError`` ("checked: not applied", "never sent"): ours was not
  applied; only one saying "may have been applied" may hide a change, and only
  where the evidence is gone (never here).

``lost_late`` is the fault that needs the memory: the answer is lost while
the request is still in flight, a read finds nothing, and the request lands
just before the next attempt reaches the cloud, which then gets a 412.  The
last test plays such scripts against a real S3 API (moto behind
``tests/servers/faulty_s3.py``, its ``commit_late`` mode), where the server's
own log says what was applied.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FsspecDict
from persidict.protocol.versions import ABSENT, ANY, PreconditionFailed

from ..servers.faulty_s3 import FaultyS3
from .fake_cloud import LOST_LATE, NAME, PATH, FakeBackend, FakeCloud, short_pauses, write_on_top

FIRST = ("lost_after", "lost_before", LOST_LATE)
"""How the first answer is lost: after the change was applied, before, or while still in flight."""
THEN = ((), ("refused",), ("unreachable",), ("refused", "unreachable"), ("lost_before",), ("refused", "lost_after"))
"""What happens to the next attempts (the one after these goes through)."""
CHECK = (None, "refused", "unreachable", "lost_before")
"""What happens to the first read that checks a lost answer."""


@dataclass(frozen=True)
class Operation:
    """A change under test: its hook, how to set the key up, and how to call it."""

    name: str
    hook: str
    present: bool
    call: Callable[[FakeBackend, str | None], Any]
    idempotent: bool = False
    """A blind write: a resend that meets its own request still in flight lands twice, the same bytes each time."""


OPERATIONS = (
    Operation("insert", "put", False, lambda b, etag: b.put(PATH, b"ours", ABSENT)),
    Operation("compare-and-swap", "put", True, lambda b, etag: b.put(PATH, b"ours", etag or "")),
    Operation("blind-write", "put", True, lambda b, etag: b.put(PATH, b"ours", ANY), idempotent=True),
    Operation("conditional-delete", "delete", True, lambda b, etag: b.remove(PATH, etag or "")),
    Operation("delete", "delete", True, lambda b, etag: b.remove(PATH)),
)


@pytest.fixture(autouse=True)
def _short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    short_pauses(monkeypatch)


def _play(operation: Operation, change_faults: tuple[str | None, ...], check_faults: tuple[str | None, ...],
          competitor: int = 0) -> str | None:
    """Run ``operation`` under the faults; return what it did wrong, or None if it told the truth.

    ``competitor`` > 0: another writer swaps the value that many times
    between our first lost answer and our look (only while the key exists).
    """
    cloud = FakeCloud()
    backend, other = FakeBackend(cloud), FakeBackend(cloud, scripted=False)
    etag = backend.put(PATH, b"before", ABSENT) if operation.present else None
    cloud.fail(operation.hook, *change_faults)
    cloud.fail("head", *check_faults)
    if competitor:
        async def swap() -> None:
            if NAME in cloud.objects:
                await write_on_top(other, b"theirs", times=competitor)

        cloud.meanwhile("head", swap)
    try:
        result: Any = operation.call(backend, etag)
    except Exception as exc:
        result = exc
    return _wrong(operation, cloud, result, alone=not competitor)


def _wrong(operation: Operation, cloud: FakeCloud, result: Any, *, alone: bool) -> str | None:
    """Compare what the call said with what the cloud did (requests still in flight never landed)."""
    if operation.hook == "put":
        ours = [etag for data, etag in cloud.writes if data == b"ours"]
    else:
        ours = [kind for kind, _ in cloud.applied if kind == "delete"]
    if not isinstance(result, BaseException):
        if len(ours) != 1 and not (operation.idempotent and ours):
            return f"returned, but applied {len(ours)} times"
        if operation.hook == "put" and result != ours[-1]:
            return f"returned ETag {result!r}, but our write made {ours[-1]!r}"
        return None
    said = f"{type(result).__name__}: {result}"
    if isinstance(result, PreconditionFailed):
        return f"refused, alone on the key ({len(ours)} applied)" if alone or ours else None
    if isinstance(result, OSError) and "may have been applied" not in str(result):
        return None if not ours else f"{said}, but applied {len(ours)} times"  # "not applied", or "never sent"
    return f"{said} ({len(ours)} applied)"


GRID = list(itertools.product(OPERATIONS, FIRST, THEN, CHECK))


@pytest.mark.parametrize(
    ("operation", "first", "then", "check"),
    GRID,
    ids=[f"{o.name}-{f}-{'-'.join(t) or 'ok'}-check-{c or 'ok'}" for o, f, t, c in GRID],
)
def test_a_lost_answer_followed_by_any_faults_ends_in_the_truth(
    operation: Operation, first: str, then: tuple[str, ...], check: str | None
) -> None:
    problem = _play(operation, (first, *then), (check,))
    assert problem is None, problem


FAULTS = st.sampled_from([None, "lost_after", "lost_before", LOST_LATE, "refused", "unreachable"])
CHECK_FAULTS = st.sampled_from([None, "lost_after", "lost_before", "refused", "unreachable"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operation=st.sampled_from(OPERATIONS),
    change_faults=st.lists(FAULTS, max_size=6).map(tuple),
    check_faults=st.lists(CHECK_FAULTS, max_size=2).map(tuple),  # a check that can still get through
    competitor=st.integers(0, 3),
)
def test_any_fault_script_ends_in_the_truth(
    operation: Operation,
    change_faults: tuple[str | None, ...],
    check_faults: tuple[str | None, ...],
    competitor: int,
) -> None:
    """Hypothesis scripts of faults, with or without another writer swapping the value meanwhile."""
    problem = _play(operation, change_faults, check_faults, competitor)
    assert problem is None, problem


# --- the same on a real S3 API: moto behind the fault-injecting server -------------------------------------
S3_SCRIPTS = (
    ("commit_late", None),
    ("commit_late", "slowdown_503", None),
    ("commit_late", "drop_before", None),
    ("commit_late", "slowdown_503", "drop_before", None),
    ("commit_then_500", "slowdown_503", None),
    ("drop_after", "drop_before", None),
)
"""Faults of the conditional requests, in order: the first answer is lost, later attempts are refused or cut."""


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyS3]:
    with FaultyS3() as server:
        yield server


def _s3_insert(d: FsspecDict[Any]) -> bool:
    return d.set_item_if("k", value="ours", condition=ETAG_IS_THE_SAME,
                         expected_etag=ITEM_NOT_AVAILABLE).condition_was_satisfied


def _s3_swap(d: FsspecDict[Any]) -> bool:
    return d.set_item_if("k", value="ours", condition=ETAG_IS_THE_SAME,
                         expected_etag=d.etag("k")).condition_was_satisfied


def _s3_delete(d: FsspecDict[Any]) -> bool:
    return d.discard_if("k", condition=ETAG_IS_THE_SAME, expected_etag=d.etag("k")).condition_was_satisfied


@pytest.mark.parametrize("script", S3_SCRIPTS, ids=["-".join(m or "ok" for m in s) for s in S3_SCRIPTS])
@pytest.mark.parametrize(("call", "present"), [(_s3_insert, False), (_s3_swap, True), (_s3_delete, True)],
                         ids=["insert", "compare-and-swap", "delete"])
def test_s3_a_lost_answer_then_refusals_ends_in_the_truth(
    faulty: FaultyS3, script: tuple[str | None, ...], call: Callable[[FsspecDict[Any]], bool], present: bool
) -> None:
    """The store reports success, and S3 applied the change exactly once (the server's own log says)."""
    faulty.reset()
    d: FsspecDict[Any] = FsspecDict(f"s3://{faulty.new_bucket_name()}/root", storage_options=faulty.storage_options())
    d["k" if present else "other"] = "before"  # the store's first write also records its layout, unscripted
    start = len(faulty.requests)
    with faulty.script(*script) as plan:
        satisfied = call(d)
    # An answer lost after the change was applied is settled by the read that follows at once: no resend.
    resent = script[0] == "commit_late"
    assert plan.injected == (sum(1 for mode in script if mode is not None) if resent else 1)
    method = "DELETE" if call is _s3_delete else "PUT"
    applied = [r for r in faulty.requests[start:] if r.method == method and r.applied and r.path.endswith("/k.pkl")]
    assert satisfied and len(applied) == 1, (
        f"told satisfied={satisfied}; S3 applied {len(applied)}; requests: "
        f"{[(r.method, r.fault, r.status, r.served) for r in faulty.requests[start:]]}")
    assert ("k" in d) is (call is not _s3_delete)
