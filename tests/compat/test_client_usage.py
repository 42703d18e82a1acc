"""persidict used the way its largest client, Pythagoras, uses it: everything works as with 0.309.0.

The client lives in ``client_workers.py``: address classes that subclass
``SafeStrTuple`` and carry runtime attributes, a portal-like owner of stores
(``MiniPortal``) that spawned workers rebuild from mixinforge JSON, exception
records in json stores, stores derived from other stores' ``get_params()``,
``WriteOnceDict`` result stores and a ``random_key()`` work queue.

Most tests run the client against our persidict and assert what 0.309.0 does.
The ``reference`` tests at the end run ``reference_scripts/client_scenario.py``
under both implementations and require equal transcripts, and each
implementation re-reads the stores the other one wrote.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import boto3
import pytest
from mixinforge import dumpjs, loadjs, update_jsparams

import persidict
from persidict import (
    ALWAYS_RETRIEVE,
    ANY_ETAG,
    DELETE_CURRENT,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    IF_ETAG_CHANGED,
    ITEM_NOT_AVAILABLE,
    KEEP_CURRENT,
    NEVER_RETRIEVE,
    VALUE_NOT_RETRIEVED,
    BasicS3Dict,
    FileDirDict,
    LocalDict,
    MutationPolicyError,
    NonEmptySafeStrTuple,
    OverlappingMultiDict,
    PersiDict,
    S3Dict,
    SafeStrTuple,
    WriteOnceDict,
)
from persidict.core.layout import LAYOUT_NAME

from ..servers.moto_s3 import CREDENTIALS
from . import client_workers as cw
from .buckets import Bucket
from .client_workers import ExecutionRecord, MiniPortal, TaskAddr, ValueAddr
from .reference import DATA_DIR, REFERENCE_VERSION, REPO, SCRIPTS, run_reference

FLAGS = (KEEP_CURRENT, DELETE_CURRENT, ITEM_NOT_AVAILABLE, VALUE_NOT_RETRIEVED, ANY_ETAG, ETAG_IS_THE_SAME,
         ETAG_HAS_CHANGED, ALWAYS_RETRIEVE, NEVER_RETRIEVE, IF_ETAG_CHANGED)

# The public names each module of 0.309.0 defines itself (test_module_path_names_are_those_of_0_309 checks
# this table against the reference); re-exports and imported helpers are left out.
LEGACY_MODULE_NAMES: dict[str, tuple[str, ...]] = {
    "persidict.safe_str_tuple": ("NonEmptySafeStrTuple", "SafeStrTuple"),
    "persidict.jokers_and_status_flags": (
        "ALWAYS_RETRIEVE", "ANY_ETAG", "AlwaysRetrieveFlag", "AnyETagFlag", "CONTINUE_NORMAL_EXECUTION",
        "ConditionalOperationResult", "ContinueNormalExecutionFlag", "DELETE_CURRENT", "DeleteCurrentFlag",
        "ETAG_HAS_CHANGED", "ETAG_IS_THE_SAME", "ETagConditionFlag", "ETagHasChangedFlag", "ETagIsTheSameFlag",
        "ETagValue", "EXECUTION_IS_COMPLETE", "ExecutionIsCompleteFlag", "IF_ETAG_CHANGED", "ITEM_NOT_AVAILABLE",
        "IfETagChangedRetrieveFlag", "ItemNotAvailableFlag", "Joker", "KEEP_CURRENT", "KeepCurrentFlag",
        "NEVER_RETRIEVE", "NeverRetrieveFlag", "OperationResult", "RetrieveValueFlag", "StatusFlag",
        "TransformingFunction", "VALUE_NOT_RETRIEVED", "ValueNotRetrievedFlag"),
    "persidict.safe_chars": ("contains_unsafe_chars", "get_safe_chars", "replace_unsafe_chars"),
    "persidict.safe_str_tuple_signing": ("sign_safe_str_tuple", "unsign_safe_str_tuple"),
    "persidict.file_dir_dict": ("FileDirDict", "add_long_path_prefix", "drop_long_path_prefix"),
    "persidict.local_dict": ("LocalDict",),
    "persidict.basic_s3_dict": ("BasicS3Dict", "conditional_request_failed", "not_found_error", "not_modified_error"),
    "persidict.s3_dict_file_dir_cached": ("S3Dict", "S3Dict_FileDirCached"),
    "persidict.write_once_dict": ("WriteOnceDict",),
    "persidict.overlapping_multi_dict": ("OverlappingMultiDict",),
    "persidict.cached_appendonly_dict": ("AppendOnlyDictCached",),
    "persidict.cached_mutable_dict": ("MutableDictCached",),
    "persidict.empty_dict": ("EmptyDict",),
    "persidict.exceptions": ("BackendError", "ConcurrencyConflictError", "MutationPolicyError"),
    "persidict.persi_dict": ("PersiDict",),
}

SCENARIO = "client_scenario.py"
SCENARIO_SECTIONS = ("public_names", "addresses", "address_keys", "address_values", "json_params", "portal_worker",
                     "crash_history", "multi_format", "derived_params", "subdicts", "write_once", "dispatch", "s3")
REREAD_SECTIONS = ("values", "crash_log", "multi_format", "write_once", "portal_portal", "portal_dispatch")


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture
def portal(tmp_path: Path) -> MiniPortal:
    """A portal on a fresh folder, with the default KEEP_CURRENT worker settings."""
    return MiniPortal(tmp_path / "portal")


@pytest.fixture
def reports(tmp_path: Path) -> FileDirDict:
    """Where spawned workers file their reports (sent to them as JSON parameters)."""
    return FileDirDict(base_dir=str(tmp_path / "reports"))


def assert_workers_succeeded(exit_codes: list[int | None], reports: PersiDict, worker_ids: list[str]) -> None:
    """Every worker exited normally and filed an ``ok`` report (else show what it reported)."""
    filed = {worker_id: reports.get(worker_id) for worker_id in worker_ids}
    assert exit_codes == [0] * len(worker_ids), f"exit codes {exit_codes} (negative: killed after a hang): {filed}"
    assert all(report is not None and report["ok"] for report in filed.values()), filed


def data_files(folder: str | Path) -> list[str]:
    """Every file under ``folder`` but its layout record, relative to it (temporary files included)."""
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names if name != LAYOUT_NAME)


def square_requests(portal: MiniPortal, numbers: range) -> list[ValueAddr]:
    return [portal.request_square(n) for n in numbers]


def assert_squares_done(portal: MiniPortal, calls: list[ValueAddr], numbers: range) -> None:
    """Each call has its result address (a ValueAddr read back from pkl and json) and result value."""
    for call, n in zip(calls, numbers):
        result_addr = portal.execution_results[call]
        assert type(result_addr) is ValueAddr
        assert result_addr == ValueAddr(n * n) and result_addr.containing_portals == set()
        assert portal.value_store[result_addr] == n * n
        logged_addr = portal.run_history.json[(*call.strings, "result_addr")]
        assert type(logged_addr) is ValueAddr and logged_addr == result_addr
        assert portal.run_history.txt[(*call.strings, "output")] == f"square({n}) = {n * n}"
        assert portal.run_history.pkl[(*call.strings, "record")] == ExecutionRecord("square", "ok", 1)
    assert len(portal.execution_requests) == 0
    assert portal.execution_requests.random_key() is None


# ---------------------------------------------------------------- public names and module paths

def test_client_names_import_from_persidict() -> None:
    """The names Pythagoras imports from ``persidict`` are there and behave as it expects."""
    from persidict import KEEP_CURRENT, Joker, NonEmptySafeStrTuple, SafeStrTuple, replace_unsafe_chars

    assert isinstance(KEEP_CURRENT, Joker)
    assert issubclass(NonEmptySafeStrTuple, SafeStrTuple)
    assert replace_unsafe_chars("fn name/v1.py", "_") == "fn_name_v1.py"


@pytest.mark.parametrize("module_name", sorted(LEGACY_MODULE_NAMES))
def test_module_paths_of_0_309_import(module_name: str) -> None:
    """Each module path of 0.309.0 imports and has the public names it defined, the very objects of ``persidict``."""
    module = importlib.import_module(module_name)
    names = LEGACY_MODULE_NAMES[module_name]
    missing = [name for name in names if not hasattr(module, name)]
    not_the_same = [name for name in names if hasattr(module, name) and hasattr(persidict, name)
                    and getattr(module, name) is not getattr(persidict, name)]
    assert (missing, not_the_same) == ([], []), f"{module_name}: missing {missing}, other objects {not_the_same}"


@pytest.mark.reference
def test_module_path_names_are_those_of_0_309() -> None:
    """The table of module names above is what 0.309.0 really defines in each module."""
    spec = json.dumps({"modules": sorted(LEGACY_MODULE_NAMES)})
    reported = json.loads(run_reference("client_module_names.py", spec))
    assert {module: tuple(names) for module, names in reported.items()} == LEGACY_MODULE_NAMES


# ---------------------------------------------------------------- subclassed addresses

def test_address_subclasses_keep_runtime_attributes() -> None:
    """Subclasses set, delete and restore their own attributes; hashing and equality stay the plain tuple's."""
    addr = ValueAddr(42)
    assert not hasattr(addr, "_ready_cache")  # deleted again inside __init__
    addr.remember_portal("p1")
    assert addr.containing_portals == {"p1"} and addr._ready_cache is True
    task = TaskAddr("square", "x")
    task.attempts.append(1)

    for address in (addr, task):
        plain = tuple(address.strings)
        assert hash(address) == hash(plain)
        assert address == plain and plain == address and address == list(plain)
    assert isinstance(addr, NonEmptySafeStrTuple) and isinstance(task, SafeStrTuple)
    assert task.strings == ("requests", "square", "x")

    restored, restored_task = pickle.loads(pickle.dumps((addr, task)))
    assert type(restored) is ValueAddr and restored == addr and restored.containing_portals == set()
    assert type(restored_task) is TaskAddr and restored_task == task and restored_task.attempts == []
    rebuilt = ValueAddr.from_strings(*addr.strings)
    assert rebuilt == addr and hash(rebuilt) == hash(addr) and rebuilt.containing_portals == set()


