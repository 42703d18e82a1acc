"""The ``world`` fixture: a cached store kind of the one registry (``STORE_KINDS``), taken apart.

Every kind with ``cached`` parts in ``tests/conftest.py`` is a world here: its main
store opened as many times as a test likes (each call a NEW object on the SAME main
storage, like another process), and its caches, so that tests can write to main
behind the cache's back and look into the copies.
"""

from __future__ import annotations

from typing import Any

import pytest

from persidict import AppendOnlyDictCached, MutableDictCached, PersiDict

from ..conftest import STORE_KINDS, StoreKind, open_cached_caches, open_cached_main

CACHED_KINDS = [kind for kind in STORE_KINDS.values() if kind.cached is not None]


class CachedWorld:
    """One test's main storage and caches of one cached kind; builds the cached wrappers over them."""

    def __init__(self, kind: StoreKind, tmp_path: Any) -> None:
        assert kind.cached is not None
        self.kind = kind
        self.format = kind.format
        self._parts = kind.cached
        self.state = kind.new_location(tmp_path)
        self.data_cache, self.etag_cache = self.new_caches()

    def open_main(self, **overrides: Any) -> PersiDict[Any]:
        """A new object on this world's main storage."""
        return open_cached_main(self._parts, self.state, {"serialization_format": self.format, **overrides})

    def new_caches(self, *, append_only: bool = False, name: str = "cache") -> tuple[PersiDict[Any], PersiDict[Any]]:
        """A ``(data_cache, etag_cache)`` pair; pass another ``name`` for caches of their own."""
        return open_cached_caches(self._parts, self.state, self.format, append_only, name)

    def mutable(self) -> MutableDictCached[Any]:
        """A MutableDictCached over a new main object and this world's caches."""
        return MutableDictCached(main_dict=self.open_main(), data_cache=self.data_cache, etag_cache=self.etag_cache)

    def append_only(self, name: str = "ao-cache") -> AppendOnlyDictCached[Any]:
        """An AppendOnlyDictCached over an append-only main and an append-only cache called ``name``."""
        data_cache, _ = self.new_caches(append_only=True, name=name)
        return AppendOnlyDictCached(main_dict=self.open_main(append_only=True), data_cache=data_cache)


@pytest.fixture(params=CACHED_KINDS, ids=[kind.id for kind in CACHED_KINDS])
def world(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A main store and caches of one registered cached kind, fresh for this test."""
    world = CachedWorld(request.param, tmp_path)
    yield world
    request.param.cleanup(world.state)
