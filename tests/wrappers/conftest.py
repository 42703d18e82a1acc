"""Fixtures for the wrapper tests: cached "worlds" (a main store plus caches) and counting stores.

``CACHED_KINDS`` is the registry the cached-wrapper contract suite runs on:
one row per (main store, cache store) pairing.  A row's ``open_main(request,
fmt)`` returns an opener: each call gives a NEW object on the SAME main
storage, like another process opening it.  Adding an S3 main later means
adding one ``MainKind`` whose opener builds a BasicS3Dict/FsspecDict on the
test's bucket (``request.getfixturevalue`` can fetch a server fixture, and
``request.addfinalizer`` can clean up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from persidict import FileDirDict, LocalDict, PersiDict
from persidict.wrappers import AppendOnlyDictCached, MutableDictCached, OverlappingMultiDict

Opener = Callable[..., PersiDict]


@dataclass(frozen=True)
class MainKind:
    """How to open main stores of one kind on one test's own storage."""

    id: str
    open_main: Callable[[pytest.FixtureRequest, str], Opener]


@dataclass(frozen=True)
class CacheKind:
    """How to make a ``(data_cache, etag_cache)`` pair for one test (append-only on request)."""

    id: str
    make_caches: Callable[[pytest.FixtureRequest, str, bool, str], tuple[PersiDict, PersiDict]]


def _open_file_main(request: pytest.FixtureRequest, fmt: str) -> Opener:
    base_dir = request.getfixturevalue("tmp_path") / "main"

    def open_main(**overrides: Any) -> PersiDict:
        return FileDirDict(base_dir=base_dir, serialization_format=fmt, fsync=False, **overrides)

    return open_main


def _open_memory_main(request: pytest.FixtureRequest, fmt: str) -> Opener:
    backend = LocalDict().backend

    def open_main(**overrides: Any) -> PersiDict:
        return LocalDict(backend=backend, serialization_format=fmt, **overrides)

    return open_main


def _file_caches(
    request: pytest.FixtureRequest, fmt: str, append_only: bool, name: str
) -> tuple[PersiDict, PersiDict]:
    # The layout S3Dict_FileDirCached uses: one tree, values in .<fmt>, ETags in .<fmt>_etag.
    shared = {"base_dir": request.getfixturevalue("tmp_path") / name, "digest_len": 8, "fsync": False,
              "append_only": append_only}
    family = OverlappingMultiDict(dict_type=FileDirDict, shared_subdicts_params=shared,
                                  **{fmt: {}, f"{fmt}_etag": {"base_class_for_values": str}})
    return getattr(family, fmt), getattr(family, f"{fmt}_etag")


def _memory_caches(
    request: pytest.FixtureRequest, fmt: str, append_only: bool, name: str
) -> tuple[PersiDict, PersiDict]:
    return (LocalDict(serialization_format=fmt, append_only=append_only),
            LocalDict(serialization_format="etag", base_class_for_values=str, append_only=append_only))


MAIN_KINDS = {kind.id: kind for kind in (MainKind("files", _open_file_main), MainKind("memory", _open_memory_main))}
CACHE_KINDS = {kind.id: kind for kind in (CacheKind("files", _file_caches), CacheKind("memory", _memory_caches))}

# (main kind, format, cache kind): every main and every cache kind, both formats.
CACHED_KINDS = [
    ("files", "pkl", "files"),
    ("files", "json", "memory"),
    ("memory", "pkl", "files"),
    ("memory", "json", "memory"),
]


class CachedWorld:
    """One test's main storage and caches; builds the cached wrappers over them."""

    def __init__(self, request: pytest.FixtureRequest, main_kind: str, fmt: str, cache_kind: str) -> None:
        self.format = fmt
        self._request = request
        self._cache_kind = CACHE_KINDS[cache_kind]
        self.open_main = MAIN_KINDS[main_kind].open_main(request, fmt)
        self.data_cache, self.etag_cache = self.new_caches()

    def new_caches(self, *, append_only: bool = False, name: str = "cache") -> tuple[PersiDict, PersiDict]:
        """A ``(data_cache, etag_cache)`` pair; pass another ``name`` for caches of their own."""
        return self._cache_kind.make_caches(self._request, self.format, append_only, name)

    def mutable(self) -> MutableDictCached:
        """A MutableDictCached over a new main object and this world's caches."""
        return MutableDictCached(main_dict=self.open_main(), data_cache=self.data_cache, etag_cache=self.etag_cache)

    def append_only(self, name: str = "ao-cache") -> AppendOnlyDictCached:
        """An AppendOnlyDictCached over an append-only main and an append-only cache called ``name``."""
        data_cache, _ = self.new_caches(append_only=True, name=name)
        return AppendOnlyDictCached(main_dict=self.open_main(append_only=True), data_cache=data_cache)


@pytest.fixture(params=CACHED_KINDS, ids=["main={}-{}/cache={}".format(*kind) for kind in CACHED_KINDS])
def world(request: pytest.FixtureRequest) -> CachedWorld:
    """A main store and caches of one registered kind, fresh for this test."""
    return CachedWorld(request, *request.param)
