"""Azurite, Microsoft's Azure Storage emulator, serving Blob Storage on 127.0.0.1.

Azurite comes from npm (``package.json`` at the repository root pins it);
the first session that needs it runs ``npm ci`` there, so ``pytest`` alone works
on a fresh checkout wherever node and npm are installed.  ``running_azurite()`` starts its blob service on a
free port, in memory, in a process session of its own so that stopping it
stops node too, and yields a ``Azurite`` handle with the connection string of
the well-known development account.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from persidict import FsspecDict

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
START_TIMEOUT = 20.0
"""Seconds to wait for the "listens on" line (it usually comes within one or two)."""

ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's published development key: a constant, not a secret."""

_LISTENING = re.compile(r"listens on http://127\.0\.0\.1:(\d+)")


class Azurite:
    """A running Azurite blob service."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.blob_endpoint = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"
        self.container = "persidict-tests"
        """The container ``make_azure_dict`` puts stores in (the ``azurite`` fixture creates it)."""
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def storage_options(self, *, fresh_instance: bool = False) -> dict[str, Any]:
        """adlfs options for this server (``fresh_instance``: skip fsspec's instance cache)."""
        options: dict[str, Any] = {"connection_string": self.connection_string}
        if fresh_instance:
            options["skip_instance_cache"] = True
        return options

    def new_container_name(self) -> str:
        return f"test-{uuid.uuid4().hex[:24]}"


def _wait_for_port(process: subprocess.Popen[str]) -> int:
    """Read Azurite's output until it names its port (or fail after ``START_TIMEOUT``)."""
    found: list[int] = []
    seen: list[str] = []

    def scan() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                found.append(int(match.group(1)))
                break
        # Keep draining so a chatty Azurite never blocks on a full pipe.
        for _ in process.stdout:
            pass

    reader = threading.Thread(target=scan, name="azurite-output", daemon=True)
    reader.start()
    deadline = START_TIMEOUT
    step = 0.05
    while not found and deadline > 0 and process.poll() is None:
        reader.join(step)
        deadline -= step
    if not found:
        raise RuntimeError(f"Azurite did not report a port within {START_TIMEOUT} s; output:\n{''.join(seen)}")
    return found[0]


def _stop(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _install_azurite() -> None:
    """Install the Azurite version pinned in package-lock.json (``npm ci``), once across test workers."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"Azurite is missing ({AZURITE_BLOB}) and npm is not installed: install Node.js and npm")
    with open(REPO_ROOT / "node_modules.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest-xdist worker may be installing it; released on close
        if not AZURITE_BLOB.exists():
            command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
            subprocess.run(command, cwd=REPO_ROOT, check=True, timeout=600)


@contextmanager
def running_azurite() -> Iterator[Azurite]:
    """Start Azurite's blob service in memory on a free port; stop it on exit."""
    if not AZURITE_BLOB.exists():
        _install_azurite()
    command = [
        str(AZURITE_BLOB),
        "--blobHost", "127.0.0.1",
        "--blobPort", "0",
        "--inMemoryPersistence",
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]  # fmt: skip
    # A session of its own: killpg then stops node and anything it started.
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        server = Azurite(process, _wait_for_port(process))
        yield server
    finally:
        _stop(process)


def make_azure_dict(server: Azurite, name: str, **dict_kwargs: Any) -> FsspecDict[Any]:
    """An ``FsspecDict`` at ``az://<server.container>/<name>`` on ``server``.

    Equal names give stores on the same data (like two processes opening one
    store); use a fresh name, such as a uuid, for each test.
    """
    return FsspecDict(f"az://{server.container}/{name}", storage_options=server.storage_options(), **dict_kwargs)
