"""Big S3 values go up in parts and come back in ranges, with every guarantee of one request.

Against moto's server (``tests/servers/moto_s3.py``, which also checks the
``If-Match`` of a multipart completion that moto ignores) and the
fault-injecting ``FaultyS3``, with the smallest parts S3 allows (5 MiB) and a
threshold of 6 MiB, so a 12 MiB value is three parts.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fsspec.asyn import sync

from persidict import (
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    BackendError,
    BasicS3Dict,
    FsspecDict,
    S3Dict,
    Transfers,
    ValueReplacedError,
)
from persidict.backends.transfers import MAX_PARTS, MIN_PART_SIZE
from persidict.protocol.versions import ABSENT, PreconditionFailed

from ..servers.faulty_s3 import FaultyS3
from ..servers.moto_s3 import MotoS3
from .racing import race_an_insert

MiB = 1024**2
SMALL = Transfers(part_threshold=6 * MiB, part_size=5 * MiB, parts_in_flight=2)
"""Parts as small as S3 allows: a 12 MiB value is three parts (5 + 5 + 2 MiB)."""
BIG = 12 * MiB


def _value(tag: int) -> bytes:
    return bytes([tag]) * BIG


def _open(options: dict[str, Any], bucket: str) -> FsspecDict[Any]:
    # create_root: these tests call the backend's primitives, which a store's first write would precede
    return FsspecDict(f"s3://{bucket}/root", storage_options=options, transfers=SMALL, timeout=60, create_root=True)


def _uploads(d: FsspecDict[Any]) -> list[dict[str, Any]]:
    """The incomplete multipart uploads in the store's bucket (straight from the server)."""
    return _uploads_of(d._backend)


def _uploads_of(backend: Any) -> list[dict[str, Any]]:
    page = sync(backend.fs.loop, backend._call, "list_multipart_uploads")
    return list(page.get("Uploads", ()))


# --- the part logic --------------------------------------------------------------------


