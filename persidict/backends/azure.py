"""Azure Blob Storage through adlfs, with server-side conditions.

Every primitive is one request to the Blob service where the API allows it:
a GET returns the body together with its ETag and Last-Modified; a PUT
carries ``If-None-Match: *`` (insert-if-absent) or ``If-Match: <etag>``
(compare-and-swap); a DELETE carries ``If-Match``.  Requests go through
adlfs's async ``BlobServiceClient`` (``fs.service_client``) on adlfs's event
loop, never through its listing cache, so other writers' changes are seen at
once; the SDK's own retries are off (retries, deadlines and the reconciling
of lost answers are ``ObjectStoreBackend``'s).

Request sizes, from the azure-storage-blob SDK (12.x):

- Reads: ``download_blob`` asks for ``bytes=0-(max_single_get_size-1)``
  first; we set that to ``part_threshold`` (``azure_blocks.ranged_client``),
  so a value up to the threshold is one GET.  A larger value is fetched in
  further ranges of ``part_size``, ``parts_in_flight`` at once, straight
  into one buffer, and the SDK pins those to the first response's ETag
  (``If-Match``), so a read never mixes two versions.  An empty blob
  answers the ranged GET with 416 and the SDK repeats the GET without a
  range and without a condition; ``_download`` checks such a result against
  the blob's properties (see there).
- Writes: a body up to ``part_threshold`` is one Put Blob (the SDK's own
  staging above its ``max_single_put_size`` would also send the conditions
  with the final Put Block List, ``tests/backends/test_azure.py`` pins it);
  a larger one is staged in blocks by ``azure_blocks``, each block with its
  own retries, and committed with the condition and the write's metadata.
- Streams (``streams_values``): a set pickles into the blocks as they fill, a
  get unpickles from the first GET's bytes and ranges pinned by ``If-Match``
  (``part_uploads``' sink, ``part_reads``' reader, ``azure_blocks``' hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..protocol.versions import ABSENT, ANY, Expected, Version
from . import azure_blocks, part_uploads
from .base import Payload, ReplacedMidRead
from .object_store import Commit, Metadata, Outcome, forbid_hidden_resends, http_date
from .part_reads import FirstRange, RangeReadingBackend

__all__ = ["AzureBackend"]

LIST_PAGE_SIZE = 5000
"""Names per List Blobs request (the service's maximum)."""
BLIND_WRITE_ROUNDS = 4
"""Stagings of a big value written whatever is stored, whose blocks other writers' commits keep discarding."""
EMPTY_READ_ATTEMPTS = 5
"""Reads of a blob that keeps changing between an empty GET and its check (see ``_get``)."""

REQUEST_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 60}
"""Sent with every SDK call: no SDK retries (its policy waits 15 s, 18 s and 24 s, and resends
conditional requests blindly), and a connection attempt that fails fast."""

_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_SCOPE_DENIALS = frozenset({"AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch"})
_STATUS_OUTCOMES = {401: Outcome.DENIED, 403: Outcome.DENIED, 408: Outcome.LOST, 429: Outcome.REFUSED,
                    503: Outcome.REFUSED}


def _version(properties: Any) -> Version:
    return Version(str(properties.etag), properties.last_modified.timestamp())



