"""The S3 store tells the caller what really happened when the network loses answers.

These tests run against ``FaultyS3`` (tests/servers/faulty_s3.py): a moto
server of its own behind a layer that loses answers on purpose.  The faults
model what clients of a real region meet:

* ``commit_then_500`` / ``drop_after``: the request was applied, then its answer
  was lost (a 500 or a closed connection).  botocore resends the request; a
  resent conditional write meets its own result and gets 412 (or 404).  The
  store must reconcile (look at what is stored) instead of reporting that 412:
  a winner must not be told it lost, ``transform_item`` must apply each call
  exactly once, ``pop`` must return the value it removed.
* ``drop_before`` / ``slowdown_503``: the request never reached S3; a resend is
  the first real attempt and everything must simply work.
* ``delay``: a slow server; operations still succeed within their deadline.
* ``hang``: the server accepts and never answers; every operation has a
  deadline (the store's ``timeout``) and then raises ``BackendError``.

Also: a deleted bucket is a ``BackendError`` naming the bucket (not a missing
key), and deletes racing another writer's overwrites raise nothing but the
documented exceptions (docs/errors.md#exceptions).  Each plan counts the faults it injected, and every
test asserts that faults happened, so no test can pass vacuously.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from persidict import (
    ALWAYS_RETRIEVE,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    BackendError,
    FsspecDict,
    MutationPolicyError,
)

from ..servers.faulty_s3 import CREDENTIALS, FaultyS3

LOST_OR_REFUSED = ("commit_then_500", "drop_after", "drop_before", "slowdown_503")
"""Answers lost after the request was applied (first two) or before it reached S3 (last two)."""

DEADLINE = 2.0
"""The ``timeout`` of stores facing a hung or absent server."""
BOUND = 10.0
"""How long such a call may take at most, generous for a busy 2-core CI machine."""
THREAD_JOIN = 180.0
"""How long a group of worker threads may run before the test reports them stuck."""


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyS3]:
    with FaultyS3() as faulty:
        yield faulty


@pytest.fixture
def faulty(server: FaultyS3) -> FaultyS3:
    server.reset()
    return server


def _open(faulty: FaultyS3, bucket: str | None = None, **options: Any) -> FsspecDict[Any]:
    bucket = bucket or faulty.new_bucket_name()
    options.setdefault("create_root", True)  # the bucket exists before the faults begin
    return FsspecDict(f"s3://{bucket}/root", storage_options=faulty.storage_options(), **options)


def _increment(value: Any) -> int:
    return 1 if value is ITEM_NOT_AVAILABLE else value + 1


def _describe(errors: list[BaseException]) -> str:
    counts = collections.Counter(f"{type(e).__module__}.{type(e).__qualname__}" for e in errors)
    sample = "; ".join(f"{type(e).__name__}: {e}"[:200] for e in errors[:3])
    return f"{dict(counts)} (e.g. {sample})" if errors else "none"


def _run_threads(count: int, target: Callable[[int], Any], timeout: float = THREAD_JOIN) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads released together; their results (or exceptions) by index."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            outcomes[index] = target(index)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"fault-worker-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout} s: {stuck}"
    return outcomes


class _Call:
    """One call in a thread of its own, so a test can stop waiting for it after a bound."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.elapsed: float | None = None
        self._function = function
        self._thread = threading.Thread(target=self._run, daemon=True, name="bounded-call")
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._function()
        except BaseException as exc:
            self.error = exc
        finally:
            self.elapsed = time.monotonic() - self._started

    def wait(self, seconds: float) -> bool:
        """Whether the call ended within ``seconds`` of its start."""
        self._thread.join(max(0.0, self._started + seconds - time.monotonic()))
        return not self._thread.is_alive()

    def join(self, seconds: float) -> None:
        self._thread.join(seconds)


# --- the fault server itself ---------------------------------------------------------------------


