"""A small persidict client modelled on Pythagoras, shared by the client-usage tests.

Pythagoras (the largest persidict client) keys its stores by subclasses of
``SafeStrTuple`` that carry runtime attributes, logs exception records to json
stores, builds every store from another store's ``get_params()``, and sends a
whole "portal" of stores to spawned worker processes as mixinforge JSON. This
module plays that client: the address classes, a portal-like owner of stores,
and the functions that spawned workers run.

It is importable both as ``tests.compat.client_workers`` (pytest and the
processes it spawns) and as the top-level ``client_workers`` (the scenario
script ``reference_scripts/client_scenario.py``, under our persidict and under
0.309.0). So it imports nothing from the test package and uses only public API
that 0.309.0 has too.
"""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from multiprocessing import get_context
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from mixinforge import JsonSerializedObject, dumpjs, loadjs

from persidict import (
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    FileDirDict,
    Joker,
    NonEmptySafeStrTuple,
    OverlappingMultiDict,
    PersiDict,
    SafeStrTuple,
    WriteOnceDict,
    replace_unsafe_chars,
)

WORKER_JOIN_TIMEOUT = 180.0
"""Seconds a test waits for one spawned worker before it kills it and fails (a hang, never a slow pass)."""

ExecutionRecord = collections.namedtuple("ExecutionRecord", ["fn_name", "outcome", "n_attempts"])
"""A module-level namedtuple, as the records a client logs (json stores rebuild it by its import path)."""


def disk_usage_like(total: int = 100, used: int = 40, free: int = 60) -> Any:
    """A ``shutil.disk_usage()`` result with fixed numbers (the class is ``shutil.usage``, a namedtuple)."""
    return type(shutil.disk_usage("."))(total, used, free)


def content_signature(value: Any) -> str:
    """A content hash made of safe characters, stable across interpreters."""
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()[:28]


