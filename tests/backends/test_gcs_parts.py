"""Big GCS values go up as resumable uploads and come back in ranges, with every guarantee of one request.

Against fake-gcs-server behind ``tests/servers/gcs_front.py``, which checks the
``ifGenerationMatch`` of resumable sessions that the emulator ignores (the
first tests prove both), with 5 MiB chunks and a threshold of 6 MiB, so a
12 MiB value is three chunks.  Requests are counted on the client.
"""

from __future__ import annotations

import contextlib
import functools
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from persidict import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, FsspecDict, Transfers
from persidict.backends.gcs import GCSBackend
from persidict.backends.gcs_parts import CHUNK_UNIT, chunk_size_for, kept_bytes
from persidict.protocol.versions import ABSENT, PreconditionFailed
from tests.backends.racing import race_an_insert
from tests.servers.fake_gcs import FakeGCS, Request, running_fake_gcs

MiB = 1024**2
SMALL = Transfers(part_threshold=6 * MiB, part_size=5 * MiB, parts_in_flight=2)
BIG = 12 * MiB
LAST = "bytes 10485760-"
"""The ``Content-Range`` of a 12 MiB value's last chunk (after two of 5 MiB)."""


def _value(tag: int) -> bytes:
    return bytes([tag]) * BIG


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGCS]:
    with running_fake_gcs(front=True) as running:
        yield running


@pytest.fixture(scope="module")
def bare() -> Iterator[FakeGCS]:
    """The emulator alone, without the front."""
    with running_fake_gcs() as running:
        yield running


def _open(server: FakeGCS, name: str | None = None) -> FsspecDict[Any]:
    options = {**server.storage_options(record=True), "skip_instance_cache": True}
    return FsspecDict(f"gs://{server.bucket}/{name or uuid.uuid4().hex[:12]}", storage_options=options,
                      transfers=SMALL, timeout=60)


def _backend(server: FakeGCS) -> GCSBackend:
    backend = _open(server)._backend
    assert isinstance(backend, GCSBackend)
    return backend


def _sent(requests: list[Request], name: str) -> list[str]:
    """The methods of the requests about object ``name`` (a session's chunks carry its name too)."""
    return [r.method for r in requests if r.path.endswith("/" + name) or r.query.get("name") == name]


# --- the front, and the emulator's gap it fills -------------------------------------------


@pytest.mark.parametrize("late", [False, True], ids=["at the session's creation", "at its completion"])
def test_the_emulator_alone_applies_a_stale_resumable_insert_and_the_front_refuses_it(
    server: FakeGCS, bare: FakeGCS, late: bool
) -> None:
    for gcs, refused in ((bare, False), (server, True)):
        backend = _backend(gcs)
        path = backend.path_for("k.bin")
        there = functools.partial(backend.put, path, b"there")
        if not late:
            there()
        # late: the object appears after the session was opened, before its last chunk
        with _after_first_chunk(there if late else None):
            if refused:
                with pytest.raises(PreconditionFailed):
                    backend.put(path, _value(1), ABSENT)
            else:
                backend.put(path, _value(1), ABSENT)  # fake-gcs-server 1.54 ignores the condition
        assert backend.read(path) == (b"there" if refused else _value(1))


@contextlib.contextmanager
def _after_first_chunk(action: Callable[[], object] | None) -> Iterator[None]:
    """Run ``action`` (another writer's blocking call) once, after a write's first chunk was sent."""
    import persidict.backends.gcs_parts as parts

    original, done = parts._send_chunk, []

    async def send_chunk(*args: Any) -> Any:
        body = await original(*args)
        if action is not None and not done:
            done.append(True)
            await _in_thread(action)
        return body

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parts, "_send_chunk", send_chunk)
        yield


async def _in_thread(action: Any) -> None:
    """Run a blocking call (another writer's) off the event loop it would otherwise wait on."""
    import asyncio

    await asyncio.get_running_loop().run_in_executor(None, action)


# --- the part logic -------------------------------------------------------------------------


