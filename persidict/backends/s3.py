"""Amazon S3 (and S3-compatible servers) through s3fs, with server-side conditions.

Every primitive is one S3 request where the API allows it: a GET returns the
body together with its ETag and LastModified; a PUT carries ``If-None-Match: *``
(insert-if-absent) or ``If-Match: <etag>`` (compare-and-swap); a DELETE
carries ``If-Match``.  Requests go straight to the S3 API through s3fs's
client, never through its listing cache, so other writers' changes are seen
at once.  Bodies are always sent with a single PutObject, so a condition can
never be dropped the way s3fs drops it for multipart uploads.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from fsspec.asyn import sync

from .base import ABSENT, ANY, Expected, PreconditionFailed, Version
from .object_store import ObjectStoreBackend

T = TypeVar("T")

__all__ = ["S3Backend", "conditional_request_failed", "not_found_error", "not_modified_error"]

MAX_SINGLE_PUT = 5 * 1024**3
"""S3's limit for one PutObject; larger values would need multipart, which loses conditions."""

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_NOT_MODIFIED_CODES = frozenset({"NotModified", "304"})


def _client_error_of(exc: BaseException) -> Any:
    """The botocore ClientError behind ``exc`` (s3fs chains it as ``__cause__``), if any."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        if isinstance(getattr(seen, "response", None), dict):
            return seen
        visited.add(id(seen))
        seen = seen.__cause__
    return None


def _code_of(exc: BaseException) -> str:
    error = _client_error_of(exc)
    if error is None:
        return ""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code or str(status or "")


def _status_of(exc: BaseException) -> int | None:
    error = _client_error_of(exc)
    if error is None:
        return None
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def not_found_error(exc: BaseException) -> bool:
    """Whether ``exc`` (a botocore ClientError, or an error caused by one) says the key is missing."""
    return _code_of(exc) in _NOT_FOUND_CODES or (_status_of(exc) == 404 and _code_of(exc) != "NoSuchBucket")


def conditional_request_failed(exc: BaseException) -> bool:
    """Whether ``exc`` says an ``If-Match``/``If-None-Match`` condition failed (412, or 409)."""
    return _code_of(exc) in _CONFLICT_CODES or _status_of(exc) in (409, 412)


def not_modified_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the 304 of a conditional GET whose ETag still matches."""
    return _code_of(exc) in _NOT_MODIFIED_CODES or _status_of(exc) == 304



def _version(response: dict[str, Any]) -> Version:
    return Version(str(response["ETag"]), response["LastModified"].timestamp())


class S3Backend(ObjectStoreBackend):
    """A bucket and key prefix on S3."""

    backend_name = "s3"

    def _run(self, request: Callable[[], Awaitable[T]]) -> T:
        """Run one request on s3fs's event loop, mapping errors to OSError."""
        try:
            return sync(self.fs.loop, request)  # type: ignore[no-any-return]
        except (PreconditionFailed, FileNotFoundError):
            raise
        except Exception as exc:
            if not_found_error(exc):
                raise FileNotFoundError(errno.ENOENT, "No such key", str(exc)) from exc
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise  # s3fs already translated it, with the botocore error as its cause
            raise OSError(errno.EIO, f"S3 request failed: {exc}") from exc

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await self.fs._call_s3(method, Bucket=self.bucket, **kwargs)

    async def _get(self, path: str, **conditions: Any) -> tuple[bytes, Version]:
        response = await self._call("get_object", Key=self._object_name(path), **conditions)
        body = response["Body"]
        try:
            data = await body.read()
        finally:
            body.close()
        return data, _version(response)

    # --- reads ---------------------------------------------------------------
    async def _read_one(self, path: str) -> tuple[bytes, Version]:
        try:
            return await self._get(path)
        except Exception as exc:
            if not_found_error(exc):
                raise FileNotFoundError(errno.ENOENT, "No such key", path) from exc
            raise

    def read_if_changed(self, path: str, etag: str) -> tuple[bytes | None, Version]:
        async def get_unless_unchanged() -> tuple[bytes | None, Version]:
            try:
                return await self._get(path, IfNoneMatch=etag)
            except Exception as exc:
                if not not_modified_error(exc):
                    raise
                headers = _client_error_of(exc).response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                return None, Version(headers.get("etag", etag), _http_date(headers.get("last-modified")))

        return self._run(get_unless_unchanged)

    def stat(self, path: str) -> Version:
        return _version(self._run(lambda: self._call("head_object", Key=self._object_name(path))))

    # --- writes --------------------------------------------------------------
    def put(self, path: str, data: bytes, expected: Expected = ANY) -> str:
        if len(data) > MAX_SINGLE_PUT:
            raise ValueError(f"values over {MAX_SINGLE_PUT} bytes need multipart uploads, which cannot be conditional")
        conditions: dict[str, str] = {}
        if expected is ABSENT:
            conditions["IfNoneMatch"] = "*"
        elif isinstance(expected, str):
            conditions["IfMatch"] = expected

        async def put_object() -> str:
            try:
                response = await self._call("put_object", Key=self._object_name(path), Body=data, **conditions)
            except Exception as exc:
                # If-Match on a missing object answers 404: the expected version is gone too.
                if conditions and (conditional_request_failed(exc) or not_found_error(exc)):
                    raise PreconditionFailed(path) from exc
                raise
            return str(response["ETag"])

        return self._run(put_object)

    def remove(self, path: str, expected: Expected = ANY) -> None:
        if expected is ABSENT:
            raise PreconditionFailed(path)
        key = self._object_name(path)

        async def delete_object() -> None:
            # S3 answers a plain DELETE of a missing key with success, so pin the
            # version we saw (or were given) to learn whether we deleted anything.
            etag = expected if isinstance(expected, str) else _version(await self._call("head_object", Key=key)).etag
            try:
                await self._call("delete_object", Key=key, IfMatch=etag)
            except Exception as exc:
                if conditional_request_failed(exc):
                    raise PreconditionFailed(path) from exc
                raise

        self._run(delete_object)

    # --- listing -------------------------------------------------------------
    def walk(self, suffix: str, *, with_timestamps: bool) -> Iterator[tuple[str, float]]:
        start = len(self.prefix)
        token: str | None = None
        while True:
            page_args: dict[str, Any] = {"Prefix": self.prefix, "MaxKeys": 1000}
            if token:
                page_args["ContinuationToken"] = token
            page = self._run(lambda: self._call("list_objects_v2", **page_args))
            for item in page.get("Contents", ()):
                name = item["Key"]
                if name.endswith(suffix):
                    yield name[start:], item["LastModified"].timestamp() if with_timestamps else 0.0
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def ensure_root(self) -> None:
        """Create the bucket if it does not exist (a 403 on a foreign bucket is tolerated)."""
        if self._bucket_checked:
            return
        self._bucket_checked = True
        try:
            self._run(lambda: self.fs._call_s3("head_bucket", Bucket=self.bucket))
            return
        except FileNotFoundError:
            pass
        except PermissionError:
            return
        region = self.fs.client_kwargs.get("region_name") if hasattr(self.fs, "client_kwargs") else None
        create_args: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            create_args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._run(lambda: self.fs._call_s3("create_bucket", **create_args))
        except OSError as exc:
            if _code_of(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def _http_date(value: str | None) -> float:
    if not value:
        return 0.0
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value).timestamp()