STORES_FOR_KEYS: dict[str, Callable[[Path], PersiDict]] = {
    "file_dir": lambda tmp: FileDirDict(base_dir=str(tmp / "keys")),
    "local": lambda tmp: LocalDict(),
    "write_once": lambda tmp: WriteOnceDict(wrapped_dict=FileDirDict(base_dir=str(tmp / "keys"), append_only=True),
                                            p_consistency_checks=0),
}


@pytest.mark.parametrize("store_name", sorted(STORES_FOR_KEYS))
def test_addresses_as_keys(store_name: str, tmp_path: Path) -> None:
    """Address subclasses are keys; plain tuples and lists address the same items, and keys list back equal."""
    d = STORES_FOR_KEYS[store_name](tmp_path)
    addr, task = ValueAddr("v"), TaskAddr("f")
    d[addr] = "value"
    d[task] = "task"
    assert d[tuple(addr)] == "value" and d[list(task)] == "task" and d.get(task) == "task"
    assert addr in d and tuple(task) in d and ValueAddr("other") not in d
    assert sorted(d.keys(), key=tuple) == sorted([addr, task], key=tuple)
    assert len(d) == 2
    d[addr] = "value"  # rewriting the same value is fine everywhere, write-once included
    if store_name == "write_once":
        with pytest.raises(MutationPolicyError):
            d.discard(task)
    else:
        assert d.discard(tuple(task)) is True and d.discard(task) is False
        assert list(d.keys()) == [addr]


