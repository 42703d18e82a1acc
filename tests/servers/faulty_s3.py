"""An S3 server that loses answers on purpose: moto behind a fault-injecting WSGI layer.

What the faults model (the failures a client of a real region meets):

``commit_then_500``
    The request reaches S3 and is applied, then the answer is lost: the client
    sees ``500 InternalError`` (S3's own XML error body), as when a front end
    fails after the storage layer committed.
``drop_after``
    The request is applied, then the connection is closed with no response at
    all (a reset or a proxy that dies after forwarding).
``drop_before``
    The connection is closed before the request reaches S3: nothing is applied.
``slowdown_503``
    ``503 SlowDown`` without forwarding (throttling): nothing is applied.
``delay``
    The request waits ``delay`` seconds, then is served normally (a slow region).
``hang``
    The connection is accepted and the request is never answered until the
    plan ends (or the server stops); then the connection is closed unanswered
    and nothing is applied.  Only the client's own deadline can end the call.
``cut_body``
    The request is served and its answer starts (status, headers, the first
    half of the body), then the connection is closed: a body cut mid-stream,
    as a reset in the middle of a large download.
``commit_late``
    The connection is closed with no response while the request is still in
    flight inside S3: it is applied later, just before the next write to the
    same object is served (or never, if none comes before the plan ends).

Each fault is decided per request by a plan (see ``FaultyS3.faults``) that
selects requests by method, by whether they are conditional (they carry
``If-Match`` or ``If-None-Match``) and by path, then faults every ``every``-th
selected request (or, if asked, a seeded random share of them); a script
(``FaultyS3.script``) gives the selected requests one mode each, in order.  The plan
counts what it did, so a test can assert that faults really happened.

The layer is a WSGI middleware around moto's app inside moto's threaded
werkzeug server.  That server answers every request on its own connection
(``Connection: close``) and hands the middleware the connection's socket as
``environ["werkzeug.socket"]``: a drop shuts that socket down and raises a
``ConnectionError``, which werkzeug treats as a client that went away (no
response is written, nothing is logged).  Request bodies are read before a
drop, so the client has sent everything and is waiting for the answer.

Each ``FaultyS3`` is its own moto server (its own port and state), separate
from the session's ``MotoS3``, so a fault never reaches another test's store.
"""

from __future__ import annotations

import hashlib
import io
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, Self

import requests
from moto.server import ThreadedMotoServer

from .moto_s3 import CREDENTIALS, OneWriteAtATime

MODES = frozenset({"commit_then_500", "slowdown_503", "drop_before", "drop_after", "delay", "hang", "commit_late",
                   "cut_body"})
ALL_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message>"
    "<Resource>{resource}</Resource><RequestId>{request_id}</RequestId></Error>"
)


class _ConnectionDropped(ConnectionError):
    """Raised out of the WSGI app after the socket was shut down: werkzeug then writes nothing."""


@dataclass
class FaultRecord:
    """One request the plan faulted."""

    method: str
    path: str
    conditional: bool
    forwarded_status: int | None
    """moto's status for a request that was forwarded before its answer was lost, else None."""


