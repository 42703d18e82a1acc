"""Azure Blob Storage through adlfs, with server-side conditions.

Every primitive is one request to the Blob service where the API allows it:
a GET returns the body together with its ETag and Last-Modified; a PUT
carries ``If-None-Match: *`` (insert-if-absent) or ``If-Match: <etag>``
(compare-and-swap); a DELETE carries ``If-Match``.  Requests go through
adlfs's async ``BlobServiceClient`` (``fs.service_client``) on adlfs's event
loop, never through its listing cache, so other writers' changes are seen at
once.

Request sizes, from the azure-storage-blob SDK (12.x):

- Reads: ``download_blob`` asks for ``bytes=0-(max_single_get_size-1)``
  first; adlfs keeps the SDK's default of 32 MiB, so a value up to 32 MiB is
  one GET.  A larger value is fetched in further ranges, and the SDK pins
  those to the first response's ETag (``If-Match``), so a read never mixes
  two versions.  An empty blob answers the ranged GET with 416 and the SDK
  repeats the GET without a range and without a condition; ``_download``
  checks such a result against the blob's properties (see there).
- Writes: a body up to ``max_single_put_size`` (64 MiB by default) is one Put
  Blob; a larger one is staged in blocks, and the SDK sends the conditions
  with the final Put Block List (``upload_block_blob`` passes
  ``modified_access_conditions`` to ``commit_block_list``; the block stager
  drops them), so a condition is never lost the way s3fs loses it for
  multipart uploads.  ``tests/backends/test_azure.py`` pins this.
"""

from __future__ import annotations

import errno
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from fsspec.asyn import sync

from .base import ABSENT, ANY, Expected, PreconditionFailed, Version
from .object_store import ObjectStoreBackend

__all__ = ["AzureBackend"]

LIST_PAGE_SIZE = 5000
"""Names per List Blobs request (the service's maximum)."""
EMPTY_READ_ATTEMPTS = 5
"""Reads of a blob that keeps changing between an empty GET and its check (see ``_download``)."""

ATTEMPTS = 4
FIRST_BACKOFF = 0.1
"""Our own retries: 0.1 s, 0.4 s, 1.6 s (with jitter) between the attempts."""

REQUEST_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 60}
"""Sent with every SDK call.  The SDK's own retry policy, which adlfs offers
no way to configure, waits 15 s, 18 s and 24 s, and its connection timeout
is 20 s: against a dead endpoint a store took 90 s to fail.  We retry
ourselves instead (``_run``), and only where a retry cannot double a write."""

_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_CONFLICTS = (ResourceModifiedError, ResourceExistsError)
_SCOPE_DENIALS = frozenset({"AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch"})
_NOT_APPLIED = frozenset({429, 503})
"""Throttling and ServerBusy: the service refused the request, so it is safe to send again."""
_MAYBE_APPLIED = frozenset({500, 502, 504})

T = TypeVar("T")


def _is_not_modified(exc: BaseException) -> bool:
    # The SDK raises ResourceNotModifiedError, or ResourceModifiedError when the
    # 304 carries ``x-ms-error-code: ConditionNotMet`` (Azurite sends it).
    return isinstance(exc, HttpResponseError) and exc.status_code == 304


def _is_transient(exc: BaseException, idempotent: bool) -> bool:
    """Whether sending the request again may succeed and cannot apply it twice.

    A request that failed before it was sent, or that the service refused,
    is always safe to repeat.  One that may have been applied is repeated only
    if ``idempotent``: a repeated conditional write would fail against its own
    first attempt.
    """
    if isinstance(exc, ServiceRequestError):
        return True
    if isinstance(exc, ServiceResponseError):
        return idempotent
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return exc.status_code in _NOT_APPLIED or (idempotent and exc.status_code in _MAYBE_APPLIED)
    return False