class AzureBackend(RangeReadingBackend):
    """A container (``self.bucket``) and blob-name prefix on Azure Blob Storage (or Azurite)."""

    backend_name = "azure"
    streams_values = True
    request_options = REQUEST_OPTIONS
    root_kind = "container"
    metadata_keys = ("persidict_write", "persidict_lineage")  # metadata names must be C# identifiers

    def _outcome(self, exc: BaseException) -> Outcome:
        if isinstance(exc, ResourceNotFoundError):
            if str(getattr(exc, "error_code", "")) == "ContainerNotFound":
                return Outcome.BUCKET_MISSING
            return Outcome.NOT_FOUND
        if isinstance(exc, (ResourceModifiedError, ResourceExistsError)):
            return Outcome.CONFLICT
        if isinstance(exc, ClientAuthenticationError):
            return Outcome.DENIED
        if isinstance(exc, ServiceRequestError):
            return Outcome.UNREACHABLE  # failed before it was sent
        if isinstance(exc, (ServiceResponseError, asyncio.TimeoutError, ConnectionError)):
            return Outcome.LOST
        status = getattr(exc, "status_code", None)
        if isinstance(exc, HttpResponseError) and status is not None:
            return _STATUS_OUTCOMES.get(status, Outcome.LOST if status >= 500 else Outcome.FAILED)
        return Outcome.FAILED

    def _blob(self, name: str) -> Any:
        return self._service().get_blob_client(self.bucket, name)

    def _container(self) -> Any:
        return self._service().get_container_client(self.bucket)

    def _service(self) -> Any:
        """adlfs's service client, its aiohttp session stopped from resending on its own."""
        service = self.fs.service_client
        transport: Any = getattr(getattr(service, "_pipeline", None), "_transport", None)
        if getattr(transport, "session", None) is None and getattr(transport, "_session_owner", False):
            import aiohttp

            # What AioHttpTransport.open() would create, made now so that it can be configured.
            transport.session = aiohttp.ClientSession(
                trust_env=transport._use_env_settings, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
            )
        forbid_hidden_resends(getattr(transport, "session", None))
        return service

    # --- the SDK calls of the template ------------------------------------------------------
    async def _get(self, name: str, if_none_match: str | None = None) -> tuple[bytes | None, Version, Metadata]:
        """One GET (conditional with ``If-None-Match``); a 304 gives ``(None, version)``.

        A 304's ``Last-Modified`` gives the timestamp; a server that omits it
        (Azurite does) yields 0.0, as with S3.
        """
        blob = azure_blocks.ranged_client(self, name)
        conditions = {"etag": if_none_match, "match_condition": MatchConditions.IfModified} if if_none_match else {}
        try:
            return await self._download(blob, **conditions)
        except HttpResponseError as exc:
            # The SDK raises ResourceNotModifiedError, or ResourceModifiedError when the
            # 304 carries ``x-ms-error-code: ConditionNotMet`` (Azurite sends it).
            if not (if_none_match and exc.status_code == 304):
                raise
            headers = getattr(exc.response, "headers", None) or {}
            return None, Version(headers.get("ETag") or if_none_match, http_date(headers.get("Last-Modified"))), None

    async def _download(self, blob: Any, **conditions: Any) -> tuple[bytes, Version, Metadata]:
        for _ in range(EMPTY_READ_ATTEMPTS):
            downloader = await blob.download_blob(**conditions, max_concurrency=self.transfers.parts_in_flight,
                                                  **REQUEST_OPTIONS)
            data = await self._read_all(downloader)
            version = _version(downloader.properties)
            if data:
                return data, version, downloader.properties.metadata
            # An empty blob answers the SDK's ranged GET with 416; the SDK then
            # repeats the GET unconditionally and drops whatever body it gets.
            # If another writer filled the blob in between, ``version`` is the
            # new, non-empty one: confirm that this version really is empty.
            properties = await blob.get_blob_properties(**REQUEST_OPTIONS)
            if properties.etag == version.etag and properties.size == 0:
                return data, version, properties.metadata
        raise OSError(errno.EIO, f"{blob.blob_name}: the blob kept changing while an empty value was read")

    async def _read_all(self, downloader: Any) -> bytes:
        """The downloader's bytes: a blob over ``part_threshold`` read in concurrent ranges into one buffer."""
        if downloader.size <= self.transfers.part_threshold:
            data: bytes = await downloader.readall()
            return data
        into = azure_blocks.BufferWriter(downloader.size)
        await downloader.readinto(into)
        return into.value()

    async def _first_range(self, name: str) -> FirstRange:
        """A GET of the first ``part_threshold`` bytes (the SDK reads them whole: a value up to the threshold is
        one GET), with the blob's size; an empty blob is read as ``_get`` reads it (see ``_download``)."""
        try:
            downloader = await azure_blocks.ranged_client(self, name).download_blob(
                offset=0, length=self.transfers.part_threshold, max_concurrency=1, **REQUEST_OPTIONS)
        except HttpResponseError as exc:
            if exc.status_code != 416:  # an empty blob has no first byte to range over: 416
                raise
            properties = await self._blob(name).get_blob_properties(**REQUEST_OPTIONS)
            if properties.size:
                raise ReplacedMidRead(f"{name} was filled while it was read") from None  # read the new one
            return FirstRange(b"", 0, _version(properties), properties.metadata)
        head: bytes = await downloader.readall()
        properties = downloader.properties
        size = int(str(properties.content_range).rpartition("/")[2])
        return FirstRange(head, size, _version(properties), properties.metadata)

    def _ranges(self, path: str, etag: str) -> azure_blocks.AzureRanges:
        return azure_blocks.AzureRanges(self, path, etag)

    async def _head(self, name: str) -> tuple[Version, Metadata]:
        properties = await self._blob(name).get_blob_properties(**REQUEST_OPTIONS)
        return _version(properties), properties.metadata

    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        """One Put Blob, or for a value over ``part_threshold`` bytes staged blocks and a commit (``azure_blocks``)."""
        if len(data) <= self.transfers.part_threshold:
            return super().put(path, data, expected)
        return self._staging(path, expected, lambda file: file.write(data), len(data))

    def put_stream(self, path: str, payload: Payload, expected: Expected = ANY) -> str:
        """Write what ``payload.write_to(file)`` writes: one Put Blob up to ``part_threshold``, else blocks
        staged as they are written and a commit; the new ETag.

        ``payload.starting()`` runs before the first block: a lazy store's first write creates the container.
        """
        return self._staging(path, expected, payload.write_to, before_parts=payload.starting)

    def _staging(self, path: str, expected: Expected, write: Callable[[IO[bytes]], object], size: int | None = None,
                 before_parts: Callable[[], object] | None = None) -> str:
        """A write of what ``write`` writes, in blocks past the threshold (``part_uploads.staged_from_writes``).

        Another writer's commit discards the blocks we staged (Azure keeps no
        uncommitted blocks past a commit): a conditional write is then refused
        by its condition anyway, and a plain one is written again, from the start.
        """

        def stage(metadata: dict[str, str]) -> AbstractContextManager[bytes | Commit]:
            upload = azure_blocks.StagedBlocks(self, path, metadata)
            return part_uploads.staged_from_writes(upload, self.transfers.part_threshold, path, write, size,
                                                   before_parts)

        discarded: OSError | None = None
        for _ in self.retry.rounds(BLIND_WRITE_ROUNDS - 1):
            try:
                return self._write(path, expected, stage)
            except OSError as exc:
                if expected is not ANY or not isinstance(exc.__cause__, azure_blocks.BlocksDiscarded):
                    raise
                discarded = exc
        raise OSError(errno.EAGAIN, f"write {path}: other writers kept committing it while its blocks "
                                    "were staged") from discarded

    async def _put_object(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        conditions: dict[str, Any] = {"overwrite": True}
        if expected is ABSENT:
            conditions = {"overwrite": False}  # the SDK sends If-None-Match: * (409 if present)
        elif isinstance(expected, str):
            # If-Match on a missing blob also answers 412: the expected version is gone.
            conditions = {"overwrite": True, "etag": expected, "match_condition": MatchConditions.IfNotModified}
        if not isinstance(data, bytes):
            data = bytes(data)  # a streamed small value's bytearray: the SDK would take it for an iterable of chunks
        response = await self._blob(name).upload_blob(
            data, metadata=metadata, **conditions, **REQUEST_OPTIONS
        )
        return str(response["etag"])

    async def _delete_object(self, name: str, expected: Expected) -> None:
        """One Delete Blob, with ``If-Match`` unless ``expected`` is ``ANY``.

        Unlike S3, Azure answers a delete of a missing blob with 404, so an
        unconditional delete needs no read first to report a missing path.
        """
        conditions: dict[str, Any] = {}
        if isinstance(expected, str):
            # A stale ETag gives 412; a missing blob gives 404 (Azurite: 412).
            conditions = {"etag": expected, "match_condition": MatchConditions.IfNotModified}
        await self._blob(name).delete_blob(**conditions, **REQUEST_OPTIONS)

    async def _list_page(self, token: str | None) -> tuple[list[tuple[str, float]], str | None]:
        """One service page (up to 5,000 names) of the blobs under the prefix."""
        pages = self._container().list_blobs(
            name_starts_with=self.prefix or None, results_per_page=LIST_PAGE_SIZE, **REQUEST_OPTIONS
        ).by_page(continuation_token=token)
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return [], None
        items = [(blob.name, blob.last_modified.timestamp()) async for blob in page]
        return items, pages.continuation_token

    def ensure_root(self) -> None:
        self.check_root()
        super().ensure_root()

    def check_root(self) -> None:
        if not _CONTAINER_NAME.match(self.bucket):
            raise ValueError(
                f"{self.bucket!r} is not a valid Azure container name: use 3 to 63 lowercase letters, "
                "digits and single hyphens, starting and ending with a letter or digit"
            )

    async def _bucket_exists(self) -> bool:
        """Whether the container exists.

        A credential scoped below the container (a blob SAS, a narrow role)
        may not read the container's properties: that 403 counts as "exists",
        and the first real request then tells whether the store is usable.
        """
        try:
            exists: bool = await self._container().exists(**REQUEST_OPTIONS)
        except HttpResponseError as exc:
            if str(getattr(exc, "error_code", "")) in _SCOPE_DENIALS:
                return True
            raise
        return exists

    async def _create_bucket(self) -> None:
        with contextlib.suppress(ResourceExistsError):  # created by someone else meanwhile
            await self._container().create_container(**REQUEST_OPTIONS)
