"""S3 values written and read as streams: a serializer writes into parts, a deserializer reads ranges.

The bytes of a whole value never exist at once:

- ``part_streams.PartSink`` is the file a codec dumps into (shared with GCS
  and Azure); here its upload is a ``MultipartUpload``: parts ``parts_in_flight``
  at a time, completed (with its precondition) or aborted as in ``s3_parts``.
- ``RangedReader`` is the file a codec loads from (``s3_reads`` makes the
  requests).  It reads on from the open body of the read's first answer; a
  large ``readinto`` (a pickle's array buffer, say) is filled in place by that
  body and concurrent ranged GETs, all pinned to the version first read
  (``If-Match``).

So a 256 MiB array pickled into S3 holds a few parts beyond the array, and
one read back holds the array and a few chunks of the bodies in flight.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

from ..protocol.exceptions import ValueReplacedError
from . import part_streams, s3_parts, s3_reads
from .base import ReplacedMidRead
from .object_store import Commit
from .s3_reads import FirstAnswer
from .transfers import MAX_PARTS

if TYPE_CHECKING:
    from .s3 import S3Backend

__all__ = ["MultipartUpload", "RangedReader", "ranged_file", "staged_from_writes"]


@contextlib.contextmanager
def staged_from_writes(
    backend: S3Backend, path: str, write: Callable[[IO[bytes]], object], metadata: dict[str, str],
    size: int | None = None, before_parts: Callable[[], object] | None = None,
) -> Iterator[bytes | Commit]:
    """``write`` into a ``part_streams.PartSink`` of a multipart upload; yield the one body of a small value
    or the completion of the upload (see ``part_streams.staged_from_writes``)."""
    upload = MultipartUpload(backend, path, metadata)
    with part_streams.staged_from_writes(upload, backend.transfers.part_threshold, path, write, size,
                                         before_parts) as staged:
        yield staged


class MultipartUpload:
    """An S3 multipart upload as a ``part_streams.Upload``: parts ``parts_in_flight`` at once."""

    max_parts = MAX_PARTS
    tail_in_commit = False

    def __init__(self, backend: S3Backend, path: str, metadata: dict[str, str]) -> None:
        self._backend, self._path, self._metadata = backend, path, metadata
        self._name = backend._name(path)
        self.in_flight = backend.transfers.parts_in_flight
        self._id = ""

    def step_for(self, size: int | None) -> int:
        transfers = self._backend.transfers
        return transfers.part_size if size is None else transfers.part_size_for(size)

    def start(self) -> None:
        self._id = s3_parts.start_upload(self._backend, self._path, self._metadata)

    def send(self, number: int, offset: int, body: memoryview) -> dict[str, Any]:
        return s3_parts.send_part(self._backend, self._path, self._name, self._id, number, body)

    def commit(self, receipts: list[Any], tail: memoryview, size: int) -> Commit:
        return functools.partial(s3_parts.complete, self._backend, self._name, self._id, receipts)

    def abort(self) -> None:
        s3_parts.abort(self._backend, self._path, self._id)


def ranged_file(backend: S3Backend, path: str, first: FirstAnswer, *, restartable: bool) -> IO[bytes]:
    """A file of the object whose first answer is ``first``: its bytes if they came whole, else a
    ``RangedReader`` reading on from the open body (``restartable``: see ``RangedReader``)."""
    if first.head is not None:
        return io.BytesIO(first.head)
    reader = RangedReader(backend, path, first, restartable=restartable)
    return cast(IO[bytes], io.BufferedReader(reader, buffer_size=s3_reads.READ_CHUNK))


class RangedReader(io.RawIOBase):
    """A read-only, seekable file of one version of an S3 object, fetched as it is read.

    Read from the start, it reads on from the first answer's open body (the
    first ``part_threshold`` bytes: no second request for them); a large
    read past it (a pickle's array buffer) is filled in place by concurrent
    ranges; smaller reads past it (a copy's chunks, reads after a seek) are
    served from a window of ``parts_in_flight`` parts fetched at once.
    Every range is pinned to the version first read: if that version is
    replaced, a ``restartable`` reader raises ``ReplacedMidRead`` (its reader
    starts again), any other ``ValueReplacedError`` (its bytes were handed out
    already).
    """

    def __init__(self, backend: S3Backend, path: str, first: FirstAnswer, *, restartable: bool) -> None:
        super().__init__()
        self._backend, self._path, self._restartable = backend, path, restartable
        self._etag, self._size = first.version.etag, first.size
        self._body, self._body_end = first.body, first.covered  # the open body: bytes 0 to covered, in order
        self._body_left = first.covered
        self._window, self._window_start = memoryview(b""), 0  # a range held for small reads
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
        if self._body is not None:
            return self._read_body(into)
        if len(into) < self._backend.transfers.part_size:
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
        if not s3_reads.read_open_body(self._backend, self._path, self._etag, body, into[:from_body], position,
                                       close=self._body is None):
            self._body = None  # it failed (and was closed): its bytes were fetched as a range instead
        return from_body

    def _large(self, into: memoryview, body: Any = None, from_body: int = 0) -> int:
        """A large read, straight into place (``from_body`` bytes of it from ``body``, the rest in ranges); the
        last bytes of the file, if fewer than a chunk are left after it, come along as the next window (a
        pickle's last opcodes: no request of their own)."""
        after = self._position + len(into)
        left = self._size - after
        tail = bytearray(left) if 0 < left < s3_reads.READ_CHUNK else None
        s3_reads.fill(self._backend, self._path, self._etag, into, self._position, body, from_body,
                      None if tail is None else memoryview(tail))
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
        transfers = self._backend.transfers
        end = min(self._position + transfers.parts_in_flight * transfers.part_size, self._size)
        window = bytearray(end - self._position)
        s3_reads.fill(self._backend, self._path, self._etag, memoryview(window), self._position)
        self._window, self._window_start = memoryview(window), self._position

    def close(self) -> None:
        self._drop_body()
        super().close()
