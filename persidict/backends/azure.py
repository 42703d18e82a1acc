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

import asyncio
import errno
import re
from collections.abc import Iterable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from fsspec.asyn import sync

from .base import ABSENT, ANY, Expected, PreconditionFailed, StorageBackend, Version

__all__ = ["AzureBackend"]

CONCURRENT_READS = 32
EMPTY_READ_ATTEMPTS = 5
"""Reads of a blob that keeps changing between an empty GET and its check (see ``_download``)."""

_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_CONFLICTS = (ResourceModifiedError, ResourceExistsError)
_SCOPE_DENIALS = frozenset({"AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch"})


def _is_not_modified(exc: BaseException) -> bool:
    # The SDK raises ResourceNotModifiedError, or ResourceModifiedError when the
    # 304 carries ``x-ms-error-code: ConditionNotMet`` (Azurite sends it).
    return isinstance(exc, HttpResponseError) and exc.status_code == 304


def _is_missing_container(exc: BaseException) -> bool:
    return isinstance(exc, ResourceNotFoundError) and str(getattr(exc, "error_code", "")) == "ContainerNotFound"


def _as_os_error(exc: BaseException) -> OSError:
    """An ``OSError`` for FsspecDict to report as ``BackendError`` (keeps ``exc`` as the cause)."""
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        return exc
    wrapped = OSError(errno.EIO, f"Azure Blob request failed: {type(exc).__name__}: {exc}")
    wrapped.__cause__ = exc
    return wrapped


def _version(properties: Any) -> Version:
    return Version(str(properties.etag), properties.last_modified.timestamp())


def _http_date(value: str | None) -> float:
    return parsedate_to_datetime(value).timestamp() if value else 0.0


class AzureBackend(StorageBackend):
    """A container and blob-name prefix on Azure Blob Storage (or Azurite)."""

    backend_name = "azure"
    atomic_conditions = True

    def __init__(self, fs: Any, root: str) -> None:
        super().__init__(fs, root)
        self.container, _, prefix = self.root.partition("/")
        self.prefix = prefix + "/" if prefix else ""
        self._container_checked = False

    def child(self, relative: str) -> AzureBackend:
        child = AzureBackend(self.fs, self.path_for(relative))
        child._container_checked = self._container_checked
        return child

    def _blob(self, path: str) -> Any:
        container, _, name = path.partition("/")
        return self.fs.service_client.get_blob_client(container, name)

    def _run(self, coroutine: Any, *, conditional: bool = False) -> Any:
        """Run one request coroutine on adlfs's loop; the one place errors are classified.

        ``conditional`` says the request carried a precondition, so a 409/412
        means the expected version is not there.
        """
        try:
            return sync(self.fs.loop, lambda: coroutine)
        except (PreconditionFailed, FileNotFoundError):
            raise
        except _CONFLICTS as exc:
            if conditional:
                raise PreconditionFailed(str(exc).splitlines()[0]) from exc
            raise _as_os_error(exc) from exc
        except ResourceNotFoundError as exc:
            raise FileNotFoundError(errno.ENOENT, "No such blob", str(getattr(exc, "error_code", exc))) from exc
        except Exception as exc:
            raise _as_os_error(exc) from exc

    async def _download(self, blob: Any, **conditions: Any) -> tuple[bytes, Version]:
        for _ in range(EMPTY_READ_ATTEMPTS):
            downloader = await blob.download_blob(**conditions)
            data: bytes = await downloader.readall()
            version = _version(downloader.properties)
            if data:
                return data, version
            # An empty blob answers the SDK's ranged GET with 416; the SDK then
            # repeats the GET unconditionally and drops whatever body it gets.
            # If another writer filled the blob in between, ``version`` is the
            # new, non-empty one: confirm that this version really is empty.
            properties = await blob.get_blob_properties()
            if properties.etag == version.etag and properties.size == 0:
                return data, version
        raise OSError(errno.EIO, f"{blob.blob_name}: the blob kept changing while an empty value was read")

    # --- reads ---------------------------------------------------------------
    def read(self, path: str) -> bytes:
        return self.read_versioned(path)[0]

    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        return self._run(self._download(self._blob(path)))  # type: ignore[no-any-return]

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

        return self._run(get_unless_unchanged())  # type: ignore[no-any-return]

    def read_many(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes, Version] | None]:
        """Fetch many values concurrently (at most ``CONCURRENT_READS`` requests in flight)."""
        paths = list(paths)
        limit = asyncio.Semaphore(CONCURRENT_READS)

        async def one(path: str) -> tuple[str, bytes, Version] | None:
            async with limit:
                try:
                    data, version = await self._download(self._blob(path))
                except ResourceNotFoundError:
                    return None
                return path, data, version

        async def all_of_them() -> list[tuple[str, bytes, Version] | None]:
            return list(await asyncio.gather(*(one(path) for path in paths)))

        return iter(self._run(all_of_them()))

    def stat(self, path: str) -> Version:
        return _version(self._run(self._blob(path).get_blob_properties()))

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except FileNotFoundError:
            return False
        return True

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        if expected == "":
            raise PreconditionFailed(path)  # the SDK refuses an empty ETag; no blob has one
        blob = self._blob(path)
        if expected is ABSENT:
            # overwrite=False makes the SDK send If-None-Match: * (409 if present).
            upload = blob.upload_blob(data, overwrite=False)
        elif isinstance(expected, str):
            # If-Match on a missing blob also answers 412: the expected version is gone.
            upload = blob.upload_blob(data, overwrite=True, etag=expected, match_condition=MatchConditions.IfNotModified)
        else:
            upload = blob.upload_blob(data, overwrite=True)
        response = self._run(upload, conditional=expected is not ANY)
        return str(response["etag"])

    def remove(self, path: str, expected: Expected = ANY) -> None:
        """One Delete Blob, with ``If-Match`` unless ``expected`` is ``ANY``.

        Unlike S3, Azure answers a delete of a missing blob with 404, so an
        unconditional delete needs no read first to report a missing path.
        """
        if expected is ABSENT or expected == "":
            raise PreconditionFailed(path)
        blob = self._blob(path)
        if isinstance(expected, str):
            # A stale ETag gives 412; a missing blob gives 404 (Azurite: 412).
            self._run(blob.delete_blob(etag=expected, match_condition=MatchConditions.IfNotModified), conditional=True)
        else:
            self._run(blob.delete_blob())

    # --- listing -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        """List the blobs under the prefix, one service page (up to 5,000 names) per request."""
        container = self.fs.service_client.get_container_client(self.container)
        pages = container.list_blobs(name_starts_with=self.prefix or None).by_page()

        async def next_page() -> list[tuple[str, float]] | None:
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return None
            return [(blob.name, blob.last_modified.timestamp()) async for blob in page]

        start = len(self.prefix)
        while True:
            try:
                page = self._run(next_page())
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
        if self._container_checked:
            return
        if not _CONTAINER_NAME.match(self.container):
            raise ValueError(
                f"{self.container!r} is not a valid Azure container name: use 3 to 63 lowercase letters, "
                "digits and single hyphens, starting and ending with a letter or digit"
            )
        container = self.fs.service_client.get_container_client(self.container)
        try:
            exists = self._run(container.exists())
        except OSError as exc:
            if str(getattr(exc.__cause__, "error_code", "")) not in _SCOPE_DENIALS:
                raise
            exists = True
        if not exists:
            try:
                self._run(container.create_container())
            except OSError as exc:
                if not isinstance(exc.__cause__, ResourceExistsError):  # created by someone else meanwhile
                    raise
        self._container_checked = True