@dataclass
class FaultPlan:
    """What to fault, and a record of what was faulted (returned by ``FaultyS3.faults``)."""

    mode: str
    methods: tuple[str, ...] | None
    conditional_only: bool
    every: int
    probability: float | None
    seed: int
    times: int | None
    path_contains: str | None
    delay: float
    max_per_request: int | None
    script: tuple[str | None, ...] | None = None
    """One mode per selected request, in order (None: served normally); past its end nothing is faulted."""
    selected: int = 0
    """Requests that matched the filters (faulted or not)."""
    injected: int = 0
    """Requests that were faulted."""
    records: list[FaultRecord] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    hanging: int = 0
    """Requests of a ``hang`` plan being held right now."""
    held: threading.Event = field(default_factory=threading.Event)
    """Set when a ``hang`` plan first holds a request."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)
    _per_request: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def committed(self) -> int:
        """Faulted requests that moto applied (2xx) before the answer was lost."""
        return sum(1 for r in self.records if r.forwarded_status is not None and 200 <= r.forwarded_status < 300)

    @property
    def faulted_methods(self) -> list[str]:
        return [r.method for r in self.records]

    def selects(self, method: str, path: str, conditional: bool) -> bool:
        """Whether the filters pick this request."""
        if self.methods is not None and method not in self.methods:
            return False
        if self.conditional_only and not conditional:
            return False
        return self.path_contains is None or self.path_contains in path

    def decide(self, fingerprint: str) -> str | None:
        """The fault mode this selected request gets, or None (counts it either way).

        ``fingerprint`` identifies the request's content, so a resend of it
        (by botocore, s3fs or the store itself) has the same one.
        """
        with self._lock:
            if self.released.is_set():
                return None
            if self.max_per_request is not None and self._per_request.get(fingerprint, 0) >= self.max_per_request:
                return None  # a resend of a request already faulted enough: let it through
            self.selected += 1
            if self.times is not None and self.injected >= self.times:
                return None
            if self.script is not None:
                mode = self.script[self.selected - 1] if self.selected <= len(self.script) else None
            elif self.probability is not None:
                mode = self.mode if self._rng.random() < self.probability else None
            else:
                mode = self.mode if (self.selected - 1) % self.every == 0 else None
            if mode is not None:
                self.injected += 1
                self._per_request[fingerprint] = self._per_request.get(fingerprint, 0) + 1
            return mode

    def record(self, entry: FaultRecord) -> None:
        with self._lock:
            self.records.append(entry)


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return bytes(stream.read())
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(stream.read(length)) if length > 0 else b""


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back as a fresh stream, so moto can still read it."""
    body = _read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    if not environ.get("wsgi.input_terminated"):
        environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _fingerprint(environ: dict[str, Any], method: str, path: str, body: bytes) -> str:
    """What a resend of this request has in common with it (signatures and dates differ)."""
    digest = hashlib.sha256()
    for part in (method, path, environ.get("QUERY_STRING", ""), environ.get("HTTP_IF_MATCH", ""),
                 environ.get("HTTP_IF_NONE_MATCH", "")):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


def _drop_connection(environ: dict[str, Any]) -> NoReturn:
    """Close the client's connection without a response (werkzeug then writes nothing)."""
    sock = environ.get("werkzeug.socket")
    if sock is None:  # pragma: no cover - werkzeug before 2.x
        raise RuntimeError("this werkzeug does not expose the connection's socket")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    raise _ConnectionDropped("connection dropped by fault injection")


@dataclass
class LoggedRequest:
    """One S3 request the server saw."""

    method: str
    path: str
    conditional: bool
    fault: str | None
    """The fault mode applied to it, or None."""
    status: int = 0
    """The status sent to the client (0: none yet, or the connection was dropped)."""
    served: int = 0
    """moto's own status for the request, also when its answer was then lost (0: never reached moto)."""
    body: bytes | None = None
    """The body of a PUT (what a write would store), else None."""
    write_id: str = ""
    """The ``persidict-write`` metadata a PUT carried (its write id), else ""."""
    at: float = field(default_factory=time.monotonic)
    """When the request arrived (``time.monotonic``)."""

    @property
    def applied(self) -> bool:
        """Whether moto applied this request (a 2xx from moto, whatever the client was told)."""
        return 200 <= self.served < 300


