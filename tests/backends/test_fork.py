"""A cloud store created and used in a parent keeps working in a forked child, and in the parent after.

``fork`` (Linux's default start method for ``multiprocessing`` before Python
3.14) copies a process with its SDK clients, aiohttp sessions and fsspec's
event loop thread, none of which survive it: the loop's thread does not
exist in the child, and aiobotocore refuses outright ("This class is not
fork-safe").  The store must notice the fork and rebuild its filesystem
client.  Each test opens a store on an emulator (moto for S3,
fake-gcs-server for GCS, Azurite for Azure), uses it in the parent, forks,
writes, reads and transforms through the SAME store object in the child, and
checks the child's work, and the parent's store, from the parent.

A child never returns into pytest: it reports through a pipe and leaves with
``os._exit``; the parent kills it if it does not finish in time.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FsspecDict

from ..servers import fake_gcs
from ..servers.azurite import make_azure_dict
from ..servers.registry import SERVERS

pytestmark = pytest.mark.processes

CHILD_TIMEOUT = 120.0
"""Seconds a forked child may take (it builds a new client and loop; CI machines are slow)."""


def _open_s3(name: str) -> FsspecDict[Any]:
    server = SERVERS.get("s3")
    return FsspecDict(f"s3://fork-tests/{name}", storage_options=server.storage_options())


def _open_gcs(name: str) -> FsspecDict[Any]:
    return fake_gcs.make_gcs_dict(SERVERS.get("gcs"), name)


def _open_azure(name: str) -> FsspecDict[Any]:
    return make_azure_dict(SERVERS.get("azure"), name)


OPENERS: dict[str, Callable[[str], FsspecDict[Any]]] = {"s3": _open_s3, "gcs": _open_gcs, "azure": _open_azure}


@pytest.fixture(params=sorted(OPENERS))
def store(request: pytest.FixtureRequest) -> FsspecDict[Any]:
    """A fresh store on one cloud emulator, already used by the parent (a write, a read, a listing)."""
    d = OPENERS[request.param](f"fork-{uuid.uuid4().hex[:12]}")
    d["parent"] = "from the parent"
    d["counter"] = 0
    assert d["parent"] == "from the parent"
    assert sorted(d.keys()) == [("counter",), ("parent",)]
    return d


# --- running code in a forked child ----------------------------------------------------------------
def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock; that risk is what we test.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _reap(pid: int, deadline: float) -> int | None:
    """The child's exit status once it has exited, or None at the deadline."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    return None


def run_in_fork(body: Callable[[], Any], timeout: float = CHILD_TIMEOUT) -> Any:
    """Run ``body()`` in a forked child and return its (picklable) result; fail with the child's traceback."""
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            try:
                payload = pickle.dumps(("ok", body()))
                code = 0
            except BaseException:
                payload = pickle.dumps(("error", traceback.format_exc()))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([read_end], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
    code = _reap(pid, max(deadline, time.monotonic() + 5))
    if code is None:
        os.kill(pid, signal.SIGKILL)  # our own child, by its id
        os.waitpid(pid, 0)
        pytest.fail(f"the forked child did not finish within {timeout} s")
    if not chunks:
        pytest.fail(f"the forked child exited with {code} and reported nothing")
    status, value = pickle.loads(b"".join(chunks))
    if status != "ok":
        pytest.fail(f"the forked child failed:\n{value}")
    assert code == 0
    return value


def _use_in_child(d: FsspecDict[Any]) -> dict[str, Any]:
    """Write, read, transform and list through the parent's store object; report what was seen."""
    assert d.fs is not None
    d["child"] = f"from {os.getpid()}"
    result = d.transform_item("counter", transformer=lambda v: v + 1)
    inserted = d.set_item_if("inserted", value=1, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE)
    assert inserted.condition_was_satisfied
    return {
        "parent": d["parent"],
        "child": d["child"],
        "counter": result.new_value,
        "keys": sorted(tuple(k) for k in d),
        "values": sorted(map(str, d.values())),
        "pid": os.getpid(),
    }


# --- the tests ------------------------------------------------------------------------------------------
def test_a_store_used_in_the_parent_works_in_a_forked_child(store: FsspecDict[Any]) -> None:
    """Every kind of request from the child succeeds, and the parent sees the child's writes."""
    seen = run_in_fork(lambda: _use_in_child(store))
    assert seen["pid"] != os.getpid()
    assert seen["parent"] == "from the parent"
    assert seen["child"] == f"from {seen['pid']}"
    assert seen["counter"] == 1
    assert seen["keys"] == [("child",), ("counter",), ("inserted",), ("parent",)]
    assert store["child"] == f"from {seen['pid']}"
    assert store["counter"] == 1 and store["inserted"] == 1


def test_the_parents_store_still_works_after_the_child_exits(store: FsspecDict[Any]) -> None:
    """The child rebuilt its own client; the parent's client, loop and session are untouched."""
    run_in_fork(lambda: _use_in_child(store))
    store["after"] = "written after the fork"
    assert store["after"] == "written after the fork"
    assert store.transform_item("counter", transformer=lambda v: v + 10).new_value == 11
    assert len(list(store.values())) == 5
    del store["child"]
    assert "child" not in store


def test_a_subdict_made_before_the_fork_works_in_the_child(store: FsspecDict[Any]) -> None:
    """A subdict's backend is a copy of its parent's; it too rebuilds its client in the child."""
    sub = store.get_subdict("sub")
    sub["x"] = 1

    def in_child() -> Any:
        sub["y"] = 2
        return sub.transform_item("x", transformer=lambda v: v + 1).new_value, sorted(tuple(k) for k in sub)

    assert run_in_fork(in_child) == (2, [("x",), ("y",)])
    assert store["sub", "y"] == 2 and store["sub", "x"] == 2


def test_two_children_in_a_row_and_a_grandchild(store: FsspecDict[Any]) -> None:
    """Each fork rebuilds again: successive children, and a child's own child, all write."""

    def child_then_grandchild() -> Any:
        store["child"] = 1
        return run_in_fork(lambda: store.transform_item("counter", transformer=lambda v: v + 1).new_value)

    assert run_in_fork(child_then_grandchild) == 1
    assert run_in_fork(lambda: store.transform_item("counter", transformer=lambda v: v + 1).new_value) == 2
    assert store["counter"] == 2 and store["child"] == 1


def _increment_in_process(d: FsspecDict[Any], times: int) -> None:
    for _ in range(times):
        d.transform_item("counter", transformer=lambda v: v + 1)


def test_multiprocessing_fork_workers_share_the_parents_store(store: FsspecDict[Any]) -> None:
    """``multiprocessing`` with the "fork" start method: two workers increment through the parent's object."""
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        workers = [context.Process(target=_increment_in_process, args=(store, 3)) for _ in range(2)]
        for worker in workers:
            worker.start()
    deadline = time.monotonic() + CHILD_TIMEOUT
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.kill()  # our own worker, by its handle
            worker.join()
            pytest.fail("a forked worker did not finish in time")
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert store["counter"] == 6
