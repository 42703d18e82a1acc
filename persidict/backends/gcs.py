"""Google Cloud Storage through gcsfs: the SDK calls and the error table.

Every primitive is one request to the GCS JSON API, sent through gcsfs's
authenticated aiohttp session but not through its retry decorator or listing
cache (retries, deadlines and the reconciling of lost answers are
``ObjectStoreBackend``'s), so other writers' changes are seen at once:

- the ETag is the object's ``generation``: a new number for every write;
- a read is one media GET (``alt=media``); the generation arrives in its
  ``x-goog-generation`` header;
- a write is one multipart upload (metadata and bytes in one request) with
  ``ifGenerationMatch=0`` (insert-if-absent) or ``ifGenerationMatch=<etag>``
  (compare-and-swap); GCS checks the condition atomically.  A value over
  ``part_threshold`` bytes is a resumable upload whose session carries the
  same metadata and condition, checked when the last chunk arrives
  (``gcs_parts``), and is read back in concurrent ranges;
- values stream (``streams_values``): a set pickles into the session's chunks
  and a get unpickles from the first answer's open body and pinned ranges,
  through ``part_uploads``' sink and ``part_reads``' reader;
- a delete is one DELETE, with ``ifGenerationMatch`` when a version is expected.

Timestamps are the object's ``updated`` time (millisecond resolution), as
``stat``, ``walk`` and ``read_many`` report it.  A media GET carries only a
``Last-Modified`` header in whole seconds, so the versions returned by
``read_versioned`` and ``read_if_changed`` have that coarser timestamp; their
ETag is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote

from ..protocol.versions import ANY, Expected, Version
from . import gcs_parts, part_uploads
from .base import Payload
from .gcs_parts import GCSResponseError, is_generation
from .object_store import Commit, Metadata, Outcome, forbid_hidden_resends, http_date
from .part_reads import READ_CHUNK, FirstRange, RangeReadingBackend

__all__ = ["GCSBackend", "GCSResponseError"]

LIST_PAGE_SIZE = 1000
"""Objects per page of a listing (the JSON API's maximum)."""

MEMO_SIZE = 100_000
"""Versions whose ``updated`` time is remembered, so ``read_many`` needs no metadata request."""

_STAT_FIELDS = "generation,updated,metadata"
_LIST_FIELDS = "items(name,generation,updated),nextPageToken"
_META_HEADER = "x-goog-meta-"
"""A media GET returns an object's custom metadata as headers with this prefix."""
_STATUS_OUTCOMES = {404: Outcome.NOT_FOUND, 412: Outcome.CONFLICT, 401: Outcome.DENIED, 403: Outcome.DENIED,
                    408: Outcome.LOST, 429: Outcome.REFUSED, 503: Outcome.REFUSED}


def _rfc3339(value: str) -> float:
    """POSIX time of a GCS timestamp such as ``2024-05-01T12:00:00.123Z``."""
    return datetime.fromisoformat(value).timestamp()



def _names_the_bucket(body: bytes) -> bool:
    """Whether a 404's message is about the bucket rather than the object."""
    return b"bucket" in body.lower() and b"object" not in body.lower()


class GCSBackend(RangeReadingBackend):
    """A bucket and object-name prefix on Google Cloud Storage."""

    backend_name = "gcs"
    streams_values = True
    fields = _STAT_FIELDS
    """The object fields a write's answer carries (what ``_remember`` needs)."""

    def __init__(self, fs: Any, root: str) -> None:
        super().__init__(fs, root)
        # (object name, generation) -> ``updated``: facts that never change
        # (we never patch metadata), shared with child backends.
        self._updated: dict[tuple[str, str], float] = {}

    def _outcome(self, exc: BaseException) -> Outcome:
        if isinstance(exc, GCSResponseError):
            if exc.status == 404 and _names_the_bucket(exc.body):
                return Outcome.BUCKET_MISSING
            default = Outcome.LOST if exc.status >= 500 else Outcome.FAILED
            return _STATUS_OUTCOMES.get(exc.status, default)
        import aiohttp

        if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
            return Outcome.UNREACHABLE
        if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)):
            return Outcome.LOST
        return Outcome.FAILED

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, path: str, *args: str, ok: tuple[int, ...] = (200, 204), **kwargs: Any
    ) -> AsyncIterator[Any]:  # kwargs: query parameters, plus headers, data and json
        """One request through gcsfs's session (no retries, no redirects): the open response, its status in ``ok``.

        Redirects are off: a resumable upload answers a chunk with 308 and no ``Location``.
        """
        response = await self._open_response(method, path, *args, ok=ok, **kwargs)
        try:
            yield response
        finally:
            response.release()

    async def _open_response(
        self, method: str, path: str, *args: str, ok: tuple[int, ...] = (200, 204), **kwargs: Any
    ) -> Any:
        """``_request``'s response, left open for the caller to read and close."""
        fs = self.fs
        await fs._set_session()
        forbid_hidden_resends(fs.session)
        headers = kwargs.pop("headers", None)
        data = kwargs.pop("data", None)
        body_json = kwargs.pop("json", None)
        response = await fs.session.request(
            method=method,
            url=fs._format_path(path, args),
            params=fs._get_params(kwargs),
            json=body_json,
            headers=fs._get_headers(headers),
            data=data,
            timeout=fs.requests_timeout,
            allow_redirects=False,
        )
        if response.status not in ok:
            try:
                raise GCSResponseError(response.status, await response.read(), response.headers)
            finally:
                response.release()
        return response

    async def _send(
        self, method: str, path: str, *args: str, ok: tuple[int, ...] = (200, 204), **kwargs: Any
    ) -> tuple[int, Any, bytes]:
        """``_request``, its body read whole: ``(status, headers, body)``."""
        async with self._request(method, path, *args, ok=ok, **kwargs) as response:
            return response.status, response.headers, await response.read()

    def _remember(self, name: str, metadata: dict[str, Any]) -> Version:
        version = Version(str(metadata["generation"]), _rfc3339(metadata["updated"]))
        if len(self._updated) >= MEMO_SIZE:
            self._updated.clear()  # one atomic call: other threads may be filling it too
        self._updated[name, version.etag] = version.timestamp
        return version

    async def _metadata(self, name: str) -> dict[str, Any]:
        _, _, body = await self._send("GET", "b/{}/o/{}", self.bucket, name, fields=_STAT_FIELDS)
        metadata: dict[str, Any] = json.loads(body)
        return metadata

    # --- the SDK calls of the template ------------------------------------------------------
    async def _get(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version, Metadata]:
        """One media GET, with the millisecond ``updated`` time when it is known (else Last-Modified).

        An object over ``part_threshold`` bytes is completed by concurrent ranged GETs (``gcs_parts``).
        """
        conditions = {"ifGenerationNotMatch": if_none_match} if if_none_match and is_generation(if_none_match) else {}
        async with self._request(
            "GET", "b/{}/o/{}", self.bucket, name, alt="media", ok=(200, 304), **conditions
        ) as response:
            headers = response.headers
            etag = str(headers.get("x-goog-generation") or if_none_match or "")
            if response.status == 304 or (if_none_match and etag == if_none_match):
                # GCS answers 304; an emulator that ignores the condition sends the same version again.
                return None, Version(etag, http_date(headers.get("Last-Modified"))), None
            size = int(headers.get("Content-Length") or 0)
            if size > self.transfers.part_threshold:
                body = await gcs_parts.read_rest(self, name, etag, response, size)
            else:
                body = await response.read()
        version, custom = self._described(name, etag, headers)
        return body, version, custom

    def _described(self, name: str, etag: str, headers: Any) -> tuple[Version, Metadata]:
        """The version and custom metadata a media GET's headers tell, with the millisecond ``updated`` time
        when it is known (else Last-Modified)."""
        timestamp = self._updated.get((name, etag))
        if timestamp is None:  # a version no listing told us about
            timestamp = http_date(headers.get("Last-Modified"))
        custom = {
            key[len(_META_HEADER):]: value for key, value in headers.items() if key.lower().startswith(_META_HEADER)
        }
        return Version(etag, timestamp), custom

    async def _first_range(self, name: str) -> FirstRange:
        """A media GET of the first ``part_threshold`` bytes: a value up to ``READ_CHUNK`` is read whole, a
        larger one's body is left open (its reader reads on from it: a value up to the threshold is one GET)."""
        try:
            response = await self._open_response("GET", "b/{}/o/{}", self.bucket, name, alt="media", ok=(200, 206),
                                                 headers={"Range": f"bytes=0-{self.transfers.part_threshold - 1}"})
        except GCSResponseError as exc:
            if exc.status != 416:
                raise
            # An empty object has no first byte to range over.  Its 416 tells its generation (fake-gcs-server
            # drops idle connections after it, so a second request right away would fail); else we ask.
            generation = str(exc.headers.get("x-goog-generation") or "")
            if generation:
                return FirstRange(b"", 0, *self._described(name, generation, exc.headers))
            data, version, metadata = await self._get(name)
            return FirstRange(data or b"", len(data or b""), version, metadata)
        try:
            headers, covered = response.headers, int(response.headers.get("Content-Length") or 0)
            content_range = str(headers.get("Content-Range") or "")
            size = int(content_range.rpartition("/")[2]) if response.status == 206 and "/" in content_range else covered
            version, custom = self._described(name, str(headers.get("x-goog-generation") or ""), headers)
            if size > READ_CHUNK:
                return FirstRange(b"", size, version, custom, body=response, covered=covered)
            head = await response.read()
        except BaseException:
            response.close()
            raise
        response.release()
        return FirstRange(head, size, version, custom)

    def _ranges(self, path: str, etag: str) -> gcs_parts.GCSRanges:
        return gcs_parts.GCSRanges(self, path, etag)

    async def _head(self, name: str) -> tuple[Version, Metadata]:
        metadata = await self._metadata(name)
        return self._remember(name, metadata), metadata.get("metadata")

    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        """One multipart upload, or for a value over ``part_threshold`` bytes a resumable one (``gcs_parts``)."""
        if len(data) <= self.transfers.part_threshold:
            return super().put(path, data, expected)
        return self._write(path, expected, lambda metadata: self._streamed(
            path, expected, metadata, lambda file: file.write(data), len(data)))

    def put_stream(self, path: str, payload: Payload, expected: Expected = ANY) -> str:
        """Write what ``payload.write_to(file)`` writes: one request up to ``part_threshold``, else a resumable
        upload whose chunks go up as they are written; the new generation.

        ``payload.starting()`` runs before the session is opened: a lazy store's first write creates the bucket.
        """
        return self._write(path, expected, lambda metadata: self._streamed(
            path, expected, metadata, payload.write_to, before_parts=payload.starting))

    def _streamed(self, path: str, expected: Expected, metadata: dict[str, str],
                  write: Callable[[IO[bytes]], object], size: int | None = None,
                  before_parts: Callable[[], object] | None = None) -> AbstractContextManager[bytes | Commit]:
        """``part_uploads.staged_from_writes`` into a resumable session carrying ``expected`` and ``metadata``."""
        upload = gcs_parts.ResumableUpload(self, path, expected, metadata)
        return part_uploads.staged_from_writes(upload, self.transfers.part_threshold, path, write, size,
                                               before_parts)

    async def _put_object(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        """One multipart upload (metadata and bytes in one request): its new generation."""
        conditions = gcs_parts.condition(name, expected)
        boundary = "persidict-" + secrets.token_hex(16)
        while boundary.encode() in data:
            boundary = "persidict-" + secrets.token_hex(16)
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps({'name': name, 'metadata': metadata})}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        _, _, response = await self._send(
            "POST",
            f"{self.fs._location}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o",
            uploadType="multipart",
            fields=self.fields,
            headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
            data=head.encode() + data + f"\r\n--{boundary}--\r\n".encode(),
            **conditions,
        )
        return self._remember(name, json.loads(response)).etag

    async def _delete_object(self, name: str, expected: Expected) -> None:
        # Unlike S3, GCS answers a DELETE of a missing object with 404: no need to read first.
        await self._send("DELETE", "b/{}/o/{}", self.bucket, name, **gcs_parts.condition(name, expected))

    async def _list_page(self, token: str | None) -> tuple[list[tuple[str, float]], str | None]:
        _, _, body = await self._send(
            "GET",
            "b/{}/o",
            self.bucket,
            prefix=self.prefix or None,
            maxResults=str(LIST_PAGE_SIZE),
            pageToken=token,
            fields=_LIST_FIELDS,
        )
        page = json.loads(body)
        items = [(item["name"], self._remember(item["name"], item).timestamp) for item in page.get("items", ())]
        return items, page.get("nextPageToken")

    async def _bucket_exists(self) -> bool:
        try:
            await self._send("GET", "b/{}", self.bucket, fields="name")
        except GCSResponseError as exc:
            if exc.status == 404:
                return False
            if exc.status == 403:
                return True  # a bucket we may not inspect: the first real request decides
            raise
        return True

    async def _create_bucket(self) -> None:
        try:
            await self._send("POST", "b", project=self.fs.project, json={"name": self.bucket}, fields="name")
        except GCSResponseError as exc:
            if exc.status != 409:  # created by someone else meanwhile
                raise
