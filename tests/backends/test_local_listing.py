"""Listings of a local folder that holds junk besides its keys: every listing names exactly the keys.

``keys()`` and ``len()`` parse names folder by folder, ``keys_and_timestamps()`` file by file
(docs/big-values.md#big-stores); whatever a user or another tool left in the folder, they must agree.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import pickle
import time
from collections.abc import Iterator

import pytest

import persidict.backends.local as local_backend
import persidict.backends.local_counts as local_counts
from persidict import BackendError, FileDirDict
from persidict.backends.temporary import new_temporary_name

KEYS = [("a",), ("run_1",), ("x.y",), ("f", "b"), ("f", "g", "c"), ("F", "b")]


def suffix_of(s: str, n: int) -> str:
    """The digest suffix, computed independently of the package (docs/concepts.md#digest-suffixes)."""
    return "_" + base64.b32encode(hashlib.md5(s.encode("utf-8")).digest()).decode()[:n].lower() if n else ""


def _write(path: str, data: bytes = b"junk") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)


def _plant(d: FileDirDict, digest_len: int, outside: str) -> None:
    """Files and folders that are no key's, in the root and in a key's folder."""
    root, folder = d.base_dir, os.path.dirname(d.key_to_path(("f", "b")))
    name = lambda s: s + suffix_of(s, digest_len)  # a component's name on disk
    for where in (root, folder):
        if digest_len:
            _write(os.path.join(where, "forged" + "_" + "a" * digest_len + ".pkl"))  # a wrong digest suffix
            _write(os.path.join(where, name("a") + suffix_of(name("a"), digest_len) + ".pkl"))  # ends in its own
        _write(os.path.join(where, name("a") + ".json"))  # another format
        _write(os.path.join(where, name("a") + ".pkl.bak"))
        _write(os.path.join(where, name("b c") + ".pkl"))  # unsafe characters
        _write(os.path.join(where, name(".") + ".pkl"))  # a reserved name
        _write(os.path.join(where, new_temporary_name()))  # a writer's temporary file
        _write(os.path.join(where, "junk dir", name("j") + ".pkl"))  # a folder that is no key's
        if digest_len:
            _write(os.path.join(where, "junk_" + "a" * digest_len, name("j") + ".pkl"))  # a forged folder
        os.makedirs(os.path.join(where, name("dir") + ".pkl", name("k") + ".pkl"))  # a folder named like a file
        _write(os.path.join(outside, "v.pkl"))
        os.symlink(os.path.join(outside, "v.pkl"), os.path.join(where, name("linked") + ".pkl"))
        os.symlink(outside, os.path.join(where, name("linkdir")), target_is_directory=True)
        os.mkfifo(os.path.join(where, name("fifo") + ".pkl"))


@pytest.mark.parametrize("digest_len", [0, 3, 4, 8])
def test_every_listing_names_exactly_the_keys(tmp_path, digest_len):
    d = FileDirDict(base_dir=str(tmp_path / "store"), digest_len=digest_len, fsync=False)
    for i, key in enumerate(KEYS):
        d[key] = i
    outside = str(tmp_path / "outside")
    _write(os.path.join(outside, "v" + suffix_of("v", digest_len) + ".pkl"))
    _plant(d, digest_len, outside)
    expected = {key: i for i, key in enumerate(KEYS)}
    fresh = FileDirDict(base_dir=d.base_dir, digest_len=digest_len, fsync=False)  # no memo of what d wrote
    for store in (d, fresh):
        assert sorted(store.keys()) == sorted(expected)
        assert len(store) == len(expected)
        assert dict(store.items()) == expected
        assert sorted(key for key, _ in store.keys_and_timestamps()) == sorted(expected)
        assert sorted(store.values()) == sorted(expected.values())


def test_a_store_of_many_folders_and_keys_counts_and_lists_each_once(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    keys = {(f"folder{i % 7}", f"key{i}") for i in range(700)} | {(f"top{i}",) for i in range(50)}
    for key in keys:
        d[key] = 0
    _write(os.path.join(os.path.dirname(d.key_to_path(("folder3", "x"))), "key3_zzzz.pkl"))
    assert len(d) == len(keys)
    assert set(d.keys()) == keys and sum(1 for _ in d.keys()) == len(keys)
    del d["folder3", "key3"]
    assert len(d) == len(keys) - 1
    assert ("folder3", "key3") not in set(d.keys())


# --- len() counts again only the folders changed since its last count ---------------------------------
def _settle(root: str) -> None:
    """Date every folder below ``root`` an hour back, as a folder left alone for a while is."""
    past = time.time() - 3600
    for folder, _dirs, _files in os.walk(root):
        os.utime(folder, (past, past))


def test_len_follows_every_change_of_a_settled_store(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path / "store"), fsync=False)
    for i in range(40):
        d[f"folder{i % 4}", f"key{i}"] = i
    d["top"] = 0
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(b"x")
    folder = os.path.dirname(d.key_to_path(("folder1", "x")))
    changes = [
        lambda: d.__setitem__(("folder1", "new"), 1),
        lambda: d.__delitem__(("folder2", "key2")),
        lambda: _write(os.path.join(folder, "forged_aaaa.pkl")),
        lambda: os.symlink(outside, d.key_to_path(("folder1", "linked"))),
        lambda: os.replace(d.key_to_path(("folder1", "key1")), d.key_to_path(("folder1", "moved"))),
        lambda: d.__setitem__(("folder9", "deeper", "key"), 1),  # a new folder below a settled one
        lambda: [d.__delitem__(key) for key in list(d.keys()) if key[0] == "folder3"],  # a folder removed
        lambda: d.__setitem__("top2", 1),
    ]
    for change in changes:
        _settle(d.base_dir)
        assert len(d) == sum(1 for _ in d.keys())  # counted, and remembered: the folders are settled
        change()
        assert len(d) == sum(1 for _ in d.keys())


