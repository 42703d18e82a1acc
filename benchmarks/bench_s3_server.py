"""A moto S3 server that counts requests and can add latency; run by bench_s3 as a child process.

It runs in its own process so that moto's CPU time (about 2 ms a request)
does not compete with the client for one interpreter lock, as it would with
``ThreadedMotoServer`` in the benchmark's own process.  It prints its port on
the first line of stdout and exits when its stdin closes (the parent is gone).

Control endpoints, never counted and never delayed:
``GET /__bench__/take`` returns the requests recorded since the last take as
JSON ``[[method, path, query], ...]`` and forgets them;
``POST /__bench__/latency?seconds=0.02`` sets the delay added before every request;
``GET /__bench__/stats`` returns this process's CPU seconds, the response body bytes
sent so far, and the peak number of requests in flight at once since the last stats call.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

__all__ = ["CountingMiddleware", "main"]

CONTROL = "/__bench__/"


class CountingMiddleware:
    """WSGI middleware: records (method, path, query) of each request and sleeps ``latency_s`` first."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.latency_s = 0.0
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.bytes_sent = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if path.startswith(CONTROL):
            return self.control(path[len(CONTROL) :], query, start_response)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        with self.lock:
            self.requests.append((environ["REQUEST_METHOD"], path, query))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency_s:
                time.sleep(self.latency_s)
            body = list(self.app(environ, start_response))
            with self.lock:
                self.bytes_sent += sum(len(chunk) for chunk in body)
            return body
        finally:
            with self.lock:
                self.in_flight -= 1

    def control(self, command: str, query: str, start_response: Callable[..., Any]) -> list[bytes]:
        """Answer a control request: ``take``, ``latency`` or ``stats``."""
        if command == "latency":
            self.latency_s = float(parse_qs(query)["seconds"][0])
            body = b"{}"
        elif command == "stats":  # CPU seconds of this process and the peak of concurrent requests, then reset
            with self.lock:
                stats = {
                    "cpu_s": time.process_time(),
                    "peak_in_flight": self.peak_in_flight,
                    "bytes_sent": self.bytes_sent,
                }
                self.peak_in_flight = 0
            body = json.dumps(stats).encode()
        else:
            with self.lock:
                taken, self.requests = self.requests, []
            body = json.dumps(taken).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def exit_when_parent_goes() -> None:
    """Exit at once when stdin reaches end of file (the benchmark closed it or died)."""
    sys.stdin.read()
    os._exit(0)


def main() -> None:
    """Serve moto on a free loopback port until stdin closes."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = CountingMiddleware(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=exit_when_parent_goes, daemon=True).start()
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
