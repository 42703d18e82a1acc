"""Big values on S3: multipart uploads with the guarantees of one PutObject, and ranged reads.

An upload in parts keeps everything a single conditional PUT promises:

- the write id and lineage metadata go on ``CreateMultipartUpload`` (S3 gives
  the completed object the metadata its upload was created with), so a lost
  answer is reconciled exactly as for one PUT;
- the precondition (``If-None-Match: *`` or ``If-Match``) goes on
  ``CompleteMultipartUpload``, the one request that makes the value visible,
  and S3 checks it atomically there: until then nothing is replaced;
- parts are idempotent (a part sent again replaces itself), so a part whose
  answer was lost is simply sent again;
- an upload that does not complete is aborted; one whose writer died is left
  to ``remove_temporary_files`` (``persidict gc``), which aborts the
  incomplete uploads under the store's prefix older than its threshold.

The parts themselves are cut and sent by ``part_uploads.PartSink``, whether the
value comes whole (bytes) or as a stream.  Reads in ranges are ``s3_reads``'.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..protocol.versions import ABSENT, Expected

if TYPE_CHECKING:
    from .s3 import S3Backend

__all__ = ["ViewFile", "abort", "abort_stale_uploads", "complete", "conditions", "part_entry", "send_part",
           "start_upload"]

def conditions(expected: Expected) -> dict[str, str]:
    """The S3 headers of a write's precondition."""
    if expected is ABSENT:
        return {"IfNoneMatch": "*"}
    if isinstance(expected, str):
        return {"IfMatch": expected}
    return {}


def start_upload(backend: S3Backend, path: str, metadata: dict[str, str]) -> str:
    """CreateMultipartUpload carrying the write's id and lineage (the finished object gets them); the upload id.

    A lost answer is sent again: an upload it started anyway is never completed, and gc removes it.
    """
    created = backend._run(functools.partial(backend._call, "create_multipart_upload", Key=backend._name(path),
                                             Metadata=metadata), f"start an upload of {path}")
    return str(created["UploadId"])


def abort(backend: S3Backend, path: str, upload_id: str) -> None:
    """Abort an upload that will not be completed, so its parts stop costing storage (best effort: gc is there)."""
    with contextlib.suppress(Exception):
        backend._run(functools.partial(backend._call, "abort_multipart_upload", Key=backend._name(path),
                                       UploadId=upload_id), f"abort the upload of {path}")


def send_part(
    backend: S3Backend, path: str, name: str, upload_id: str, number: int, body: memoryview
) -> dict[str, Any]:
    """UploadPart of ``body``, read from the buffer it lies in (no copy), with its own retries and deadline."""
    response = backend._run(
        lambda: backend._call("upload_part", Key=name, UploadId=upload_id, PartNumber=number, Body=ViewFile(body)),
        f"upload part {number} of {path}")
    return part_entry(number, response)


class ViewFile(io.RawIOBase):
    """A read-only, seekable file over a buffer: botocore sends it in chunks, as it sends any file.

    Given bytes, botocore and aiohttp copy a part whole (into the socket's
    send buffer); given a file, aiohttp reads it a chunk at a time.  A
    resend (our retries) starts again from the beginning: botocore seeks.
    """

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        into = memoryview(buffer).cast("B")
        count = max(0, min(len(into), len(self._view) - self._position))
        into[:count] = self._view[self._position : self._position + count]
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position


def part_entry(number: int, response: dict[str, Any]) -> dict[str, Any]:
    """A sent part as the completion lists it: its number, ETag and checksums (botocore adds a CRC)."""
    checksums = {key: value for key, value in response.items() if key.startswith("Checksum")}
    return {"PartNumber": number, "ETag": response["ETag"], **checksums}


async def complete(backend: S3Backend, name: str, upload_id: str, parts: list[dict[str, Any]],
                   expected: Expected) -> str:
    """CompleteMultipartUpload under ``expected``: the one request that makes the value visible."""
    response = await backend._call("complete_multipart_upload", Key=name, UploadId=upload_id,
                                   MultipartUpload={"Parts": parts}, **conditions(expected))
    return str(response["ETag"])


def abort_stale_uploads(backend: S3Backend, older_than: float) -> int:
    """Abort the incomplete uploads under the prefix started more than ``older_than`` seconds ago."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    aborted = 0
    for name, upload_id in _stale_uploads(backend, cutoff):
        with contextlib.suppress(FileNotFoundError):  # completed or aborted meanwhile
            backend._run(functools.partial(backend._call, "abort_multipart_upload", Key=name, UploadId=upload_id),
                         f"abort the upload of {name}")
            aborted += 1
    return aborted


def _stale_uploads(backend: S3Backend, cutoff: datetime) -> Iterator[tuple[str, str]]:
    """``(key, upload id)`` of each upload under the prefix started before ``cutoff``, page by page."""
    marker: dict[str, str] = {}
    while True:
        page = backend._run(functools.partial(backend._call, "list_multipart_uploads", Prefix=backend.prefix, **marker),
                            f"list the incomplete uploads of {backend.url}")
        for upload in page.get("Uploads", ()):
            if upload["Initiated"] < cutoff:
                yield upload["Key"], upload["UploadId"]
        if not page.get("IsTruncated"):
            return
        marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