@pytest.mark.parametrize("fmt", ["pkl", "json"])
def test_addresses_as_values(fmt: str, tmp_path: Path) -> None:
    """Addresses stored as values come back as their own class, through their ``__setstate__``."""
    d: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path / "values"), serialization_format=fmt)
    addr = ValueAddr(7)
    addr.remember_portal("p1")
    task = TaskAddr("f", "a")
    d["addr"] = addr
    d["nested"] = {"result": addr, "args": [task]}

    for read_back in (d["addr"], d["nested"]["result"]):
        assert type(read_back) is ValueAddr
        assert read_back == addr and hash(read_back) == hash(tuple(addr))
        assert read_back.containing_portals == set()  # runtime state is not stored
        assert not hasattr(read_back, "_ready_cache")
    read_task = d["nested"]["args"][0]
    assert type(read_task) is TaskAddr and read_task == task and read_task.strings == ("requests", "f", "a")


# ---------------------------------------------------------------- stores and jokers as JSON parameters

def test_flags_round_trip_through_mixinforge_json() -> None:
    """Every joker and flag has empty params, its class returns the singleton, and loadjs(dumpjs(x)) is x."""
    for flag in FLAGS:
        assert flag.get_params() == {}
        assert type(flag)() is flag
        assert loadjs(dumpjs(flag)) is flag


