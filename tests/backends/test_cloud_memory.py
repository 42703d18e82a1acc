"""Memory of big GCS and Azure transfers, measured in child processes: ``d[k] = v`` and ``d[k]`` stream.

Measured as ``memory_probe`` says.  Through the bytes path (with
``streams_values`` off) both bounds fail.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from persidict import FsspecDict
from tests.servers.azurite import Azurite
from tests.servers.fake_gcs import FakeGCS

from .memory_probe import MEASURABLE, check_streamed

MiB = 1024**2
STREAMED = 96 * MiB

pytestmark = [pytest.mark.skipif(not MEASURABLE, reason="needs Linux's /proc"),
              pytest.mark.timeout(600)]

def _check(url: str, options: dict[str, Any]) -> None:
    FsspecDict(url, storage_options=options, create_root=True)  # the bucket or container
    check_streamed(url, url, options, STREAMED)


def test_a_gcs_set_and_get_hold_at_most_half_the_value_beyond_it(gcs: FakeGCS) -> None:
    _check(f"gs://{gcs.bucket}/{uuid.uuid4().hex[:12]}", gcs.storage_options())


def test_an_azure_set_and_get_hold_at_most_half_the_value_beyond_it(azurite: Azurite) -> None:
    _check(f"az://{azurite.container}/{uuid.uuid4().hex[:12]}", azurite.storage_options())
