"""Stores the coordination tests run on: a local folder, memory, and S3 on the session's moto server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from persidict import FileDirDict, FsspecDict, LocalDict, PersiDict

WAIT = 120
"""Seconds: a generous bound for anything that should happen "soon"."""


def s3_dict(moto_s3: Any, name: str = "coord") -> FsspecDict[Any]:
    """A store in a fresh bucket of the session's moto server."""
    return FsspecDict(f"s3://{moto_s3.new_bucket_name()}/{name}", storage_options=moto_s3.storage_options())


@pytest.fixture(params=["folder", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PersiDict[Any]:
    """A fresh store of each kind leases are tested on."""
    if request.param == "folder":
        return FileDirDict(base_dir=str(tmp_path / "store"))
    if request.param == "memory":
        return LocalDict()
    return s3_dict(request.getfixturevalue("moto_s3"))


@pytest.fixture(params=["folder", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> PersiDict[Any]:
    """A fresh store that processes can share: a local folder, S3."""
    if request.param == "folder":
        return FileDirDict(base_dir=str(tmp_path / "store"))
    return s3_dict(request.getfixturevalue("moto_s3"))
