"""len() of a local store, remembered on this machine between processes (backends/local_counts.py).

A new store object has nothing in memory, as a new process has not: what it knows of an
earlier count comes from the machine cache's record, and each folder's stat decides whether
that record still holds for it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import persidict.backends.local_counts as local_counts
from persidict import FileDirDict


def _settle(root: str) -> None:
    """Date every folder below ``root`` an hour back, as a folder left alone for a while is."""
    past = time.time() - 3600
    for folder, _dirs, _files in os.walk(root):
        os.utime(folder, (past, past))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine cache of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PERSIDICT_CACHE_DIR", str(folder))
    return folder


def _store(root: Path, **params: Any) -> FileDirDict:
    return FileDirDict(base_dir=str(root), fsync=False, **params)


def _filled(root: Path, count: int = 60, **params: Any) -> FileDirDict:
    d = _store(root, **params)
    for i in range(count):
        d[f"folder{i % 3}", f"key{i}"] = i
    d["top"] = 0
    _settle(d.base_dir)
    return d


def _records(cache: Path) -> list[Path]:
    return sorted((cache / "counts").glob("*/*.json"))


def test_a_new_store_object_counts_an_unchanged_store_without_listing_it(tmp_path, cache, scanned):
    assert len(_filled(tmp_path / "store")) == 61
    assert len(scanned) == 4 and len(_records(cache)) == 1
    scanned.clear()
    assert len(_store(tmp_path / "store")) == 61  # nothing in memory: the record answers
    assert scanned == []


def test_a_change_made_after_the_record_is_counted(tmp_path, cache, scanned):
    d = _filled(tmp_path / "store")
    assert len(d) == 61
    changed = os.path.dirname(d.key_to_path(("folder1", "x")))
    d["folder1", "new"] = 1  # by another writer, as far as the next store object knows
    scanned.clear()
    assert len(_store(tmp_path / "store")) == 62
    assert scanned == [changed]  # only the folder that changed is listed again
    del d["folder2", "key2"]
    os.symlink(d.key_to_path(("folder0", "key0")), d.key_to_path(("folder0", "linked")))  # a link is no key
    assert len(_store(tmp_path / "store")) == 61 == sum(1 for _ in d.keys())


def test_a_folder_changed_under_a_settled_mtime_is_counted(tmp_path, cache):
    d = _filled(tmp_path / "store")
    assert len(d) == 61
    folder = os.path.dirname(d.key_to_path(("folder1", "x")))
    before = os.stat(folder)
    d["folder1", "new"] = 1
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime set back: the ctime moved
    assert len(_store(tmp_path / "store")) == 62


def test_a_removed_folder_leaves_the_record(tmp_path, cache):
    d = _filled(tmp_path / "store")
    assert len(d) == 61
    for i in range(0, 60, 3):
        del d["folder0", f"key{i}"]  # its last key gone, the folder goes too
    assert not os.path.exists(os.path.dirname(d.key_to_path(("folder0", "x"))))
    _settle(d.base_dir)
    assert len(_store(tmp_path / "store")) == 41
    (record,) = _records(cache)
    folders = json.loads(record.read_text())["folders"]
    assert all("folder0" not in relative for relative in folders)


def test_stores_that_count_differently_keep_records_of_their_own(tmp_path, cache):
    pickles = _filled(tmp_path / "store")
    texts = _store(tmp_path / "store", serialization_format="json")
    texts["folder1", "a"] = texts["b"] = 1
    _settle(pickles.base_dir)
    assert (len(pickles), len(texts)) == (61, 2)
    assert len(_records(cache)) == 2
    assert (len(_store(tmp_path / "store")), len(_store(tmp_path / "store", serialization_format="json"))) == (61, 2)
    other = _filled(tmp_path / "other", digest_len=0)  # the same names would be no keys with digest suffixes
    assert len(other) == 61 and len(_store(tmp_path / "other", digest_len=0)) == 61
    assert len(_records(cache)) == 3


@pytest.mark.parametrize("spoil", ["garbage", "another identity", "a path for a subfolder", "a wrong count type"])
def test_a_record_that_is_not_this_stores_own_is_not_trusted(tmp_path, cache, scanned, spoil):
    d = _filled(tmp_path / "store")
    assert len(d) == 61
    (record,) = _records(cache)
    content = json.loads(record.read_text())
    first = next(iter(content["folders"]))
    if spoil == "garbage":
        record.write_text("{not json")
    elif spoil == "another identity":
        content["identity"][2] = "/elsewhere"
        content["folders"][first][5] = 1000
        record.write_text(json.dumps(content))
    elif spoil == "a path for a subfolder":
        content["folders"][""][6].append("../..")
        record.write_text(json.dumps(content))
    else:
        content["folders"][first][5] = "1000"
        record.write_text(json.dumps(content))
    scanned.clear()
    assert len(_store(tmp_path / "store")) == 61
    assert len(scanned) == 4 and all(".." not in path.split("/") for path in scanned)  # counted anew, inside


def test_each_way_of_counting_has_its_own_record(tmp_path, cache):
    d = _filled(tmp_path / "store")
    every, none = (lambda head, names: len(names)), (lambda head, names: 0)
    assert local_counts.FolderCounts().count(d.base_dir, [], ".pkl", every, "every name") == 61
    assert local_counts.FolderCounts().count(d.base_dir, [], ".pkl", none, "no name") == 0
    assert local_counts.FolderCounts().count(d.base_dir, [], ".pkl", every, "every name") == 61


def test_records_are_private_and_off_when_the_cache_is(tmp_path, cache, monkeypatch):
    assert len(_filled(tmp_path / "store")) == 61
    (record,) = _records(cache)
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / "counts").stat().st_mode) == 0o700
    monkeypatch.setenv("PERSIDICT_CACHE_DIR", "")
    assert len(_filled(tmp_path / "other")) == 61
    assert len(_records(cache)) == 1


def test_an_unwritable_cache_only_costs_time(tmp_path, cache):
    cache.write_text("a file where the cache folder would be")
    assert len(_filled(tmp_path / "store")) == 61
    assert len(_store(tmp_path / "store")) == 61


def test_a_folder_changed_a_moment_ago_is_not_recorded(tmp_path, cache, scanned, monkeypatch):
    monkeypatch.setattr(local_counts.FolderCounts, "SETTLE_SECONDS", 3600)  # "a moment" however slow the machine
    d = _store(tmp_path / "store")
    d["f", "k"] = 1  # every folder modified just now
    assert len(d) == 1
    assert len(_store(tmp_path / "store")) == 1
    assert len(scanned) == 4  # both counts listed both folders: nothing settled to remember


def test_a_new_process_counts_from_the_record(tmp_path, cache):
    d = _filled(tmp_path / "store")
    assert len(d) == 61
    script = ("import sys, persidict.backends.local_counts as counts\n"
              "from persidict import FileDirDict\n"
              "listed = []\n"
              "scan = counts.scan\n"
              "counts.scan = lambda folder: listed.append(folder) or scan(folder)\n"
              "print(len(FileDirDict(base_dir=sys.argv[1])), len(listed))\n")
    out = subprocess.run([sys.executable, "-c", script, d.base_dir], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PERSIDICT_CACHE_DIR=str(cache))).stdout.split()
    assert out == ["61", "0"]
