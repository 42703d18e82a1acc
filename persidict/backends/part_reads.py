"""Values read as streams from ranges of one version of an object, whatever the store.

``RangedReader`` is the file a codec loads from: it reads on from the first
answer (its open body, or its first bytes), fills a large read in place with
concurrent ranged requests (``fill``), and serves small reads from a window of
parts fetched at once.  What a range is, is the backend's ``Ranges``: S3's
ranged GETs pinned by ``If-Match`` (``s3_reads``), GCS's by generation
(``gcs_parts``), Azure's by ``If-Match`` (``azure_blocks``); each has its own
retries and deadline, and says when the version read was replaced.
``RangeReadingBackend`` is the read path GCS and Azure share.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, Any, Generic, Protocol, TypeVar, cast

from ..protocol.exceptions import ValueReplacedError
from ..protocol.versions import Version
from .base import Decoder, ReplacedMidRead
from .object_store import Metadata, ObjectStoreBackend
from .transfers import Transfers

__all__ = ["READ_CHUNK", "FirstRange", "RangeReadingBackend", "RangedReader", "Ranges", "VersionRanges", "fill",
           "ranged_file"]

READ_CHUNK = 1024**2
"""Bytes read from a response body at a time, straight into the value's buffer; also the first read of a
value that is decoded from a file (a value up to this size is decoded from its bytes)."""


class Ranges(Protocol):
    """The requests a ``RangedReader`` makes of one version of one object: each with its own retries and
    deadline, raising ``ReplacedMidRead`` if that version was replaced."""

    @property
    def transfers(self) -> Transfers:
        """The store's part sizes (the sizes of ranges and windows)."""

    def fetch(self, views: list[memoryview], offset: int) -> None:
        """One ranged request of the bytes from ``offset`` on, into ``views`` one after the other."""

    def read_open(self, body: Any, into: memoryview, offset: int, *, close: bool) -> bool:
        """Fill ``into`` from an open ``body`` of a first answer; whether it served (else fetched as ranges)."""


AnyObjectStore = TypeVar("AnyObjectStore", bound=ObjectStoreBackend)


@dataclass
class VersionRanges(Generic[AnyObjectStore]):
    """What every backend's ``Ranges`` holds: its backend, the object's path and the version (ETag, or a
    GCS generation) each range is pinned to; the part sizes are the backend's."""

    backend: AnyObjectStore
    path: str
    etag: str

    @property
    def transfers(self) -> Transfers:
        return self.backend.transfers


