"""Amazon S3 (and S3-compatible servers): the SDK calls and the error table.

Every primitive is one S3 request where the API allows it: a GET returns the
body together with its ETag and LastModified; a PUT carries ``If-None-Match: *``
(insert-if-absent) or ``If-Match: <etag>`` (compare-and-swap); a DELETE
carries ``If-Match``.  Requests go straight to the botocore client that s3fs
holds, never through s3fs's listing cache or its retry loop (retries,
deadlines and the reconciling of lost answers are ``ObjectStoreBackend``'s),
so other writers' changes are seen at once.  A value up to ``part_threshold``
bytes is one PutObject; a larger one is a multipart upload whose completion
carries the condition (``s3_parts``), never dropped the way s3fs drops it.

A value is read with a ranged GET of its first ``part_threshold`` bytes: all of
a smaller one, and the rest of a larger one in concurrent ranges (``s3_reads``).
A version is read with a one-byte ranged GET rather than a HEAD: it costs the
same, carries the same headers and metadata, and its 404 says whether the key
or the whole bucket is missing (a HEAD's 404 has no body to say it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar, cast

from ..protocol.versions import ANY, Expected, Version
from . import s3_parts, s3_reads, s3_streams
from .base import Decoder, Payload
from .object_store import Commit, Metadata, ObjectStoreBackend, Outcome, forbid_hidden_resends, http_date

__all__ = ["S3Backend", "client_config", "conditional_request_failed", "not_found_error", "not_modified_error"]

T = TypeVar("T")

DELETE_BATCH = 1000
"""Keys per DeleteObjects request (S3's maximum)."""

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_NOT_MODIFIED_CODES = frozenset({"NotModified", "304"})
_THROTTLED_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                              "TooManyRequests", "ServiceUnavailable", "503"})


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
    return code or str(_status_of(exc) or "")


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


