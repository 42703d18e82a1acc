"""The work queue: one worker per task at a time, every task done exactly once, dead workers' claims retaken."""

from __future__ import annotations

import collections
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict, PersiDict
from persidict.coordination import WorkQueue

from ..servers.faulty_s3 import FaultyS3
from . import workers


def test_each_task_is_claimed_by_one_worker_and_done_once(store: PersiDict[Any]) -> None:
    queue, other = WorkQueue(store), WorkQueue(store)  # two workers
    ids = queue.put_many(range(5))
    claimed = [queue.claim(60, wait=False) for _ in range(3)] + [other.claim(60, wait=False) for _ in range(2)]
    assert sorted(task.id for task in claimed if task) == sorted(ids)
    assert queue.claim(60, wait=False) is None and other.claim(60, wait=False) is None  # all claimed
    assert queue.progress().claimed == 5
    for task in claimed:
        assert task is not None and queue.done(task, task.value * 10)
    assert not queue.done(claimed[0], "again")  # a result is recorded once
    assert queue.results() == {task.id: task.value * 10 for task in claimed if task}
    assert queue.progress() == type(queue.progress())(5, 5, 0, 0) and queue.progress().finished
    assert queue.claim(60) is None  # nothing open: no wait


def test_an_expired_claim_is_taken_again_and_the_slow_worker_cannot_record_twice(store: PersiDict[Any]) -> None:
    queue = WorkQueue(store)
    queue.put("slow")
    slow = queue.claim(0.2, keep_alive=False)
    assert slow is not None and slow.attempt == 1
    fast = queue.claim(60, poll=0.02)  # waits until the slow worker's claim expires
    assert fast is not None and fast.id == slow.id and fast.attempt == 2
    assert queue.done(fast, "fast") and not queue.done(slow, "slow")
    assert queue.result(fast.id) == "fast"


def test_failed_tasks_are_retried_up_to_max_attempts(store: PersiDict[Any]) -> None:
    queue = WorkQueue(store, "retries", max_attempts=2)
    queue.put(1)
    first = queue.claim(60)
    assert first is not None and not queue.fail(first, ValueError("flaky"))
    second = queue.claim(60)
    assert second is not None and second.attempt == 2
    assert queue.fail(second, ValueError("broken"))  # out of attempts: failed for good
    assert queue.claim(60) is None
    assert queue.failures() == {first.id: "ValueError: broken"}
    assert queue.progress().failed == 1 and queue.progress().finished


