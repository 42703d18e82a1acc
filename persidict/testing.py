"""Try persidict on S3 without an account: a local S3 server (moto's) in this process.

``local_s3()`` starts moto's S3 server on 127.0.0.1 and returns where it is::

    from persidict import FsspecDict
    from persidict.testing import local_s3

    with local_s3() as s3:
        d = FsspecDict("s3://my-bucket/runs", storage_options=s3.storage_options)
        d["k"] = 1

or, in a notebook, ``s3 = local_s3()`` in one cell and ``s3.stop()`` in a later
one.  It needs moto's server (``pip install "moto[server]"``, part of
``persidict[dev]``) and s3fs (``persidict[aws]``).

moto checks a conditional write's precondition and then writes, in two steps,
on concurrent request threads: two racing compare-and-swaps could both
succeed, which S3 never allows.  This server serves one request at a time, so
races between processes end as they would on S3.  The buckets live in this
process's moto backends, shared by every ``local_s3()`` of the process, and
are gone when it ends.  For trying things out and for tests, not for data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

__all__ = ["LocalS3", "local_s3"]

_CREDENTIALS = {"key": "persidict-local", "secret": "persidict-local"}
"""moto accepts any key: these keep the AWS SDK from looking for real credentials."""


class _OneRequestAtATime:
    """WSGI middleware: moto serves one request at a time, so a conditional write's check and write
    happen together, and no read sees a write half done."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return list(result)  # the whole response is made under the lock
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class LocalS3:
    """A running local S3 server: ``endpoint_url``, and the ``storage_options`` that reach it.

    A context manager (the server stops at the end of the ``with`` block), or
    stopped with ``stop()``.
    """

    def __init__(self, port: int = 0) -> None:
        server_module, serving = _moto_server()

        class _QuietHandler(serving.WSGIRequestHandler):  # type: ignore[misc, name-defined]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """No line per request on stderr."""

        app = _OneRequestAtATime(server_module.DomainDispatcherApplication(server_module.create_backend_app))
        self._server = serving.make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
        host, bound_port = self._server.server_address[:2]
        self.endpoint_url = f"http://{host}:{bound_port}"
        """The server's URL (``http://127.0.0.1:PORT``): ``-o endpoint_url=...`` on the command line."""
        self.storage_options: dict[str, Any] = {"endpoint_url": self.endpoint_url, **_CREDENTIALS}
        """What ``FsspecDict(url, storage_options=...)`` needs to reach the server."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="persidict-local-s3", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the server (the buckets stay in this process's moto backends)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LocalS3:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalS3(endpoint_url={self.endpoint_url!r})"


def local_s3(port: int = 0) -> LocalS3:
    """Start a local S3 server (moto's) on 127.0.0.1 (``port`` 0: any free one); see the module's docstring.

    ``ImportError`` saying what to install if moto's server or s3fs is missing.
    """
    return LocalS3(port)


def _moto_server() -> tuple[Any, Any]:
    """moto's server module and werkzeug's ``serving``, or an ``ImportError`` that says what to install."""
    try:
        import s3fs  # noqa: F401  # what FsspecDict uses for s3:// URLs
        import werkzeug.serving as serving
        from moto import server as server_module
    except ImportError as exc:
        raise ImportError(
            f"persidict.testing.local_s3() runs moto's S3 server, which needs packages that are not installed "
            f"({exc.name or exc}): pip install \"moto[server]\" \"persidict[aws]\" (both are in persidict[dev])"
        ) from exc
    return server_module, serving