def test_parts_are_part_size_until_ten_thousand_would_not_hold_the_value() -> None:
    assert SMALL.part_size_for(BIG) == 5 * MiB
    assert Transfers().part_size_for(6 * 1024**3) == 16 * MiB  # 6 GiB, over one PutObject's limit: 384 parts
    five_tib = 5 * 1024**4  # S3's largest object
    step = Transfers().part_size_for(five_tib)
    assert -(-five_tib // step) <= MAX_PARTS
    assert step <= 5 * 1024**3  # S3's largest part


def test_reads_fetch_few_ranges_of_one_to_four_parts() -> None:
    assert SMALL.range_size_for(7 * MiB) == 5 * MiB  # never below a part
    assert Transfers().range_size_for(240 * MiB) == 60 * MiB  # parts_in_flight ranges cover it
    assert Transfers().range_size_for(5 * 1024**3) == 64 * MiB  # at most four parts per request


@pytest.mark.parametrize("bad", [
    {"part_size": MIN_PART_SIZE - 1},
    {"part_size": 8 * MiB, "part_threshold": 7 * MiB},
    {"parts_in_flight": 0},
    {"read_budget": -1},
    {"part_size": 5.5 * MiB},
])
def test_transfers_refuse_what_s3_would_refuse(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Transfers(**bad)


def test_transfers_must_be_a_transfers_record(s3: MotoS3) -> None:
    with pytest.raises(TypeError, match="Transfers"):
        FsspecDict(f"s3://{s3.new_bucket_name()}/root", storage_options=s3.storage_options(),
                   transfers={"part_size": 5 * MiB})  # type: ignore[arg-type]


def test_transfers_travel_with_the_store_and_its_subdicts(s3: MotoS3, tmp_path: Any) -> None:
    d: Any = BasicS3Dict(bucket_name=s3.new_bucket_name(), storage_options=s3.storage_options(), transfers=SMALL)
    assert d.get_params()["transfers"] == SMALL
    assert type(d)(**d.get_params())._backend.transfers == SMALL
    assert d.get_subdict("sub")._backend.transfers == SMALL
    cached: Any = S3Dict(bucket_name=s3.new_bucket_name(), storage_options=s3.storage_options(),
                         base_dir=tmp_path, transfers=SMALL)
    assert cached.get_params()["transfers"] == SMALL
    assert cached.main_dict._backend.transfers == SMALL


# --- uploads and reads on moto ---------------------------------------------------------


def test_a_big_value_goes_up_in_parts_and_comes_back_in_ranges(s3: MotoS3) -> None:
    d = _open(s3.storage_options(), s3.new_bucket_name())
    path = "/" + d.key_to_path("big")
    with s3.counting() as written:
        d["big"] = _value(1)
    mine = [method for method, at in written if at == path]
    assert mine == ["POST", "PUT", "PUT", "PUT", "POST"]  # start, three parts, complete
    assert d.etag("big").endswith('-3"')  # S3's ETag of a three-part object
    with s3.counting() as read:
        assert d["big"] == _value(1)
    assert [method for method, at in read if at == path] == ["GET", "GET", "GET"]  # the first answer, two ranges
    assert _uploads(d) == []


def test_a_value_at_the_threshold_stays_one_request(s3: MotoS3) -> None:
    d = _open(s3.storage_options(), s3.new_bucket_name())
    path = "/" + d.key_to_path("small")
    value = b"x" * (SMALL.part_threshold - 64)  # the pickle's header brings it near the threshold, not over
    with s3.counting() as written:
        d["small"] = value
    with s3.counting() as read:
        assert d["small"] == value
    assert [m for m, at in written if at == path] == ["PUT"]
    assert [m for m, at in read if at == path] == ["GET"]


def test_compare_and_swap_of_a_big_value_checks_the_version_on_completion(s3: MotoS3) -> None:
    d = _open(s3.storage_options(), s3.new_bucket_name())
    d["k"] = _value(1)
    first = d.etag("k")
    done = d.set_item_if("k", value=_value(2), condition=ETAG_IS_THE_SAME, expected_etag=first)
    assert done.condition_was_satisfied and done.value_was_mutated
    stale = d.set_item_if("k", value=_value(3), condition=ETAG_IS_THE_SAME, expected_etag=first)
    assert not stale.condition_was_satisfied
    assert d["k"] == _value(2)
    assert _uploads(d) == []  # the refused upload was aborted


def test_two_writers_racing_an_insert_of_a_big_value_have_exactly_one_winner_that_knows_it(s3: MotoS3) -> None:
    bucket = s3.new_bucket_name()
    stores = [_open(s3.storage_options(), bucket) for _ in range(2)]
    race_an_insert(stores, [_value(1), _value(2)])
    assert ("POST", "/" + stores[0].key_to_path("k")) in s3.requests
    assert _uploads(stores[0]) == []  # a refused completion's parts are aborted


# --- lost answers, failures and leftovers ----------------------------------------------


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[FaultyS3]:
    with FaultyS3() as faulty:
        yield faulty


@pytest.fixture
def faulty(faulty_server: FaultyS3) -> FaultyS3:
    faulty_server.reset()
    return faulty_server


@pytest.mark.parametrize("mode", ["commit_then_500", "drop_after", "commit_late"])
def test_a_lost_answer_on_the_completion_is_reconciled(faulty: FaultyS3, mode: str) -> None:
    d = _open(faulty.storage_options(), faulty.new_bucket_name())
    d["other"] = 0
    with faulty.faults(mode, methods=("POST",), every=1) as plan:
        inserted = d.setdefault_if("k", default_value=_value(1), condition=ETAG_IS_THE_SAME,
                                   expected_etag=ITEM_NOT_AVAILABLE)
        swapped = d.set_item_if("k", value=_value(2), condition=ETAG_IS_THE_SAME,
                                expected_etag=inserted.resulting_etag)
    assert plan.injected >= 2, plan.records  # both completions lost their answers
    assert inserted.value_was_mutated and swapped.value_was_mutated  # the winner knows it won
    assert swapped.resulting_etag == d.etag("k")
    assert d["k"] == _value(2)
    assert _uploads(d) == []


def test_a_completion_that_never_answers_fails_and_its_upload_is_aborted(faulty: FaultyS3) -> None:
    d = FsspecDict(f"s3://{faulty.new_bucket_name()}/root", storage_options=faulty.storage_options(),
                   transfers=SMALL, timeout=3)
    d["other"] = 0
    hang = faulty.faults("hang", methods=("POST",), every=1, conditional_only=False, path_contains="/k.")
    with hang as plan, pytest.raises(BackendError, match="no answer within"):
        d["k"] = _value(1)
    assert plan.injected >= 1
    assert "k" not in d
    assert _uploads(d) == []


_KILLED_WRITER = textwrap.dedent("""
    import sys
    from persidict import FsspecDict, Transfers
    options = {"endpoint_url": sys.argv[1], "key": "testing", "secret": "testing"}
    d = FsspecDict(sys.argv[2], storage_options=options, timeout=120,
                   transfers=Transfers(part_threshold=6 * 2**20, part_size=5 * 2**20, parts_in_flight=1))
    d["k"] = bytes(40 * 2**20)
""")


def test_an_interrupted_upload_leaves_nothing_gc_does_not_remove(s3: MotoS3) -> None:
    url = f"s3://{s3.new_bucket_name()}/root"
    d = FsspecDict(url, storage_options=s3.storage_options(), transfers=SMALL)
    path = "/" + d.key_to_path("k")
    with s3.latency(0.5):  # slow parts: the writer is killed mid-upload
        writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, s3.url, url], env=os.environ)
        try:
            deadline = time.monotonic() + 120
            while ("PUT", path) not in s3.requests and writer.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert writer.poll() is None, "the writer ended before it was killed"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(60)
    assert "k" not in d
    assert len(_uploads(d)) == 1  # the parts it sent, still billed
    assert d.remove_temporary_files(older_than=3600) == 0  # too young: may be a live writer's
    assert d.remove_temporary_files(older_than=0) == 1
    assert _uploads(d) == []
    assert list(d.keys()) == []