JSON_PARAM_STORES: dict[str, Callable[[Path], PersiDict]] = {
    "file_dir": lambda tmp: FileDirDict(base_dir=str(tmp / "s"), digest_len=0),
    "file_dir_json": lambda tmp: FileDirDict(base_dir=str(tmp / "s"), serialization_format="json", append_only=True),
    "write_once": lambda tmp: WriteOnceDict(wrapped_dict=FileDirDict(base_dir=str(tmp / "s"), append_only=True),
                                            p_consistency_checks=0),
}


@pytest.mark.parametrize("store_name", sorted(JSON_PARAM_STORES))
def test_stores_round_trip_as_json_params(store_name: str, tmp_path: Path) -> None:
    """``loadjs(dumpjs(store))`` opens the same storage: same type, same params, same content."""
    store = JSON_PARAM_STORES[store_name](tmp_path)
    copy = loadjs(dumpjs(store))
    assert type(copy) is type(store) and copy.get_params() == store.get_params() and copy == store
    store["written", "by"] = "original"
    assert copy["written", "by"] == "original"


def test_portal_round_trips_through_json_params(portal: MiniPortal) -> None:
    """A portal travels as JSON: its root store by params, KEEP_CURRENT as itself, overrides applied."""
    addr = portal.store_value("hello")
    jsparams = update_jsparams(dumpjs(portal), exact_n_workers=2, max_n_workers=KEEP_CURRENT,
                               ancestor_process_id=os.getpid())
    rebuilt = loadjs(jsparams)
    assert isinstance(rebuilt, MiniPortal) and rebuilt.max_n_workers is KEEP_CURRENT
    assert (rebuilt.exact_n_workers, rebuilt.ancestor_process_id) == (2, os.getpid())
    assert rebuilt.base_dir == portal.base_dir
    assert rebuilt.value_store[addr] == "hello"


@pytest.mark.processes
def test_spawned_workers_rebuild_portal_and_drain_queue(portal: MiniPortal, reports: FileDirDict) -> None:
    """Two spawned workers rebuild the portal from JSON and execute every queued request exactly once."""
    numbers = range(12)
    calls = square_requests(portal, numbers)
    jsparams = update_jsparams(dumpjs(portal), exact_n_workers=2, max_n_workers=KEEP_CURRENT,
                               ancestor_process_id=os.getpid())
    worker_ids = ["w1", "w2"]

    exit_codes = cw.run_spawned(cw.portal_worker, [(jsparams, dumpjs(reports), w) for w in worker_ids])

    assert_workers_succeeded(exit_codes, reports, worker_ids)
    for worker_id in worker_ids:
        report = reports[worker_id]
        assert report["is_mini_portal"] and report["exact_n_workers"] == 2
        assert report["keep_current_round_trip"] and report["max_n_workers_is_keep_current"]
    executed = {worker_id: [tuple(key) for key in reports[worker_id]["executed"]] for worker_id in worker_ids}
    every_execution = executed["w1"] + executed["w2"]
    assert sorted(every_execution) == sorted(tuple(call) for call in calls)  # each one exactly once
    for worker_id, keys in executed.items():
        assert all(portal.claims[key] == worker_id for key in keys)
    assert_squares_done(portal, calls, numbers)


# ---------------------------------------------------------------- json exception records, four formats in one folder