class _FaultMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]], stopping: threading.Event) -> None:
        self.app = app
        self.plan: FaultPlan | None = None
        self.stopping = stopping
        self.log: list[LoggedRequest] = []
        """Every S3 request seen."""
        self.in_flight: dict[str, list[tuple[LoggedRequest, dict[str, Any]]]] = {}
        """``commit_late`` requests by path: applied before the next write to that path."""
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        conditional = "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ
        plan = self.plan
        mode: str | None = None
        body = _buffer_body(environ) if method == "PUT" or (plan and plan.selects(method, path, conditional)) else None
        if plan is not None and body is not None and plan.selects(method, path, conditional):
            mode = plan.decide(_fingerprint(environ, method, path, body))
        entry = LoggedRequest(method, path, conditional, mode, body=body if method == "PUT" else None,
                              write_id=environ.get("HTTP_X_AMZ_META_PERSIDICT_WRITE", ""))
        with self._lock:
            self.log.append(entry)
        if method in OneWriteAtATime.WRITES:
            self._land_in_flight(path)

        def logging_start_response(status: str, *args: Any) -> Any:
            entry.status = int(status.split()[0])
            if entry.fault in (None, "delay"):
                entry.served = entry.status  # moto answered (an injected error is not moto's)
            return start_response(status, *args)

        if mode is None or plan is None:
            return self.app(environ, logging_start_response)
        return self._inject(plan, mode, entry, environ, logging_start_response)

    def _land_in_flight(self, path: str) -> None:
        """Apply the ``commit_late`` requests to ``path``, before the write that has just arrived."""
        with self._lock:
            landing = self.in_flight.pop(path, [])
        for entry, environ in landing:
            entry.served = self._forward_and_discard(environ)

    def _inject(self, plan: FaultPlan, mode: str, entry: LoggedRequest, environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path, conditional = entry.method, entry.path, entry.conditional
        if mode == "commit_late":
            plan.record(FaultRecord(method, path, conditional, None))
            with self._lock:
                self.in_flight.setdefault(path, []).append((entry, environ))
            _drop_connection(environ)
        if mode == "delay":
            plan.record(FaultRecord(method, path, conditional, None))
            plan.released.wait(plan.delay)  # a plan that ends stops the wait early
            return self.app(environ, start_response)
        if mode == "cut_body":
            return self._cut_body(plan, entry, environ, start_response)
        if mode in ("commit_then_500", "drop_after"):
            status = entry.served = self._forward_and_discard(environ)
            plan.record(FaultRecord(method, path, conditional, status))
            if mode == "drop_after":
                _drop_connection(environ)
            return self._error(start_response, method, path, 500, "InternalError",
                               "We encountered an internal error. Please try again.")
        _read_body(environ)
        plan.record(FaultRecord(method, path, conditional, None))
        if mode == "slowdown_503":
            return self._error(start_response, method, path, 503, "SlowDown", "Please reduce your request rate.")
        if mode == "hang":
            with plan._lock:
                plan.hanging += 1
            plan.held.set()
            try:
                while not plan.released.wait(0.05):
                    if self.stopping.is_set():
                        break
            finally:
                with plan._lock:
                    plan.hanging -= 1
        _drop_connection(environ)  # drop_before, and a hang that was released

    def _cut_body(self, plan: FaultPlan, entry: LoggedRequest, environ: dict[str, Any],
                  start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the request, send its status, headers and the first half of its body, then drop the connection."""
        answer: dict[str, Any] = {}

        def capture(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
            answer.update(status=status, headers=headers)
            return lambda data: None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        entry.served = int(answer["status"].split()[0])
        plan.record(FaultRecord(entry.method, entry.path, entry.conditional, entry.served))
        start_response(answer["status"], answer["headers"])

        def half_then_drop() -> Iterator[bytes]:
            yield body[: len(body) // 2]
            _drop_connection(environ)

        return half_then_drop()

    def _forward_and_discard(self, environ: dict[str, Any]) -> int:
        """Let moto serve the request (so it is applied) and throw its answer away; return its status."""
        seen: dict[str, int] = {}

        def capture(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
            seen["status"] = int(status.split()[0])
            return lambda data: None

        result = self.app(environ, capture)
        try:
            for _ in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return seen.get("status", 0)

    @staticmethod
    def _error(start_response: Callable[..., Any], method: str, path: str, status: int, code: str,
               message: str) -> Iterable[bytes]:
        request_id = uuid.uuid4().hex[:16].upper()
        body = b"" if method == "HEAD" else _ERROR_BODY.format(
            code=code, message=message, resource=path, request_id=request_id).encode()
        reason = {500: "Internal Server Error", 503: "Slow Down"}[status]
        start_response(f"{status} {reason}", [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(body))),
            ("x-amz-request-id", request_id),
        ])
        return [body]


class FaultyS3:
    """A moto S3 server of its own on 127.0.0.1 whose answers can be lost on purpose.

    ``with server.faults("commit_then_500") as plan: ...`` faults requests
    inside the block; ``plan.injected`` says how many were faulted.
    """

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        wsgi_server: Any = self._server._server  # moto's werkzeug server
        self._middleware = _FaultMiddleware(OneWriteAtATime(wsgi_server.app), self._stopping)
        wsgi_server.app = self._middleware
        self._plan_lock = threading.Lock()
        self._stopped = False

    def storage_options(self, **extra: Any) -> dict[str, Any]:
        """s3fs options for this server."""
        return {"endpoint_url": self.url, **CREDENTIALS, **extra}

    def boto3_client(self) -> Any:
        """A plain boto3 client for this server (for changes behind a store's back); it never retries."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"], region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        )

    @staticmethod
    def new_bucket_name() -> str:
        return f"faulty-{uuid.uuid4().hex[:20]}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every S3 request seen since the last reset, with the status it was answered."""
        return self._middleware.log

    def reset(self) -> None:
        """Wipe moto's state and the request log; end any plan still active."""
        self._end_plan()
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        with self._middleware._lock:
            self._middleware.log.clear()

    @contextmanager
    def faults(
        self,
        mode: str,
        *,
        methods: Iterable[str] | None = ("PUT", "DELETE"),
        conditional_only: bool = True,
        every: int = 2,
        probability: float | None = None,
        seed: int = 0,
        times: int | None = None,
        path_contains: str | None = None,
        delay: float = 0.5,
        max_per_request: int | None = 1,
    ) -> Iterator[FaultPlan]:
        """Fault the selected requests made inside the block.

        Selection: ``methods`` (None: every method), ``conditional_only``
        (only requests with If-Match/If-None-Match), ``path_contains``.
        Of the selected requests, the 1st, ``every+1``-th, ``2*every+1``-th...
        are faulted, or, if ``probability`` is given, a share drawn from
        ``random.Random(seed)``; at most ``times`` in all.  ``max_per_request``
        (default 1) caps the faults of one request: a resend (same method,
        path, query, If-Match/If-None-Match and body, whichever layer sends
        it) then goes through and is not counted, so an operation is not
        failed by a chance run of faults and ``every=1`` faults each distinct
        request exactly once; None lifts the cap.  ``delay`` is the sleep of
        the ``delay`` mode.
        Ending the block releases requests held by ``hang``.
        """
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; known: {sorted(MODES)}")
        if every < 1:
            raise ValueError("every must be >= 1")
        plan = FaultPlan(
            mode=mode, methods=tuple(m.upper() for m in methods) if methods is not None else None,
            conditional_only=conditional_only, every=every, probability=probability, seed=seed, times=times,
            path_contains=path_contains, delay=delay, max_per_request=max_per_request,
        )
        with self._installed(plan):
            yield plan

    @contextmanager
    def script(
        self,
        *modes: str | None,
        methods: Iterable[str] | None = ("PUT", "DELETE"),
        conditional_only: bool = True,
        path_contains: str | None = None,
    ) -> Iterator[FaultPlan]:
        """Give the selected requests made inside the block one mode each, in order (None: none).

        ``script("commit_late", "slowdown_503", None)``: the first selected
        request is cut off in flight, its resend is throttled, the next one is
        served.  Resends are selected like any request; past the script's end
        nothing is faulted.
        """
        unknown = {mode for mode in modes if mode is not None} - MODES
        if unknown:
            raise ValueError(f"unknown fault modes {sorted(unknown)}; known: {sorted(MODES)}")
        plan = FaultPlan(
            mode="script", methods=tuple(m.upper() for m in methods) if methods is not None else None,
            conditional_only=conditional_only, every=1, probability=None, seed=0, times=None,
            path_contains=path_contains, delay=0.0, max_per_request=None, script=tuple(modes),
        )
        with self._installed(plan):
            yield plan

    @contextmanager
    def _installed(self, plan: FaultPlan) -> Iterator[None]:
        with self._plan_lock:
            if self._middleware.plan is not None:
                raise RuntimeError("a fault plan is already active on this server")
            self._middleware.plan = plan
        try:
            yield
        finally:
            self._end_plan()

    def _end_plan(self, wait: float = 5.0) -> None:
        with self._plan_lock:
            plan = self._middleware.plan
            self._middleware.plan = None
        with self._middleware._lock:
            self._middleware.in_flight.clear()  # requests still in flight never land
        if plan is None:
            return
        plan.released.set()
        deadline = time.monotonic() + wait
        while plan.hanging and time.monotonic() < deadline:
            time.sleep(0.01)  # the held requests are closing their connections

    def stop(self) -> None:
        """Release every held request and stop the server (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._end_plan()
        self._server.stop()
        self._server._server.server_close()  # type: ignore[union-attr]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
