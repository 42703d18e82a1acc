"""The pipeline tests keep memoize's per-machine code cache in a folder of their own, not in ~/.cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _code_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``PERSIDICT_CACHE_DIR`` for this session, in ``os.environ``: subprocesses and kernels inherit it."""
    folder = tmp_path_factory.mktemp("persidict-cache")
    previous = os.environ.get("PERSIDICT_CACHE_DIR")
    os.environ["PERSIDICT_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["PERSIDICT_CACHE_DIR"]
    else:
        os.environ["PERSIDICT_CACHE_DIR"] = previous
