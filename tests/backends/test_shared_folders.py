"""Stores in folders other people write to (docs/security.md): links, temporary names, live writers, pruning.

A shared folder may hold what its other users planted: a link to a folder or a
file outside the store, a value whose key looks like a temporary file, a
temporary file of a write in progress.  These tests plant them for real (real
links, real folders, real writer threads and processes) and check that no
operation reaches outside the store, deletes a value, or breaks a live write.
They run on ``FileDirDict``, on a ``file://``-style ``FsspecDict`` (the same
local backend without digest suffixes) and, where the rule applies, on
``dir://`` (fsspec's DirFileSystem over a local folder: the generic backend).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persidict.backends.local as local_backend
from persidict import (
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    BackendError,
    FileDirDict,
    FsspecDict,
    OverlappingMultiDict,
)
from persidict.core.layout import LAYOUT_NAME

TEMP_PREFIX = ".__tmp__"
TWO_HOURS_AGO = time.time() - 7200
JOIN_TIMEOUT = 120  # seconds a helper thread may take before the test fails (never reached when all is well)


def temp_name() -> str:
    """A name of the exact pattern writers use for their temporary files."""
    return TEMP_PREFIX + os.urandom(8).hex()


def age(path: Path | str) -> None:
    os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO))


# --- the stores under test ----------------------------------------------------------------------------
@dataclass
class Kind:
    """How to open a store on a local folder, and where its keys' files really are."""

    name: str
    open: Callable[[Path], Any]
    real_path: Callable[[Any, Path, Any], Path]  # (store, its folder, key) -> the key's file on the local disk


def _dirfs(folder: Path) -> Any:
    return FsspecDict(f"dir://{folder.name}", storage_options={"path": str(folder.parent), "target_protocol": "file",
                                                                 "skip_instance_cache": True})


KINDS = {
    "FileDirDict": Kind("FileDirDict", lambda folder: FileDirDict(base_dir=folder, fsync=False),
                        lambda store, folder, key: Path(store.key_to_path(key))),
    "local-url": Kind("local-url", lambda folder: FsspecDict(str(folder)),
                      lambda store, folder, key: Path(store.key_to_path(key))),
    "dirfs": Kind("dirfs", _dirfs, lambda store, folder, key: Path(store.fs.path) / store.key_to_path(key)),
}
LOCAL_KINDS = ["FileDirDict", "local-url"]


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


@pytest.fixture(params=LOCAL_KINDS)
def local_kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