def test_chunks_are_multiples_of_256_kib() -> None:
    assert chunk_size_for(SMALL, BIG) == 5 * MiB
    odd = Transfers(part_size=5 * MiB + 1, part_threshold=6 * MiB)
    assert chunk_size_for(odd, BIG) % CHUNK_UNIT == 0 and chunk_size_for(odd, BIG) >= odd.part_size
    huge = 5 * 1024**4
    assert chunk_size_for(Transfers(), huge) % CHUNK_UNIT == 0
    assert chunk_size_for(Transfers(), huge) * 10_000 >= huge


# --- uploads and reads ------------------------------------------------------------------------


def test_a_big_value_goes_up_in_chunks_and_comes_back_in_ranges(server: FakeGCS) -> None:
    d = _open(server)
    name = d.key_to_path("big").partition("/")[2]
    with server.counting() as written:
        d["big"] = _value(1)
    chunks = [r for r in written if r.method == "PUT"]
    assert _sent(written, name) == ["POST", "PUT", "PUT", "PUT"]  # the session, three chunks
    assert [r.query.get("uploadType") for r in written if r.method == "POST" and r.query.get("name") == name] == [
        "resumable"]  # (the layout record, a store's first write, is one request of its own)
    assert {r.query.get("upload_id") for r in chunks} == {chunks[0].query["upload_id"]}
    with server.counting() as read:
        assert d["big"] == _value(1)
    ranged = [r for r in read if r.method == "GET"]
    assert len(ranged) == 3  # the first answer, then two ranges at once, each pinned to the generation
    assert all(r.query.get("ifGenerationMatch") == d.etag("big") for r in ranged[1:])


def test_a_value_at_the_threshold_stays_one_request(server: FakeGCS) -> None:
    d = _open(server)
    d["other"] = 0  # a store's first write also checks the bucket and writes its layout record
    value = b"x" * (SMALL.part_threshold - 64)  # the pickle's header brings it near the threshold, not over
    with server.counting() as written:
        d["small"] = value
    with server.counting() as read:
        assert d["small"] == value
    assert [(r.method, r.query.get("uploadType")) for r in written] == [("POST", "multipart")]
    assert [r.method for r in read] == ["GET"]


def test_compare_and_swap_of_a_big_value_checks_the_generation_on_completion(server: FakeGCS) -> None:
    d = _open(server)
    d["k"] = _value(1)
    first = d.etag("k")
    done = d.set_item_if("k", value=_value(2), condition=ETAG_IS_THE_SAME, expected_etag=first)
    assert done.condition_was_satisfied and done.value_was_mutated
    with server.counting() as seen:
        stale = d.set_item_if("k", value=_value(3), condition=ETAG_IS_THE_SAME, expected_etag=first)
    assert not stale.condition_was_satisfied
    assert d["k"] == _value(2) and d.etag("k") == done.resulting_etag
    assert next(r for r in seen if r.query.get("uploadType") == "resumable").query["ifGenerationMatch"] == first


def test_a_stale_compare_and_swap_refused_at_completion_applies_nothing_and_cancels(server: FakeGCS) -> None:
    backend = _backend(server)
    path = backend.path_for("k.bin")
    first = backend.put(path, b"one")
    with (server.counting() as seen, _after_first_chunk(lambda: backend.put(path, b"two")),
          pytest.raises(PreconditionFailed)):
        backend.put(path, _value(1), first)
    assert backend.read(path) == b"two"
    assert seen[-1].method == "DELETE" and "upload_id" in seen[-1].query  # the session was cancelled


def test_two_writers_racing_an_insert_of_a_big_value_have_exactly_one_winner_that_knows_it(
    server: FakeGCS,
) -> None:
    name = uuid.uuid4().hex[:12]
    stores = [_open(server, name) for _ in range(2)]
    race_an_insert(stores, [_value(1), _value(2)])
    sessions = [r for r in server.requests if r.query.get("uploadType") == "resumable" and r.method == "POST"
                and r.query.get("name", "").startswith(name + "/")]
    assert [r.query.get("ifGenerationMatch") for r in sessions] == ["0", "0"]  # both sessions, both conditional


# --- faults ---------------------------------------------------------------------------------