class ValueAddr(NonEmptySafeStrTuple):
    """A content address with runtime state beside its strings, like Pythagoras' ValueAddr.

    ``__init__`` sets attributes before and after the strings, and deletes a
    cache attribute again; pickling keeps only the strings, and ``__setstate__``
    assigns ``self.strings`` itself and re-creates the runtime attributes.
    """

    def __init__(self, value: Any) -> None:
        self._containing_portals: set[str] = set()
        self._ready_cache: bool | None = None
        signature = content_signature(value)
        descriptor = replace_unsafe_chars(type(value).__name__, "_")
        super().__init__(signature[:3], signature[3:6], descriptor, signature[6:])
        del self._ready_cache  # invalidated: readiness is looked up again on demand

    @classmethod
    def from_strings(cls, *strings: str) -> ValueAddr:
        """Rebuild an address from its strings (as read from a store's keys), without the value."""
        address = cls.__new__(cls)
        NonEmptySafeStrTuple.__init__(address, *strings)
        address._containing_portals = set()
        return address

    def remember_portal(self, portal_id: str) -> None:
        """Record that a portal holds the value (runtime state only: never stored)."""
        self._containing_portals.add(portal_id)
        self._ready_cache = True

    @property
    def containing_portals(self) -> set[str]:
        return self._containing_portals

    def __getstate__(self) -> dict[str, Any]:
        return {"strings": self.strings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.strings = state["strings"]
        self._containing_portals = set()


class TaskAddr(SafeStrTuple):
    """A request address on the plain (possibly empty) SafeStrTuple, with a custom ``__setstate__`` only.

    Its pickled state is the default one (the instance ``__dict__``, runtime list included);
    unpickling assigns ``self.strings`` and resets the runtime list.
    """

    def __init__(self, *parts: str) -> None:
        self.attempts: list[int] = []
        super().__init__("requests", *parts)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.strings = state["strings"]
        self.attempts = []


def caught(exc: BaseException, note: str | None = None) -> BaseException:
    """``exc`` after it was really raised and caught, so it has a traceback (and a note, if given)."""
    try:
        raise exc
    except BaseException as error:
        if note is not None:
            error.add_note(note)
        return error


def crash_record(exc: BaseException) -> dict[str, Any]:
    """An exception log entry like Pythagoras' ``log_exception()``: the exc_info triple and environment facts."""
    return {"exc_type": type(exc), "exc_value": exc, "trace_back": exc.__traceback__,
            "disk_usage": disk_usage_like(), "record": ExecutionRecord("square", "crashed", 1)}


def wait_until_after(timestamp: float) -> None:
    """Return once the clock is clearly past ``timestamp``, so the next write gets a later mtime.

    File timestamps come from a coarse kernel clock; the margin covers its tick.
    """
    while time.time() < timestamp + 0.05:
        time.sleep(0.01)


StoreT = TypeVar("StoreT", bound=PersiDict[Any])


def derived_store(prototype: StoreT, **overrides: Any) -> StoreT:
    """``type(d)(**d.get_params())`` with overrides: how Pythagoras builds each store from another one."""
    params = prototype.get_params()
    params.update(overrides)
    return type(prototype)(**params)


class MiniPortal:
    """A portal-like owner of several stores, rebuilt in spawned workers from its JSON parameters.

    ``get_params()`` holds the root store and plain or ``KEEP_CURRENT`` settings, so
    mixinforge's ``dumpjs`` turns the portal into JSON and ``loadjs`` calls
    ``MiniPortal(**params)`` again; every other store is derived from the root's params.
    """

    def __init__(self, root_dict: PersiDict[Any] | str | os.PathLike[str],
                 max_n_workers: int | Joker | None = KEEP_CURRENT, exact_n_workers: int | None = None,
                 ancestor_process_id: int | None = None) -> None:
        if not isinstance(root_dict, PersiDict):
            root_dict = FileDirDict(base_dir=str(root_dict))
        root: Any = derived_store(root_dict, digest_len=0)  # FileDirDict or S3Dict: both have base_dir
        self._root_dict = root
        self.max_n_workers = max_n_workers
        self.exact_n_workers = exact_n_workers
        self.ancestor_process_id = ancestor_process_id

        def sub(name: str, **overrides: Any) -> Any:
            return derived_store(root.get_subdict(name), **overrides)

        self.value_store = WriteOnceDict(
            wrapped_dict=sub("value_store", digest_len=0, append_only=True, serialization_format="pkl"),
            p_consistency_checks=0)
        self.execution_requests = sub("execution_requests", append_only=False, serialization_format="pkl")
        self.execution_results = WriteOnceDict(
            wrapped_dict=sub("execution_results", append_only=True, serialization_format="pkl"),
            p_consistency_checks=0)
        self.claims = sub("claims", append_only=True, serialization_format="pkl")
        self.crash_history = sub("crash_history", serialization_format="json", append_only=True, digest_len=0)
        self.worker_reports = sub("worker_reports", serialization_format="pkl")
        self.run_history = OverlappingMultiDict(
            dict_type=type(root), shared_subdicts_params=root.get_subdict("run_history").get_params(),
            json={"append_only": True}, py={"base_class_for_values": str, "append_only": False},
            txt={"base_class_for_values": str, "append_only": True}, pkl={"append_only": True})

    def get_params(self) -> dict[str, Any]:
        return {"ancestor_process_id": self.ancestor_process_id, "exact_n_workers": self.exact_n_workers,
                "max_n_workers": self.max_n_workers, "root_dict": self._root_dict}

    @property
    def base_dir(self) -> str:
        return str(self._root_dict.base_dir)

    def store_value(self, value: Any) -> ValueAddr:
        """Put ``value`` in the content-addressed value store; its address knows this portal holds it."""
        address = ValueAddr(value)
        self.value_store[address] = value
        address.remember_portal(self.base_dir)
        return address

    def request_square(self, n: int) -> ValueAddr:
        """Queue the call ``square(n)``: the request key is the call's address, its value the argument's address."""
        call = ValueAddr(("square", n))
        self.execution_requests[call] = self.store_value(n)
        return call


def execute_request(portal: MiniPortal, key: SafeStrTuple, worker_id: str) -> bool:
    """Claim one queued request and execute it; False if another worker claimed it first.

    The claim is an insert-if-absent (``setdefault_if`` with ``ETAG_IS_THE_SAME`` and
    ``ITEM_NOT_AVAILABLE``) on an append-only store; only the claimant executes,
    stores the result and removes the request from the queue.
    """
    call = ValueAddr.from_strings(*key)
    claim = portal.claims.setdefault_if(call, default_value=worker_id, condition=ETAG_IS_THE_SAME,
                                        expected_etag=ITEM_NOT_AVAILABLE)
    if not claim.value_was_mutated:
        return False
    argument_addr = portal.execution_requests[call]
    n = portal.value_store[argument_addr]
    result_addr = portal.store_value(n * n)
    portal.execution_results[call] = result_addr
    portal.run_history.json[(*call.strings, "result_addr")] = result_addr
    portal.run_history.txt[(*call.strings, "output")] = f"square({n}) = {n * n}"
    portal.run_history.pkl[(*call.strings, "record")] = ExecutionRecord("square", "ok", 1)
    portal.execution_requests.discard(call)
    return True


def drain_requests(portal: MiniPortal, worker_id: str) -> list[list[str]]:
    """Pick random requests until the queue is empty; return the keys this worker executed."""
    executed: list[list[str]] = []
    while (key := portal.execution_requests.random_key()) is not None:
        if execute_request(portal, key, worker_id):
            executed.append(list(key))
        else:
            time.sleep(0.001)  # another worker owns it: let it finish and remove it from the queue
    return executed


def _reporting(reports_jsparams: JsonSerializedObject, worker_id: str,
               body: Callable[[], dict[str, Any]]) -> None:
    """Run ``body`` and file its report (or the traceback it raised) under ``worker_id``."""
    reports = loadjs(reports_jsparams)
    try:
        report = {"ok": True, **body()}
    except BaseException:
        reports[worker_id] = {"ok": False, "error": traceback.format_exc()}
        raise
    reports[worker_id] = report


def portal_worker(portal_jsparams: JsonSerializedObject, reports_jsparams: JsonSerializedObject,
                  worker_id: str) -> None:
    """Spawned worker: rebuild the portal from JSON, check its jokers, drain the request queue."""

    def body() -> dict[str, Any]:
        portal = loadjs(portal_jsparams)
        checks = {
            "is_mini_portal": isinstance(portal, MiniPortal),
            "keep_current_round_trip": loadjs(dumpjs(KEEP_CURRENT)) is KEEP_CURRENT,
            "max_n_workers_is_keep_current": portal.max_n_workers is KEEP_CURRENT,
            "exact_n_workers": portal.exact_n_workers,
        }
        return {**checks, "executed": drain_requests(portal, worker_id)}

    _reporting(reports_jsparams, worker_id, body)


def race_value(key: Iterable[str]) -> dict[str, Any]:
    """The value every racer writes for ``key`` (identical in all of them)."""
    return {"key": list(key), "payload": content_signature(tuple(key))}


def race_worker(store_jsparams: JsonSerializedObject, reports_jsparams: JsonSerializedObject, worker_id: str,
                keys: list[list[str]], barrier: Any) -> None:
    """Spawned worker: wait for the other racer, then write the same result keys through a WriteOnceDict."""

    def body() -> dict[str, Any]:
        store = loadjs(store_jsparams)
        barrier.wait(timeout=WORKER_JOIN_TIMEOUT)
        for key in keys:
            store[key] = race_value(key)
        return {"written": len(keys)}

    _reporting(reports_jsparams, worker_id, body)


def run_spawned(target: Callable[..., None], args_list: list[tuple[Any, ...]],
                timeout: float = WORKER_JOIN_TIMEOUT) -> list[int | None]:
    """Run ``target(*args)`` in one spawned process per ``args``; return their exit codes.

    Joins are bounded: a worker still alive after ``timeout`` seconds is killed
    (its exit code is then negative), so a hang fails a test instead of stalling it.
    """
    context = get_context("spawn")
    processes = [context.Process(target=target, args=args) for args in args_list]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(10)
    return [process.exitcode for process in processes]


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = frozenset({"tempfile.mkstemp", "tempfile.mkdtemp", "os.rename", "os.remove", "os.rmdir", "os.link",
                          "os.symlink", "os.mkdir", "os.truncate", "os.utime", "os.chmod", "os.chown",
                          "shutil.copyfile", "shutil.move"})


class WriteWatcher:
    """Records every file-system write under one folder while the ``with`` block runs.

    It listens to Python's audit events (``sys.addaudithook``, installed once per
    process): opening a file for writing, creating a temporary file, renaming,
    linking, removing, ``utime`` and the like. Writing through the C library
    directly would escape it; persidict's stores write through Python.
    """

    _active: ClassVar[list[WriteWatcher]] = []
    _hook_installed: ClassVar[bool] = False

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = os.path.abspath(folder)
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def __enter__(self) -> WriteWatcher:
        if not WriteWatcher._hook_installed:
            sys.addaudithook(WriteWatcher._hook)
            WriteWatcher._hook_installed = True
        WriteWatcher._active.append(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        WriteWatcher._active.remove(self)

    @staticmethod
    def _hook(event: str, args: tuple[Any, ...]) -> None:
        if not WriteWatcher._active or (event != "open" and event not in _PATH_EVENTS):
            return
        for watcher in list(WriteWatcher._active):
            if watcher._concerns(event, args):
                watcher.events.append((event, args))

    def _inside(self, path: Any) -> bool:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            return False
        path = os.path.abspath(path)
        return path == self.folder or path.startswith(self.folder + os.sep)

    def _concerns(self, event: str, args: tuple[Any, ...]) -> bool:
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
            # A file descriptor opened for writing cannot be placed: count it.
            return writes and (isinstance(path, int) or self._inside(path))
        return any(self._inside(arg) for arg in args)
