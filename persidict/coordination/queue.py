"""``WorkQueue``: tasks in a store, each claimed by one worker at a time under a lease, done exactly once.

Layout under the queue's name (a key prefix of the store; every value an
ordinary value of the store, in its format)::

    (name, "tasks",   id)   the task, as put
    (name, "claims",  id)   the lease of the worker running it (JSON text; a tombstone once released)
    (name, "results", id)   the result, written once: insert-if-absent
    (name, "failed",  id)   why the task failed for good (text)

A worker takes a task by taking its lease (``leases.take``); a claim whose
worker stopped renewing expires after ``ttl`` (at once if the worker died on
this host) and is taken again.  ``done`` inserts the result if absent, so
of several workers that ran one task (a claim retaken from a worker that was
only slow) exactly one result is recorded: execution is at least once,
completion exactly once.  A claim's fencing token counts the task's claims,
which is how many attempts ``fail(retry=True)`` allows.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core.front import PersiDict
from ..keys.tuples import to_nonempty_key
from ..protocol.flags import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, NEVER_RETRIEVE
from .conditions import require_atomic
from .leases import Lease, take, waits
from .records import LeaseRecord

__all__ = ["Progress", "Task", "WorkQueue"]


@dataclass(frozen=True)
class Task:
    """A claimed task: its ``id``, its ``value``, our ``lease`` on it and which ``attempt`` this is (1, 2 ...)."""

    id: str
    value: Any
    lease: Lease

    @property
    def attempt(self) -> int:
        """How many times the task has been claimed, this claim included (the lease's fencing token)."""
        return self.lease.token


@dataclass(frozen=True)
class Progress:
    """The queue's counts: every task put, those done, failed for good, claimed now, and waiting."""

    total: int
    done: int
    failed: int
    claimed: int

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed - self.claimed

    @property
    def finished(self) -> bool:
        """Whether every task is done or failed."""
        return self.done + self.failed >= self.total


def _new_id() -> str:
    """A task id that sorts by when it was put (nanoseconds, hex) and never collides (a random part)."""
    return f"{time.time_ns():016x}-{uuid.uuid4().hex[:12]}"


class WorkQueue:
    """A queue of tasks in ``store`` under the key prefix ``name`` (see the module's docstring).

    ``put``/``put_many`` add tasks; a worker ``claim``s one (None when none is
    left), runs it, and calls ``done`` or ``fail``; ``run(func)`` is that loop.
    Refuses a store that fails the conditions check unless ``allow_non_atomic``.
    """

    def __init__(self, store: PersiDict[Any], name: str = "queue", *, max_attempts: int = 3,
                 allow_non_atomic: bool = False) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts!r}")
        require_atomic(store, "a work queue", allow_non_atomic=allow_non_atomic)
        self.store, self.name, self.max_attempts = store, name, max_attempts
        self._candidates: list[str] = []

    def __repr__(self) -> str:
        return f"WorkQueue({self.store!r}, name={self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return _reopen, (self.store, self.name, self.max_attempts)

    def _key(self, part: str, task_id: str) -> Any:
        return to_nonempty_key((self.name, part, task_id))

    def _ids(self, part: str) -> set[str]:
        """The task ids with an entry in ``part`` ("tasks", "results", ...)."""
        return {key.strings[-1] for key in self.store.get_subdict((self.name, part))}

    # --- producers ----------------------------------------------------------------------
    def put(self, task: Any) -> str:
        """Add one task; its id."""
        return self.put_many([task])[0]

    def put_many(self, tasks: Iterable[Any]) -> list[str]:
        """Add tasks (written concurrently on object stores); their ids, in order."""
        entries = {self._key("tasks", _new_id()): task for task in tasks}
        self.store.update(entries)
        return [key.strings[-1] for key in entries]

    # --- workers ------------------------------------------------------------------------
    def _is_closed(self, task_id: str) -> bool:
        return self._key("results", task_id) in self.store or self._key("failed", task_id) in self.store

    def _try(self, task_id: str, ttl: float) -> Task | None:
        """Claim ``task_id`` if it is open and its claim free; the task, or None."""
        if self._is_closed(task_id):
            return None
        key = self._key("claims", task_id)
        seen = self.store.get_with_etag(key)
        current = LeaseRecord.parse(seen.new_value)
        if current is not None and current.why_over() is None:
            return None  # another worker runs it
        lease, _ = take(self.store, key, ttl, seen)
        if lease is None:
            return None
        if self._is_closed(task_id):  # finished between our look and our claim
            lease.release()
            return None
        try:
            value = self.store[self._key("tasks", task_id)]
        except KeyError:  # the task was removed
            lease.release()
            return None
        return Task(task_id, value, lease)

    def _refill(self) -> bool:
        """List the open tasks again (in a random order: workers then rarely race for one); any?"""
        open_ids = list(self._ids("tasks") - self._ids("results") - self._ids("failed"))
        random.shuffle(open_ids)
        self._candidates = open_ids
        return bool(open_ids)

    def _next_free(self, ttl: float) -> Task | bool | None:
        """Try the open tasks listed before, then a fresh listing: a task claimed, None if every open task
        is claimed by another worker, False if no task is open."""
        for listed_again in (False, True):
            while self._candidates:
                task = self._try(self._candidates.pop(), ttl)
                if task is not None:
                    return task
            if not listed_again and not self._refill():
                return False
        return None

    def claim(self, ttl: float = 60.0, *, wait: bool = True, poll: float = 1.0,
              keep_alive: bool = True) -> Task | None:
        """One task for this worker alone while its lease lives; None once every task is done or failed.

        With ``wait`` (default), while the open tasks are all claimed by other
        workers it polls (every ``poll`` seconds at most) until one is free
        again (a claim that expired, or whose worker died) or all are closed;
        without, it returns None at once.  ``keep_alive`` renews the claim in
        the background every ``ttl / 3`` until ``done`` or ``fail``.
        """
        if not ttl > 0 or not poll > 0:
            raise ValueError(f"ttl and poll must be positive numbers of seconds, got ttl={ttl!r}, poll={poll!r}")
        pauses = waits(poll)
        while True:
            task = self._next_free(ttl)
            if isinstance(task, Task):
                if keep_alive:
                    task.lease.keep_alive()
                return task
            if task is False or not wait:
                return None
            time.sleep(next(pauses))

    def done(self, task: Task, result: Any = None) -> bool:
        """Record ``task``'s result and release its claim; False if a result was recorded already.

        The result is inserted if absent: of several workers that ran the task
        (a claim retaken from a slow worker), the first to finish is recorded.
        """
        recorded = self.store.set_item_if(self._key("results", task.id), value=result, condition=ETAG_IS_THE_SAME,
                                          expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=NEVER_RETRIEVE)
        task.lease.release()
        return recorded.condition_was_satisfied

    def fail(self, task: Task, error: BaseException | str, *, retry: bool = True) -> bool:
        """Give ``task`` up: claimed again later if ``retry`` and attempts remain, else failed for good.

        Whether it failed for good (then ``(name, "failed", id)`` holds the error's text).
        """
        if retry and task.attempt < self.max_attempts:
            task.lease.release()
            return False
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.store.set_item_if(self._key("failed", task.id), value=text, condition=ETAG_IS_THE_SAME,
                               expected_etag=ITEM_NOT_AVAILABLE, retrieve_value=NEVER_RETRIEVE)
        task.lease.release()
        return True

    def run(self, func: Callable[[Any], Any], ttl: float = 60.0, *, poll: float = 1.0, retry: bool = True) -> int:
        """Work until no task is open: claim, ``func(task.value)``, done (or fail on an exception); how many done."""
        count = 0
        while (task := self.claim(ttl, poll=poll)) is not None:
            try:
                result = func(task.value)
            except Exception as exc:  # the task's failure, not the worker's: recorded, and the loop goes on
                self.fail(task, exc, retry=retry)
                continue
            count += self.done(task, result)
        return count

    def prune(self) -> int:
        """Delete the claims of finished tasks (done or failed for good); how many were deleted.

        A released claim stays as a tombstone that keeps the task's fencing token,
        so a long-lived queue holds one claim per task it ever ran.  A finished
        task is never claimed again (``_try`` looks for its result before and
        after taking the claim), so its claim is no longer needed; a worker still
        running it loses its lease at its next renewal and its ``done`` returns False.
        """
        finished = self._ids("claims") & (self._ids("results") | self._ids("failed"))
        claims = self.store.get_subdict((self.name, "claims"))
        for task_id in finished:
            claims.discard(task_id)
        return len(finished)

    # --- observers ----------------------------------------------------------------------
    def progress(self) -> Progress:
        """Counts of tasks: all, done, failed for good, and claimed by a live lease now.

        Three listings, and one read per open task (concurrent on object stores).
        """
        tasks, done, failed = self._ids("tasks"), self._ids("results"), self._ids("failed")
        open_ids = sorted(tasks - done - failed)
        records = self.store.get_many([self._key("claims", task_id) for task_id in open_ids])
        claimed = sum(1 for value in records if (lease := LeaseRecord.parse(value)) and lease.why_over() is None)
        return Progress(len(tasks), len(done & tasks), len(failed & tasks), claimed)

    def result(self, task_id: str) -> Any:
        """The result recorded for ``task_id`` (``KeyError`` if none yet)."""
        return self.store[self._key("results", task_id)]

    def results(self) -> dict[str, Any]:
        """Every result recorded so far, by task id."""
        return {key.strings[-1]: value for key, value in self.store.get_subdict((self.name, "results")).items()}

    def failures(self) -> dict[str, str]:
        """Every task failed for good, by id: the error's text."""
        return {key.strings[-1]: value for key, value in self.store.get_subdict((self.name, "failed")).items()}


def _reopen(store: PersiDict[Any], name: str, max_attempts: int) -> WorkQueue:
    """A pickled queue, opened again in another process (its conditions check is remembered there)."""
    return WorkQueue(store, name, max_attempts=max_attempts)