def test_the_fault_modes_do_what_they_say(faulty: FaultyS3) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    client = faulty.boto3_client()  # no retries: each call is one request
    bucket = faulty.new_bucket_name()
    client.create_bucket(Bucket=bucket)

    def exists(key: str) -> bool:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        return any(o["Key"] == key for o in listed)

    expected = {
        "commit_then_500": (ClientError, True),
        "drop_after": (BotoCoreError, True),
        "drop_before": (BotoCoreError, False),
        "slowdown_503": (ClientError, False),
    }
    for mode, (error, applied) in expected.items():
        with faulty.faults(mode, every=1) as plan:
            client.put_object(Bucket=bucket, Key=f"{mode}-plain", Body=b"x")  # not conditional: not faulted
            with pytest.raises(error) as caught:
                client.put_object(Bucket=bucket, Key=mode, Body=b"x", IfNoneMatch="*")
        assert plan.injected == 1 and plan.selected == 1, mode
        assert plan.committed == (1 if applied else 0), mode
        assert exists(f"{mode}-plain")
        assert exists(mode) is applied, mode
        if isinstance(caught.value, ClientError):
            code = caught.value.response["Error"]["Code"]
            assert code == {"commit_then_500": "InternalError", "slowdown_503": "SlowDown"}[mode]


def test_hang_holds_a_request_until_the_plan_ends(faulty: FaultyS3) -> None:
    client = faulty.boto3_client()
    bucket = faulty.new_bucket_name()
    client.create_bucket(Bucket=bucket)
    with faulty.faults("hang", methods=None, conditional_only=False, every=1) as plan:
        call = _Call(lambda: client.put_object(Bucket=bucket, Key="held", Body=b"x"))
        assert plan.held.wait(BOUND)
        assert plan.hanging == 1
        assert not call.wait(0)
    call.join(BOUND)
    assert call.elapsed is not None, "a held request is released when its plan ends"
    assert call.error is not None  # released unanswered: the connection is closed
    assert plan.hanging == 0
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_every_and_times_count_selected_requests(faulty: FaultyS3) -> None:
    client = faulty.boto3_client()
    bucket = faulty.new_bucket_name()
    client.create_bucket(Bucket=bucket)
    with faulty.faults("slowdown_503", every=3, times=2, path_contains="/sel-") as plan:
        outcomes = []
        for i in range(9):
            try:
                client.put_object(Bucket=bucket, Key=f"sel-{i}", Body=b"x", IfNoneMatch="*")
                outcomes.append(True)
            except Exception:
                outcomes.append(False)
        client.put_object(Bucket=bucket, Key="other", Body=b"x", IfNoneMatch="*")  # path not selected
    assert outcomes == [False, True, True, False, True, True, True, True, True]
    assert plan.selected == 9 and plan.injected == 2


# --- lost answers: each mode ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", LOST_OR_REFUSED)
def test_concurrent_increments_apply_every_call_exactly_once(faulty: FaultyS3, mode: str) -> None:
    bucket = faulty.new_bucket_name()
    _open(faulty, bucket)  # creates the bucket outside the plan
    threads, calls = 4, 25

    def worker(index: int) -> list[BaseException]:
        d = _open(faulty, bucket)
        errors: list[BaseException] = []
        for _ in range(calls):
            try:
                d.transform_item("counter", transformer=_increment, n_retries=None)
            except Exception as exc:
                errors.append(exc)
        return errors

    with faulty.faults(mode, every=2) as plan:
        outcomes = _run_threads(threads, worker)
    assert plan.injected > 0
    crashed = [o for o in outcomes if isinstance(o, BaseException)]
    assert not crashed, _describe(crashed)
    errors = [e for errs in outcomes for e in errs]
    final = _open(faulty, bucket)["counter"]
    returned = threads * calls - len(errors)
    assert not errors and final == threads * calls, (
        f"{mode}: counter ends at {final} after {returned} of {threads * calls} calls returned "
        f"({plan.injected} faults, {plan.committed} of them after the write was applied); "
        f"raised: {_describe(errors)}")


