"""GCS and Azure stores stream values: ``d[k] = v`` pickles into the chunks or blocks, ``d[k]`` unpickles
from ranges.

Against fake-gcs-server (behind ``tests/servers/gcs_front.py``, which checks the
conditions of resumable sessions) and Azurite, with parts as small as allowed
(5 MiB) and a threshold of 6 MiB.  Everything the bytes path promised still
holds on the streamed path: a lazy store's first write creates its bucket or
container, a refused or failed write leaves the previous value, conditions are
checked by the service at the commit, a read never mixes versions.  Memory bounds are in ``test_cloud_memory.py``.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FsspecDict, Transfers, ValueReplacedError
from persidict.backends.object_store import ObjectStoreBackend
from tests.backends.racing import ReplacedWhileRead

pytestmark = pytest.mark.timeout(180)

MiB = 1024**2
SMALL = Transfers(part_threshold=6 * MiB, part_size=5 * MiB, parts_in_flight=2)
BIG = 12 * MiB


@pytest.fixture(params=["gcs", "azure"])
def opener(request: pytest.FixtureRequest) -> Callable[..., FsspecDict[Any]]:
    """``opener(bucket=None)``: a store under a fresh prefix, in ``bucket`` (default: the server's own)."""
    if request.param == "gcs":
        server: Any = request.getfixturevalue("gcs")

        def open_gcs(bucket: str | None = None) -> FsspecDict[Any]:
            options = {**server.storage_options(), "skip_instance_cache": True}
            return FsspecDict(f"gs://{bucket or server.bucket}/{uuid.uuid4().hex[:12]}", storage_options=options,
                              transfers=SMALL, timeout=60)

        open_gcs.new_bucket = server.new_bucket_name  # type: ignore[attr-defined]
        return open_gcs
    server = request.getfixturevalue("azurite")

    def open_azure(bucket: str | None = None) -> FsspecDict[Any]:
        return FsspecDict(f"az://{bucket or server.container}/{uuid.uuid4().hex[:12]}",
                          storage_options=server.storage_options(fresh_instance=True), transfers=SMALL, timeout=60)

    open_azure.new_bucket = server.new_container_name  # type: ignore[attr-defined]
    return open_azure


def _backend(d: FsspecDict[Any]) -> ObjectStoreBackend:
    backend = d._backend
    assert isinstance(backend, ObjectStoreBackend)
    return backend


def _bucket_exists(d: FsspecDict[Any]) -> bool:
    backend = _backend(d)
    return bool(backend._run(backend._bucket_exists, "check"))


def test_big_values_are_written_as_streams(opener: Callable[..., FsspecDict[Any]],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    d = opener()
    d["k"] = 0
    backend = _backend(d)
    assert backend.streams_values
    monkeypatch.setattr(type(backend), "put", lambda *args: pytest.fail("the bytes path was taken"))
    d["big"] = bytes([1]) * BIG
    d["small"] = b"small"
    assert (d["big"], d["small"]) == (bytes([1]) * BIG, b"small")


def test_the_first_streamed_write_of_a_big_value_creates_the_bucket(opener: Callable[..., FsspecDict[Any]]) -> None:
    bucket = opener.new_bucket()  # type: ignore[attr-defined]
    d = opener(bucket)
    assert not _bucket_exists(d)
    d["big"] = bytes([3]) * BIG  # over the threshold: its parts go up while it is pickled
    assert _bucket_exists(d)
    again = FsspecDict(**d.get_params())  # a new store reads it: the layout was recorded too
    assert again["big"] == bytes([3]) * BIG


def test_a_streamed_value_that_cannot_be_pickled_leaves_the_old_one(opener: Callable[..., FsspecDict[Any]]) -> None:
    d = opener()
    d["k"] = "old"
    with pytest.raises(TypeError):
        d["k"] = [bytes(BIG), lambda: None]  # fails past the threshold: its upload had started
    assert d["k"] == "old"


def test_conditions_hold_on_streamed_big_values(opener: Callable[..., FsspecDict[Any]]) -> None:
    d = opener()
    d["k"] = "old"
    etag = d.etag("k")
    insert = d.set_item_if("k", value=bytes([1]) * BIG, condition=ETAG_IS_THE_SAME,
                           expected_etag=ITEM_NOT_AVAILABLE)
    assert not insert.condition_was_satisfied and d["k"] == "old"
    swap = d.set_item_if("k", value=bytes([2]) * BIG, condition=ETAG_IS_THE_SAME, expected_etag=etag)
    assert swap.condition_was_satisfied and d["k"] == bytes([2]) * BIG
    stale = d.set_item_if("k", value=bytes([3]) * BIG, condition=ETAG_IS_THE_SAME, expected_etag=etag)
    assert not stale.condition_was_satisfied
    assert d["k"] == bytes([2]) * BIG and d.etag("k") == swap.resulting_etag


def test_a_file_of_whole_parts_leaves_no_tail(opener: Callable[..., FsspecDict[Any]], tmp_path: Path) -> None:
    """A streamed value that ends exactly at a part's end: GCS's last request carries no bytes (``bytes */N``)."""
    d = opener()
    source = tmp_path / "whole.bin"
    source.write_bytes(os.urandom(2 * SMALL.part_size))  # two chunks of 5 MiB (a multiple of 256 KiB)
    etag = d.put_file("k", source)
    target = tmp_path / "back.bin"
    assert d.get_file("k", target) == etag
    assert target.read_bytes() == source.read_bytes()


# --- reads ------------------------------------------------------------------------------------


def test_big_values_are_decoded_from_ranges(opener: Callable[..., FsspecDict[Any]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    d = opener()
    value = bytes(range(256)) * (BIG // 256)
    d["big"], d["small"] = value, b"small"
    backend = _backend(d)
    monkeypatch.setattr(type(backend), "read_versioned", lambda *args: pytest.fail("the bytes path was taken"))
    monkeypatch.setattr(type(backend), "read", lambda *args: pytest.fail("the bytes path was taken"))
    assert (d["big"], d["small"]) == (value, b"small")
    assert d.get_with_etag("big").new_value == value


def test_read_decoded_starts_again_on_the_new_version(opener: Callable[..., FsspecDict[Any]]) -> None:
    d = opener()
    d["k"] = bytes([1]) * BIG
    other = FsspecDict(**d.get_params())  # another writer

    def replace(call: int) -> None:
        other["k"] = bytes([1 + call]) * BIG

    decoder = ReplacedWhileRead(replace, times=1)
    value, version = _backend(d).read_decoded(d.key_to_path("k"), decoder)
    assert value == bytes([2]) * BIG and decoder.calls == 2
    assert version is not None and version.etag == other.etag("k")


def test_an_open_file_whose_value_is_replaced_says_so(opener: Callable[..., FsspecDict[Any]]) -> None:
    d = opener()
    d["k"] = bytes([1]) * BIG
    with d.open("k") as file:
        start = file.read(10)
        FsspecDict(**d.get_params())["k"] = bytes([2]) * BIG
        with pytest.raises(ValueReplacedError):
            file.read()
    assert start == pickle.dumps(bytes([1]) * BIG, protocol=5)[:10]
    with d.open("k") as file:
        assert pickle.load(file) == bytes([2]) * BIG
