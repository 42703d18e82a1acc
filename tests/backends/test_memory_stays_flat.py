"""A process that churns keys keeps no trace of them: every table persidict keeps for a key goes with it.

``LocalDict`` once kept a per-folder counter for every folder it ever
emptied (200,002 entries after 200,000 unique keys were set and deleted,
RSS from 29 to 95 MiB).  Here, after keys are set and deleted (one by one,
by ``pop``, by conditional deletes, by ``clear``), every internal table is
back to empty: the folder counters, the store's path memo, its memo of key
names met in listings and the memo of normalized keys.  The RSS figure
itself is measured in a child process by ``benchmarks/bench_memory_churn.py``,
never asserted here.

The lock and ETag counter of a memory store live in a module-level registry
keyed by the store, not on fsspec's classes: a private store's entry goes
with it, and fsspec's global ``memory://`` store gets one that no class
attribute holds.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from persidict import ETAG_IS_THE_SAME, FsspecDict, LocalDict
from persidict.backends import memory as memory_module
from persidict.keys import tuples as tuples_module

CHURN = 2_000


def _tables(d: FsspecDict[Any]) -> dict[str, int]:
    """The size of every table that could keep a trace of a deleted key."""
    return {
        "folder counters": len(d._backend._store.counts),
        "path memo": len(d._files._paths),
        "key names met in listings": len(d._files._keys_of_files),
        "normalized keys": len(tuples_module._TUPLE_KEYS) + len(tuples_module._STR_KEYS),
        "values": len(d._backend._store),
    }


def _conditional_delete(d: FsspecDict[Any], key: tuple[str, ...]) -> None:
    assert d.discard_if(key, condition=ETAG_IS_THE_SAME, expected_etag=d.etag(key)).condition_was_satisfied


DELETES: dict[str, Callable[[FsspecDict[Any], tuple[str, ...]], Any]] = {
    "del": lambda d, key: d.__delitem__(key),
    "pop": lambda d, key: d.pop(key),
    "discard": lambda d, key: d.discard(key),
    "discard_if": _conditional_delete,
}


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A fresh path on fsspec's global memory store, removed afterwards."""
    url = f"memory://persidict-flat-tests/{uuid.uuid4().hex}"
    yield url
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


@pytest.fixture(autouse=True)
def _empty_key_memos() -> None:
    """The key memos are process-wide: start from empty ones, so what a test leaves is its own."""
    tuples_module._TUPLE_KEYS.clear()
    tuples_module._STR_KEYS.clear()


@pytest.mark.parametrize("delete", sorted(DELETES))
def test_keys_set_and_deleted_leave_every_table_empty(delete: str) -> None:
    d: LocalDict[Any] = LocalDict()
    for i in range(CHURN):
        key = ("tenant", f"job{i}", "result")  # every key in a folder of its own
        d[key] = i
        assert ("tenant", f"job{i}", "result") in d
        DELETES[delete](d, key)
    assert len(d) == 0
    assert _tables(d) == dict.fromkeys(_tables(d), 0)


def test_keys_listed_then_cleared_leave_every_table_empty() -> None:
    d: LocalDict[Any] = LocalDict()
    d.update({("batch", f"b{i % 7}", f"item{i}"): i for i in range(CHURN)})
    assert len(list(d.keys())) == CHURN  # a listing meets every file name
    d.clear()
    assert _tables(d) == dict.fromkeys(_tables(d), 0)


def test_a_subdict_churning_its_keys_leaves_its_parent_counters_empty() -> None:
    d: LocalDict[Any] = LocalDict()
    sub = d.get_subdict(("users", "alice"))
    for i in range(CHURN):
        sub[f"session{i}", "state"] = i
        del sub[f"session{i}", "state"]
    assert len(d) == 0 and len(sub) == 0
    assert _tables(sub) == dict.fromkeys(_tables(sub), 0)
    assert d._backend._store.counts == {}


def test_a_folder_still_holding_a_value_keeps_its_counter() -> None:
    d: LocalDict[Any] = LocalDict()
    d["a", "kept"] = 1
    d["a", "gone"] = 2
    del d["a", "gone"]
    assert d._backend._store.counts == {("", ".pkl"): 1, ("/a", ".pkl"): 1}
    assert len(d) == 1 and len(d.get_subdict("a")) == 1


def test_memory_state_is_not_kept_on_fsspec_classes(memory_url: str) -> None:
    FsspecDict(memory_url)["k"] = 1
    LocalDict()["k"] = 1
    for cls in type.mro(MemoryFileSystem):
        assert not any("persidict" in name for name in vars(cls)), f"{cls.__name__} carries persidict state"
    assert id(MemoryFileSystem.store) in memory_module._STATES


def test_a_private_store_takes_its_state_with_it() -> None:
    d: LocalDict[Any] = LocalDict()
    d["k"] = 1
    store = id(d._backend._store)
    assert memory_module._STATES[store][1] is d._backend._state
    del d
    gc.collect()
    assert store not in memory_module._STATES


def test_stores_on_the_global_memory_store_share_one_lock_and_counter(memory_url: str) -> None:
    first, second = FsspecDict(memory_url), FsspecDict(f"{memory_url}-other")
    assert first._backend._state is second._backend._state
    first["k"] = 1
    second["k"] = 2
    assert int(second.etag("k")) > int(first.etag("k"))  # one counter: ETags never repeat across them