@pytest.mark.parametrize("mode", LOST_OR_REFUSED)
def test_racing_inserts_tell_the_truth_about_the_winner(faulty: FaultyS3, mode: str) -> None:
    bucket = faulty.new_bucket_name()
    d = _open(faulty, bucket)
    rounds, threads = 15, 4
    problems: list[str] = []
    errors: list[BaseException] = []
    with faulty.faults(mode, every=1) as plan:
        for round_ in range(rounds):
            key = f"claim-{round_}"

            def claim(index: int, key: str = key) -> Any:
                return _open(faulty, bucket).setdefault_if(
                    key, default_value=f"worker-{index}", condition=ETAG_IS_THE_SAME,
                    expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=ALWAYS_RETRIEVE)

            results = _run_threads(threads, claim)
            raised = [r for r in results if isinstance(r, BaseException)]
            errors.extend(raised)
            if raised:
                problems.append(f"{key}: {len(raised)} calls raised")
                continue
            stored = d[key]
            winners = [i for i, r in enumerate(results) if r.value_was_mutated]
            if len(winners) != 1:
                problems.append(f"{key}: {len(winners)} winners, stored {stored!r}")
                continue
            winner = winners[0]
            if stored != f"worker-{winner}" or results[winner].new_value != stored:
                problems.append(f"{key}: worker-{winner} told it won, but {stored!r} is stored")
            told_wrong = [i for i, r in enumerate(results)
                          if i != winner and (r.condition_was_satisfied or r.new_value != stored)]
            if told_wrong:
                problems.append(f"{key}: losers {told_wrong} not told the stored value {stored!r}")
    assert plan.injected > 0
    assert not problems, (
        f"{mode}: {len(problems)} of {rounds} rounds wrong ({plan.injected} faults, {plan.committed} after "
        f"the write was applied): {problems}; raised: {_describe(errors)}")


def _filled(faulty: FaultyS3, count: int) -> tuple[FsspecDict[Any], dict[str, Any]]:
    d = _open(faulty)
    values = {f"key-{i}": {"value": i} for i in range(count)}
    for key, value in values.items():
        d[key] = value
    return d, values


def _delete_each_under_faults(
    faulty: FaultyS3, mode: str, filled: tuple[FsspecDict[Any], dict[str, Any]], what: str,
    delete: Callable[[FsspecDict[Any], str, Any], str | None],
) -> None:
    """Delete every key of a ``filled`` store through ``delete`` while ``mode`` hits every request.

    ``delete(d, key, value)`` returns a problem, or None if the call told the truth;
    a call that raises is a problem too.  Afterwards no key may be left.
    """
    d, values = filled
    problems = []
    with faulty.faults(mode, every=1) as plan:
        for key, value in values.items():
            try:
                problem = delete(d, key, value)
            except Exception as exc:
                problem = f"{what} raised {type(exc).__name__}: {exc}"[:200]
            if problem:
                problems.append(f"{key}: {problem}")
    assert plan.injected > 0
    left = sorted(key for key in values if key in d)
    assert not problems and not left, (
        f"{mode}: {len(problems)} of {len(values)} {what} calls wrong ({plan.injected} faults, {plan.committed} "
        f"after the delete was applied): {problems}; keys left: {left}")


@pytest.mark.parametrize("mode", LOST_OR_REFUSED)
def test_pop_returns_the_value_it_removed(faulty: FaultyS3, mode: str) -> None:
    def pop(d: FsspecDict[Any], key: str, value: Any) -> str | None:
        popped = d.pop(key)
        return None if popped == value else f"pop returned {popped!r}"

    _delete_each_under_faults(faulty, mode, _filled(faulty, 6), "pop", pop)


@pytest.mark.parametrize("mode", LOST_OR_REFUSED)
def test_del_reports_success(faulty: FaultyS3, mode: str) -> None:
    def delete(d: FsspecDict[Any], key: str, value: Any) -> None:
        del d[key]

    _delete_each_under_faults(faulty, mode, _filled(faulty, 6), "del", delete)


@pytest.mark.parametrize("mode", LOST_OR_REFUSED)
def test_discard_if_reports_success(faulty: FaultyS3, mode: str) -> None:
    filled = _filled(faulty, 6)
    etags = {key: filled[0].etag(key) for key in filled[1]}  # read before the faults start

    def discard_if(d: FsspecDict[Any], key: str, value: Any) -> str | None:
        r = d.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=etags[key])
        if not r.condition_was_satisfied or r.resulting_etag is not ITEM_NOT_AVAILABLE:
            return f"satisfied={r.condition_was_satisfied}, resulting={r.resulting_etag!r}"
        return None

    _delete_each_under_faults(faulty, mode, filled, "discard_if", discard_if)


