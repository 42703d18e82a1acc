"""Big values on GCS: resumable uploads with the guarantees of one request, and ranged reads.

A value over ``part_threshold`` bytes goes up as a resumable upload session
and keeps everything a single conditional multipart upload promises:

- the session is created with the write's id and lineage as the object's
  metadata (the finished object gets them), so a lost answer on the last
  chunk is reconciled exactly as for one request;
- the precondition (``ifGenerationMatch=0`` for insert-if-absent, the
  generation for compare-and-swap) is given when the session is created;
  GCS checks it then and again when the last chunk arrives, atomically, so
  nothing is replaced until the condition holds at the end (412 otherwise);
- chunks (``part_size`` bytes, rounded up to GCS's 256 KiB unit) are sent one
  after another, as the protocol requires, each with its own retries: a chunk
  sent again from its start is safe (GCS ignores bytes it already has), and
  the bytes of a chunk GCS did not keep (its answer's ``Range`` says) are sent
  again;
- a session that is not completed is cancelled (DELETE of its URI); one whose
  writer died expires on its own after a week, and never shows an object.

Reads of an object over ``part_threshold`` bytes take the first part from the
first answer and fetch the other ranges concurrently into one buffer, each
pinned to the first answer's generation (``generation`` and
``ifGenerationMatch``), so a value replaced mid-read is read again, never mixed.
The chunks of any write are cut by ``part_uploads.PartSink`` (``ResumableUpload``),
and values decoded from a file read ranges through ``GCSRanges``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from fsspec.asyn import sync

from ..protocol.versions import ABSENT, ANY, Expected, PreconditionFailed
from .base import ReplacedMidRead
from .object_store import Commit, Outcome, within
from .part_reads import READ_CHUNK, VersionRanges
from .transfers import MAX_PARTS, Transfers

if TYPE_CHECKING:
    from .gcs import GCSBackend

__all__ = ["CHUNK_UNIT", "GCSRanges", "GCSResponseError", "ResumableUpload", "SessionGone", "chunk_size_for",
           "condition", "fetch_range", "fill_ranges", "is_generation", "kept_bytes", "read_rest"]

CHUNK_UNIT = 256 * 1024
"""GCS takes the chunks of a resumable upload (all but the last) in multiples of 256 KiB."""


_CANCELLED = (204, 404, 410, 499)
"""Answers to a session's DELETE: cancelled (499 from GCS), or already gone or finished."""

_GENERATION = re.compile(r"[1-9][0-9]*")


def is_generation(etag: str) -> bool:
    """Whether ``etag`` can be a generation: any other string matches no object.

    This matters for ``"0"``, which GCS reads as "the object does not exist".
    """
    return _GENERATION.fullmatch(etag) is not None


