"""Reads of S3 objects: one GET up to ``part_threshold``, concurrent ranges beyond, each its own request.

- The first request asks for ``bytes=0-(part_threshold - 1)``: an object up to
  the threshold comes whole in that one answer; a larger one's answer tells
  its size and version, and its body (the first ``part_threshold`` bytes) is
  read while the rest is fetched in ranges.
- Every range is pinned to the version of the first answer (``If-Match``): an
  object replaced meanwhile raises ``ReplacedMidRead`` (the caller starts the
  whole read again, or gives up), never a mix of versions.
- Every range is one request through the backend's runner, with its own
  ``timeout`` and retries (a lost answer is asked again), fetched from
  ``parts_in_flight`` threads; the first answer's body too is bounded by one
  ``timeout``, and is asked again as a range if it fails.  So a multi-GB value
  needs no single request of more than four parts (``range_size_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from fsspec.asyn import sync

from ..protocol.versions import Version
from . import part_reads
from .base import ReplacedMidRead
from .object_store import Outcome, within
from .part_reads import READ_CHUNK, VersionRanges

if TYPE_CHECKING:
    from .s3 import S3Backend

__all__ = ["READ_CHUNK", "FirstAnswer", "S3Ranges", "fill", "first_answer", "read_body", "read_open_body"]



@dataclass
class FirstAnswer:
    """The answer to a read's first request: the object's version and size, and its first bytes."""

    version: Version
    metadata: Any
    size: int
    head: bytes | None
    """All of the object, if it came whole and was read; else None, and ``body`` is open."""
    body: Any
    """The open body of the first ``covered`` bytes (None once read, or if ``head`` holds them)."""
    covered: int
    unchanged: bool = False
    """The read asked for the object only if changed (``If-None-Match``), and it was not: no bytes."""

    def close(self) -> None:
        """Close the body if it is still open (a read that stopped before reading it)."""
        if self.body is not None:
            self.body.close()
            self.body = None


async def first_answer(backend: S3Backend, name: str, read_up_to: int, **options: str) -> FirstAnswer:
    """GET of the object's first ``part_threshold`` bytes; its body read here if the object is at most
    ``read_up_to`` bytes, else left open for the caller (``read_body``, ``fill``)."""
    response = await backend._first_response(name, backend.transfers.part_threshold, **options)
    covered = int(response.get("ContentLength", 0))
    size = _total_size(response, covered)
    version = Version(str(response["ETag"]), response["LastModified"].timestamp())
    answer = FirstAnswer(version, response.get("Metadata"), size, None, response["Body"], covered)
    if size <= read_up_to:
        buffer = bytearray(covered)  # straight into one buffer: a plain read() joins chunks, holding it twice
        await read_body(answer.body, memoryview(buffer))
        answer.head, answer.body = cast(bytes, buffer), None
    return answer


def _total_size(response: dict[str, Any], received: int) -> int:
    """The object's size from ``Content-Range: bytes 0-N/TOTAL`` (absent if the server sent it all)."""
    content_range = str(response.get("ContentRange") or "")
    return int(content_range.rpartition("/")[2]) if "/" in content_range else received


async def read_body(body: Any, into: memoryview, *, close: bool = True) -> None:
    """Fill ``into`` from a response body, a chunk at a time; the body is closed after, unless told not to
    (a file reading on from where it stopped)."""
    try:
        filled = 0
        while filled < len(into):
            count = await body.readinto(into[filled : filled + READ_CHUNK])
            if not count:
                raise ConnectionError(f"the body ended after {filled} of {len(into)} bytes")
            filled += count
    except BaseException:
        body.close()  # a failed body is never read on
        raise
    if close:
        body.close()


def read_open_body(backend: S3Backend, path: str, etag: str, body: Any, into: memoryview, offset: int,
                   *, close: bool = True) -> bool:
    """Fill ``into`` from the open ``body`` (at ``offset``), within one ``timeout``; whether the body served.
    A body that fails (cut, slow) is closed, and its bytes are asked again as ranges."""
    try:
        sync(backend.fs.loop, within, lambda: read_body(body, into, close=close), backend.timeout)
    except Exception:
        fill(backend, path, etag, into, offset)
        return False
    return True


def fill(backend: S3Backend, path: str, etag: str, into: memoryview, offset: int, body: Any = None,
         from_body: int = 0) -> None:
    """Fill ``into`` with the bytes of version ``etag`` from ``offset`` on: its first ``from_body`` bytes from
    the open ``body``, the rest in concurrent ranges (``part_reads.fill``)."""
    part_reads.fill(S3Ranges(backend, path, etag), into, offset, body, from_body)


class S3Ranges(VersionRanges["S3Backend"]):
    """Ranged GETs of one version of an S3 object (``part_reads.Ranges``), pinned by ``If-Match``."""

    def fetch(self, views: list[memoryview], offset: int) -> None:
        _fetch(self.backend, self.path, self.etag, views, offset)

    def read_open(self, body: Any, into: memoryview, offset: int, *, close: bool) -> bool:
        return read_open_body(self.backend, self.path, self.etag, body, into, offset, close=close)


def _fetch(backend: S3Backend, path: str, etag: str, views: list[memoryview], offset: int) -> None:
    """One ranged GET of version ``etag`` from ``offset`` on, into ``views`` one after the other: retried on a
    lost answer, within ``timeout``."""
    name = backend._name(path)
    end = offset + sum(len(view) for view in views) - 1

    async def fetch() -> None:
        try:
            ranged = await backend._call("get_object", Key=name, IfMatch=etag, Range=f"bytes={offset}-{end}")
        except Exception as exc:
            if backend._outcome(exc) is Outcome.CONFLICT:
                raise ReplacedMidRead(f"{path} was replaced while it was read") from None
            raise
        body = ranged["Body"]
        for view in views:
            await read_body(body, view, close=False)
        body.close()

    backend._run(fetch, f"read {path}")