def test_a_chunk_failing_once_is_sent_again_alone(server: FakeGCS) -> None:
    assert server.front is not None
    backend = _backend(server)
    path = backend.path_for("k.bin")
    server.front.fail_once("PUT", "bytes 5242880-")  # the second chunk: answered 500, not applied
    with server.counting() as seen:
        backend.put(path, _value(4))
    chunks = [r for r in seen if r.method == "PUT"]
    assert [r.status for r in chunks] == [308, 500, 308, 200]  # only the failed chunk went twice
    assert [r.method for r in seen if r.method == "POST"] == ["POST"]  # one session
    assert backend.read(path) == _value(4)


@pytest.mark.parametrize("chunk", ["bytes 0-", LAST], ids=["first chunk", "last chunk"])
def test_the_bytes_of_a_chunk_gcs_did_not_keep_are_sent_again(server: FakeGCS, chunk: str) -> None:
    assert server.front is not None
    backend = _backend(server)
    path = backend.path_for("k.bin")
    server.front.keep_part_once(chunk, MiB)  # 1 MiB of the chunk kept
    with server.counting() as seen:
        backend.put(path, _value(6))
    assert [r.status for r in seen if r.method == "PUT"] == [308, 308, 308, 200]  # the chunk's rest sent again
    assert server.front.keep == {}
    assert backend.read(path) == _value(6)


def test_a_lost_answer_on_the_last_chunk_is_reconciled(server: FakeGCS) -> None:
    assert server.front is not None
    d = _open(server)
    d["other"] = 0
    server.front.fail_once("PUT", LAST, applied=True)
    inserted = d.setdefault_if("k", default_value=_value(1), condition=ETAG_IS_THE_SAME,
                               expected_etag=ITEM_NOT_AVAILABLE)
    server.front.fail_once("PUT", LAST, applied=True)
    swapped = d.set_item_if("k", value=_value(2), condition=ETAG_IS_THE_SAME, expected_etag=inserted.resulting_etag)
    assert server.front.faults == []  # both last chunks lost their answers
    assert inserted.value_was_mutated and swapped.value_was_mutated  # the winner knows it won
    assert swapped.resulting_etag == d.etag("k")
    assert d["k"] == _value(2)


def test_a_value_replaced_between_its_ranges_is_read_again_never_mixed(server: FakeGCS) -> None:
    backend = _backend(server)
    path = backend.path_for("k.bin")
    backend.put(path, _value(1))
    import persidict.backends.gcs_parts as parts

    original, replaced = parts.fill_ranges, []

    async def fill_ranges(*args: Any) -> None:
        if not replaced:  # another writer lands after the first answer, before the other ranges
            replaced.append(True)
            await _in_thread(lambda: backend.put(path, _value(2)))
        await original(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parts, "fill_ranges", fill_ranges)
        data, version = backend.read_versioned(path)
    assert data == _value(2) and version.etag == backend.stat(path).etag


def test_a_session_that_vanished_mid_upload_is_a_failure_not_a_refusal(server: FakeGCS) -> None:
    backend = _backend(server)
    path = backend.path_for("k.bin")

    def cancel_the_session() -> None:  # as if it expired: its chunks are answered 404 from now on
        chunk = next(r for r in reversed(server.requests) if "upload_id" in r.query)
        query = "&".join(f"{key}={quote(value, safe='')}" for key, value in chunk.query.items())
        with pytest.raises(urllib.error.HTTPError, match="499"):  # GCS's answer to a cancelled session
            urllib.request.urlopen(urllib.request.Request(f"{server.url}{chunk.path}?{query}", method="DELETE"))

    with _after_first_chunk(cancel_the_session), pytest.raises(OSError, match="session is gone") as raised:
        backend.put(path, _value(1), ABSENT)
    assert not isinstance(raised.value, PreconditionFailed)
    assert not backend.exists(path)


def test_a_session_answer_says_how_many_bytes_it_kept() -> None:
    # GCS answers 308 with "Range: bytes=0-N" once it holds N + 1 bytes, and with no Range before it holds one:
    # then nothing is kept, and the chunk goes again from its first byte (never from byte 2).
    assert kept_bytes({"Range": "bytes=0-262143"}) == 262144
    assert kept_bytes({"Range": "bytes=0-0"}) == 1
    assert kept_bytes({}) == 0