def _transport_outcome(exc: BaseException) -> Outcome:
    """Errors below HTTP: was the request ever sent?"""
    import aiohttp
    from botocore.exceptions import EndpointConnectionError, HTTPClientError

    if isinstance(exc, (EndpointConnectionError, aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return Outcome.UNREACHABLE
    if isinstance(exc, (HTTPClientError, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)):
        return Outcome.LOST
    return Outcome.FAILED


def client_config(config_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The botocore settings of every S3 store: the caller's, with resends by botocore and aiohttp off.

    persidict retries itself (``object_store``): a resend below it of a
    conditional request whose answer was lost would hide what happened.
    """
    return {**_CLIENT_DEFAULTS, **(config_kwargs or {}), **_NO_HIDDEN_RESENDS, "http_session_cls": _session_class()}


_CLIENT_DEFAULTS: dict[str, Any] = {
    "max_pool_connections": 32,  # as many connections as concurrent bulk reads (botocore's default is 10)
    "connect_timeout": 5,
    "read_timeout": 60,
}
_NO_HIDDEN_RESENDS: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1}}


@functools.cache
def _session_class() -> type:
    """aiobotocore's HTTP session, with aiohttp's own resends switched off (imported on first use)."""
    from aiobotocore.httpsession import AIOHTTPSession

    class NoResendSession(AIOHTTPSession):  # type: ignore[misc]
        async def _get_session(self, proxy_url: Any) -> Any:
            session = await super()._get_session(proxy_url)
            forbid_hidden_resends(session)
            return session

    return NoResendSession


def _version(response: dict[str, Any]) -> Version:
    return Version(str(response["ETag"]), response["LastModified"].timestamp())



class S3Backend(ObjectStoreBackend):
    """A bucket and key prefix on S3."""

    backend_name = "s3"
    streams_values = True

    def _outcome(self, exc: BaseException) -> Outcome:
        if _client_error_of(exc) is None:
            return _transport_outcome(exc)
        status = _status_of(exc) or 0
        if _code_of(exc) == "NoSuchBucket":
            return Outcome.BUCKET_MISSING
        if _code_of(exc) == "NoSuchUpload":
            return Outcome.FAILED  # aborted (or, after a lost answer, completed: reconciled then)
        if not_found_error(exc):
            return Outcome.NOT_FOUND
        if conditional_request_failed(exc):
            return Outcome.CONFLICT
        if _code_of(exc) in _THROTTLED_CODES or status in (429, 503):
            return Outcome.REFUSED
        if status in (401, 403):
            return Outcome.DENIED
        return Outcome.LOST if status >= 500 else Outcome.FAILED

    async def _call(self, method: str, **kwargs: Any) -> Any:
        """One request through s3fs's botocore client, without s3fs's retry loop."""
        fs = self.fs
        await fs.set_session()
        client = await fs.get_s3(self.bucket)
        call = getattr(client, method)
        return await call(**fs._get_s3_method_kwargs(call, Bucket=self.bucket, **kwargs))

    async def _first_response(self, name: str, size: int, **options: str) -> dict[str, Any]:
        """The GET of the object's first ``size`` bytes (all of a smaller one), its body unread."""
        try:
            return await self._call("get_object", Key=name, Range=f"bytes=0-{size - 1}", **options)  # type: ignore[no-any-return]
        except Exception as exc:
            if _status_of(exc) != 416:
                raise
            return await self._call("get_object", Key=name, **options)  # type: ignore[no-any-return]  # empty: no byte 0

    async def _first(self, name: str, read_up_to: int, if_none_match: str | None = None) -> s3_reads.FirstAnswer:
        """A read's first answer (``s3_reads.first_answer``); with ``if_none_match``, an ``unchanged`` one
        if the object still has that ETag."""
        try:
            return await s3_reads.first_answer(self, name, read_up_to,
                                               **({"IfNoneMatch": if_none_match} if if_none_match else {}))
        except Exception as exc:
            if not (if_none_match and not_modified_error(exc)):
                raise
            headers = _client_error_of(exc).response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            version = Version(headers.get("etag", if_none_match), http_date(headers.get("last-modified")))
            return s3_reads.FirstAnswer(version, None, 0, None, None, 0, unchanged=True)

    def _pinned(self, path: str, use: Callable[[s3_reads.FirstAnswer], T], *, read_up_to: int,
                if_none_match: str | None = None, learn: bool = True) -> T:
        """``use`` the first answer of a read of ``path`` (and the ranges it fetches); started again while
        other writers replace the object mid-read (``_restarting``)."""
        name = self._name(path)

        def attempt() -> T:
            first = self._run(functools.partial(self._first, name, read_up_to, if_none_match), f"read {path}")
            if learn:  # a read that hands out no ETag starts no write from this version: nothing to learn
                self._lineages.learn(name, first.version.etag, first.metadata)
            try:
                return use(first)
            finally:
                first.close()

        return self._restarting(path, attempt)

    def _fetch(
        self, path: str, if_none_match: str | None = None, *, learn: bool = True
    ) -> tuple[bytes | None, Version]:
        """The bytes of ``path`` in one GET up to ``part_threshold``, in concurrent ranges beyond (``s3_reads``)."""
        return self._pinned(path, lambda first: (self._whole(path, first), first.version),
                            read_up_to=self.transfers.part_threshold, if_none_match=if_none_match, learn=learn)

    def _whole(self, path: str, first: s3_reads.FirstAnswer) -> bytes | None:
        """All the bytes of the object ``first`` answered for: its head, or a buffer filled by its body and ranges.

        The value comes back in the ``bytearray`` it was read into (no copy): every reader of values takes any buffer.
        """
        if first.unchanged or first.head is not None:
            return first.head
        buffer = bytearray(first.size)
        body, first.body = first.body, None  # the fill reads it, and closes it
        s3_reads.fill(self, path, first.version.etag, memoryview(buffer), 0, body, first.covered)
        return cast(bytes, buffer)

    async def _head(self, name: str) -> tuple[Version, Metadata]:
        response = await self._first_response(name, 1)
        # the byte is read, not dropped: a body closed unread takes its connection with it
        await s3_reads.read_body(response["Body"], memoryview(bytearray(int(response.get("ContentLength", 0)))))
        return _version(response), response.get("Metadata")

    @contextlib.contextmanager
    def _staged(self, path: str, data: bytes, metadata: dict[str, str]) -> Iterator[bytes | Commit]:
        """One PutObject, or for a value over ``part_threshold`` bytes a multipart upload (``s3_streams``)."""
        if len(data) <= self.transfers.part_threshold:
            yield data
        else:
            with s3_streams.staged_from_writes(self, path, lambda file: file.write(data), metadata,
                                               len(data)) as commit:
                yield commit

    def put_stream(self, path: str, payload: Payload, expected: Expected = ANY) -> str:
        """Write what ``payload.write_to(file)`` writes, in parts as it is written (``s3_streams``); the new ETag.

        ``payload.starting()`` runs before the first part: a value that outgrows ``part_threshold``
        needs the bucket before it is whole (a lazy store's first write creates it there).
        """
        return self._write(path, expected, lambda metadata: s3_streams.staged_from_writes(
            self, path, payload.write_to, metadata, before_parts=payload.starting))

    def open_read(self, path: str) -> tuple[IO[bytes], Version]:
        """A file of the object at ``path``, read on from its first answer as it is read, and its version.

        Its ranges are pinned to that version: if another writer replaces it meanwhile, a read raises
        ``ValueReplacedError`` (the bytes handed out cannot be taken back).
        """
        name = self._name(path)
        first = self._run(functools.partial(self._first, name, s3_reads.READ_CHUNK), f"read {path}")
        self._lineages.learn(name, first.version.etag, first.metadata)
        return s3_streams.ranged_file(self, path, first, restartable=False), first.version

    def read_decoded(self, path: str, decoder: Decoder, *, versioned: bool = True) -> tuple[Any, Version | None]:
        """``decoder`` of the object: a value up to 1 MiB from its bytes, a larger one from a file read on from
        the first answer (a large read filled in place by ranges); started again if replaced mid-read."""

        def decode(first: s3_reads.FirstAnswer) -> Any:
            if first.head is not None:
                return decoder.from_bytes(first.head)
            with s3_streams.ranged_file(self, path, first, restartable=True) as file:
                first.body = None  # the file's now
                return decoder.from_file(file)

        value, version = self._pinned(path, lambda first: (decode(first), first.version),
                                      read_up_to=s3_reads.READ_CHUNK, learn=versioned)
        return value, version if versioned else None

    async def _put_object(self, name: str, data: bytes, expected: Expected, metadata: dict[str, str]) -> str:
        response = await self._call("put_object", Key=name, Body=data, Metadata=metadata,
                                    **s3_parts.conditions(expected))
        return str(response["ETag"])

    def remove_temporary_files(self, older_than: float) -> int:
        """Abort the multipart uploads under the prefix that writers started and never finished."""
        return s3_parts.abort_stale_uploads(self, older_than)

    async def _delete_object(self, name: str, expected: Expected) -> None:
        # S3 answers a plain DELETE of a missing key with success, so the version
        # we delete is always pinned: the one expected, or the one there now.
        etag = expected if isinstance(expected, str) else (await self._head(name))[0].etag
        await self._call("delete_object", Key=name, IfMatch=etag)

    def remove_many(self, paths: Iterable[str]) -> dict[str, Exception]:
        """DeleteObjects: up to 1,000 keys per request (unconditional: for ``clear``)."""
        failures: dict[str, Exception] = {}
        names = [self._name(path) for path in paths]
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            errors = self._run(functools.partial(self._delete_batch, batch), f"delete {len(batch)} objects")
            for name, message in errors.items():
                failures[f"{self.bucket}/{name}"] = OSError(errno.EIO, f"delete {name}: {message}")
        return failures

    async def _delete_batch(self, names: list[str]) -> dict[str, str]:
        response = await self._call(
            "delete_objects", Delete={"Objects": [{"Key": name} for name in names], "Quiet": True}
        )
        return {error["Key"]: f"{error.get('Code')}: {error.get('Message')}" for error in response.get("Errors", ())}

    async def _list_page(self, token: str | None) -> tuple[list[tuple[str, float]], str | None]:
        args: dict[str, Any] = {"Prefix": self.prefix, "MaxKeys": 1000}
        if token:
            args["ContinuationToken"] = token
        page = await self._call("list_objects_v2", **args)
        items = [(item["Key"], item["LastModified"].timestamp()) for item in page.get("Contents", ())]
        return items, page.get("NextContinuationToken") if page.get("IsTruncated") else None

    async def _bucket_exists(self) -> bool:
        try:
            await self._call("head_bucket")
        except Exception as exc:
            status = _status_of(exc)
            if status == 404:
                return False
            if status == 403:
                return True  # a bucket of another account: the first real request decides
            raise
        return True

    async def _create_bucket(self) -> None:
        region = self.fs.client_kwargs.get("region_name") if hasattr(self.fs, "client_kwargs") else None
        args: dict[str, Any] = {}
        if region and region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._call("create_bucket", **args)
        except Exception as exc:
            if _code_of(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
