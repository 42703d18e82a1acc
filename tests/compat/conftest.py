"""Fixtures of the persidict 0.309.0 compatibility tests, and their ``reference`` marker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ..servers.moto_s3 import CREDENTIALS
from .buckets import Bucket
from .reference import FIXTURES


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reference: runs the real persidict 0.309.0 in its own interpreter (built in .venvs/ on first use)")


@pytest.fixture
def bucket(moto_s3: Any) -> Iterator[Bucket]:
    """A new bucket on the moto server, wiped with the server's state afterwards."""
    moto_s3.reset()
    client = boto3.client("s3", endpoint_url=moto_s3.url, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["key"], aws_secret_access_key=CREDENTIALS["secret"])
    name = moto_s3.new_bucket_name()
    client.create_bucket(Bucket=name)
    yield Bucket(name, moto_s3.url, client)
    moto_s3.reset()


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Any:
    """``fixture_copy(folder)``: a private copy of one fixture folder, so tests never touch the originals."""

    def copy(folder: str) -> Path:
        target = tmp_path / "fixtures" / folder
        if not target.exists():
            shutil.copytree(FIXTURES / folder, target)
        return target

    return copy
