"""Hot key, lost answers: a call that returns was applied once, a call that raised was not applied.

The scenario: workers each run 25 ``transform_item(+1)`` on one key of an S3
store (default ``n_retries``, so some calls give up with
``ConcurrencyConflictError``) while the S3 server (moto behind
``tests/servers/faulty_s3.py``, one write applied at a time as S3 does) loses
the answers of 30% of the conditional writes after applying them (a 500 or a
cut connection, seeded per run).  Every value stored is ``(count, call id)``,
so the server's own log of applied PUTs says which call landed how often.
Every run asserts:

- the final count equals the number of calls that returned;
- every call that returned was applied exactly once;
- no call that raised was applied (``ConcurrencyConflictError`` means nothing
  was applied), and no error says a write "may have been applied": each lost
  answer was settled.

Before the fix, most runs failed here: a call whose answer was lost was
resent after a pause, and by the time its refused resend was reconciled,
other writers had pushed its write out of the object's lineage; the call was
told "refused", and ``transform_item`` applied it a second time (or, out of
attempts, raised ``ConcurrencyConflictError`` for a call S3 had applied).

The default suite runs three runs (4 threads, 8 threads, 4 spawn processes).
The many-run version, 50 consecutive runs of each (about half an hour on two
cores), is marked ``many_runs`` and deselected by default::

    pytest tests/backends/test_contention_under_faults.py -m many_runs -n 0
"""

from __future__ import annotations

import collections
import multiprocessing
import pickle
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from persidict import ITEM_NOT_AVAILABLE, BackendError, ConcurrencyConflictError, FsspecDict

from ..servers.faulty_s3 import FaultyS3

CALLS = 25
"""``transform_item`` calls per worker."""
LOST_SHARE = 0.3
"""The share of conditional writes whose answer is lost after S3 applied them."""
MODES = ("commit_then_500", "drop_after")
"""How the answer is lost (alternating by run): a 500 after the commit, or a connection cut after it."""
STRESS_RUNS = 50
STRESS_TIMEOUT = 2 * 3600
"""Seconds 50 runs of one configuration may take (the suite's per-test timeout is for single runs)."""
JOIN = 600.0
"""Seconds a run's workers may take before the test reports them stuck (a busy 2-core machine)."""
KEY = "counter"


@dataclass
class Run:
    """What one run's calls said, and what S3 applied."""

    said: dict[str, str]
    """Call id -> "returned", or the exception it raised."""
    applied: collections.Counter[str]
    """Call id -> how many of its writes S3 applied."""
    final: int


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyS3]:
    with FaultyS3() as server:
        yield server


def _increment_calls(d: FsspecDict[Any], worker: int) -> dict[str, str]:
    """``CALLS`` increments, each tagging the value with its call id; what each call said."""
    said = {}
    for call in range(CALLS):
        call_id = f"{worker}-{call}"

        def increment(value: Any, call_id: str = call_id) -> tuple[int, str]:
            return (1 if value is ITEM_NOT_AVAILABLE else value[0] + 1), call_id

        try:
            d.transform_item(KEY, transformer=increment)
            said[call_id] = "returned"
        except (ConcurrencyConflictError, BackendError) as exc:
            said[call_id] = f"{type(exc).__name__}: {exc}"
    return said


def _in_threads(params: dict[str, Any], workers: int) -> dict[str, str]:
    barrier = threading.Barrier(workers)
    said: dict[str, str] = {}
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            d: FsspecDict[Any] = FsspecDict(**params)
            barrier.wait(timeout=60)
            said.update(_increment_calls(d, worker))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN)
    assert not any(t.is_alive() for t in threads), f"workers still running after {JOIN} s"
    assert not failures, failures
    return said


def _process_worker(params: dict[str, Any], worker: int, barrier: Any, results: Any) -> None:
    d: FsspecDict[Any] = FsspecDict(**params)
    barrier.wait(timeout=120)
    results.put(_increment_calls(d, worker))


def _in_processes(params: dict[str, Any], workers: int) -> dict[str, str]:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_process_worker, args=(params, i, barrier, results)) for i in range(workers)]
    for process in processes:
        process.start()
    said: dict[str, str] = {}
    for _ in processes:
        said.update(results.get(timeout=JOIN))
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    return said


def _run(faulty: FaultyS3, spread: Callable[[dict[str, Any], int], dict[str, str]], workers: int, run: int) -> Run:
    faulty.reset()
    params = FsspecDict(f"s3://{faulty.new_bucket_name()}/root", storage_options=faulty.storage_options(),
                        create_root=True).get_params()  # the bucket exists before the faults begin
    with faulty.faults(MODES[run % len(MODES)], probability=LOST_SHARE, seed=run, max_per_request=None) as plan:
        said = spread(params, workers)
    assert plan.injected > 0
    applied = collections.Counter(
        pickle.loads(r.body)[1] for r in faulty.requests
        if r.method == "PUT" and r.applied and r.body and r.path.endswith(f"/{KEY}.pkl"))
    return Run(said, applied, FsspecDict(**params)[KEY][0])


def _problems(run: Run) -> list[str]:
    """What this run's calls said that S3 did not do."""
    returned = [call for call, said in run.said.items() if said == "returned"]
    problems = [f"final count {run.final}, but {len(returned)} calls returned"] if run.final != len(returned) else []
    for call, said in sorted(run.said.items()):
        times = run.applied[call]
        if said == "returned" and times != 1:
            problems.append(f"call {call} returned and was applied {times} times")
        elif said != "returned" and times:
            problems.append(f"call {call} raised ({said[:150]}) and was applied {times} times")
        elif "may have been applied" in said:
            problems.append(f"call {call} was not settled: {said}")
    return problems


CONFIGURATIONS = {
    "4-threads": (_in_threads, 4),
    "8-threads": (_in_threads, 8),
    "4-processes": (_in_processes, 4),
}
SHORT = [("4-threads", 0), ("8-threads", 1), ("4-processes", 2)]


@pytest.mark.parametrize(("configuration", "run"), SHORT, ids=[f"{c}-run{r}" for c, r in SHORT])
def test_a_few_runs_tell_the_truth(faulty: FaultyS3, configuration: str, run: int) -> None:
    spread, workers = CONFIGURATIONS[configuration]
    result = _run(faulty, spread, workers, run)
    assert len(result.said) == workers * CALLS
    problems = _problems(result)
    assert not problems, problems


@pytest.mark.many_runs
@pytest.mark.timeout(STRESS_TIMEOUT)
@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_fifty_consecutive_runs_tell_the_truth(faulty: FaultyS3, configuration: str) -> None:
    spread, workers = CONFIGURATIONS[configuration]
    failed = {}
    for run in range(STRESS_RUNS):
        problems = _problems(_run(faulty, spread, workers, run))
        if problems:
            failed[run] = problems
    assert not failed, f"{len(failed)} of {STRESS_RUNS} runs wrong: {failed}"