@pytest.mark.parametrize("mode", LOST_OR_REFUSED)
def test_append_only_first_writes_succeed(faulty: FaultyS3, mode: str) -> None:
    d = _open(faulty, append_only=True)
    values = {f"key-{i}": [i, "x"] for i in range(6)}
    problems = []
    with faulty.faults(mode, every=1) as plan:
        for key, value in values.items():
            try:
                d[key] = value
            except Exception as exc:
                problems.append(f"{key}: first write raised {type(exc).__name__}: {exc}"[:200])
        second_writes = []
        for key in values:
            try:
                d[key] = "second"
                second_writes.append(f"{key}: accepted")
            except MutationPolicyError:
                pass
            except Exception as exc:
                second_writes.append(f"{key}: {type(exc).__name__}: {exc}"[:200])
    assert plan.injected > 0
    stored = {key: d.get(key) for key in values}
    wrong = {key: v for key, v in stored.items() if v != values[key]}
    assert not problems and not wrong, (
        f"{mode}: {len(problems)} of {len(values)} first writes raised ({plan.injected} faults, "
        f"{plan.committed} after the write was applied): {problems}; wrong values: {wrong}")
    assert not second_writes, f"{mode}: a second write must raise MutationPolicyError: {second_writes}"


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["default-timeout", "timeout-5"])
def test_a_slow_server_within_the_deadline_just_works(faulty: FaultyS3, timeout: float | None) -> None:
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    d = _open(faulty, **options)
    with faulty.faults("delay", methods=None, conditional_only=False, every=1, delay=0.5) as plan:
        d["a"] = 1
        assert d["a"] == 1
        assert "a" in d and len(d) == 1
        assert d.transform_item("a", transformer=_increment).new_value == 2
        assert d.setdefault_if("b", default_value=5, condition=ETAG_IS_THE_SAME,
                               expected_etag=ITEM_NOT_AVAILABLE).value_was_mutated
        assert d.pop("a") == 2
        del d["b"]
    assert plan.injected >= 8
    assert len(d) == 0


# --- deadlines -------------------------------------------------------------------------------------


def _read(d: FsspecDict[Any]) -> Any:
    return d["k"]


def _write(d: FsspecDict[Any]) -> None:
    d["k"] = 1


def _contains(d: FsspecDict[Any]) -> bool:
    return "k" in d


def _length(d: FsspecDict[Any]) -> int:
    return len(d)


@pytest.mark.parametrize("operation", [_read, _write, _contains, _length, None],
                         ids=["getitem", "setitem", "contains", "len", "open"])
def test_a_hung_server_gives_a_backend_error_within_the_deadline(
        faulty: FaultyS3, operation: Callable[[FsspecDict[Any]], Any] | None) -> None:
    if operation is None:
        def call() -> Any:
            return _open(faulty, timeout=DEADLINE)  # construction checks the bucket
    else:
        d = _open(faulty, timeout=DEADLINE)
        d["k"] = 0

        def call() -> Any:
            return operation(d)
    with faulty.faults("hang", methods=None, conditional_only=False, every=1, max_per_request=None) as plan:
        running = _Call(call)
        ended = running.wait(BOUND)
    running.join(60)  # the plan has ended: held requests are released
    assert ended, f"still blocked after {BOUND} s on a server that never answers (timeout={DEADLINE})"
    assert isinstance(running.error, BackendError), (
        f"expected BackendError after {running.elapsed:.1f} s, got "
        f"{type(running.error).__name__ if running.error else f'a result {running.result!r}'}: {running.error}")
    assert plan.injected > 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_gives_a_backend_error_quickly() -> None:
    options = {"endpoint_url": f"http://127.0.0.1:{_closed_port()}", **CREDENTIALS}
    started = time.monotonic()
    with pytest.raises(BackendError):
        FsspecDict("s3://refused/x", storage_options=options, timeout=DEADLINE, create_root=True)
    assert time.monotonic() - started < BOUND


