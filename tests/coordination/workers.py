"""Process targets for the coordination tests, importable by spawned processes.

A shared log file (appended under ``fcntl.flock``) is the fencing-checked
resource: each holder of a lease writes ``enter <token>`` and ``exit <token>``
lines, and the test reads whether holders ever overlapped and whether
tokens always grew.
"""

from __future__ import annotations

import fcntl
import os
import random
import time
from typing import Any

from persidict import PersiDict


def append_line(path: str, line: str) -> None:
    """Append ``line`` to the log at ``path``, whole, whatever other processes append at once."""
    with open(path, "a", encoding="ascii") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        log.write(line + "\n")
        log.flush()
        fcntl.flock(log, fcntl.LOCK_UN)


def contend(store: PersiDict[Any], log_path: str, rounds: int, barrier: Any) -> None:
    """Take the lease "shared" ``rounds`` times, logging entry and exit with the lease's token."""
    barrier.wait(timeout=300)
    for _ in range(rounds):
        with store.lease("shared", ttl=120, poll=0.05) as lease:
            append_line(log_path, f"enter {lease.token} {os.getpid()}")
            time.sleep(random.uniform(0, 0.02))
            append_line(log_path, f"exit {lease.token} {os.getpid()}")


def hold_and_die(store: PersiDict[Any], flag_path: str) -> None:
    """Take the lease "held" for ten minutes, say so in ``flag_path``, and die without releasing it."""
    lease = store.lease("held", ttl=600, keep_alive=False)
    append_line(flag_path, str(lease.token))
    os._exit(0)


def square(x: int) -> int:
    """A body for memoize."""
    return x * x


def queue_worker(queue: Any, log_path: str, ttl: float, poll: float, barrier: Any) -> None:
    """Run ``queue``'s tasks (doubling each) until none is open, logging each run and each recorded result.

    Storage errors (a fault-injecting server's) are retried: a claim that
    failed is claimed again later, a ``done`` whose answer was lost is
    repeated (it records nothing twice).
    """
    from persidict import PersiDictError

    barrier.wait(timeout=300)
    while True:
        try:
            task = queue.claim(ttl, poll=poll)
        except PersiDictError:
            continue
        if task is None:
            return
        append_line(log_path, f"run {task.id} {os.getpid()}")
        time.sleep(random.uniform(0, 0.005))
        for _ in range(20):
            try:
                recorded = queue.done(task, task.value * 2)
                break
            except PersiDictError:
                recorded = False
        if recorded:
            append_line(log_path, f"done {task.id} {os.getpid()}")
