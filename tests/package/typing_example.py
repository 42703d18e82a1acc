"""Typed use of persidict, as a user would write it: ``mypy --strict`` must accept this file.

tests/package/test_typing.py type-checks it and also runs ``main`` once, so the
example stays real code. ``assert_type`` fails the type check when an
inferred type differs, and does nothing at run time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import assert_type

from persidict import (
    ANY_ETAG,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    ConditionalOperationResult,
    ETagIfExists,
    ETagValue,
    FileDirDict,
    FsspecDict,
    ItemNotAvailableFlag,
    LocalDict,
    NonEmptySafeStrTuple,
    OperationResult,
    PersiDict,
    SafeStrTuple,
)


def increment(current: int | ItemNotAvailableFlag) -> int:
    # isinstance, not ``is ITEM_NOT_AVAILABLE``: a type checker narrows only the former.
    return 1 if isinstance(current, ItemNotAvailableFlag) else current + 1


def total(store: PersiDict[int]) -> int:
    return sum(store.values())


def main(folder: str) -> int:
    counts = FileDirDict[int](base_dir=folder, fsync=False)
    counts["count"] = 41
    val: int = counts["count"]
    assert_type(counts["count"], int)
    maybe: int | None = counts.get(NonEmptySafeStrTuple("missing"))

    result = counts.transform_item("count", transformer=increment)
    assert_type(result, OperationResult[int])

    names = LocalDict[str]()
    names["a", "b"] = "hello"
    greeting: str = names[("a", "b")]
    keys: Iterator[NonEmptySafeStrTuple] = names.keys()
    first = next(keys)
    assert_type(first, NonEmptySafeStrTuple)

    got = names.get_with_etag(("a", "b"))
    assert_type(got, ConditionalOperationResult[str])
    etag: ETagIfExists = got.actual_etag
    if isinstance(etag, str):
        swapped = names.set_item_if(
            ("a", "b"), value="world", condition=ETAG_IS_THE_SAME, expected_etag=ETagValue(etag)
        )
        assert swapped.condition_was_satisfied
    inserted = names.setdefault_if(
        "new", default_value="x", condition=ANY_ETAG, expected_etag=ITEM_NOT_AVAILABLE
    )
    assert inserted.value_was_mutated

    blobs = FsspecDict[bytes]("memory://typing-example")
    blobs["k"] = b"raw"
    raw: bytes = blobs["k"]
    blobs.discard("k")

    sub = counts.get_subdict(SafeStrTuple("sub"))
    sub["x"] = 1
    stamped: list[tuple[NonEmptySafeStrTuple, int, float]] = list(counts.items_and_timestamps())

    return val + (maybe or 0) + len(greeting) + len(raw) + total(counts) + len(stamped)


if __name__ == "__main__":
    print(main(sys.argv[1]))