class GCSResponseError(Exception):
    """A GCS answer with an error status (the body says why)."""

    def __init__(self, status: int, body: bytes, headers: Any = None) -> None:
        super().__init__(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class SessionGone(Exception):
    """A resumable session that no longer takes chunks (its requests fail; nothing is refused)."""


def chunk_size_for(transfers: Transfers, size: int) -> int:
    """The chunk of a ``size``-byte upload: ``part_size_for(size)`` rounded up to a multiple of 256 KiB."""
    step = transfers.part_size_for(size)
    return -(-step // CHUNK_UNIT) * CHUNK_UNIT


def condition(name: str, expected: Expected) -> dict[str, Any]:
    """The ``ifGenerationMatch`` query parameter of a write under ``expected`` (none for ``ANY``)."""
    if expected is ABSENT:
        return {"ifGenerationMatch": "0"}
    if isinstance(expected, str):
        if not is_generation(expected):
            raise PreconditionFailed(name)  # no object has this generation ("0" would mean "absent")
        return {"ifGenerationMatch": expected}
    return {}


class ResumableUpload:
    """A resumable upload session as a ``part_uploads.Upload``: chunks one after another, in order (the
    protocol takes a session's bytes in order), the last one sent by the commit."""

    in_flight = 1
    max_parts = MAX_PARTS
    tail_in_commit = True

    def __init__(self, backend: GCSBackend, path: str, expected: Expected, metadata: dict[str, str]) -> None:
        self._backend, self._path, self._expected, self._metadata = backend, path, expected, metadata
        self._session = ""

    def step_for(self, size: int | None) -> int:
        """``part_size`` (or more, for 10,000 chunks to hold ``size``) rounded up to 256 KiB."""
        transfers = self._backend.transfers
        return chunk_size_for(transfers, transfers.part_size if size is None else size)

    def start(self) -> None:
        self._session = _start(self._backend, self._path, self._expected, self._metadata)

    def send(self, number: int, offset: int, body: memoryview) -> None:
        end = offset + len(body) - 1
        self._backend._run(functools.partial(_advance, self._backend, self._session, body, offset, None),
                           f"upload bytes {offset}-{end} of {self._path}")

    def commit(self, receipts: list[Any], tail: memoryview, size: int) -> Commit:
        return functools.partial(_finish, self._backend, self._session, tail, size - len(tail))

    def abort(self) -> None:
        _cancel(self._backend, self._path, self._session)


def _start(backend: GCSBackend, path: str, expected: Expected, metadata: dict[str, str]) -> str:
    """Create the session, carrying the write's metadata and condition; its URI.

    A 412 here is the condition failing already (nothing was written).  A
    lost answer is sent again: a session it opened anyway is never completed.
    """
    name = backend._name(path)
    url = f"{backend.fs._location}/upload/storage/v1/b/{quote(backend.bucket, safe='')}/o"

    async def start() -> str:
        _, headers, _ = await backend._send("POST", url, uploadType="resumable", name=name, fields=backend.fields,
                                            json={"name": name, "metadata": metadata}, **condition(name, expected))
        return str(headers["Location"])

    return backend._run(start, f"start an upload of {path}", conditional=expected is not ANY)


async def _advance(backend: GCSBackend, session: str, chunk: memoryview, offset: int, total: int | None) -> bytes:
    """Send ``chunk`` (the value's bytes from ``offset`` on; ``total``: the value's size, given with its last
    chunk) until GCS has all of it; the body of the answer that says so.

    GCS may keep fewer bytes than a chunk carried; the ``Range`` of its 308
    answer (``bytes=0-N``) says how many, and the rest is sent again.  After
    the last chunk the answer is 200 with the object's resource.
    """
    start = 0
    while True:
        status, headers, body = await _send_chunk(backend, session, chunk[start:], offset + start, total)
        if status != 308:
            return body
        persisted = kept_bytes(headers) - offset
        if persisted >= len(chunk):
            return body
        if persisted <= start:
            raise ConnectionError(f"the session kept none of bytes {offset + start}-{offset + len(chunk) - 1}")
        start = persisted


def kept_bytes(headers: Any) -> int:
    """How many bytes of the value a resumable session holds, from its 308 answer's ``Range`` (``bytes=0-N``:
    N + 1); none without one (GCS sends no ``Range`` until it has kept a byte)."""
    kept = headers.get("Range")
    return int(str(kept).rpartition("-")[2]) + 1 if kept else 0


async def _send_chunk(backend: GCSBackend, session: str, chunk: memoryview, offset: int,
                      total: int | None) -> tuple[int, Any, bytes]:
    """PUT ``chunk`` (bytes ``offset`` on) into the session, from its buffer (no copy): status, headers and body.

    ``bytes a-b/*`` while the size is not known; the last chunk says it (``bytes */N`` if it is empty).
    """
    span = f"{offset}-{offset + len(chunk) - 1}" if len(chunk) else "*"
    try:
        return await backend._send("PUT", session, ok=(200, 201, 308), data=chunk,
                                   headers={"Content-Range": f"bytes {span}/{'*' if total is None else total}"})
    except GCSResponseError as exc:
        if exc.status != 404:
            raise
        # Not "no such object", which a write would take for a failed condition: a failure
        # (reconciled like any other if an earlier answer was lost: it may have completed).
        raise SessionGone("the upload session is gone (expired, cancelled or completed)") from exc


async def _finish(backend: GCSBackend, session: str, tail: memoryview, offset: int, expected: Expected) -> str:
    """Send the last chunk: GCS checks the session's condition and makes the value visible; its generation.

    ``expected`` is the condition the session was created with (GCS keeps it).
    """
    resource = json.loads(await _advance(backend, session, tail, offset, offset + len(tail)))
    return backend._remember(str(resource["name"]), resource).etag


def _cancel(backend: GCSBackend, path: str, session: str) -> None:
    """Cancel a session that will not be completed (best effort: GCS drops it after a week anyway)."""
    with contextlib.suppress(Exception):
        backend._run(functools.partial(backend._send, "DELETE", session, ok=_CANCELLED),
                     f"cancel the upload of {path}")


async def read_rest(backend: GCSBackend, name: str, generation: str, response: Any, size: int) -> bytes:
    """The whole object: the first part from ``response``'s open body, the other ranges fetched concurrently.

    The value comes back in the ``bytearray`` it was read into (no copy).
    """
    buffer = bytearray(size)
    view = memoryview(buffer)
    first = min(backend.transfers.part_size, size)
    rest = asyncio.ensure_future(fill_ranges(backend, name, generation, view[first:], first))
    try:
        await _read_body(response, view[:first])
        response.close()  # the rest comes in ranges: drop this connection rather than drain it
        await rest
    finally:
        rest.cancel()  # the first part failed: the read is retried whole, nothing must keep running
    return cast(bytes, buffer)


async def fill_ranges(backend: GCSBackend, name: str, generation: str, into: memoryview, offset: int) -> None:
    """Fill ``into`` with the object's bytes from ``offset`` on, ``parts_in_flight`` ranges at a time."""
    limit = asyncio.Semaphore(backend.transfers.parts_in_flight)
    step = backend.transfers.range_size_for(len(into))

    async def fetch(start: int) -> None:
        async with limit:
            await fetch_range(backend, name, generation, [into[start : start + step]], offset + start)

    tasks = [asyncio.ensure_future(fetch(start)) for start in range(0, len(into), step)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()  # one range failed: nothing must keep writing into the buffer


async def fetch_range(backend: GCSBackend, name: str, generation: str, views: list[memoryview], offset: int) -> None:
    """One ranged GET of ``generation`` from ``offset`` on, into ``views`` one after the other.

    Pinned by ``generation`` and ``ifGenerationMatch``: a value replaced
    meanwhile raises ``ReplacedMidRead`` (the read starts again), never a mix.
    """
    end = offset + sum(len(view) for view in views) - 1
    try:
        async with backend._request(
            "GET", "b/{}/o/{}", backend.bucket, name, alt="media", generation=generation,
            ifGenerationMatch=generation, headers={"Range": f"bytes={offset}-{end}"},
            ok=(206,),  # a whole body (a server that ignored the range) would be put in the wrong place
        ) as ranged:
            for view in views:
                await _read_body(ranged, view)
    except GCSResponseError as exc:
        if backend._outcome(exc) in (Outcome.CONFLICT, Outcome.NOT_FOUND):  # not chained: a lost answer
            raise ReplacedMidRead(f"{name} was replaced while it was read") from None
        raise


class GCSRanges(VersionRanges["GCSBackend"]):
    """Ranged GETs of one generation of a GCS object, each with its own retries (``part_reads.Ranges``)."""

    def fetch(self, views: list[memoryview], offset: int) -> None:
        name = self.backend._name(self.path)
        self.backend._run(functools.partial(fetch_range, self.backend, name, self.etag, views, offset),
                          f"read {self.path}")

    def read_open(self, body: Any, into: memoryview, offset: int, *, close: bool) -> bool:
        """Fill ``into`` from the first answer's open body within one ``timeout``; one that fails (cut, slow)
        is closed, and its bytes are fetched as a range."""
        backend = self.backend
        try:
            sync(backend.fs.loop, within, lambda: _read_body(body, into), backend.timeout)
        except Exception:
            body.close()
            self.fetch([into], offset)
            return False
        if close:
            body.close()  # the rest comes in ranges: drop this connection rather than drain it
        return True


async def _read_body(response: Any, into: memoryview) -> None:
    """Fill ``into`` from an aiohttp response body, a chunk at a time (the rest of the body is left unread)."""
    filled = 0
    while filled < len(into):
        chunk = await response.content.read(min(READ_CHUNK, len(into) - filled))
        if not chunk:
            raise ConnectionError(f"the body ended after {filled} of {len(into)} bytes")
        into[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
