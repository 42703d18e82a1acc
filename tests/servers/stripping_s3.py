"""An S3 server that accepts conditional headers and ignores them: moto behind a stripping WSGI layer.

Several S3-compatible servers behave so: a PUT with ``If-None-Match: *``
overwrites, a PUT or DELETE with a stale ``If-Match`` is applied.  The layer
removes ``If-Match`` and ``If-None-Match`` from every request before moto
sees it, and logs each request (method, path), so a test can count what the
conditions check sent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from moto.server import ThreadedMotoServer

from .moto_s3 import CREDENTIALS, OneWriteAtATime

_CONDITIONS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")


class _StripConditions:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.log: list[tuple[str, str]] = []
        self.stripped = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/moto-api"):
            with self._lock:
                self.log.append((environ["REQUEST_METHOD"], path))
                self.stripped += sum(environ.pop(name, None) is not None for name in _CONDITIONS)
        return self.app(environ, start_response)


class StrippingS3:
    """A moto S3 server of its own on 127.0.0.1 that drops every request's conditional headers."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        wsgi_server: Any = self._server._server
        self._layer = _StripConditions(OneWriteAtATime(wsgi_server.app))
        wsgi_server.app = self._layer

    def storage_options(self) -> dict[str, Any]:
        """s3fs options for this server."""
        return {"endpoint_url": self.url, **CREDENTIALS}

    @staticmethod
    def new_bucket_name() -> str:
        return f"stripping-{uuid.uuid4().hex[:20]}"

    @property
    def stripped(self) -> int:
        """How many conditional headers were dropped so far."""
        return self._layer.stripped

    @contextmanager
    def counting(self) -> Iterator[list[tuple[str, str]]]:
        """The requests (method, path) made inside the block."""
        start = len(self._layer.log)
        seen: list[tuple[str, str]] = []
        try:
            yield seen
        finally:
            seen.extend(self._layer.log[start:])

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