def all_files(folder: Path) -> set[str]:
    """Every file and link below ``folder`` but the stores' layout records."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*")
            if (path.is_file() or path.is_symlink()) and path.name != LAYOUT_NAME}


# --- 1. keys that look like temporary files are values like any other ----------------------------------
TEMP_LOOKING_KEYS = [
    (TEMP_PREFIX + "0123456789abcdef",),  # our own pattern, before the suffix
    (TEMP_PREFIX + "abcd_123",),           # persidict 0.x's pattern
    (TEMP_PREFIX + "x",),
    ("runs", TEMP_PREFIX + "fedcba9876543210"),
]


def _plant_temp_looking_values(store: Any, folder: Path, kind: Kind) -> dict[Any, str]:
    values = {key: f"value of {'/'.join(key)}" for key in TEMP_LOOKING_KEYS}
    for key, value in values.items():
        store[key] = value
        age(kind.real_path(store, folder, key))
    return values


def test_gc_never_deletes_a_value_whose_key_looks_temporary(kind: Kind, tmp_path: Path) -> None:
    store = kind.open(tmp_path)
    values = _plant_temp_looking_values(store, tmp_path, kind)
    leftover = tmp_path / "runs" / temp_name() if kind.name != "FileDirDict" else tmp_path / temp_name()
    leftover.write_bytes(b"left by a killed writer")
    age(leftover)
    assert store.remove_temporary_files(older_than=3600) == 1
    assert store.remove_temporary_files(older_than=0) == 0
    assert not leftover.exists()
    assert dict(store.items()) == values


OVERLAPPING = {
    "FileDirDict": lambda folder: {"dict_type": FileDirDict, "shared_subdicts_params": {"base_dir": str(folder),
                                                                                         "fsync": False}},
    "FileDirDict digest_len=0": lambda folder: {"dict_type": FileDirDict, "shared_subdicts_params": {
        "base_dir": str(folder), "digest_len": 0, "fsync": False}},
    "dirfs": lambda folder: {"dict_type": FsspecDict, "shared_subdicts_params": {
        "url_or_path": f"dir://{folder.name}", "storage_options": {
            "path": str(folder.parent), "target_protocol": "file", "skip_instance_cache": True}}},
}


@pytest.mark.parametrize("layout", sorted(OVERLAPPING))
def test_clear_of_another_format_keeps_values_whose_keys_look_temporary(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "store"
    omd = OverlappingMultiDict(**OVERLAPPING[layout](folder), pkl={}, json={})
    kind = KINDS["dirfs" if layout == "dirfs" else "FileDirDict"]
    values = _plant_temp_looking_values(omd.pkl, folder, kind)
    omd.json["mine"] = [1]
    omd.json.clear()
    assert len(omd.json) == 0
    assert dict(omd.pkl.items()) == values


def test_a_file_named_like_a_temporary_file_but_not_of_the_pattern_is_left_alone(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    others = [tmp_path / (TEMP_PREFIX + name) for name in ("notes.txt", "ABCDEF0123456789", "0123456789abcdef0")]
    for path in others:
        path.write_bytes(b"someone else's")
        age(path)
    assert store.remove_temporary_files(older_than=0) == 0
    assert all(path.exists() for path in others)


# --- 2. a live writer's temporary file ------------------------------------------------------------------
class PausedWriter:
    """A write in a thread, paused after its temporary file is written (before it moves into place).

    The pause is a hook on ``os.utime``, which a local write calls on its temporary
    file's descriptor just before it moves the file into place; the hook backdates
    the file two hours first, so gc finds it old.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Any, key: Any, value: Any) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self.error: BaseException | None = None
        real_utime = local_backend.os.utime
        writer = threading.Thread(target=self._write, args=(store, key, value))

        def paused_utime(target: Any, *args: Any, **kwargs: Any) -> None:
            real_utime(target, *args, **kwargs)
            if threading.current_thread() is writer and isinstance(target, int) and not self.reached.is_set():
                real_utime(target, (TWO_HOURS_AGO, TWO_HOURS_AGO))
                self.reached.set()
                assert self.go.wait(JOIN_TIMEOUT)

        monkeypatch.setattr(local_backend.os, "utime", paused_utime)
        self.thread = writer
        writer.start()
        assert self.reached.wait(JOIN_TIMEOUT), "the writer never reached its temporary file"

    def _write(self, store: Any, key: Any, value: Any) -> None:
        try:
            store[key] = value
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> None:
        self.go.set()
        self.thread.join(JOIN_TIMEOUT)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob(TEMP_PREFIX + "*") if path.is_file()]


@pytest.mark.parametrize("key", [("big",), ("deep", "er", "big")])
def test_gc_leaves_a_live_writers_temporary_file_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       key: tuple[str, ...]) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    store[key] = "previous"
    big = os.urandom(4 << 20)
    writer = PausedWriter(monkeypatch, store, key, big)
    try:
        assert len(temp_files(tmp_path)) == 1
        assert store.remove_temporary_files(older_than=0) == 0  # however old: its writer holds it
        gc = subprocess.run([sys.executable, "-m", "persidict", "gc", str(tmp_path), "--older-than", "0"],
                            capture_output=True, text=True, timeout=JOIN_TIMEOUT, check=False)
        assert (gc.returncode, gc.stdout) == (0, "removed 0 temporary file(s)\n"), gc.stderr  # another process
        store.clear()  # clear collects old temporary files too
        assert len(temp_files(tmp_path)) == 1
    finally:
        writer.finish()
    assert store[key] == big
    assert temp_files(tmp_path) == []