def test_a_change_hidden_from_the_mtime_is_still_counted(tmp_path):
    # A folder's mtime set back after a change (as a coarse clock tick can leave it): its ctime moved.
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    d["a", "b"] = 1
    _settle(d.base_dir)
    folder = os.path.dirname(d.key_to_path(("a", "b")))
    before = os.stat(folder)
    assert len(d) == 1
    d["a", "c"] = 2
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert len(d) == 2


def test_a_settled_folder_is_not_listed_again_by_len(tmp_path, scanned, monkeypatch):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    for i in range(30):
        d[f"folder{i % 3}", f"key{i}"] = i
    _settle(d.base_dir)
    assert len(d) == 30
    scanned.clear()
    d["folder1", "new"] = 1
    assert len(d) == 31
    assert scanned == [os.path.dirname(d.key_to_path(("folder1", "new")))]  # only the changed folder
    scanned.clear()
    monkeypatch.setattr(local_counts.FolderCounts, "SETTLE_SECONDS", 3600)  # "a moment" however slow the machine
    recent = FileDirDict(base_dir=str(tmp_path / "recent"), fsync=False)
    recent["f", "k"] = 1
    assert len(recent) == len(recent) == 1
    assert len(scanned) == 4  # folders changed a moment ago are never remembered: listed each time


# --- a store object lists its folders again by looking their names up -----------------------------
def test_a_store_listing_again_sees_every_change(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    for i in range(60):
        d[f"folder{i % 3}", f"key{i}"] = i
    folder = os.path.dirname(d.key_to_path(("folder1", "x")))
    changes = [
        lambda: _write(os.path.join(folder, "forged_aaaa.pkl")),  # junk in a folder listed before
        lambda: d.__delitem__(("folder1", "key1")),
        lambda: os.remove(os.path.join(folder, "forged_aaaa.pkl")),
        lambda: d.__setitem__(("folder1", "key1"), 1),
        lambda: os.replace(d.key_to_path(("folder2", "key2")), d.key_to_path(("folder2", "renamed"))),
        lambda: os.symlink(d.key_to_path(("folder0", "key0")), d.key_to_path(("folder0", "link"))),
        lambda: d.clear(),
    ]
    for change in changes:
        assert sorted(d.keys()) == sorted(FileDirDict(base_dir=str(tmp_path), fsync=False).keys())
        change()
        listed = sorted(d.keys())
        assert listed == sorted(FileDirDict(base_dir=str(tmp_path), fsync=False).keys())
        assert len(d) == len(listed)


def test_deleted_keys_leave_no_trace_in_the_listing_memo(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    for i in range(100):
        d[f"folder{i % 4}", f"key{i}"] = i
    assert sum(1 for _ in d.keys()) == 100
    for i in range(100):
        del d[f"folder{i % 4}", f"key{i}"]
    assert len(d._files._listed) == 0


# --- values of one folder are read through its descriptor, opened once ---------------------------------
def test_many_reads_see_a_folder_made_again_while_they_run(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    d["f", "a"], d["f", "b"] = 1, 2
    reads = d._files.backend.read_many([d.key_to_path(("f", "a")), d.key_to_path(("f", "b"))])
    assert pickle.loads(next(reads)[1]) == 1  # the folder is open now
    del d["f", "a"], d["f", "b"]  # its last key gone, the folder goes
    d["f", "b"] = 3  # and is made again
    assert pickle.loads(next(reads)[1]) == 3


def test_values_and_get_many_read_each_folder_as_it_is(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    expected = {(f"folder{i % 3}", f"key{i}"): i for i in range(30)} | {("top",): -1}
    d.update(expected)
    _write(os.path.join(os.path.dirname(d.key_to_path(("folder1", "x"))), "forged_aaaa.pkl"))
    assert dict(d.items()) == expected
    assert sorted(d.values()) == sorted(expected.values())
    keys = [*expected, ("folder1", "absent"), ("nowhere", "absent")]
    assert d.get_many(keys, "-") == [*expected.values(), "-", "-"]


def test_a_folder_that_fails_to_open_mid_read_closes_each_descriptor_once(tmp_path, monkeypatch):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    d["f", "a"], d["g", "b"] = 1, 2
    backend = d._files.backend
    opened = backend._open_folder

    def failing_second(path: str) -> int | None:
        if path.endswith(os.path.dirname(d.key_to_path(("g", "b")))):
            raise OSError(errno.EIO, "the disk failed", path)
        return opened(path)

    closed: list[int] = []
    real_close = os.close
    monkeypatch.setattr(backend, "_open_folder", failing_second)
    monkeypatch.setattr(local_backend.os, "close", lambda fd: closed.append(fd) or real_close(fd))
    with pytest.raises(OSError, match="the disk failed"):
        list(backend.read_many([d.key_to_path(("f", "a")), d.key_to_path(("g", "b"))]))
    assert len(closed) == len(set(closed))  # a number closed twice may be another thread's file by then


@pytest.mark.parametrize(("primitive", "operation"), [("walk_folders", "list"), ("read_many", "read")])
def test_values_name_what_failed_the_listing_or_the_read(tmp_path, monkeypatch, primitive, operation):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    d["f", "a"] = 1

    def failing(*args: object) -> Iterator[object]:
        raise OSError(errno.EIO, "the disk failed")
        yield  # a generator, as the primitive is

    monkeypatch.setattr(d._files.backend, primitive, failing)
    with pytest.raises(BackendError) as info:
        list(d.values())
    assert info.value.operation == operation
