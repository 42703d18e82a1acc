"""``PersiDict.delete_older_than``: prune by write time, never a value written after the cut.

Real stores: a local folder and S3 on the session's moto server.  The racing
writer is real too: a second store object on the same storage rewrites the
key at the worst moments of the prune (after its ETag was read, after its
write time was read), from inside the prune's own reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict, LocalDict, MutationPolicyError, PersiDict

from ..servers.moto_s3 import MotoS3


def _wait_past(moment: float) -> None:
    """Poll until the wall clock is past ``moment`` (write times need a gap at the store's resolution)."""
    while time.time() <= moment:
        time.sleep(0.05)


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest, cls: type = FsspecDict) -> Any:
    if kind == "folder":
        return cls(f"file://{tmp_path / 'store'}", digest_len=4)
    moto_s3: MotoS3 = request.getfixturevalue("moto_s3")
    return cls(f"s3://{moto_s3.new_bucket_name()}/prune", storage_options=moto_s3.storage_options())


RESOLUTION = {"folder": 0.01, "s3": 1.1}
"""Seconds between two writes for their write times to differ (S3's LastModified has whole seconds)."""


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_keys_written_before_the_cut_are_deleted_and_later_ones_kept(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = _open(kind, tmp_path, request)
    store.update({f"old{i}": i for i in range(30)})
    _wait_past(max(store.timestamp(f"old{i}") for i in range(30)) + RESOLUTION[kind])
    cut = time.time()
    _wait_past(cut + RESOLUTION[kind])
    store["new"], store["a", "nested", "new"] = "kept", "kept too"
    assert store.delete_older_than(cut) == 30
    assert sorted("/".join(key) for key in store.keys()) == ["a/nested/new", "new"]
    assert store.delete_older_than(cut) == 0


def _race(store: Any, race: str, kind: str) -> list[str]:
    """Make another writer (a second store on the same storage) rewrite the key ``"racy"`` right
    ``before`` or right ``after`` ``store`` reads that key's version; the log of what happened."""
    items = store._items
    read_version = items.stat
    happened: list[str] = []

    def rewrite() -> None:
        _wait_past(time.time() + RESOLUTION[kind])
        FsspecDict(**store.get_params())["racy"] = "written after the cut"
        happened.append("rewritten")

    def stat(key: Any) -> Any:
        racing = tuple(key) == ("racy",) and not happened
        if racing and race == "before":
            rewrite()
        version = read_version(key)
        if racing and race == "after":
            rewrite()
        return version

    items.stat = stat
    return happened


@pytest.mark.parametrize("kind", ["folder", "s3"])
@pytest.mark.parametrize("race", ["before", "after"])
def test_a_value_written_after_the_cut_by_a_racing_writer_is_never_deleted(
    kind: str, race: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # "before": the version read is already the new one; "after": the delete is conditional on the old one.
    store = _open(kind, tmp_path, request)
    store["racy"], store["plain"] = "old", "old"
    _wait_past(store.timestamp("plain") + RESOLUTION[kind])
    cut = time.time()
    happened = _race(store, race, kind)
    store.delete_older_than(cut)
    assert happened == ["rewritten"] and store["racy"] == "written after the cut"
    assert "plain" not in store


def test_memory_stores_prune_too_and_append_only_stores_refuse() -> None:
    store: LocalDict[Any] = LocalDict()
    store["a"] = 1
    _wait_past(store.timestamp("a"))
    cut = time.time()
    _wait_past(cut)
    store["b"] = 2
    assert store.delete_older_than(cut) == 1 and list(store.keys()) == [("b",)]
    with pytest.raises(MutationPolicyError):
        LocalDict(append_only=True).delete_older_than(time.time())


def test_a_file_dir_dict_prunes_its_digest_suffixed_files(tmp_path: Path) -> None:
    store: PersiDict[Any] = FileDirDict(base_dir=str(tmp_path))
    store["x", "y"] = 1
    assert store.delete_older_than(time.time() + 1) == 1 and len(store) == 0
