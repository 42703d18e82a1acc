"""Files as values: ``put_file``, ``get_file`` and ``open`` (docs/big-values.md#files-as-values).

The stored object is the file's bytes as they are, under the key's file name: ``d[k]`` decodes them
with the store's format, and every write and read has its usual ETag.  On a local folder, memory,
and S3 (the session's moto server), and through the layers (append-only, write-once, a cache).
"""

from __future__ import annotations

import os
import pickle
import uuid
from typing import Any

import numpy as np
import pytest

from persidict import (
    ITEM_NOT_AVAILABLE,
    ConcurrencyConflictError,
    FileDirDict,
    FsspecDict,
    MutationPolicyError,
    WriteOnceDict,
)

KINDS = ("local", "memory", "s3")


@pytest.fixture(params=KINDS)
def make(request: pytest.FixtureRequest, tmp_path) -> Any:
    """``make(**options)``: a fresh store of the kind, pkl format unless told otherwise."""
    kind = request.param

    def make_(**options: Any) -> Any:
        name = uuid.uuid4().hex
        if kind == "local":
            return FileDirDict(base_dir=str(tmp_path / name), fsync=False, **options)
        if kind == "memory":
            return FsspecDict(f"memory://files-as-values/{name}", **options)
        server = request.getfixturevalue("moto_s3")
        return FsspecDict(f"s3://files-as-values/{name}", storage_options=server.storage_options(), **options)

    return make_


def _file(tmp_path, data: bytes, name: str = "source.bin") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_file_put_is_its_bytes_and_reads_back_decoded(make, tmp_path):
    d = make()
    value = {"weights": np.arange(1000.0), "step": 7}
    source = _file(tmp_path, pickle.dumps(value, protocol=5))
    etag = d.put_file("model", source)
    assert etag == d.etag("model")
    got = d["model"]
    assert got["step"] == 7 and np.array_equal(got["weights"], value["weights"])
    with d.open("model") as file:
        assert file.read() == pickle.dumps(value, protocol=5)
        assert file.etag == etag


def test_get_file_writes_the_stored_bytes_and_returns_their_etag(make, tmp_path):
    d = make()
    d["k"] = list(range(100))
    target = tmp_path / "out" / "k.pkl"
    target.parent.mkdir()
    target.write_bytes(b"old contents, replaced whole")
    etag = d.get_file("k", target)
    assert etag == d.etag("k")
    assert pickle.loads(target.read_bytes()) == list(range(100))
    assert os.listdir(target.parent) == ["k.pkl"]  # no temporary file left beside it


def test_absent_keys_and_missing_files(make, tmp_path):
    d = make()
    with pytest.raises(KeyError):
        d.get_file("absent", tmp_path / "x")
    with pytest.raises(KeyError):
        d.open("absent")
    with pytest.raises(FileNotFoundError):
        d.put_file("k", tmp_path / "no such file")
    assert "k" not in d
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="'rb'"):
        d.open("k", "w")


def test_put_file_is_conditional_with_expected_etag(make, tmp_path):
    d = make()
    first = _file(tmp_path, pickle.dumps("first"), "first")
    second = _file(tmp_path, pickle.dumps("second"), "second")
    etag = d.put_file("k", first, expected_etag=ITEM_NOT_AVAILABLE)
    with pytest.raises(ConcurrencyConflictError):
        d.put_file("k", second, expected_etag=ITEM_NOT_AVAILABLE)  # present: not inserted
    d["k"] = "changed"
    with pytest.raises(ConcurrencyConflictError):
        d.put_file("k", second, expected_etag=etag)  # stale ETag
    assert d["k"] == "changed"
    new = d.put_file("k", second, expected_etag=d.etag("k"))
    assert d["k"] == "second" and d.etag("k") == new != etag


def test_a_big_file_round_trips_through_a_text_store(make, tmp_path):
    """3 MiB: above the size a local folder streams (the temporary file gets a kernel copy)."""
    d = make(serialization_format="txt", base_class_for_values=str)
    text = "line of text é\n" * 200_000
    source = _file(tmp_path, text.encode("utf-8"), "notes.txt")
    d.put_file("notes", source)
    assert d["notes"] == text
    d.get_file("notes", tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text(encoding="utf-8") == text


def test_bytes_that_are_not_the_format_are_stored_and_a_decode_error_on_read(make, tmp_path):
    from persidict import BackendError

    d = make()
    d.put_file("blob", _file(tmp_path, b"\x00not a pickle"))
    with d.open("blob") as file:
        assert file.read() == b"\x00not a pickle"
    with pytest.raises(BackendError):
        d["blob"]


def test_policies_hold_for_files(tmp_path):
    source = _file(tmp_path, pickle.dumps(1))
    append_only = FileDirDict(base_dir=str(tmp_path / "ao"), append_only=True)
    append_only.put_file("k", source)
    with pytest.raises(MutationPolicyError):
        append_only.put_file("k", source)
    once = WriteOnceDict(wrapped_dict=FileDirDict(base_dir=str(tmp_path / "once"), append_only=True),
                         p_consistency_checks=1)
    etag = once.put_file("k", source)
    assert once.put_file("k", _file(tmp_path, pickle.dumps(2), "other")) == etag  # first write wins
    assert once["k"] == 1


def test_a_cached_store_serves_the_file_put_through_it(tmp_path, moto_s3):
    from persidict.presets.cached import with_local_cache

    main = FsspecDict(f"s3://files-as-values/{uuid.uuid4().hex}", storage_options=moto_s3.storage_options())
    cached = with_local_cache(main, base_dir=str(tmp_path / "cache"))
    cached["k"] = 0
    assert cached["k"] == 0  # the old value is cached
    cached.put_file("k", _file(tmp_path, pickle.dumps("new")))
    assert cached["k"] == "new" == main["k"]
    with cached.open("k") as file:
        assert pickle.loads(file.read()) == "new"