def fill(ranges: Ranges, into: memoryview, offset: int, body: Any = None, from_body: int = 0,
         tail: memoryview | None = None) -> None:
    """Fill ``into`` with the bytes from ``offset`` on: its first ``from_body`` bytes from the open ``body``,
    the rest in ranges (``range_size_for``), ``parts_in_flight`` at once, each request on its own.  ``tail``,
    if given, is filled with the bytes right after ``into`` by the last range (a reader's next window)."""
    transfers = ranges.transfers
    rest = len(into) - from_body
    step = transfers.range_size_for(rest) if rest > 0 else 1
    spans = [[into[start : start + step]] for start in range(from_body, len(into), step)]
    if tail is not None:
        spans[-1:] = [[*spans[-1], tail]] if spans else [[tail]]
    jobs: list[Callable[[], object]] = []
    start = offset + from_body
    for views in spans:
        jobs.append(functools.partial(ranges.fetch, views, start))
        start += sum(len(view) for view in views)
    if body is not None:
        jobs.insert(0, functools.partial(ranges.read_open, body, into[:from_body], offset, close=True))
    if len(jobs) == 1:
        jobs[0]()
        return
    with ThreadPoolExecutor(min(len(jobs), transfers.parts_in_flight + (body is not None))) as pool:
        futures = [pool.submit(job) for job in jobs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.cancel()  # one range failed for good: the others not started never will
        for future in done:
            future.result()


def ranged_file(ranges: Ranges, path: str, size: int, *, restartable: bool, body: Any = None, covered: int = 0,
                head: bytes = b"") -> IO[bytes]:
    """A buffered ``RangedReader`` of ``size`` bytes (see there)."""
    reader = RangedReader(ranges, path, size, restartable=restartable, body=body, covered=covered, head=head)
    return cast(IO[bytes], io.BufferedReader(reader, buffer_size=READ_CHUNK))


class RangedReader(io.RawIOBase):
    """A read-only, seekable file of one version of an object, fetched as it is read.

    Read from the start, it reads on from the first answer's open body (S3:
    the first ``part_threshold`` bytes, no second request for them) or its
    first bytes (``head``: GCS and Azure ask for ``part_threshold`` bytes first); a large
    read past it (a pickle's array buffer) is filled in place by concurrent
    ranges; smaller reads past it (a copy's chunks, reads after a seek) are
    served from a window of ``parts_in_flight`` parts fetched at once.
    Every range is pinned to the version first read: if that version is
    replaced, a ``restartable`` reader raises ``ReplacedMidRead`` (its reader
    starts again), any other ``ValueReplacedError`` (its bytes were handed out
    already).
    """

    def __init__(self, ranges: Ranges, path: str, size: int, *, restartable: bool, body: Any = None,
                 covered: int = 0, head: bytes = b"") -> None:
        super().__init__()
        self._ranges, self._path, self._restartable = ranges, path, restartable
        self._transfers, self._size = ranges.transfers, size
        self._body, self._body_end = body, covered  # the open body: bytes 0 to covered, in order
        self._body_left = covered if body is not None else 0
        self._window, self._window_start = memoryview(head), 0  # a range held for small reads: the first bytes
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        into = memoryview(buffer).cast("B")
        wanted = min(len(into), self._size - self._position)
        if wanted <= 0:
            return 0
        try:
            count = self._read(into[:wanted])
        except ReplacedMidRead:
            if self._restartable:
                raise
            raise ValueReplacedError(self._path) from None
        self._position += count
        return count

    def _read(self, into: memoryview) -> int:
        """Fill some of ``into`` from the current position; how many bytes."""
        position = self._position
        if self._body is not None and position != self._body_start():
            self._drop_body()  # a seek: the body reads only on from where it is
        offset = position - self._window_start
        if 0 <= offset < len(self._window):
            count = min(len(into), len(self._window) - offset)
            into[:count] = self._window[offset : offset + count]
            return count
        self._window = memoryview(b"")  # read past it: its memory goes before more is fetched (a seek back refetches)
        if self._body is not None:
            return self._read_body(into)
        if len(into) < self._transfers.part_size:
            self._refill()
            return self._read(into)
        return self._large(into)

    def _body_start(self) -> int:
        return self._body_end - self._body_left

    def _read_body(self, into: memoryview) -> int:
        """Read on from the open body: a small read from it alone, a large one with ranges for what is past it."""
        from_body = min(len(into), self._body_left)
        body, position = self._body, self._position
        self._body_left -= from_body
        if not self._body_left or len(into) > from_body:
            self._body = None  # read to its end here
        if len(into) > from_body:
            return self._large(into, body, from_body)
        if not self._ranges.read_open(body, into[:from_body], position, close=self._body is None):
            self._body = None  # it failed (and was closed): its bytes were fetched as a range instead
        return from_body

    def _large(self, into: memoryview, body: Any = None, from_body: int = 0) -> int:
        """A large read, straight into place (``from_body`` bytes of it from ``body``, the rest in ranges); the
        last bytes of the file, if fewer than a chunk are left after it, come along as the next window (a
        pickle's last opcodes: no request of their own)."""
        after = self._position + len(into)
        left = self._size - after
        tail = bytearray(left) if 0 < left < READ_CHUNK else None
        fill(self._ranges, into, self._position, body, from_body, None if tail is None else memoryview(tail))
        if tail is not None:
            self._window, self._window_start = memoryview(tail), after
        return len(into)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def _refill(self) -> None:
        """Fetch the next window: ``parts_in_flight`` parts, concurrently (a copy reading 1 MiB at a time
        costs a request per part, not per MiB)."""
        transfers = self._transfers
        end = min(self._position + transfers.parts_in_flight * transfers.part_size, self._size)
        window = bytearray(end - self._position)
        fill(self._ranges, memoryview(window), self._position)
        self._window, self._window_start = memoryview(window), self._position

    def close(self) -> None:
        self._drop_body()
        super().close()


@dataclass
class FirstRange:
    """The answer to a read's first request, a range of up to ``part_threshold`` bytes: the object's first bytes, its
    size, version and custom metadata."""

    head: bytes
    size: int
    version: Version
    metadata: Metadata
    body: Any = None
    """The open body of the first ``covered`` bytes (``head`` is empty then), for the reader to read on."""
    covered: int = 0


class RangeReadingBackend(ObjectStoreBackend):
    """An object store whose values are decoded from ``RangedReader`` files (GCS, Azure): the first request
    asks for the first bytes (``_first_range``), so a value the answer holds whole is one request and is
    decoded from its bytes; a larger one's file reads on in ranges pinned to the version of that answer."""

    async def _first_range(self, name: str) -> FirstRange:
        """The first request of a read of object ``name``."""
        raise NotImplementedError

    def _ranges(self, path: str, etag: str) -> Ranges:
        """The ranged requests of version ``etag`` of the object at ``path``."""
        raise NotImplementedError

    def _opened(self, path: str, *, restartable: bool, learn: bool) -> tuple[Version, IO[bytes], bytes | None]:
        """The version a read of ``path`` found, a file of the object, and its bytes if they came whole (else
        the first bytes belong to the file alone: it lets them go once read past)."""
        name = self._name(path)
        first = self._run(functools.partial(self._first_range, name), f"read {path}")
        if learn:  # a read that hands out no ETag starts no write from this version: nothing to learn
            self._lineages.learn(name, first.version.etag, first.metadata)
        if first.body is None and len(first.head) >= first.size:
            return first.version, io.BytesIO(first.head), first.head
        ranges = self._ranges(path, first.version.etag)
        return first.version, ranged_file(ranges, path, first.size, restartable=restartable, body=first.body,
                                          covered=first.covered, head=first.head), None

    def read_decoded(self, path: str, decoder: Decoder, *, versioned: bool = True) -> tuple[Any, Version | None]:
        """``decoder`` of the object: a value the first answer holds whole from its bytes, a larger one from a file of
        ranges (a large read filled in place); started again if the value is replaced mid-read."""

        def attempt() -> tuple[Any, Version]:
            version, file, whole = self._opened(path, restartable=True, learn=versioned)
            with file:
                return (decoder.from_file(file) if whole is None else decoder.from_bytes(whole)), version

        value, version = self._restarting(path, attempt)
        return value, version if versioned else None

    def open_read(self, path: str) -> tuple[IO[bytes], Version]:
        """A file of the object at ``path``, read in ranges as it is read, and its version.

        Its ranges are pinned to that version: if another writer replaces it meanwhile, a read raises
        ``ValueReplacedError`` (the bytes handed out cannot be taken back).  Replaced while it is opened
        (an empty blob filled between its first answer and its properties), it is opened again.
        """
        version, file, _ = self._restarting(path, lambda: self._opened(path, restartable=False, learn=True))
        return file, version
