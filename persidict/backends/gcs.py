"""Google Cloud Storage through gcsfs, with generation preconditions.

Every primitive is one request to the GCS JSON API where the API allows it,
sent through gcsfs's authenticated session (``fs._request``, with its
retries of transient errors) but never through its listing cache, so other
writers' changes are seen at once:

- the ETag is the object's ``generation``: a new number for every write;
- a read is one media GET (``alt=media``); the generation arrives in its
  ``x-goog-generation`` header;
- a write is one multipart upload (metadata and bytes in one request) with
  ``ifGenerationMatch=0`` (insert-if-absent) or ``ifGenerationMatch=<etag>``
  (compare-and-swap); GCS checks the condition atomically;
- a delete is one DELETE, with ``ifGenerationMatch`` when a version is expected.

gcsfs reports every failed request as an exception whose type encodes the
status (404: ``FileNotFoundError``, 412: ``FileExistsError``, others:
``OSError``, ``ValueError`` or ``HttpError``); ``_run`` classifies them once.

Timestamps are the object's ``updated`` time (millisecond resolution), as
``stat``, ``walk`` and ``read_many`` report it.  A media GET carries only a
``Last-Modified`` header in whole seconds, so the versions returned by
``read_versioned`` and ``read_if_changed`` have that coarser timestamp; their
ETag is exact.
"""

from __future__ import annotations

import errno
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from fsspec.asyn import sync

from .base import ABSENT, ANY, Expected, PreconditionFailed, Version
from .object_store import ObjectStoreBackend

__all__ = ["GCSBackend"]

LIST_PAGE_SIZE = 1000
"""Objects per page of a listing (the JSON API's maximum)."""

MEMO_SIZE = 100_000
"""Versions whose ``updated`` time is remembered, so ``read_many`` needs no metadata request."""

_GENERATION = re.compile(r"[1-9][0-9]*")
_STAT_FIELDS = "generation,updated"
_LIST_FIELDS = "items(name,generation,updated),nextPageToken"


def _is_generation(etag: str) -> bool:
    """Whether ``etag`` can be a generation: any other string matches no object.

    This matters for ``"0"``, which GCS reads as "the object does not exist".
    """
    return _GENERATION.fullmatch(etag) is not None


def _rfc3339(value: str) -> float:
    """POSIX time of a GCS timestamp such as ``2024-05-01T12:00:00.123Z``."""
    return datetime.fromisoformat(value).timestamp()


def _http_date(value: str | None) -> float:
    return parsedate_to_datetime(value).timestamp() if value else 0.0


def _is_forbidden(exc: BaseException) -> bool:
    # gcsfs raises a bare OSError for a 403 and formats its message itself.
    return type(exc) is OSError and str(exc).startswith("Forbidden")