def test_run_loops_until_every_task_is_closed(store: PersiDict[Any]) -> None:
    queue = WorkQueue(store, "loop", max_attempts=1)
    queue.put_many([1, 2, 0, 4])
    assert queue.run(lambda x: 12 // x, ttl=60) == 3
    assert sorted(queue.results().values()) == [3, 6, 12]
    assert list(queue.failures().values()) == ["ZeroDivisionError: integer division or modulo by zero"]


def test_prune_deletes_the_claims_of_finished_tasks_only(store: PersiDict[Any]) -> None:
    queue = WorkQueue(store, "pruned", max_attempts=1)
    done_id, failed_id, running_id = queue.put_many(["done", "failed", "running"])
    by_id = {}
    while (task := queue.claim(60, wait=False, keep_alive=False)) is not None:
        by_id[task.id] = task
    queue.done(by_id[done_id], "ok")
    queue.fail(by_id[failed_id], "broken")
    claims = store.get_subdict(("pruned", "claims"))
    assert {key.strings[-1] for key in claims} == {done_id, failed_id, running_id}  # tombstones stay
    assert queue.prune() == 2
    assert {key.strings[-1] for key in claims} == {running_id}  # the live claim is kept
    assert queue.progress() == type(queue.progress())(3, 1, 1, 1)
    assert queue.claim(60, wait=False) is None  # a finished task is not claimed again
    assert queue.prune() == 0


def test_bad_arguments_are_refused(store: PersiDict[Any]) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        WorkQueue(store, max_attempts=0)
    with pytest.raises(ValueError, match="ttl"):
        WorkQueue(store).claim(0)


# --- workers killed with SIGKILL ----------------------------------------------------------------


def _spawn(target: Any, *args: Any) -> Any:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def _log(log_path: Path) -> list[list[str]]:
    return [line.split() for line in log_path.read_text().splitlines()] if log_path.exists() else []


def _run_with_kills(queue: WorkQueue, log_path: Path, n_tasks: int, n_workers: int = 8) -> set[str]:
    """Run ``n_workers`` worker processes, SIGKILL a fifth of them at random moments; the killed pids."""
    barrier = multiprocessing.get_context("spawn").Barrier(n_workers)
    processes = [_spawn(workers.queue_worker, queue, str(log_path), 600.0, 0.2, barrier) for _ in range(n_workers)]
    victims = random.sample(processes, max(1, round(n_workers / 5)))
    moments = sorted(random.randint(n_tasks // 10, n_tasks // 2) for _ in victims)
    killed = set()
    deadline = time.monotonic() + 900
    for victim, moment in zip(victims, moments, strict=True):
        while sum(entry[0] == "run" for entry in _log(log_path)) < moment:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        killed.add(str(victim.pid))
    for process in processes:
        process.join(900)
        assert process.exitcode == (-signal.SIGKILL if str(process.pid) in killed else 0)
    return killed


def _check_done_once(queue: WorkQueue, ids: list[str], log_path: Path, killed: set[str]) -> None:
    assert queue.results() == dict(zip(ids, (2 * i for i in range(len(ids))), strict=True))
    assert queue.progress().finished and queue.progress().done == len(ids)
    log = _log(log_path)
    dones = collections.Counter(task_id for kind, task_id, _ in log if kind == "done")
    assert max(dones.values()) == 1  # no task recorded twice
    last_runner = {task_id: pid for kind, task_id, pid in log if kind == "run"}
    missing = set(ids) - set(dones)
    assert all(last_runner[task_id] in killed for task_id in missing)  # only a killed worker's done goes unlogged


@pytest.mark.processes
def test_killed_workers_lose_no_task_and_none_is_done_twice_on_a_folder(tmp_path: Path) -> None:
    """ttl is 600 s: the test ends only because a dead worker's claims are taken over at once."""
    queue = WorkQueue(FileDirDict(base_dir=str(tmp_path / "store")))
    ids = queue.put_many(range(200))
    killed = _run_with_kills(queue, tmp_path / "log", len(ids))
    _check_done_once(queue, ids, tmp_path / "log", killed)


@pytest.mark.processes
@pytest.mark.many_runs
def test_a_thousand_tasks_with_killed_workers_on_a_folder(tmp_path: Path) -> None:
    queue = WorkQueue(FileDirDict(base_dir=str(tmp_path / "store")))
    ids = queue.put_many(range(1000))
    killed = _run_with_kills(queue, tmp_path / "log", len(ids))
    _check_done_once(queue, ids, tmp_path / "log", killed)


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyS3]:
    with FaultyS3() as server:
        yield server


def _on_faulty_s3(faulty: FaultyS3, tmp_path: Path, n_tasks: int) -> None:
    faulty.reset()
    store: FsspecDict[Any] = FsspecDict(f"s3://{faulty.new_bucket_name()}/q", storage_options=faulty.storage_options())
    queue = WorkQueue(store)
    ids = queue.put_many(range(n_tasks))
    rng = random.Random(18)
    modes = [rng.choice([None] * 17 + ["commit_then_500", "commit_then_500", "slowdown_503"]) for _ in range(20000)]
    with faulty.script(*modes) as plan:
        killed = _run_with_kills(queue, tmp_path / "log", len(ids))
    assert plan.injected > 0
    _check_done_once(queue, ids, tmp_path / "log", killed)
    recorded = collections.Counter(request.path.rsplit("/", 1)[-1] for request in faulty.requests
                                   if request.method == "PUT" and request.applied and "/results/" in request.path)
    assert len(recorded) == n_tasks and set(recorded.values()) == {1}  # S3 applied one result per task


@pytest.mark.processes
def test_killed_workers_lose_no_task_and_none_is_done_twice_on_faulty_s3(faulty: FaultyS3, tmp_path: Path) -> None:
    _on_faulty_s3(faulty, tmp_path, 60)


@pytest.mark.processes
@pytest.mark.many_runs
def test_a_thousand_tasks_with_killed_workers_on_faulty_s3(faulty: FaultyS3, tmp_path: Path) -> None:
    _on_faulty_s3(faulty, tmp_path, 1000)