def test_a_server_that_goes_away_gives_a_backend_error_quickly() -> None:
    with FaultyS3() as gone:
        d = FsspecDict(f"s3://{gone.new_bucket_name()}/x", storage_options=gone.storage_options(), timeout=DEADLINE)
        d["k"] = 1
    problems = []
    for operation in (_read, _write, _contains, _length):
        started = time.monotonic()
        try:
            outcome = f"returned {operation(d)!r}"
        except BackendError:
            outcome = None
        except Exception as exc:
            outcome = f"raised {type(exc).__name__}: {exc}"[:200]
        elapsed = time.monotonic() - started
        if outcome is not None or elapsed >= BOUND:
            problems.append(f"{operation.__name__.strip('_')}: {outcome or 'BackendError'} after {elapsed:.1f} s")
    assert not problems, f"expected a BackendError within {BOUND} s each: {problems}"


# --- a bucket deleted behind the store's back ------------------------------------------------------


@pytest.mark.parametrize("operation", [_read, _length, _write], ids=["getitem", "len", "setitem"])
def test_a_deleted_bucket_is_a_backend_error_naming_it(
        faulty: FaultyS3, operation: Callable[[FsspecDict[Any]], Any]) -> None:
    bucket = faulty.new_bucket_name()
    d = _open(faulty, bucket)
    d["k"] = 1
    client = faulty.boto3_client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in listed]})
    client.delete_bucket(Bucket=bucket)
    try:
        outcome = f"returned {operation(d)!r}"
    except BackendError as exc:
        assert bucket in str(exc), f"BackendError does not name the bucket {bucket!r}: {exc}"
        return
    except Exception as exc:
        outcome = f"raised {type(exc).__name__}: {exc}"
    pytest.fail(f"on a deleted bucket the store {outcome}; expected a BackendError naming {bucket!r}")


def test_a_deleted_bucket_holds_no_key(faulty: FaultyS3) -> None:
    """A bucket holds the keys: without it, ``in`` and ``get`` answer "no such key" (``d[k]`` names the bucket)."""
    bucket = faulty.new_bucket_name()
    d = _open(faulty, bucket)
    d["k"] = 1
    client = faulty.boto3_client()
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in
                                                             client.list_objects_v2(Bucket=bucket)["Contents"]]})
    client.delete_bucket(Bucket=bucket)
    assert "k" not in d and d.get("k") is None


# --- deletes racing overwrites ---------------------------------------------------------------------


def _delete_key(d: FsspecDict[Any], key: str) -> None:
    try:
        del d[key]
    except KeyError:
        pass  # the documented answer for a key that is not there


@pytest.mark.parametrize("delete", [_delete_key, lambda d, key: d.discard(key), lambda d, key: d.clear()],
                         ids=["del", "discard", "clear"])
def test_deletes_racing_overwrites_raise_only_contract_errors(
        faulty: FaultyS3, delete: Callable[[FsspecDict[Any], str], Any]) -> None:
    bucket = faulty.new_bucket_name()
    _open(faulty, bucket)
    keys = [f"key-{i}" for i in range(3)]
    stop = threading.Event()
    rounds = 60

    def worker(index: int) -> list[BaseException]:
        d = _open(faulty, bucket)
        errors: list[BaseException] = []
        if index == 0:  # the deleter
            try:
                for round_ in range(rounds):
                    try:
                        delete(d, keys[round_ % len(keys)])
                    except Exception as exc:
                        errors.append(exc)
            finally:
                stop.set()
            return errors
        count = 0
        while not stop.is_set():  # the overwriters
            count += 1
            try:
                d[keys[count % len(keys)]] = (index, count)
            except Exception as exc:
                errors.append(exc)
        return errors

    outcomes = _run_threads(3, worker)
    crashed = [o for o in outcomes if isinstance(o, BaseException)]
    assert not crashed, _describe(crashed)
    deleter_errors, writer_errors = outcomes[0], [e for o in outcomes[1:] for e in o]
    conflicts = sum(1 for r in faulty.requests if r.method == "DELETE" and r.status in (409, 412))
    assert not deleter_errors, (
        f"{len(deleter_errors)} of {rounds} deletes raised {_describe(deleter_errors)} "
        f"(the server refused {conflicts} conditional deletes: an overwrite came between read and delete)")
    assert not writer_errors, f"{len(writer_errors)} overwrites raised {_describe(writer_errors)}"
