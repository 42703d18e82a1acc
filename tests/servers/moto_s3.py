"""A real S3 API on 127.0.0.1: moto's threaded server with a request log.

s3fs talks HTTP to it exactly as to AWS.  A small WSGI middleware records
every request (so tests can count them at the server) and can add latency to
each one (to imitate a real region's round trip).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import requests
import s3fs
from moto.server import ThreadedMotoServer

CREDENTIALS = {"key": "testing", "secret": "testing"}


class OneWriteAtATime:
    """WSGI middleware: moto applies one write at a time, and no read sees a write half done.

    moto checks ``If-Match`` / ``If-None-Match`` and then writes, in two steps, on
    the server's request threads: two racing conditional writes can both pass the
    check and both succeed (seen: two PUTs with the same ``If-Match`` both answered
    200, and a counter ended at 39 of 40).  S3 refuses one of them.  moto also
    installs a new object before it sets its metadata and closes the old object's
    body before the new one is in place, so a read racing a write could get the
    new version without its metadata, or a 500.  S3 shows a read the old version
    or the new one, whole.  So writes hold the lock alone, reads share it.  And
    since the lock makes a check and a write one step, ``If-Match`` on a
    multipart completion, which moto ignores, is checked here, honestly.
    """

    WRITES = frozenset({"PUT", "POST", "DELETE"})

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = _ReadWriteLock()
        self._upload_times = _UploadTimes()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock.held(exclusive=environ["REQUEST_METHOD"] in self.WRITES):
            refusal = _unmet_if_match_on_completion(environ)
            if refusal is not None:
                status, code = refusal
                start_response(status, [("Content-Type", "application/xml")])
                return [f"<Error><Code>{code}</Code><Message>If-Match</Message></Error>".encode()]
            result = self.app(environ, start_response)
            try:
                return self._upload_times.dated(environ, list(result))  # the whole request is served under the lock
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class _UploadTimes:
    """moto dates every multipart upload 2010-11-10 in ListMultipartUploads; S3 gives its real start.

    ``persidict gc`` aborts only uploads older than its threshold (a younger one
    may be a live writer's), so the listing must say when each upload started:
    the time its CreateMultipartUpload was answered, recorded here.
    """

    MOTO_DATE = b"<Initiated>2010-11-10T20:48:33.000Z</Initiated>"

    def __init__(self) -> None:
        self._started: dict[bytes, bytes] = {}

    def dated(self, environ: dict[str, Any], body: list[bytes]) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "uploads" not in query:
            return body
        text = b"".join(body)
        if environ["REQUEST_METHOD"] == "POST":
            for upload_id in re.findall(rb"<UploadId>([^<]+)</UploadId>", text):
                self._started[upload_id] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()).encode()
            return body
        return [re.sub(rb"<UploadId>([^<]+)</UploadId>(.*?)" + re.escape(self.MOTO_DATE), self._real_date, text,
                       flags=re.S)]

    def _real_date(self, match: re.Match[bytes]) -> bytes:
        started = self._started.get(match[1], b"2010-11-10T20:48:33.000Z")  # same length: Content-Length holds
        return b"<UploadId>%s</UploadId>%s<Initiated>%s</Initiated>" % (match[1], match[2], started)


def _unmet_if_match_on_completion(environ: dict[str, Any]) -> tuple[str, str] | None:
    """S3's answer to a CompleteMultipartUpload whose ``If-Match`` fails; ``None`` if it holds (or is absent).

    moto 5.2 checks ``If-None-Match: *`` on the completion but ignores
    ``If-Match``; S3 refuses the completion (412, or 404 for a missing key).
    Checked here while this request holds the write lock alone, so the check
    and moto's write are one step, as S3's are.  A completion sent again after
    it succeeded is left to moto, which answers it with the object it made.
    """
    if_match = environ.get("HTTP_IF_MATCH")
    if environ["REQUEST_METHOD"] != "POST" or not if_match or "uploadId=" not in environ.get("QUERY_STRING", ""):
        return None
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    upload_id = parse_qs(environ["QUERY_STRING"])["uploadId"][0]
    bucket, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
    current = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_object(bucket, key)
    if current is None:
        return "404 Not Found", "NoSuchKey"
    if current.multipart is not None and current.multipart.id == upload_id:
        return None
    if if_match.strip('"') != current.etag.strip('"'):
        return "412 Precondition Failed", "PreconditionFailed"
    return None


class _ReadWriteLock:
    """Many readers or one writer, served in order of arrival (phase-fair).

    A reader waits only for the writes queued before it arrived, a writer for
    the writes before it and the reads already running: neither side starves.
    A reader held back until every waiting writer is done (writer preference)
    waited behind a stream of writes to one hot key, longer than any real S3
    read takes.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writes_issued = 0
        self._writes_done = 0

    @contextmanager
    def held(self, *, exclusive: bool) -> Iterator[None]:
        with self._changed:
            if exclusive:
                turn = self._writes_issued
                self._writes_issued += 1
                self._changed.wait_for(lambda: self._writes_done == turn and self._readers == 0)
                self._writing = True
            else:
                queued_before = self._writes_issued
                self._changed.wait_for(lambda: self._writes_done >= queued_before and not self._writing)
                self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                if exclusive:
                    self._writing = False
                    self._writes_done += 1
                else:
                    self._readers -= 1
                self._changed.notify_all()


class _RecordingMiddleware:
    """Logs ``(method, path)`` of each request and sleeps ``latency`` seconds before serving it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.latency = 0.0
        self.log: list[tuple[str, str]] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        with self._lock:
            self.log.append((environ["REQUEST_METHOD"], path))
            self.statuses.append(0)
            index = len(self.statuses) - 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

        def recording_start_response(status: str, *args: Any) -> Any:
            self.statuses[index] = int(status.split()[0])
            return start_response(status, *args)

        try:
            if self.latency:
                time.sleep(self.latency)
            return self.app(environ, recording_start_response)
        finally:
            with self._lock:
                self.in_flight -= 1


class MotoS3:
    """One moto server for a test session; ``reset()`` wipes its state between tests."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        atomic = OneWriteAtATime(self._server._server.app)  # type: ignore[union-attr]
        self._recorder = _RecordingMiddleware(atomic)
        self._server._server.app = self._recorder  # type: ignore[union-attr]

    def storage_options(self) -> dict[str, Any]:
        """s3fs options for this server; a fresh s3fs instance so no test shares a client's state."""
        return {"endpoint_url": self.url, **CREDENTIALS}

    def new_bucket_name(self) -> str:
        return f"test-{uuid.uuid4().hex[:20]}"

    def buckets(self) -> set[str]:
        """The names of the buckets the server holds (asked with a fresh client, nothing cached)."""
        fs = s3fs.S3FileSystem(**self.storage_options(), skip_instance_cache=True)
        return {path.rstrip("/") for path in fs.ls("", refresh=True)}

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        self._recorder.log.clear()
        self._recorder.statuses.clear()

    @property
    def max_in_flight(self) -> int:
        """The most requests the server has served at once since this was last set to 0."""
        return self._recorder.max_in_flight

    @max_in_flight.setter
    def max_in_flight(self, value: int) -> None:
        self._recorder.max_in_flight = value

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request served so far (method, path)."""
        return self._recorder.log

    @contextmanager
    def counting(self) -> Iterator[list[tuple[str, str]]]:
        """Collect the requests made inside the ``with`` block."""
        start = len(self._recorder.log)
        seen: list[tuple[str, str]] = []
        try:
            yield seen
        finally:
            seen.extend(self._recorder.log[start:])

    def status_of(self, request_index: int) -> int:
        """The HTTP status of the request at that position in ``requests``."""
        return self._recorder.statuses[request_index]

    @contextmanager
    def latency(self, seconds: float) -> Iterator[None]:
        """Add ``seconds`` to every request inside the ``with`` block."""
        self._recorder.latency = seconds
        try:
            yield
        finally:
            self._recorder.latency = 0.0

    def stop(self) -> None:
        self._server.stop()