def test_json_crash_log_holds_exception_records(tmp_path: Path) -> None:
    """A json, digest_len=0, append-only log keeps exception types and instances and namedtuples as 0.309.0 does."""
    log: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path / "crash_history"), serialization_format="json",
                                        digest_len=0, append_only=True)
    key = ("2026_01_01", "portal_abc_crash")
    error = cw.caught(ZeroDivisionError("division by zero"), note="logged once")
    log[key] = cw.crash_record(error)

    record = log[key]
    assert record["exc_type"] is ZeroDivisionError
    assert type(record["exc_value"]) is ZeroDivisionError
    assert record["exc_value"].args == ("division by zero",) and record["exc_value"].__notes__ == ["logged once"]
    assert record["record"] == ExecutionRecord("square", "crashed", 1)
    assert type(record["record"]) is ExecutionRecord
    # What 0.309.0 reads back (checked by the scenario tests): a traceback is stored as an empty object, and
    # shutil.disk_usage()'s namedtuple cannot be imported by its name ("shutil.usage"), so both stay raw dicts.
    assert record["trace_back"] == {"py/object": "builtins.traceback"}
    assert record["disk_usage"] == {"py/object": "shutil.usage", "py/newargs": {"py/tuple": [100, 40, 60]},
                                    "py/seq": [100, 40, 60]}
    assert os.path.isfile(os.path.join(log.base_dir, *key) + ".json")
    with pytest.raises(MutationPolicyError):
        log[key] = cw.crash_record(error)
    assert log[key]["exc_value"].args == ("division by zero",)


def test_four_formats_share_one_folder(tmp_path: Path) -> None:
    """json, py, txt and pkl sub-dicts share a folder; each sees only its own files; json holds exceptions."""
    base = tmp_path / "run_history"
    omd = OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params={"base_dir": str(base), "digest_len": 0},
                               json={}, py={"base_class_for_values": str}, txt={"base_class_for_values": str},
                               pkl={})
    key = ("f", "call1")
    omd.json[key] = cw.crash_record(cw.caught(ValueError("bad input", 3)))
    omd.py[key] = "def f(x):\n    return x\n"
    omd.txt[key] = "output text"
    omd.pkl[key] = {"result": ValueAddr(5)}
    omd.json["f", "only_json"] = {"exc_type": KeyError}

    assert sorted(os.listdir(base / "f")) == ["call1.json", "call1.pkl", "call1.py", "call1.txt", "only_json.json"]
    assert [len(omd.json), len(omd.py), len(omd.txt), len(omd.pkl)] == [2, 1, 1, 1]
    assert list(omd.txt.keys()) == [key] and "only_json" not in omd.txt.get_subdict("f")
    assert type(omd.json[key]["exc_value"]) is ValueError and omd.json[key]["exc_value"].args == ("bad input", 3)
    assert omd.json["f", "only_json"] == {"exc_type": KeyError}
    assert omd.py[key] == "def f(x):\n    return x\n" and omd.txt[key] == "output text"
    assert type(omd.pkl[key]["result"]) is ValueAddr
    with pytest.raises(TypeError):
        omd.txt["g"] = 5
    omd.pkl.clear()
    assert [len(omd.json), len(omd.py), len(omd.txt), len(omd.pkl)] == [2, 1, 1, 0]


# ---------------------------------------------------------------- stores built from other stores' params

def test_stores_built_from_another_stores_params(tmp_path: Path) -> None:
    """``type(d)(**params)`` with digest_len, append_only, format and base class overrides opens the same folder."""
    root: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path / "root"))
    prototype: Any = root.get_subdict("crash_history")  # a FileDirDict (typed as its FsspecDict base)
    params = prototype.get_params()
    params.update(digest_len=0, append_only=True, serialization_format="json")
    log = type(prototype)(**params)
    text = cw.derived_store(prototype, serialization_format="txt", base_class_for_values=str)

    assert log.base_dir == text.base_dir == prototype.base_dir
    assert (log.digest_len, log.append_only, log.serialization_format) == (0, True, "json")
    assert (text.digest_len, text.append_only, text.base_class_for_values) == (4, False, str)
    assert prototype.get_params()["serialization_format"] == "pkl"  # the copy was changed, not the prototype
    log["k"] = {"a": 1}
    text["k"] = "hello"
    assert sorted(os.listdir(prototype.base_dir)) == [LAYOUT_NAME, "k.json", "k_rtsl.txt"]
    assert (len(prototype), len(log), len(text)) == (0, 1, 1)
    with pytest.raises(MutationPolicyError):
        log["k"] = {}
    with pytest.raises(TypeError):
        text["n"] = 5
    with pytest.raises(TypeError):
        cw.derived_store(prototype, no_such_param=1)


