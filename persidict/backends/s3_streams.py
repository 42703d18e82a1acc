"""S3 values written and read as streams: a serializer writes into parts, a deserializer reads ranges.

The bytes of a whole value never exist at once:

- ``PartSink`` is the file a codec dumps into.  Up to ``part_threshold`` bytes
  it only buffers (a small value stays one PutObject); past that it starts a
  multipart upload and sends each ``part_size`` bytes as a part as soon as they
  are written, at most ``parts_in_flight`` at a time (a writer that outruns
  the network waits).  The upload is completed (with its precondition) or
  aborted exactly as in ``s3_parts``.
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
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, cast

from ..protocol.exceptions import ValueReplacedError
from . import s3_parts, s3_reads
from .base import ReplacedMidRead
from .object_store import Commit
from .s3_reads import FirstAnswer
from .transfers import MAX_PARTS

if TYPE_CHECKING:
    from .s3 import S3Backend

__all__ = ["PartSink", "RangedReader", "ranged_file", "staged_from_writes"]


@contextlib.contextmanager
def staged_from_writes(
    backend: S3Backend, path: str, write: Callable[[IO[bytes]], object], metadata: dict[str, str],
    size: int | None = None, before_parts: Callable[[], object] | None = None,
) -> Iterator[bytes | Commit]:
    """``write`` into a ``PartSink``; yield the one body of a small value or the completion of an upload.

    ``size``, if known, sets the part size (larger parts for a value over
    ``MAX_PARTS`` of them); ``before_parts`` runs before the upload is created
    (a store's first write makes its bucket exist there).  Whatever fails (the
    serializer, a part, the completion), the upload is aborted.
    """
    sink = PartSink(backend, path, metadata, size, before_parts)
    try:
        write(cast(IO[bytes], sink))
        yield sink.finish()
    except BaseException:
        sink.abort()
        raise


class PartSink(io.RawIOBase):
    """A write-only file whose bytes become one PutObject body or the parts of a multipart upload."""

    def __init__(self, backend: S3Backend, path: str, metadata: dict[str, str], size: int | None = None,
                 before_parts: Callable[[], object] | None = None) -> None:
        super().__init__()
        self._backend, self._path, self._metadata = backend, path, metadata
        self._before_parts = before_parts
        self._transfers = backend.transfers
        self._step = self._transfers.part_size if size is None else self._transfers.part_size_for(size)
        self._buffer = bytearray()
        self._upload: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._room = threading.BoundedSemaphore(self._transfers.parts_in_flight)
        self._pool: ThreadPoolExecutor | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if self._upload is None and len(self._buffer) + size <= self._transfers.part_threshold:
            self._buffer += view  # may still be a small value: one request
            return size
        if self._upload is None:
            self._start()
        step = self._step
        if self._buffer:  # complete the part begun by earlier writes
            take = min(step - len(self._buffer), size)
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) == step:
                self._send(self._buffer)
                self._buffer = bytearray()
        whole = len(view) - len(view) % step
        borrowed = [self._send(view[start : start + step]) for start in range(0, whole, step)]
        for part in borrowed:
            part.result()  # parts sent straight from the caller's buffer: done before it may change
        self._buffer += view[whole:]
        return size

    def _start(self) -> None:
        """Create the upload (carrying the write's metadata) and send what was buffered, in parts."""
        if self._before_parts is not None:
            self._before_parts()
        self._upload = s3_parts.start_upload(self._backend, self._path, self._metadata)
        self._pool = ThreadPoolExecutor(self._transfers.parts_in_flight)
        buffered, step = memoryview(self._buffer), self._step
        whole = len(buffered) - len(buffered) % step
        for start in range(0, whole, step):
            self._send(bytearray(buffered[start : start + step]))
        self._buffer = bytearray(buffered[whole:])

    def _send(self, body: bytearray | memoryview) -> Future[dict[str, Any]]:
        """Upload ``body`` as the next part; wait while ``parts_in_flight`` parts are on their way."""
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"write {self._path}: a streamed value over {MAX_PARTS} parts of "
                             f"{self._step} bytes; raise Transfers.part_size")
        for part in self._parts:
            if part.done() and part.exception() is not None:
                part.result()  # a part failed for good: stop writing now
        self._room.acquire()
        assert self._pool is not None
        future = self._pool.submit(self._upload_part, number, memoryview(body))
        future.add_done_callback(lambda _: self._room.release())
        self._parts.append(future)
        return future

    def _upload_part(self, number: int, body: memoryview) -> dict[str, Any]:
        name, upload = self._backend._name(self._path), self._upload
        return s3_parts.send_part(self._backend, self._path, name, upload or "", number, body)

    def finish(self) -> bytes | Commit:
        """The body of a small value, or, once every part is sent, the request that completes the upload."""
        if self._upload is None:
            return cast(bytes, self._buffer)  # botocore sends a bytearray as it is
        if self._buffer:
            self._send(self._buffer)
            self._buffer = bytearray()
        parts = [part.result() for part in self._parts]
        self._close_pool()
        return functools.partial(s3_parts.complete, self._backend, self._backend._name(self._path), self._upload,
                                 parts)

    def abort(self) -> None:
        """Stop sending parts and abort the upload, if one was started (best effort)."""
        self._close_pool()
        if self._upload is not None:
            s3_parts.abort(self._backend, self._path, self._upload)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


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
