"""S3 values written and read as streams: a serializer writes into parts, a deserializer reads ranges.

The bytes of a whole value never exist at once:

- ``part_uploads.PartSink`` is the file a codec dumps into (shared with GCS
  and Azure); here its upload is a ``MultipartUpload``: parts ``parts_in_flight``
  at a time, completed (with its precondition) or aborted as in ``s3_parts``.
- ``part_reads.RangedReader`` is the file a codec loads from (``s3_reads`` makes the
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
from typing import IO, TYPE_CHECKING, Any

from . import part_reads, part_uploads, s3_parts, s3_reads
from .object_store import Commit
from .s3_reads import FirstAnswer
from .transfers import MAX_PARTS

if TYPE_CHECKING:
    from .s3 import S3Backend

__all__ = ["MultipartUpload", "ranged_file", "staged_from_writes"]


@contextlib.contextmanager
def staged_from_writes(
    backend: S3Backend, path: str, write: Callable[[IO[bytes]], object], metadata: dict[str, str],
    size: int | None = None, before_parts: Callable[[], object] | None = None,
) -> Iterator[bytes | Commit]:
    """``write`` into a ``part_uploads.PartSink`` of a multipart upload; yield the one body of a small value
    or the completion of the upload (see ``part_uploads.staged_from_writes``)."""
    upload = MultipartUpload(backend, path, metadata)
    with part_uploads.staged_from_writes(upload, backend.transfers.part_threshold, path, write, size,
                                         before_parts) as staged:
        yield staged


class MultipartUpload:
    """An S3 multipart upload as a ``part_uploads.Upload``: parts ``parts_in_flight`` at once."""

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
    ``part_reads.RangedReader`` reading on from the open body (``restartable``: see there)."""
    if first.head is not None:
        return io.BytesIO(first.head)
    ranges = s3_reads.S3Ranges(backend, path, first.version.etag)
    return part_reads.ranged_file(ranges, path, first.size, restartable=restartable, body=first.body,
                                    covered=first.covered)