def test_s3_stores_built_from_another_stores_params(bucket: Bucket, tmp_path: Path) -> None:
    """On S3 too: derived BasicS3Dict and S3Dict stores share the prefix, and a portal runs on an S3Dict root."""
    options = bucket.storage_options()
    basic: BasicS3Dict[Any] = BasicS3Dict(bucket_name=bucket.name, root_prefix="portal/basic", storage_options=options)
    log = cw.derived_store(basic, append_only=True, serialization_format="json")
    text = cw.derived_store(basic, serialization_format="txt", base_class_for_values=str)
    cached: S3Dict[Any] = S3Dict(bucket_name=bucket.name, root_prefix="portal/cached",
                                 base_dir=str(tmp_path / "cache"), storage_options=options)
    cached_log = cw.derived_store(cached, digest_len=0, append_only=True, serialization_format="json")

    assert log.root_prefix == text.root_prefix == basic.root_prefix == "portal/basic/"
    assert (cached_log.digest_len, cached_log.append_only, cached_log.root_prefix) == (0, True, "portal/cached/")
    with pytest.raises(TypeError):
        cw.derived_store(basic, digest_len=0)  # BasicS3Dict has no digest_len, as in 0.309.0
    key = ("2026_01_01", "crash")
    for store in (log, cached_log):
        store[key] = cw.crash_record(cw.caught(KeyError("missing")))
        assert store[key]["exc_type"] is KeyError and store[key]["exc_value"].args == ("missing",)
        with pytest.raises(MutationPolicyError):
            store[key] = {}
    text["k"] = "hello"
    with pytest.raises(TypeError):
        text["n"] = 5
    assert (len(basic), len(log), len(text)) == (0, 1, 1)

    portal = MiniPortal(cached)
    calls = square_requests(portal, range(3))
    rebuilt = loadjs(dumpjs(portal))
    assert cw.drain_requests(rebuilt, "solo") != []
    assert_squares_done(portal, calls, range(3))


# ---------------------------------------------------------------- subdict namespaces

ROOTS_FOR_SUBDICTS: dict[str, Callable[[Path], PersiDict]] = {
    "digest0": lambda tmp: FileDirDict(base_dir=str(tmp / "ns"), digest_len=0),
    "digest4": lambda tmp: FileDirDict(base_dir=str(tmp / "ns")),
    "local": lambda tmp: LocalDict(),
}


@pytest.mark.parametrize("root_name", sorted(ROOTS_FOR_SUBDICTS))
def test_subdict_namespaces(root_name: str, tmp_path: Path) -> None:
    """A write through a subdict shows in the parent under the prefixed key, and the other way round."""
    root: Any = ROOTS_FOR_SUBDICTS[root_name](tmp_path)
    sub, deeper = root.get_subdict("ns"), root.get_subdict(("a", "b"))
    sub["k"] = 1
    root["ns", "j"] = 2
    deeper["z"] = 3
    assert root["ns", "k"] == 1 and sub["j"] == 2 and root["a", "b", "z"] == 3
    assert sorted(sub.keys(), key=tuple) == [("j",), ("k",)] and (len(root), len(sub)) == (3, 2)
    assert sorted(root.subdicts()) == ["a", "ns"] and type(sub) is type(root)
    if root_name != "local":
        assert os.path.dirname(sub.base_dir) == root.base_dir
        assert root.get_subdict(()).base_dir == root.base_dir
        assert os.path.basename(sub.base_dir) == {"digest0": "ns", "digest4": "ns_6and"}[root_name]


# ---------------------------------------------------------------- write-once result stores

def test_write_once_rewrites_create_no_files(tmp_path: Path) -> None:
    """3000 re-writes of a content-addressed key never change the value and never write to the folder."""
    wrapped: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path / "results"), digest_len=0, append_only=True)
    results = WriteOnceDict(wrapped_dict=wrapped, p_consistency_checks=0)
    key = ValueAddr(("square", 3))
    results[key] = 9
    path = os.path.join(wrapped.base_dir, *key) + ".pkl"
    before = os.stat(path)

    with cw.WriteWatcher(wrapped.base_dir) as watcher:
        for _ in range(3000):
            results[key] = 9
    results[key] = 10  # a different value is ignored too: p_consistency_checks=0 never compares

    assert watcher.events == []  # no temporary file, rename, link or open for writing
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert data_files(wrapped.base_dir) == [os.path.join(*key) + ".pkl"]
    assert results[key] == 9 and len(results) == 1
    assert results.base_dir == wrapped.base_dir  # forwarded to the wrapped store