def test_a_temporary_file_deleted_under_a_writer_is_written_again(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    store["k"] = "previous"
    writer = PausedWriter(monkeypatch, store, "k", "new")
    try:
        for path in temp_files(tmp_path):
            path.unlink()  # someone else's rm, or an old-style gc
    finally:
        writer.finish()
    assert store["k"] == "new"
    assert temp_files(tmp_path) == []


def _delete_every_temporary_file_when_written(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[int]:
    """A hook on os.utime that deletes the write's temporary file each time (someone keeps deleting it)."""
    real_utime = local_backend.os.utime
    deleted: list[int] = []

    def utime_then_delete(target: Any, *args: Any, **kwargs: Any) -> None:
        real_utime(target, *args, **kwargs)
        for path in temp_files(folder):
            path.unlink()
            deleted.append(1)

    monkeypatch.setattr(local_backend.os, "utime", utime_then_delete)
    return deleted


@pytest.mark.parametrize("conditional", [False, True])
def test_a_writer_whose_temporary_file_keeps_vanishing_fails_cleanly(tmp_path: Path, conditional: bool,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    store["k"] = "previous"
    etag = store.etag("k")
    deleted = _delete_every_temporary_file_when_written(monkeypatch, tmp_path)
    with pytest.raises(BackendError) as info:
        if conditional:
            store.set_item_if("k", value="new", condition=ETAG_IS_THE_SAME, expected_etag=etag)
        else:
            store["k"] = "new"
    assert len(deleted) > 1  # it wrote again each time
    assert not isinstance(info.value, FileNotFoundError) and info.value.operation == "write"
    monkeypatch.undo()
    assert store["k"] == "previous" and store.etag("k") == etag


def test_generic_writer_whose_temporary_file_is_deleted_writes_again(tmp_path: Path) -> None:
    store = _dirfs(tmp_path / "store")
    store["k"] = "previous"
    fs = store.fs
    real_mv = fs.mv
    deleted: list[str] = []

    def mv_after_someone_deleted(source: str, target: str, *args: Any, **kwargs: Any) -> Any:
        if len(deleted) < 2:
            fs.rm_file(source)
            deleted.append(source)
        return real_mv(source, target, *args, **kwargs)

    fs.mv = mv_after_someone_deleted
    store["k"] = "new"
    assert len(deleted) == 2 and store["k"] == "new"
    fs.mv = lambda source, *args, **kwargs: (fs.rm_file(source), real_mv(source, *args, **kwargs))
    with pytest.raises(BackendError) as info:
        store["k"] = "newer"
    assert info.value.operation == "write" and not isinstance(info.value, FileNotFoundError)
    fs.mv = real_mv
    assert store["k"] == "new"
    assert all_files(tmp_path) == {"store/k.pkl"}


# --- 3. links below the root are never followed ---------------------------------------------------------
@dataclass
class Planted:
    """A store in a shared folder where someone planted links to files outside it."""

    store: Any
    root: Path
    outside: Path
    dir_link: Path    # where the folder of keys ("link", ...) would be: a link to outside/folder
    file_link: Path   # where the value of "innocent" would be: a link to outside/secret.pkl
    temp_link: Path   # a link named like a temporary file, to outside/victim

    def snapshot(self) -> dict[str, bytes]:
        """Every file outside the store, with its content."""
        return {str(path.relative_to(self.outside)): path.read_bytes()
                for path in sorted(self.outside.rglob("*")) if path.is_file()}


@pytest.fixture
def planted(kind: Kind, tmp_path: Path) -> Planted:
    return plant(kind, tmp_path)


def plant(kind: Kind, tmp_path: Path) -> Planted:
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    root = tmp_path / "shared"
    root.mkdir()
    store = kind.open(root)
    store["ordinary"] = "mine"
    dir_link = kind.real_path(store, root, ("link", "x")).parent
    file_link = kind.real_path(store, root, ("innocent",))
    (outside / "folder" / kind.real_path(store, root, ("link", "x")).name).write_bytes(pickle.dumps("outside value"))
    outside_temp = outside / "folder" / temp_name()
    outside_temp.write_bytes(b"an outside file named like a temporary file")
    age(outside_temp)
    (outside / "secret.pkl").write_bytes(pickle.dumps("the secret"))
    (outside / "victim").write_bytes(b"an outside file")
    age(outside / "victim")
    dir_link.symlink_to(outside / "folder", target_is_directory=True)
    file_link.symlink_to(outside / "secret.pkl")
    temp_link = root / temp_name()
    temp_link.symlink_to(outside / "victim")
    os.utime(temp_link, (TWO_HOURS_AGO, TWO_HOURS_AGO), follow_symlinks=False)
    return Planted(store, root, outside, dir_link, file_link, temp_link)


def _refused(action: Callable[[], Any], link: Path) -> None:
    with pytest.raises(BackendError) as info:
        action()
    named = f"{link.parent.name}/{link.name}"  # a local path, or the path in a dir:// filesystem
    assert named in str(info.value) and "symbolic link" in str(info.value)


def _check(condition: bool) -> None:
    assert condition


def _raises(error: type[BaseException], action: Callable[[], Any]) -> None:
    with pytest.raises(error):
        action()


THROUGH_THE_FOLDER_LINK: dict[str, Callable[[Planted], None]] = {
    "get": lambda p: _raises(KeyError, lambda: p.store["link", "x"]),
    "get default": lambda p: _check(p.store.get(("link", "x"), "absent") == "absent"),
    "in": lambda p: _check(("link", "x") not in p.store),
    "get_with_etag": lambda p: _check(p.store.get_with_etag(("link", "x")).actual_etag is ITEM_NOT_AVAILABLE),
    "etag": lambda p: _raises(KeyError, lambda: p.store.etag(("link", "x"))),
    "timestamp": lambda p: _raises(KeyError, lambda: p.store.timestamp(("link", "x"))),
    "set": lambda p: _refused(lambda: p.store.__setitem__(("link", "x"), "overwritten"), p.dir_link),
    "set new key": lambda p: _refused(lambda: p.store.__setitem__(("link", "new"), "planted"), p.dir_link),
    "insert if absent": lambda p: _refused(lambda: p.store.setdefault_if(
        ("link", "new"), default_value=1, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE), p.dir_link),
    "update": lambda p: _raises(BackendError, lambda: p.store.update({("link", "x"): 1})),
    "del": lambda p: _raises(KeyError, lambda: p.store.__delitem__(("link", "x"))),
    "discard": lambda p: _check(p.store.discard(("link", "x")) is False),
    "pop": lambda p: _check(p.store.pop(("link", "x"), "absent") == "absent"),
    "transform_item": lambda p: _refused(lambda: p.store.transform_item(("link", "x"), transformer=lambda v: 1),
                                         p.dir_link),
    "get_subdict": lambda p: _refused(lambda: p.store.get_subdict("link"), p.dir_link),
    "get_many": lambda p: _check(p.store.get_many([("link", "x"), "ordinary", ("link", "y")], "-")
                                 == ["-", "mine", "-"]),
}
IN_THE_ROOT: dict[str, Callable[[Planted], None]] = {
    "keys, len, values, items": lambda p: _check(
        list(p.store.keys()) == [("ordinary",)] and len(p.store) == 1 and list(p.store.values()) == ["mine"]
        and dict(p.store.items()) == {("ordinary",): "mine"}),
    "timestamps": lambda p: _check([key for key, _ in p.store.keys_and_timestamps()] == [("ordinary",)]),
    "get the file link": lambda p: _raises(KeyError, lambda: p.store["innocent"]),
    "get_many with the file link": lambda p: _check(p.store.get_many(["innocent", "ordinary"], "-") == ["-", "mine"]),
    "in the file link": lambda p: _check("innocent" not in p.store),
    "etag of the file link": lambda p: _raises(KeyError, lambda: p.store.etag("innocent")),
    "set the file link": lambda p: _refused(lambda: p.store.__setitem__("innocent", "x"), p.file_link),
    "insert the file link": lambda p: _refused(lambda: p.store.setdefault_if(
        "innocent", default_value=1, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE), p.file_link),
    "del the file link": lambda p: _raises(KeyError, lambda: p.store.__delitem__("innocent")),
    "gc": lambda p: _check(p.store.remove_temporary_files(older_than=0) == 0),
    "clear": lambda p: _check(p.store.clear() is None and len(p.store) == 0),
    "random_key": lambda p: _check(p.store.random_key() == ("ordinary",)),
}


@pytest.mark.parametrize("operation", sorted(THROUGH_THE_FOLDER_LINK) + sorted(IN_THE_ROOT))
def test_no_operation_reaches_outside_through_a_planted_link(planted: Planted, operation: str) -> None:
    before = planted.snapshot()
    {**THROUGH_THE_FOLDER_LINK, **IN_THE_ROOT}[operation](planted)
    assert planted.snapshot() == before, "a file outside the store was created, changed or deleted"
    assert planted.dir_link.is_symlink() and planted.file_link.is_symlink() and planted.temp_link.is_symlink()
    assert not (planted.outside / "folder" / "new").exists()


SUBDICT_OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "get": lambda sub: _raises(KeyError, lambda: sub["x"]),
    "in": lambda sub: _check("x" not in sub),
    "set": lambda sub: _raises(BackendError, lambda: sub.__setitem__("x", "overwritten")),
    "del": lambda sub: _raises(KeyError, lambda: sub.__delitem__("x")),
    "listing": lambda sub: _check(list(sub.keys()) == [] and len(sub) == 0),
    "clear": lambda sub: sub.clear(),
    "gc": lambda sub: _check(sub.remove_temporary_files(older_than=0) == 0),
}


@pytest.mark.parametrize("operation", sorted(SUBDICT_OPERATIONS))
def test_a_subdict_whose_folder_became_a_link_reaches_nothing_outside(kind: Kind, tmp_path: Path,
                                                                      operation: str) -> None:
    planted = plant(kind, tmp_path)
    sub = planted.store.get_subdict("p")
    sub["y"] = 1
    folder = kind.real_path(planted.store, planted.root, ("p", "y")).parent
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.symlink_to(planted.outside / "folder", target_is_directory=True)  # swapped after the subdict opened
    (planted.outside / "folder" / kind.real_path(sub, folder, ("x",)).name).write_bytes(pickle.dumps("outside"))
    before = planted.snapshot()
    SUBDICT_OPERATIONS[operation](sub)
    assert planted.snapshot() == before
    assert folder.is_symlink()


@pytest.mark.parametrize("where", ["root is a link", "root lies below a link"])
def test_a_symlinked_root_keeps_working(local_kind: Kind, tmp_path: Path, where: str) -> None:
    real = tmp_path / "real"
    real.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    root = alias if where == "root is a link" else alias / "store"
    store = local_kind.open(root)
    store["a"] = 1
    store["deep", "er", "b"] = 2
    sub = store.get_subdict("deep")
    sub["c"] = 3
    assert dict(store.items()) == {("a",): 1, ("deep", "er", "b"): 2, ("deep", "c"): 3}
    assert ("deep", "er", "b") in store and sub["er", "b"] == 2 and len(store) == 3
    leftover = Path(local_kind.real_path(store, root, ("deep", "er", "b"))).parent / temp_name()
    leftover.write_bytes(b"x")
    age(leftover)
    assert store.remove_temporary_files() == 1
    del store["deep", "er", "b"]
    assert store.get_with_etag("a").new_value == 1
    store.clear()
    assert len(store) == 0 and root.is_dir() and real.is_dir()


def test_a_fifo_planted_as_a_value_is_no_value_and_does_not_block(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    os.mkfifo(store.key_to_path("fifo"))
    outcome: list[Any] = []

    def read() -> None:
        outcome.append(store.get("fifo", "absent"))
        outcome.append("fifo" in store)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(JOIN_TIMEOUT)
    assert outcome == ["absent", False]
    assert list(store.keys()) == []


# --- 4. deletes prune the folders they empty -----------------------------------------------------------
def folders_below(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_dir()]


def test_the_folder_count_returns_to_zero_after_deletes(local_kind: Kind, tmp_path: Path) -> None:
    store = local_kind.open(tmp_path)
    keys = [(f"user{i % 7}", f"run{i}", "result") for i in range(60)] + [("a", "b", "c", "d", "e")]
    for key in keys:
        store[key] = 1
    assert len(folders_below(tmp_path)) > 60
    for key in keys:
        del store[key]
    assert folders_below(tmp_path) == []
    sub = store.get_subdict(("s", "t"))
    sub["k"] = 1
    del sub["k"]  # a subdict prunes up to its own root, never the root itself
    sub_root = local_kind.real_path(sub, tmp_path, ("k",)).parent
    assert sorted(folders_below(tmp_path)) == [sub_root.parent, sub_root]


def test_a_delete_keeps_folders_that_still_hold_something(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    other = FileDirDict(base_dir=tmp_path, serialization_format="json", fsync=False)
    store["a", "b", "k"] = 1
    other["a", "j"] = 2
    del store["a", "b", "k"]
    assert other["a", "j"] == 2
    assert [path.name for path in folders_below(tmp_path)] == [os.path.basename(os.path.dirname(
        other.key_to_path(("a", "j"))))]


def test_a_writer_whose_folder_is_pruned_under_it_writes_again(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    folder = Path(store.key_to_path(("a", "b", "k"))).parent
    real_open = local_backend.os.open
    pruned: list[str] = []

    def open_after_a_prune(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        # A delete elsewhere empties and removes the write's folder just before its temporary file is created.
        if isinstance(path, str) and path.startswith(TEMP_PREFIX) and len(pruned) < 3:
            os.rmdir(folder)
            os.rmdir(folder.parent)
            pruned.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(local_backend.os, "open", open_after_a_prune)
    store["a", "b", "k"] = "value"
    assert len(pruned) == 3
    assert store["a", "b", "k"] == "value"
    assert temp_files(tmp_path) == []


@pytest.mark.processes
def test_concurrent_creators_and_deleters_in_one_folder_tree(tmp_path: Path) -> None:
    # Four processes write and delete unique keys below one shared folder: a delete that empties
    # it removes it while the others are creating their folders in it (on this machine about one
    # write in ten finds a folder of its path gone and writes again).  No write may fail or lose
    # its value, and once every key is gone, so is every folder.
    from .test_local_races import Workers

    workers = Workers("churn", [{"base_dir": str(tmp_path), "worker_id": n, "rounds": 300} for n in range(4)])
    try:
        results = workers.release()
        workers.finish()
    except BaseException:
        workers.kill()
        raise
    assert [result["bad"] for result in results] == [0, 0, 0, 0]
    store = FileDirDict(base_dir=tmp_path, fsync=False)
    kept = {tuple(key): value for result in results for key, value in result["kept"]}
    assert len(kept) == 4 * 30 and dict(store.items()) == kept
    for key in kept:
        del store[key]
    assert folders_below(tmp_path) == []
