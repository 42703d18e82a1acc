"""S3 values written and read as streams: a serializer writes into parts, a deserializer reads ranges.

The bytes of a whole value never exist at once:

- ``PartSink`` is the file a codec dumps into.  Up to ``part_threshold`` bytes
  it only buffers (a small value stays one PutObject); past that it starts a
  multipart upload and sends each ``part_size`` bytes as a part as soon as they
  are written, at most ``parts_in_flight`` at a time (a writer that outruns
  the network waits).  The upload is completed (with its precondition) or
  aborted exactly as in ``s3_parts``.
- ``RangedReader`` is the file a codec loads from.  It holds one range of
  ``part_size`` bytes for small reads; a large ``readinto`` (a pickle's array
  buffer, say) is filled in place by concurrent ranged GETs, all pinned to the
  version first read (``If-Match``).

So a 256 MiB array pickled into S3 holds a few parts beyond the array, and
one read back holds the array and one part.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, cast

from ..protocol.versions import Version
from . import s3_parts
from .object_store import Commit
from .transfers import MAX_PARTS

if TYPE_CHECKING:
    from .s3 import S3Backend

__all__ = ["PartSink", "RangedReader", "open_ranged", "staged_from_writes"]


@contextlib.contextmanager
def staged_from_writes(
    backend: S3Backend, path: str, write: Callable[[IO[bytes]], object], metadata: dict[str, str],
    size: int | None = None,
) -> Iterator[bytes | Commit]:
    """``write`` into a ``PartSink``; yield the one body of a small value or the completion of an upload.

    ``size``, if known, sets the part size (larger parts for a value over
    ``MAX_PARTS`` of them).  Whatever fails (the serializer, a part, the
    completion), the upload is aborted.
    """
    sink = PartSink(backend, path, metadata, size)
    try:
        write(cast(IO[bytes], sink))
        yield sink.finish()
    except BaseException:
        sink.abort()
        raise


class PartSink(io.RawIOBase):
    """A write-only file whose bytes become one PutObject body or the parts of a multipart upload."""

    def __init__(self, backend: S3Backend, path: str, metadata: dict[str, str], size: int | None = None) -> None:
        super().__init__()
        self._backend, self._path, self._metadata = backend, path, metadata
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


def open_ranged(backend: S3Backend, path: str) -> tuple[IO[bytes], Version]:
    """A file of the object at ``path`` read in ranges (the first one fetched here), and its version."""
    name = backend._name(path)
    step = backend.transfers.part_size
    head, response = backend._run(functools.partial(backend._get_first_range, name, step), f"read {path}")
    version = Version(str(response["ETag"]), response["LastModified"].timestamp())
    backend._lineages.learn(name, version.etag, response.get("Metadata"))
    total = _total_size(response, len(head))
    if total <= len(head):
        return io.BytesIO(head), version
    reader = RangedReader(backend, path, version.etag, total, head)
    return cast(IO[bytes], io.BufferedReader(reader, buffer_size=s3_parts.READ_CHUNK)), version


def _total_size(response: dict[str, Any], received: int) -> int:
    """The object's size from ``Content-Range: bytes 0-N/TOTAL`` (absent if the server sent it all)."""
    content_range = str(response.get("ContentRange") or "")
    return int(content_range.rpartition("/")[2]) if "/" in content_range else received


class RangedReader(io.RawIOBase):
    """A read-only file of one version of an S3 object, fetched in ranges as it is read."""

    def __init__(self, backend: S3Backend, path: str, etag: str, size: int, head: bytes) -> None:
        super().__init__()
        self._backend, self._path, self._etag, self._size = backend, path, etag, size
        self._window, self._window_start = memoryview(head), 0  # the range held for small reads
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        into = memoryview(buffer).cast("B")
        wanted = min(len(into), self._size - self._position)
        if wanted <= 0:
            return 0
        offset = self._position - self._window_start
        if not 0 <= offset < len(self._window) and wanted < s3_parts.READ_CHUNK:
            self._refill()
            offset = 0
        if 0 <= offset < len(self._window):
            count = min(wanted, len(self._window) - offset)
            into[:count] = self._window[offset : offset + count]
        else:  # a large read: fetched concurrently, straight into the caller's buffer
            count = wanted
            self._fetch(into[:count], self._position)
        self._position += count
        return count

    def _refill(self) -> None:
        end = min(self._position + self._backend.transfers.part_size, self._size)
        window = bytearray(end - self._position)
        self._fetch(memoryview(window), self._position)
        self._window, self._window_start = memoryview(window), self._position

    def _fetch(self, into: memoryview, offset: int) -> None:
        """Fill ``into`` from ``offset`` on: ``parts_in_flight`` ranges at a time, each group within ``timeout``."""
        name = self._backend._name(self._path)
        transfers = self._backend.transfers
        group = transfers.parts_in_flight * transfers.range_size_for(len(into))
        try:
            for start in range(0, len(into), group):
                piece = into[start : start + group]
                self._backend._run(functools.partial(s3_parts.fill_ranges, self._backend, name, self._etag, piece,
                                                     offset + start), f"read {self._path}")
        except OSError as exc:
            if isinstance(exc.__cause__, s3_parts.ReplacedMidRead):
                raise OSError(errno.ESTALE, f"read {self._path}: replaced by another writer while it was read "
                                            "(read it again)") from exc
            raise
