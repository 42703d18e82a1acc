"""Values written as streams into the parts of an object store's upload, whatever the store.

``PartSink`` is the file a codec dumps into.  Up to ``part_threshold`` bytes
it only buffers (a small value stays one request); past that it starts the
upload and sends each part as soon as its bytes are written, at most
``in_flight`` at a time (a writer that outruns the network waits).  What an
upload is, is the backend's ``Upload``: S3's multipart upload
(``s3_streams``), GCS's resumable session (``gcs_parts``: one chunk in flight,
in order), Azure's staged blocks (``azure_blocks``).  The write then either
sends the small value as one request or runs the upload's commit, the one
request that makes the value visible, with the write's precondition.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Protocol, cast

from .object_store import Commit

__all__ = ["PartSink", "Upload", "staged_from_writes"]


class Upload(Protocol):
    """One upload in parts of one object: what a ``PartSink`` calls, in this order."""

    in_flight: int
    """Parts sent at once (1 where the protocol takes them in order)."""
    max_parts: int
    """The most parts the service takes (beyond it, a streamed value must have larger parts)."""
    tail_in_commit: bool
    """Whether the last part (the bytes left at the end, maybe none) goes in the commit, not as a part."""

    def step_for(self, size: int | None) -> int:
        """The size of every part but the last, for a value of ``size`` bytes (None: not known)."""

    def start(self) -> None:
        """Begin the upload (carrying the write's metadata): the first part follows."""

    def send(self, number: int, offset: int, body: memoryview) -> Any:
        """Send part ``number`` (from 1), bytes ``offset`` on, read from ``body`` without a copy; its receipt."""

    def commit(self, receipts: list[Any], tail: memoryview, size: int) -> Commit:
        """The request that makes the ``size``-byte value visible, under the write's condition."""

    def abort(self) -> None:
        """Cancel an upload that will not be committed (best effort)."""


@contextlib.contextmanager
def staged_from_writes(
    upload: Upload, threshold: int, path: str, write: Callable[[IO[bytes]], object], size: int | None = None,
    before_parts: Callable[[], object] | None = None,
) -> Iterator[bytes | Commit]:
    """``write`` into a ``PartSink``; yield the one body of a small value or the commit of the upload.

    ``size``, if known, sets the part size (larger parts for a value over
    ``max_parts`` of them); ``before_parts`` runs before the upload starts
    (a store's first write makes its bucket exist there).  Whatever fails (the
    serializer, a part, the commit), the upload is aborted.
    """
    sink = PartSink(upload, threshold, path, size, before_parts)
    try:
        write(cast(IO[bytes], sink))
        yield sink.finish()
    except BaseException:
        sink.abort()
        raise


class PartSink(io.RawIOBase):
    """A write-only file whose bytes become one request's body or the parts of an upload."""

    def __init__(self, upload: Upload, threshold: int, path: str, size: int | None = None,
                 before_parts: Callable[[], object] | None = None) -> None:
        super().__init__()
        self._upload, self._threshold, self._path = upload, threshold, path
        self._before_parts = before_parts
        self._step = upload.step_for(size)
        self._buffer = bytearray()
        self._started = False
        self._sent = 0  # bytes handed to parts so far: the next part's offset
        self._parts: list[Future[Any]] = []
        self._room = threading.BoundedSemaphore(upload.in_flight)
        self._pool: ThreadPoolExecutor | None = None
        self._failed: Future[Any] | None = None  # the first part that failed for good, if one did

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if not self._started and len(self._buffer) + size <= self._threshold:
            self._buffer += view  # may still be a small value: one request
            return size
        if not self._started:
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
        """Start the upload and send what was buffered, in parts."""
        if self._before_parts is not None:
            self._before_parts()
        self._upload.start()
        self._started = True
        self._pool = ThreadPoolExecutor(self._upload.in_flight)
        buffered, step = memoryview(self._buffer), self._step
        whole = len(buffered) - len(buffered) % step
        for start in range(0, whole, step):
            self._send(bytearray(buffered[start : start + step]))
        self._buffer = bytearray(buffered[whole:])

    def _send(self, body: bytearray | memoryview) -> Future[Any]:
        """Send ``body`` as the next part; wait while ``in_flight`` parts are on their way."""
        number, offset = len(self._parts) + 1, self._sent
        if number > self._upload.max_parts:
            raise ValueError(f"write {self._path}: a streamed value over {self._upload.max_parts} parts of "
                             f"{self._step} bytes; raise Transfers.part_size")
        if self._failed is not None:
            self._failed.result()  # a part failed for good: stop writing now
        self._room.acquire()
        assert self._pool is not None
        future = self._pool.submit(self._upload.send, number, offset, memoryview(body))
        future.add_done_callback(self._part_done)
        self._parts.append(future)
        self._sent += len(body)
        return future

    def _part_done(self, part: Future[Any]) -> None:
        """A part is sent, or failed for good: room for the next one (and a failure the next send raises)."""
        if self._failed is None and not part.cancelled() and part.exception() is not None:
            self._failed = part
        self._room.release()

    def finish(self) -> bytes | Commit:
        """The body of a small value, or, once every part is sent, the request that commits the upload."""
        if not self._started:
            return cast(bytes, self._buffer)  # s3fs and gcsfs send a bytearray as it is (Azure's put copies it)
        tail = memoryview(b"")
        if self._upload.tail_in_commit:
            tail = memoryview(self._buffer)
        elif self._buffer:
            self._send(self._buffer)
        self._buffer = bytearray()
        receipts = [part.result() for part in self._parts]
        self._close_pool()
        return self._upload.commit(receipts, tail, self._sent + len(tail))

    def abort(self) -> None:
        """Stop sending parts and abort the upload, if one was started."""
        self._close_pool()
        if self._started:
            self._upload.abort()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