def _classified(exc: BaseException, conditional: bool) -> BaseException:
    """The contract's exception for a failed request: the one place SDK errors are mapped."""
    if isinstance(exc, (PreconditionFailed, FileNotFoundError)):
        return exc
    if conditional and isinstance(exc, _CONFLICTS):
        return PreconditionFailed(str(exc).splitlines()[0])
    if isinstance(exc, ResourceNotFoundError):
        return FileNotFoundError(errno.ENOENT, "No such blob", str(getattr(exc, "error_code", None) or exc))
    if isinstance(exc, OSError):
        return exc
    return OSError(errno.EIO, f"Azure Blob request failed: {type(exc).__name__}: {exc}")


def _version(properties: Any) -> Version:
    return Version(str(properties.etag), properties.last_modified.timestamp())


def _http_date(value: str | None) -> float:
    return parsedate_to_datetime(value).timestamp() if value else 0.0


class AzureBackend(ObjectStoreBackend):
    """A container (``self.bucket``) and blob-name prefix on Azure Blob Storage (or Azurite)."""

    backend_name = "azure"

    def _blob(self, path: str) -> Any:
        container, _, name = path.partition("/")
        return self.fs.service_client.get_blob_client(container, name)

    def _run(
        self, request: Callable[[], Awaitable[T]], *, conditional: bool = False, idempotent: bool = True
    ) -> T:
        """Run ``request()`` on adlfs's loop, retrying transient failures, and classify its errors.

        ``conditional``: the request carried a precondition, so a 409/412 means
        the expected version is not there.  ``idempotent``: sending it twice
        does no harm (see ``_is_transient``).
        """
        for attempt in range(ATTEMPTS):
            try:
                return sync(self.fs.loop, request)  # type: ignore[no-any-return]
            except Exception as exc:
                if attempt + 1 < ATTEMPTS and _is_transient(exc, idempotent):
                    time.sleep(FIRST_BACKOFF * 4**attempt * random.uniform(0.5, 1.5))
                    continue
                mapped = _classified(exc, conditional)
                if mapped is exc:
                    raise
                raise mapped from exc
        raise AssertionError("unreachable")

    async def _download(self, blob: Any, **conditions: Any) -> tuple[bytes, Version]:
        for _ in range(EMPTY_READ_ATTEMPTS):
            downloader = await blob.download_blob(**conditions, **REQUEST_OPTIONS)
            data: bytes = await downloader.readall()
            version = _version(downloader.properties)
            if data:
                return data, version
            # An empty blob answers the SDK's ranged GET with 416; the SDK then
            # repeats the GET unconditionally and drops whatever body it gets.
            # If another writer filled the blob in between, ``version`` is the
            # new, non-empty one: confirm that this version really is empty.
            properties = await blob.get_blob_properties(**REQUEST_OPTIONS)
            if properties.etag == version.etag and properties.size == 0:
                return data, version
        raise OSError(errno.EIO, f"{blob.blob_name}: the blob kept changing while an empty value was read")

    # --- reads ---------------------------------------------------------------
    async def _read_one(self, path: str) -> tuple[bytes, Version]:
        try:
            return await self._download(self._blob(path))
        except ResourceNotFoundError as exc:
            raise FileNotFoundError(errno.ENOENT, "No such blob", path) from exc

    def read_if_changed(self, path: str, etag: str) -> tuple[bytes | None, Version]:
        """One conditional GET (``If-None-Match``); a 304 gives ``(None, version)``.

        The 304's ``Last-Modified`` gives the timestamp; a server that omits it
        (Azurite does) yields 0.0, as with S3.
        """
        if not etag:
            return self.read_versioned(path)  # the SDK refuses an empty ETag; no blob has one
        blob = self._blob(path)

        async def get_unless_unchanged() -> tuple[bytes | None, Version]:
            try:
                return await self._download(blob, etag=etag, match_condition=MatchConditions.IfModified)
            except HttpResponseError as exc:
                if not _is_not_modified(exc):
                    raise
                headers = getattr(exc.response, "headers", None) or {}
                return None, Version(headers.get("ETag") or etag, _http_date(headers.get("Last-Modified")))

        return self._run(get_unless_unchanged)

    def stat(self, path: str) -> Version:
        blob = self._blob(path)
        return _version(self._run(lambda: blob.get_blob_properties(**REQUEST_OPTIONS)))

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        if expected == "":
            raise PreconditionFailed(path)  # the SDK refuses an empty ETag; no blob has one
        blob = self._blob(path)
        conditions: dict[str, Any] = {"overwrite": True}
        if expected is ABSENT:
            # overwrite=False makes the SDK send If-None-Match: * (409 if present).
            conditions = {"overwrite": False}
        elif isinstance(expected, str):
            # If-Match on a missing blob also answers 412: the expected version is gone.
            conditions = {"overwrite": True, "etag": expected, "match_condition": MatchConditions.IfNotModified}
        conditional = expected is not ANY
        response = self._run(
            lambda: blob.upload_blob(data, **conditions, **REQUEST_OPTIONS),
            conditional=conditional,
            idempotent=not conditional,
        )
        return str(response["etag"])

    def remove(self, path: str, expected: Expected = ANY) -> None:
        """One Delete Blob, with ``If-Match`` unless ``expected`` is ``ANY``.

        Unlike S3, Azure answers a delete of a missing blob with 404, so an
        unconditional delete needs no read first to report a missing path.
        """
        if expected is ABSENT or expected == "":
            raise PreconditionFailed(path)
        blob = self._blob(path)
        conditions: dict[str, Any] = {}
        if isinstance(expected, str):
            # A stale ETag gives 412; a missing blob gives 404 (Azurite: 412).
            conditions = {"etag": expected, "match_condition": MatchConditions.IfNotModified}
        # Not idempotent: a repeated delete would report our own deletion as a missing blob.
        self._run(
            lambda: blob.delete_blob(**conditions, **REQUEST_OPTIONS), conditional=bool(conditions), idempotent=False
        )

    # --- listing -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        """List the blobs under the prefix, one service page (up to 5,000 names) per request."""
        container = self.fs.service_client.get_container_client(self.bucket)
        pages = container.list_blobs(
            name_starts_with=self.prefix or None, results_per_page=LIST_PAGE_SIZE, **REQUEST_OPTIONS
        ).by_page()

        async def next_page() -> list[tuple[str, float]] | None:
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return None
            return [(blob.name, blob.last_modified.timestamp()) async for blob in page]

        start = len(self.prefix)
        while True:
            try:
                page = self._run(next_page)
            except FileNotFoundError:
                return  # a container that does not exist holds nothing
            if page is None:
                return
            for name, timestamp in page:
                if name.endswith(suffix):
                    yield name[start:], timestamp if with_timestamps else 0.0

    def ensure_root(self) -> None:
        """Create the container if it does not exist.

        A credential scoped below the container (a blob SAS, a narrow role)
        may not read the container's properties: that 403 is tolerated, and
        the first real request then tells whether the store is usable.
        """
        if self._bucket_checked:
            return
        if not _CONTAINER_NAME.match(self.bucket):
            raise ValueError(
                f"{self.bucket!r} is not a valid Azure container name: use 3 to 63 lowercase letters, "
                "digits and single hyphens, starting and ending with a letter or digit"
            )
        container = self.fs.service_client.get_container_client(self.bucket)
        try:
            exists = self._run(lambda: container.exists(**REQUEST_OPTIONS))
        except OSError as exc:
            if str(getattr(exc.__cause__, "error_code", "")) not in _SCOPE_DENIALS:
                raise
            exists = True
        if not exists:
            try:
                self._run(lambda: container.create_container(**REQUEST_OPTIONS))
            except OSError as exc:
                if not isinstance(exc.__cause__, ResourceExistsError):  # created by someone else meanwhile
                    raise
        self._bucket_checked = True
