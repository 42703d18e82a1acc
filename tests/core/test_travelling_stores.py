"""Stores travel to worker processes as the parameters that reopen them (docs/pipelines.md#stores-travel-to-workers).

A store is an argument of ``ProcessPoolExecutor`` (spawn and fork) and
``multiprocessing.Pool``; the worker opens the same storage.  Four spawn
workers incrementing one key 25 times each end at exactly 100, on a local
folder and on S3 (a moto server).  Wrappers travel too; a store in one
process's memory refuses, saying why.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from persidict import (
    FileDirDict,
    FsspecDict,
    LocalDict,
    OverlappingMultiDict,
    PersiDict,
    S3Dict,
    WriteOnceDict,
)

from ..servers.moto_s3 import MotoS3
from .travelling_workers import increment, write_and_describe

WORKERS, TIMES = 4, 25
WAIT = 240  # seconds: only a hang reaches it


@pytest.fixture(params=["folder", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> PersiDict[Any]:
    if request.param == "folder":
        return FileDirDict(base_dir=tmp_path / "store", fsync=False)
    server: MotoS3 = request.getfixturevalue("moto_s3")
    return FsspecDict(f"s3://{server.new_bucket_name()}/counters", storage_options=server.storage_options())


@pytest.mark.processes
@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_workers_incrementing_a_store_they_received_lose_no_update(shared_store: PersiDict[Any],
                                                                  start_method: str) -> None:
    context = multiprocessing.get_context(start_method)
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        futures = [pool.submit(increment, shared_store, "counter", TIMES) for _ in range(WORKERS)]
        returned = sum(future.result(timeout=WAIT) for future in futures)
    assert returned == WORKERS * TIMES
    assert shared_store["counter"] == WORKERS * TIMES


@pytest.mark.processes
def test_a_multiprocessing_pool_takes_stores_as_arguments(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap_async(write_and_describe, [(store, f"k{i}", i) for i in range(4)]).get(WAIT)
    assert results == [("FileDirDict", i) for i in range(4)]
    assert dict(store.items()) == {(f"k{i}",): i for i in range(4)}


def _wrappers(tmp_path: Path, server: MotoS3) -> dict[str, Any]:
    folder = FileDirDict(base_dir=tmp_path / "main", fsync=False)
    return {
        "WriteOnceDict": WriteOnceDict(wrapped_dict=FileDirDict(base_dir=tmp_path / "once", append_only=True),
                                       p_consistency_checks=0.5),
        "MutableDictCached": folder.with_local_cache(tmp_path / "cache"),
        "S3Dict": S3Dict(bucket_name=server.new_bucket_name(), root_prefix="p", base_dir=tmp_path / "s3-cache",
                         storage_options=server.storage_options()),
        "subdict": folder.get_subdict(("deep", "er")),
    }


@pytest.mark.processes
def test_wrappers_and_subdicts_travel(tmp_path: Path, moto_s3: MotoS3) -> None:
    stores = _wrappers(tmp_path, moto_s3)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name, store in stores.items():
            kind, read_back = pool.submit(write_and_describe, store, "from-worker", name).result(timeout=WAIT)
            assert kind == type(store).__name__ and read_back == name
            assert store["from-worker"] == name, f"{name}: the worker wrote to the same storage"


def test_a_pickled_store_carries_its_parameters_only(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    store["big"] = "x" * 1_000_000
    assert len(pickle.dumps(store)) < 1_000  # never the content
    omd = OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params={"base_dir": str(tmp_path)},
                               pkl={}, json={})
    assert pickle.loads(pickle.dumps(omd)).pkl["big"] == "x" * 1_000_000


@pytest.mark.parametrize("protocol", ["file", "dir"])
def test_a_subdict_keeps_its_stores_timeout_when_it_travels(tmp_path: Path, protocol: str) -> None:
    if protocol == "file":
        store = FsspecDict(tmp_path.as_uri(), timeout=5)
    else:
        store = FsspecDict("dir://store", storage_options={"path": str(tmp_path), "target_protocol": "file"}, timeout=5)
    subdict = store.get_subdict("a")
    assert subdict.get_params()["timeout"] == 5
    assert pickle.loads(pickle.dumps(subdict)).get_params()["timeout"] == 5


@pytest.mark.parametrize("make", [LocalDict, lambda: FsspecDict("memory://travel")], ids=["LocalDict", "memory-url"])
def test_a_store_in_process_memory_refuses_to_travel(make: Any) -> None:
    with pytest.raises(TypeError, match=r"this process's memory.*FileDirDict.*s3://"):
        pickle.dumps(make())