def test_write_watcher_sees_a_real_write(tmp_path: Path) -> None:
    """The watcher used above does see a store's first write (so an empty list means something)."""
    wrapped: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path / "results"), digest_len=0, append_only=True)
    with cw.WriteWatcher(wrapped.base_dir) as watcher:
        WriteOnceDict(wrapped_dict=wrapped, p_consistency_checks=0)["k"] = 1
    assert watcher.events != []


@pytest.mark.processes
def test_two_processes_race_to_write_one_result(tmp_path: Path, reports: FileDirDict) -> None:
    """Two spawned racers write the same result keys through WriteOnceDict: both return, one file per key."""
    wrapped: FileDirDict[Any] = FileDirDict(base_dir=str(tmp_path / "results"), digest_len=0, append_only=True)
    results = WriteOnceDict(wrapped_dict=wrapped, p_consistency_checks=0)
    keys = [["f", f"call{i:03d}"] for i in range(100)]
    barrier = get_context("spawn").Barrier(2)
    worker_ids = ["racer1", "racer2"]

    exit_codes = cw.run_spawned(cw.race_worker, [(dumpjs(results), dumpjs(reports), w, keys, barrier)
                                                 for w in worker_ids])

    assert_workers_succeeded(exit_codes, reports, worker_ids)
    assert data_files(wrapped.base_dir) == sorted(os.path.join(*key) + ".pkl" for key in keys)
    assert all(results[key] == cw.race_value(key) for key in keys)


# ---------------------------------------------------------------- random_key work dispatch and bookkeeping

def test_random_key_dispatch_executes_each_request_once(portal: MiniPortal) -> None:
    """random_key() feeds the queue to a claim/execute/discard loop until it returns None."""
    assert portal.execution_requests.random_key() is None
    numbers = range(6)
    calls = square_requests(portal, numbers)
    assert portal.execution_requests.random_key() in calls

    executed = cw.drain_requests(portal, "solo")

    assert sorted(map(tuple, executed)) == sorted(tuple(call) for call in calls)
    late = portal.claims.setdefault_if(calls[0], default_value="late", condition=ETAG_IS_THE_SAME,
                                       expected_etag=ITEM_NOT_AVAILABLE)
    assert not late.condition_was_satisfied and not late.value_was_mutated and late.new_value == "solo"
    assert cw.execute_request(portal, calls[0], "late") is False
    assert_squares_done(portal, calls, numbers)


def test_newest_record_and_queue_bookkeeping(portal: MiniPortal) -> None:
    """timestamp(), newest_values(max_n=1), len(), get() and discard() as a client reads its logs and queue."""
    attempts = portal.run_history.json.get_subdict(("square", "call1", "attempts"))
    for i in range(3):
        if i:
            cw.wait_until_after(attempts.timestamp(f"attempt{i - 1}"))
        attempts[f"attempt{i}"] = {"attempt": i, "record": ExecutionRecord("square", "started", i)}

    assert len(attempts) == 3
    assert attempts.newest_values(max_n=1) == [{"attempt": 2, "record": ExecutionRecord("square", "started", 2)}]
    assert [tuple(k) for k in attempts.newest_keys(max_n=1)] == [("attempt2",)]
    newest = max(attempts.timestamp(k) for k in attempts)
    assert newest == attempts.timestamp("attempt2") and isinstance(newest, float)
    assert attempts.get("attempt9") is None and attempts.get("attempt9", "none") == "none"
    assert attempts.get("attempt0")["attempt"] == 0

    call = portal.request_square(3)
    assert len(portal.execution_requests) == 1 and portal.execution_requests.get(call) == ValueAddr(3)
    assert portal.execution_requests.discard(call) is True
    assert portal.execution_requests.discard(call) is False
    assert portal.execution_requests.delete_if_exists(call) is False
    assert len(portal.execution_requests) == 0 and portal.execution_requests.get(call) is None


# ---------------------------------------------------------------- differential checks against 0.309.0

