"""The Store protocol's own defaults and WrapperStore's forwarding rule (docs/architecture.md#layers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from persidict import NonEmptySafeStrTuple, SafeStrTuple
from persidict.protocol.store import Store, WrapperStore
from persidict.protocol.versions import ABSENT, ANY, Expected, PreconditionFailed, Version

K = NonEmptySafeStrTuple


class DictStore(Store):
    """The smallest real store: a dict of key -> (value, version number)."""

    def __init__(self) -> None:
        self.items: dict[K, tuple[Any, int]] = {}
        self.counter = 0

    def read(self, key: K, *, unless_etag: str | None = None) -> tuple[Any, Version]:
        value, number = self.items[key]
        return value, Version(str(number), float(number))

    def stat(self, key: K) -> Version:
        return self.read(key)[1]

    def write(self, key: K, value: Any, expected: Expected = ANY) -> str:
        current = self.items.get(key)
        if (expected is ABSENT and current) or (isinstance(expected, str) and (not current or
                                                                             str(current[1]) != expected)):
            raise PreconditionFailed(key)
        self.counter += 1
        self.items[key] = (value, self.counter)
        return str(self.counter)

    def delete(self, key: K, expected: Expected = ANY) -> None:
        del self.items[key]

    def list(self, *, with_timestamps: bool = False) -> Iterator[tuple[K, float]]:
        return iter([(key, float(number)) for key, (_, number) in self.items.items()])

    def child(self, prefix: SafeStrTuple) -> Store:
        return self


class Doubling(WrapperStore):
    """A layer that changes ``write`` only."""

    def write(self, key: K, value: Any, expected: Expected = ANY) -> str:
        return self.inner.write(key, value * 2, expected)


def test_the_defaults_are_built_on_the_primitives() -> None:
    store = DictStore()
    assert store.write_many([(K("a"), 1), (K("b"), 2)]) == {}
    assert list(store.read_many([K("a"), K("missing")])) == [(1, Version("1", 1.0)), None]
    assert store.count() == 2 and store.exists(K("a")) and not store.exists(K("missing"))
    assert store.write_many([(K("a"), 3)], ABSENT).keys() == {K("a")}  # refused, named
    assert store.clear() == {} and store.count() == 0
    assert store.relative_path(SafeStrTuple("p", "q")) == "p/q"


def test_a_layer_that_changes_write_governs_bulk_writes_too() -> None:
    layer = Doubling(DictStore())
    layer.write(K("a"), 1)
    layer.write_many([(K("b"), 2), (K("c"), 3)])  # not passed on in bulk: through the layer's write
    assert [layer.get(K(name)) for name in "abc"] == [2, 4, 6]


def test_a_layer_is_kept_one_prefix_down_and_copies_the_inner_flags() -> None:
    inner = DictStore()
    inner.atomic_conditions, inner.policy, inner.backend_name = True, "append-only", "dict"
    layer = Doubling(inner)
    assert (layer.atomic_conditions, layer.policy, layer.backend_name) == (True, "append-only", "dict")
    assert layer.append_only and isinstance(layer.child(SafeStrTuple("p")), Doubling)


def test_an_absent_key_is_a_key_error_through_every_read() -> None:
    layer = Doubling(DictStore())
    for read in (layer.read, layer.get, layer.stat):
        with pytest.raises(KeyError):
            read(K("missing"))
