"""Leases: exclusive among threads and processes, fencing tokens that always grow, loss told at once."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from persidict import ITEM_NOT_AVAILABLE, FileDirDict, PersiDict
from persidict.coordination import LEASE_PREFIX, LeaseLost, LeaseRecord, LeaseTimeout
from persidict.coordination.leases import lease_key, try_acquire

from . import workers
from .conftest import WAIT


class StaleToken(Exception):
    """The fenced resource refused a write: a holder with a higher token wrote first."""


def fenced_write(store: PersiDict[Any], token: int, data: str) -> None:
    """The protected resource: a value that takes a write only with a token at least the highest seen."""

    def write(current: Any) -> str:
        seen = 0 if current is ITEM_NOT_AVAILABLE else json.loads(current)["token"]
        if token < seen:
            raise StaleToken(f"token {token} < {seen}")
        return json.dumps({"token": token, "data": data})

    store.transform_item("resource", transformer=write)


def _wait_until_expired(lease: Any) -> None:
    deadline = time.monotonic() + WAIT
    while time.time() <= lease.expires_at:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_held_lease_is_not_given_twice_and_tokens_grow_across_releases(store: PersiDict[Any]) -> None:
    tokens = []
    for _ in range(3):
        with store.lease("job", ttl=60) as lease:
            assert try_acquire(store, lease_key("job"), 60)[0] is None  # held: nobody else gets it
            with pytest.raises(LeaseTimeout):
                store.lease("job", ttl=60, timeout=0.1, poll=0.02)
            lease.check()
            lease.renew()
            tokens.append(lease.token)
        with pytest.raises(LeaseLost):
            lease.check()  # released: no longer ours
    assert tokens == [1, 2, 3]
    tombstone = LeaseRecord.parse(store[(LEASE_PREFIX, "job")])
    assert tombstone is not None and tombstone.released and tombstone.token == 3


def test_leases_of_different_names_are_independent(store: PersiDict[Any]) -> None:
    with store.lease("a", ttl=60) as first, store.lease(("b", "c"), ttl=60) as second:
        assert first.token == second.token == 1
        assert second.key == (LEASE_PREFIX, "b", "c")


def test_a_writer_holding_an_expired_lease_cannot_pass_the_fencing_check(store: PersiDict[Any]) -> None:
    """In every trial: the old holder's token is refused by the resource, and check/renew say it is lost."""
    for trial in range(10):
        old = store.lease("fenced", ttl=0.2, keep_alive=False)
        fenced_write(store, old.token, f"old {trial}")
        _wait_until_expired(old)  # a holder paused past its expiry...
        new = store.lease("fenced", ttl=60, keep_alive=False)  # ...and another takes the lease over
        assert new.token > old.token
        fenced_write(store, new.token, f"new {trial}")
        with pytest.raises(StaleToken):
            fenced_write(store, old.token, f"late {trial}")
        with pytest.raises(LeaseLost):
            old.check()
        with pytest.raises(LeaseLost):
            old.renew()
        assert old.release() is False
        new.check()  # the old holder's attempts did not disturb the new one
        assert new.release() is True
        assert json.loads(store["resource"])["data"] == f"new {trial}"


def test_an_expired_lease_not_yet_taken_fails_check_but_can_be_renewed(store: PersiDict[Any]) -> None:
    lease = store.lease("late", ttl=0.2, keep_alive=False)
    _wait_until_expired(lease)
    with pytest.raises(LeaseLost, match="expired"):
        lease.check()
    lease.renew(60)  # nobody took it: renewing by compare-and-swap on its ETag still works
    lease.check()
    assert lease.token == 1


def test_keep_alive_renews_in_the_background(store: PersiDict[Any]) -> None:
    with store.lease("kept", ttl=0.9) as lease:
        first = lease.expires_at
        deadline = time.monotonic() + WAIT
        while lease.expires_at == first:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        lease.check()
        assert LeaseRecord.parse(store[lease.key]).expires_at == lease.expires_at  # type: ignore[union-attr]


def test_a_key_holding_something_else_is_not_taken_as_a_lease(store: PersiDict[Any]) -> None:
    store[(LEASE_PREFIX, "occupied")] = "not a lease"
    with pytest.raises(TypeError, match="not a lease"):
        store.lease("occupied", ttl=5)
    assert store[(LEASE_PREFIX, "occupied")] == "not a lease"


def test_bad_durations_are_refused(store: PersiDict[Any]) -> None:
    with pytest.raises(ValueError, match="ttl"):
        store.lease("x", ttl=0)


# --- across processes -----------------------------------------------------------------------


def _spawn(target: Any, *args: Any) -> Any:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


@pytest.mark.processes
def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    store: PersiDict[Any] = FileDirDict(base_dir=str(tmp_path / "store"))
    flag = tmp_path / "flag"
    holder = _spawn(workers.hold_and_die, store, str(flag))
    holder.join(WAIT)
    assert holder.exitcode == 0 and flag.read_text().strip() == "1"
    with store.lease("held", ttl=60, timeout=WAIT) as lease:  # its ttl was 600 s: taken because it died
        assert lease.token == 2


def _check_the_log(log_path: Path, expected_entries: int) -> None:
    lines = [line.split() for line in log_path.read_text().splitlines()]
    assert len(lines) == 2 * expected_entries
    previous = 0
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter[0] == "enter" and leave[0] == "exit", "two holders overlapped"
        assert enter[1:] == leave[1:], "two holders overlapped"
        assert int(enter[1]) > previous, "a token did not grow"
        previous = int(enter[1])


@pytest.mark.processes
def test_sixteen_contending_processes_hold_the_lease_one_at_a_time(
    shared_store: PersiDict[Any], tmp_path: Path
) -> None:
    log_path = tmp_path / "log"
    processes, rounds = 16, 3
    barrier = multiprocessing.get_context("spawn").Barrier(processes)
    workers_ = [_spawn(workers.contend, shared_store, str(log_path), rounds, barrier) for _ in range(processes)]
    for process in workers_:
        process.join(600)
        assert process.exitcode == 0
    _check_the_log(log_path, processes * rounds)