def run_scenario_ours(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """``client_scenario.py`` under our persidict, the way ``run_reference`` runs it under 0.309.0."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    child_env.update(env, PYTHONPATH=os.pathsep.join([str(REPO), str(DATA_DIR)]))
    with tempfile.TemporaryDirectory(prefix="persidict-ours-") as cwd:
        result = subprocess.run([sys.executable, str(SCRIPTS / SCENARIO), json.dumps(spec)], cwd=cwd,
                                env=child_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{SCENARIO} failed under our persidict:\n{result.stderr}"
    return json.loads(result.stdout)


def run_scenario(side: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The scenario's transcript under ``side`` ("ours" or "reference"), after checking which persidict ran it."""
    if side == "ours":
        output = run_scenario_ours(spec, env)
        assert output["persidict"] != REFERENCE_VERSION
    else:
        output = json.loads(run_reference(SCENARIO, json.dumps(spec), env=env, timeout=600))
        assert output["persidict"] == REFERENCE_VERSION
    return output["transcript"]


@pytest.fixture(scope="module")
def scenario_runs(tmp_path_factory: pytest.TempPathFactory, moto_s3: Any) -> dict[str, Any]:
    """Both implementations play the scenario (local folders and a bucket on the moto server), once per module."""
    bucket_name = moto_s3.new_bucket_name()
    client = boto3.client("s3", endpoint_url=moto_s3.url, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["key"], aws_secret_access_key=CREDENTIALS["secret"])
    client.create_bucket(Bucket=bucket_name)
    env = Bucket(bucket_name, moto_s3.url, client).reference_env()
    workdirs = {side: tmp_path_factory.mktemp(f"scenario-{side}") for side in ("ours", "reference")}
    transcripts = {side: run_scenario(side, {"command": "run", "workdir": str(workdir),
                                             "s3": {"bucket": bucket_name, "root_prefix": side}}, env)
                   for side, workdir in workdirs.items()}
    return {"workdirs": workdirs, "transcripts": transcripts, "env": env}


@pytest.fixture(scope="module")
def reread_transcripts(scenario_runs: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(writer, reader)`` -> what ``reader`` reads in the stores ``writer`` left, for all four pairs."""
    return {(writer, reader): run_scenario(reader, {"command": "reread", "workdir": str(workdir)},
                                           scenario_runs["env"])
            for writer, workdir in scenario_runs["workdirs"].items() for reader in ("ours", "reference")}


@pytest.mark.reference
@pytest.mark.processes
def test_scenario_transcripts_have_every_section(scenario_runs: dict[str, Any]) -> None:
    """Both transcripts hold every section of the scenario (so the per-section comparisons below cover it all)."""
    for transcript in scenario_runs["transcripts"].values():
        assert tuple(transcript) == SCENARIO_SECTIONS


@pytest.mark.reference
@pytest.mark.processes
@pytest.mark.parametrize("section", SCENARIO_SECTIONS)
def test_client_scenario_matches_reference(scenario_runs: dict[str, Any], section: str) -> None:
    """Our persidict shows the client exactly what 0.309.0 shows it, usage by usage."""
    transcripts = scenario_runs["transcripts"]
    assert transcripts["ours"][section] == transcripts["reference"][section]


@pytest.mark.reference
@pytest.mark.processes
@pytest.mark.parametrize("section", REREAD_SECTIONS)
def test_client_stores_read_back_across_implementations(
        reread_transcripts: dict[tuple[str, str], dict[str, Any]], section: str) -> None:
    """Stores the client wrote with either implementation read back the same with both."""
    reference_own = reread_transcripts["reference", "reference"][section]
    assert reference_own != []
    for (writer, reader), transcript in reread_transcripts.items():
        assert transcript[section] == reference_own, f"written by {writer}, read by {reader}"


@pytest.mark.reference
@pytest.mark.processes
def test_json_params_of_0_309_load_in_ours(scenario_runs: dict[str, Any]) -> None:
    """mixinforge JSON written under 0.309.0 (naming its module paths) rebuilds the same portal, store and flags."""
    workdir, env = str(scenario_runs["workdirs"]["reference"]), scenario_runs["env"]
    blobs = run_scenario("reference", {"command": "json_params", "workdir": workdir}, env)
    assert "persidict.write_once_dict" in blobs["store"]  # 0.309.0's module path, which ours must resolve
    loaded = {side: run_scenario(side, {"command": "load_json_params", "workdir": workdir, "blobs": blobs}, env)
              for side in ("ours", "reference")}
    assert loaded["ours"] == loaded["reference"]