class GCSBackend(ObjectStoreBackend):
    """A bucket and object-name prefix on Google Cloud Storage."""

    backend_name = "gcs"

    def __init__(self, fs: Any, root: str) -> None:
        super().__init__(fs, root)
        # (object name, generation) -> ``updated``: facts that never change
        # (we never patch metadata), shared with child backends.
        self._updated: dict[tuple[str, str], float] = {}

    # --- the request boundary ---------------------------------------------------
    def _run(self, function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run one request coroutine on gcsfs's event loop, classifying its errors once."""
        try:
            return sync(self.fs.loop, function, *args)
        except PreconditionFailed:
            raise
        except FileNotFoundError as exc:
            raise FileNotFoundError(errno.ENOENT, "No such object", str(exc)) from exc
        except OSError:
            raise  # gcsfs's 403 and 412, timeouts, lost connections: already what FsspecDict expects
        except Exception as exc:  # gcsfs's HttpError and ValueError (400), aiohttp and auth errors
            raise OSError(errno.EIO, f"GCS request failed: {exc!r}") from exc

    async def _request(self, method: str, url: str, *args: Any, conditional: bool = False, **kwargs: Any) -> Any:
        """``(status, headers, body)`` of one request; a 412 on a conditional one is ``PreconditionFailed``."""
        try:
            status, headers, _, body = await self.fs._request(method, url, *args, **kwargs)
        except FileExistsError as exc:  # gcsfs's name for 412
            if conditional:
                raise PreconditionFailed(url) from exc
            raise
        return status, headers, body

    def _name(self, path: str) -> str:
        return path.partition("/")[2]

    def _remember(self, name: str, metadata: dict[str, Any]) -> Version:
        version = Version(str(metadata["generation"]), _rfc3339(metadata["updated"]))
        if len(self._updated) >= MEMO_SIZE:
            self._updated.clear()  # one atomic call: other threads may be filling it too
        self._updated[name, version.etag] = version.timestamp
        return version

    async def _get(self, name: str, **conditions: str) -> tuple[bytes, Version, bool]:
        """One media GET: the bytes, their version, and whether GCS answered 304 Not Modified."""
        status, headers, body = await self._request(
            "GET", "b/{}/o/{}", self.bucket, name, alt="media", conditional=bool(conditions), **conditions
        )
        etag = headers.get("x-goog-generation") or conditions.get("ifGenerationNotMatch", "")
        version = Version(str(etag), _http_date(headers.get("Last-Modified")))
        return bytes(body), version, status == 304

    async def _metadata(self, name: str) -> Version:
        _, _, body = await self._request("GET", "b/{}/o/{}", self.bucket, name, fields=_STAT_FIELDS)
        return self._remember(name, json.loads(body))

    # --- reads ---------------------------------------------------------------
    def read_versioned(self, path: str) -> tuple[bytes, Version]:
        """One media GET (its Last-Modified has whole seconds; FsspecDict needs only the ETag here)."""
        data, version, _ = self._run(self._get, self._name(path))
        return data, version

    def read_if_changed(self, path: str, etag: str) -> tuple[bytes | None, Version]:
        if not _is_generation(etag):
            return self.read_versioned(path)
        data, version, not_modified = self._run(lambda: self._get(self._name(path), ifGenerationNotMatch=etag))
        # GCS answers 304; an emulator that ignores the condition sends the same version again.
        return (None if not_modified or version.etag == etag else data), version

    async def _read_one(self, path: str) -> tuple[bytes, Version]:
        return await self._read_exactly(self._name(path))

    async def _read_exactly(self, name: str) -> tuple[bytes, Version]:
        """The bytes of one object and their version, with ``updated`` to the millisecond if possible."""
        data, version, _ = await self._get(name)
        timestamp = self._updated.get((name, version.etag))
        if timestamp is None:  # not listed recently: ask for the metadata
            metadata = await self._metadata(name)
            # Overwritten since our GET: the old version's ``updated`` is gone, keep Last-Modified.
            timestamp = metadata.timestamp if metadata.etag == version.etag else version.timestamp
        return data, Version(version.etag, timestamp)

    def stat(self, path: str) -> Version:
        return self._run(self._metadata, self._name(path))  # type: ignore[no-any-return]

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        conditions: dict[str, str] = {}
        if expected is ABSENT:
            conditions["ifGenerationMatch"] = "0"
        elif isinstance(expected, str):
            if not _is_generation(expected):
                raise PreconditionFailed(path)
            conditions["ifGenerationMatch"] = expected
        name = self._name(path)
        return self._run(lambda: self._upload(name, bytes(data), conditions))  # type: ignore[no-any-return]

    async def _upload(self, name: str, data: bytes, conditions: dict[str, str]) -> str:
        """One multipart upload (metadata and bytes in one request, for any size): its new generation."""
        boundary = "persidict-" + secrets.token_hex(16)
        while boundary.encode() in data:
            boundary = "persidict-" + secrets.token_hex(16)
        head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps({'name': name})}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
        _, _, response = await self._request(
            "POST",
            f"{self.fs._location}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o",
            uploadType="multipart",
            fields=_STAT_FIELDS,
            headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
            data=body,
            conditional=bool(conditions),
            **conditions,
        )
        return self._remember(name, json.loads(response)).etag

    def remove(self, path: str, expected: Expected = ANY) -> None:
        if expected is ABSENT:
            raise PreconditionFailed(path)
        conditions: dict[str, str] = {}
        if isinstance(expected, str):
            if not _is_generation(expected):
                raise PreconditionFailed(path)
            conditions["ifGenerationMatch"] = expected
        # Unlike S3, GCS answers a DELETE of a missing object with 404: no need to read first.
        self._run(
            lambda: self._request(
                "DELETE", "b/{}/o/{}", self.bucket, self._name(path), conditional=bool(conditions), **conditions
            )
        )

    # --- listing -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        start = len(self.prefix)
        token: str | None = None
        while True:
            _, _, body = self._run(self._list_page, token)
            page = json.loads(body)
            for item in page.get("items", ()):
                name = item["name"]
                if name.endswith(suffix):
                    version = self._remember(name, item)
                    yield name[start:], version.timestamp if with_timestamps else 0.0
            token = page.get("nextPageToken")
            if not token:
                return

    async def _list_page(self, token: str | None) -> Any:
        return await self._request(
            "GET",
            "b/{}/o",
            self.bucket,
            prefix=self.prefix or None,
            maxResults=str(LIST_PAGE_SIZE),
            pageToken=token,
            fields=_LIST_FIELDS,
        )

    def ensure_root(self) -> None:
        """Create the bucket if it does not exist (a 403 on a foreign bucket is tolerated)."""
        if self._bucket_checked:
            return
        try:
            self._run(lambda: self._request("GET", "b/{}", self.bucket, fields="name"))
        except FileNotFoundError:
            self._create_bucket()
        except OSError as exc:
            if not _is_forbidden(exc):
                raise
        self._bucket_checked = True

    def _create_bucket(self) -> None:
        try:
            self._run(
                lambda: self._request("POST", "b", project=self.fs.project, json={"name": self.bucket}, fields="name")
            )
        except OSError as exc:
            if getattr(exc.__cause__, "code", None) != 409:  # created by someone else meanwhile
                raise