# --- streams: a serializer writes into parts, a deserializer reads ranges ---------------


class _Pickled:
    """A value as the streaming hooks see it (their ``Payload`` and ``Decoder``), pickled with protocol 5."""

    def __init__(self, value: Any = None, *, fail_after: int | None = None) -> None:
        self.value = value
        self.fail_after = fail_after

    def to_bytes(self) -> bytes:
        return pickle.dumps(self.value, protocol=5)

    def starting(self) -> None:
        """Nothing to make ready: these stores' buckets exist."""

    def write_to(self, file: Any) -> None:
        if self.fail_after is not None:
            file.write(bytes(self.fail_after))
            raise TypeError("cannot pickle this value")
        pickle.dump(self.value, file, protocol=5)

    def from_bytes(self, data: bytes) -> Any:
        return pickle.loads(data)

    def from_file(self, file: Any) -> Any:
        return pickle.load(file)


def _backend(s3: MotoS3) -> Any:
    return _open(s3.storage_options(), s3.new_bucket_name())._backend


def test_a_streamed_big_value_goes_up_in_parts_and_is_read_back_in_ranges(s3: MotoS3) -> None:
    backend = _backend(s3)
    path = backend.path_for("big.pkl")
    with s3.counting() as written:
        etag = backend.put_stream(path, _Pickled(_value(7)), ABSENT)
    assert [m for m, at in written if at == "/" + path] == ["POST", "PUT", "PUT", "PUT", "POST"]
    with s3.counting() as read:
        value, version = backend.read_decoded(path, _Pickled())
    assert value == _value(7) and version.etag == etag
    # the first answer (its body read on), the array's rest in two ranges at once (the pickle's last two
    # bytes come with the last one)
    assert [m for m, at in read if at == "/" + path] == ["GET"] * 3
    with backend.open_read(path)[0] as file:
        assert file.read() == pickle.dumps(_value(7), protocol=5)


def test_a_streamed_small_value_is_one_request_each_way(s3: MotoS3) -> None:
    backend = _backend(s3)
    path = backend.path_for("small.pkl")
    with s3.counting() as seen:
        backend.put_stream(path, _Pickled({"a": 1}))
        assert backend.read_decoded(path, _Pickled())[0] == {"a": 1}
        backend.put_stream(path, _Pickled(b""))
        assert backend.read_decoded(path, _Pickled(), versioned=False) == (b"", None)
    assert [m for m, at in seen if at == "/" + path] == ["PUT", "GET", "PUT", "GET"]


def test_a_streamed_insert_that_loses_is_refused_and_aborted(s3: MotoS3) -> None:
    backend = _backend(s3)
    path = backend.path_for("k.pkl")
    backend.put(path, b"there")
    with pytest.raises(PreconditionFailed):
        backend.put_stream(path, _Pickled(_value(1)), ABSENT)
    assert backend.read(path) == b"there"
    assert _uploads_of(backend) == []


def test_a_serializer_failing_mid_stream_leaves_the_old_value_and_no_upload(s3: MotoS3) -> None:
    backend = _backend(s3)
    path = backend.path_for("k.pkl")
    backend.put(path, b"old")
    with pytest.raises(TypeError, match="cannot pickle"):
        backend.put_stream(path, _Pickled(fail_after=BIG))  # past the threshold: the upload had started
    assert backend.read(path) == b"old"
    assert _uploads_of(backend) == []


def test_a_value_replaced_while_it_is_read_is_never_a_mix(s3: MotoS3) -> None:
    backend = _backend(s3)
    path = backend.path_for("k.pkl")
    backend.put(path, _value(1))
    file, _ = backend.open_read(path)
    with file:
        assert file.read(10) == _value(1)[:10]
        backend.put(path, _value(2))
        with pytest.raises(ValueReplacedError, match="replaced by another writer while it was read") as info:
            file.read()
    assert isinstance(info.value, OSError) and info.value.path == path
