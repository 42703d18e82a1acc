"""A loopback HTTP front for fake-gcs-server that checks the preconditions of resumable uploads.

fake-gcs-server 1.54 (the only version packaged) ignores ``ifGenerationMatch``
on resumable uploads, both when the session is created and when its last
chunk arrives: a stale insert-if-absent or compare-and-swap of a big value
replaces the object anyway (``test_gcs_parts.py`` proves it).  GCS checks the
condition at both points, atomically with the write at the end.  This front
fills that gap, and nothing else:

- it forwards every request to the emulator unchanged (the emulator's
  ``-external-url`` is the front's, so session URIs point here);
- a ``POST ...?uploadType=resumable`` with ``ifGenerationMatch`` is refused
  with 412 if the object's generation differs now (``0``: it exists), and
  otherwise its session's condition is recorded;
- the chunk that completes such a session is refused with 412 unless the
  condition still holds, checked and forwarded while holding the lock every
  write through the front takes, so no other write lands in between;
- a cancelled session (DELETE of its URI, answered 499) takes no more chunks:
  they are answered 404, as GCS does (the emulator answers 499 and goes on).

Tests can also make it fail one request (``fail_once``): answer 500 instead of
forwarding it, or after forwarding it (an answer lost after the write); or
keep part of a chunk (``keep_part_once``), as GCS may.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

__all__ = ["GCSFront", "running_front"]

_UPLOAD_PATH = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")
_LAST_CHUNK = re.compile(r"^bytes (?:\d+-(\d+)|\*)/(\d+)$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


class GCSFront(ThreadingHTTPServer):
    """The front's server: the emulator's port, the writes' lock, the conditions of open sessions."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_port = 0
        self.writes = threading.Lock()
        self.sessions: dict[str, tuple[str, str, str]] = {}
        """upload id -> (bucket, object name, the ifGenerationMatch it was created with)."""
        self.cancelled: set[str] = set()
        """Upload ids of cancelled sessions."""
        self.faults: list[tuple[str, str, bool]] = []
        """(method, start of the Content-Range, applied) of requests to fail once each (see ``fail_once``)."""
        self.keep: dict[str, int] = {}
        """Content-Range starts of chunks of which the emulator gets only so many bytes (see ``keep_part_once``)."""

    def fail_once(self, method: str, content_range: str, *, applied: bool = False) -> None:
        """Answer the next ``method`` whose ``Content-Range`` starts with ``content_range`` with a 500:
        without forwarding it, or (``applied``) after the emulator has applied it."""
        self.faults.append((method, content_range, applied))

    def keep_part_once(self, content_range: str, count: int) -> None:
        """Forward only the first ``count`` bytes of the next chunk whose ``Content-Range`` starts with
        ``content_range``: the emulator's 308 then says it kept fewer bytes than were sent, as GCS may."""
        self.keep[content_range] = count

    def take_fault(self, method: str, content_range: str) -> bool | None:
        """Whether a planned fault matches this request (removed then): None if none, else its ``applied``."""
        with self.writes:
            for fault in self.faults:
                if fault[0] == method and content_range.startswith(fault[1]):
                    self.faults.remove(fault)
                    return fault[2]
        return None

    def take_keep(self, headers: dict[str, str], body: bytes) -> bytes:
        """The body to forward: cut (and its ``Content-Range`` with it) if a ``keep_part_once`` matches."""
        content_range = headers.get("Content-Range", "")
        with self.writes:
            prefix = next((start for start in self.keep if content_range.startswith(start)), None)
            count = self.keep.pop(prefix) if prefix is not None else None
        if count is None:
            return body
        first = int(content_range.split()[1].split("-")[0])
        headers["Content-Range"] = f"bytes {first}-{first + count - 1}/*"
        return body[:count]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def generation(self, bucket: str, name: str) -> str:
        """The object's current generation at the emulator, ``"0"`` if there is none."""
        status, _, body = self.forward("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
                                              "?fields=generation", {}, b"")
        return str(json.loads(body)["generation"]) if status == 200 else "0"

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, bytes]:
        """One request to the emulator: ``(status, headers, body)``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp expects; every answer has a Content-Length
    server: GCSFront

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {key: value for key, value in self.headers.items() if key.lower() not in _HOP_BY_HOP}
        fault = self.server.take_fault(self.command, self.headers.get("Content-Range", ""))
        body = self.server.take_keep(headers, body)
        try:
            if fault is not False:
                self._pass_on(headers, body, answer=fault is None)
            if fault is not None:
                self._answer(500, [("Content-Type", "text/plain")], b"a fault planned by the test")
        except OSError as exc:  # the emulator is not up (yet), or went away
            self._answer(502, [("Content-Type", "text/plain")], str(exc).encode())

    def _pass_on(self, headers: dict[str, str], body: bytes, *, answer: bool = True) -> None:
        """Forward the request (checking the conditions of resumable uploads); answer what the emulator said."""
        if self.command in ("GET", "HEAD"):
            self._answer(*self.server.forward(self.command, self.path, headers, body))
            return
        upload = parse_qs(urlsplit(self.path).query).get("upload_id", [""])[0]
        if self.command == "PUT" and upload in self.server.cancelled:
            self._answer(404, [("Content-Type", "application/json")], b'{"error": {"code": 404}}')
            return
        with self.server.writes:  # a condition checked and the write it allows are one step
            refusal = self._unmet_condition(body)
            if refusal is not None:
                if answer:
                    self._answer(412, [("Content-Type", "application/json")], refusal)
                return
            status, answer_headers, answered = self.server.forward(self.command, self.path, headers, body)
            self._remember_session(status, answer_headers, body)
        if answer:
            self._answer(status, answer_headers, answered)

    def _unmet_condition(self, body: bytes) -> bytes | None:
        """GCS's 412 body if this request opens or completes a session whose condition fails, else None."""
        query = parse_qs(urlsplit(self.path).query)
        wanted = self._opened(body)
        if wanted is None and self.command == "PUT" and "upload_id" in query and self._completes():
            wanted = self.server.sessions.get(query["upload_id"][0])
        if wanted is None or self.server.generation(wanted[0], wanted[1]) == wanted[2]:
            return None
        return json.dumps({"error": {"code": 412, "message": "At least one of the pre-conditions you specified "
                                                            "did not hold.", "errors": [{"reason": "conditionNotMet"}]}
                           }).encode()

    def _opened(self, body: bytes) -> tuple[str, str, str] | None:
        """(bucket, name, ifGenerationMatch) if this request opens a resumable session with a condition."""
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        bucket = _UPLOAD_PATH.match(url.path)
        if self.command != "POST" or query.get("uploadType") != ["resumable"] or "ifGenerationMatch" not in query:
            return None
        name = query.get("name", [None])[0] or json.loads(body or b"{}").get("name", "")
        return (bucket[1] if bucket else "", name, query["ifGenerationMatch"][0])

    def _completes(self) -> bool:
        """Whether this PUT's ``Content-Range`` ends the upload (its last byte, or a total with no bytes)."""
        match = _LAST_CHUNK.match(self.headers.get("Content-Range", ""))
        return match is not None and (match[1] is None or int(match[1]) + 1 == int(match[2]))

    def _remember_session(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Record the condition of a session the emulator opened; forget a cancelled one."""
        opened = self._opened(body)
        if opened is not None and status == 200:
            location = dict((key.lower(), value) for key, value in headers).get("location", "")
            self.server.sessions[parse_qs(urlsplit(location).query).get("upload_id", [""])[0]] = opened
        query = parse_qs(urlsplit(self.path).query)
        if self.command == "DELETE" and "upload_id" in query:
            self.server.sessions.pop(query["upload_id"][0], None)
            self.server.cancelled.add(query["upload_id"][0])

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            self._send_answer(status, headers, body)
        except ConnectionError:
            self.close_connection = True  # a reader that took what it needed and hung up (a ranged read's first GET)

    def _send_answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@contextmanager
def running_front() -> Iterator[GCSFront]:
    """A front on a free port, serving until the ``with`` block ends; set ``upstream_port`` before use."""
    front = GCSFront()
    thread = threading.Thread(target=front.serve_forever, name="gcs-front", daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.shutdown()
        front.server_close()
