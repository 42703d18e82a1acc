"""The cloud emulators the backend tests run on, one of each per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.azurite import Azurite, running_azurite
from tests.servers.fake_gcs import FakeGCS, running_fake_gcs


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    """An Azurite of this module's own."""
    with running_azurite() as server:
        yield server


@pytest.fixture(scope="module")
def gcs() -> Iterator[FakeGCS]:
    """fake-gcs-server behind the front that enforces GCS's conditions on resumable uploads."""
    with running_fake_gcs(front=True) as running:
        yield running
