"""The emulators of one test session: each started on first use, all stopped at the end.

Store kinds and fixtures ask ``SERVERS.get("s3" | "gcs" | "azure")``; a session
that runs only local tests starts none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from . import fake_gcs  # first: it configures gcsfs before gcsfs is imported
from .azurite import running_azurite
from .moto_s3 import MotoS3


class _MotoContext(AbstractContextManager[MotoS3]):
    def __enter__(self) -> MotoS3:
        self.server = MotoS3()
        return self.server

    def __exit__(self, *exc_info: Any) -> None:
        self.server.stop()


_STARTERS: dict[str, Callable[[], AbstractContextManager[Any]]] = {
    "s3": _MotoContext,
    "gcs": fake_gcs.running_fake_gcs,
    "azure": running_azurite,
}


class SessionServers:
    """Lazily started emulators, kept for the whole session."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._running: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._running:
            self._running[name] = self._stack.enter_context(_STARTERS[name]())
        return self._running[name]

    def close(self) -> None:
        self._stack.close()
        self._running.clear()


SERVERS = SessionServers()
