"""The cloud emulators the backend tests run on, one of each per test module; the folders len() lists."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import persidict.backends.local_counts as local_counts
from persidict import FsspecDict
from tests.servers.azurite import Azurite, running_azurite
from tests.servers.fake_gcs import FakeGCS, running_fake_gcs


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    """An Azurite of this module's own, its shared container made (a test run alone must not need another's writes)."""
    with running_azurite() as server:
        FsspecDict(f"az://{server.container}", storage_options=server.storage_options(), create_root=True)
        yield server


@pytest.fixture(scope="module")
def gcs() -> Iterator[FakeGCS]:
    """fake-gcs-server behind the front that enforces GCS's conditions on resumable uploads."""
    with running_fake_gcs(front=True) as running:
        yield running


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the folders a local store's len() lists from now on."""
    seen: list[str] = []
    original = local_counts.scan

    def watched(folder: Any) -> Any:
        seen.append(folder.path)
        return original(folder)

    monkeypatch.setattr(local_counts, "scan", watched)
    return seen
