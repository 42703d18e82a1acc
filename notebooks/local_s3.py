"""Make moto's S3 server as atomic as S3 for the notebooks' races.

moto checks a write's precondition (``If-Match``, ``If-None-Match``) and then
writes, in two steps, and its server runs requests in threads: two conditional
writes that race can both pass the check and both succeed, which S3 never
allows (one of them gets ``412 Precondition Failed``).  ``serialize_writes``
lets one write at a time into moto, so a check and its write happen together,
as on S3.  Reads are not serialized.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import ThreadedMotoServer

WRITES = ("PUT", "POST", "DELETE")


def serialize_writes(server: ThreadedMotoServer) -> None:
    """Run the started ``server``'s write requests one at a time (each one's check and write together)."""
    app = server._server.app  # type: ignore[union-attr]  # the WSGI app moto serves
    lock = threading.Lock()

    def one_write_at_a_time(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in WRITES:
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    server._server.app = one_write_at_a_time  # type: ignore[union-attr]
