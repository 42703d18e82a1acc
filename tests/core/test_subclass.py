"""A PersiDict subclass written for persidict 0.309.0 (its seven abstract methods, nothing else) instantiates,
gets the whole dict API and the conditional operations, and works as the main dict of both caches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from persidict.jokers_and_status_flags import EXECUTION_IS_COMPLETE

from persidict import (
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    AppendOnlyDictCached,
    LocalDict,
    MutableDictCached,
    MutationPolicyError,
    NonEmptySafeStrTuple,
    PersiDict,
)


class PlainDictStore(PersiDict[Any]):
    """What a user of 0.309.0 writes: a test double over a dict, the seven abstract methods only."""

    def __init__(self, *, append_only: bool = False, serialization_format: str = "pkl") -> None:
        super().__init__(append_only=append_only, serialization_format=serialization_format)
        self.data: dict[NonEmptySafeStrTuple, tuple[Any, float]] = {}

    def __getitem__(self, key: Any) -> Any:
        return self.data[NonEmptySafeStrTuple(key)][0]

    def __setitem__(self, key: Any, value: Any) -> None:
        key = NonEmptySafeStrTuple(key)
        if self._process_setitem_args(key, value) is EXECUTION_IS_COMPLETE:  # 0.x's joker protocol
            return
        if self.append_only and key in self.data:
            raise MutationPolicyError("append-only")
        self.data[key] = (value, time.time() + len(self.data) * 1e-3)

    def __delitem__(self, key: Any) -> None:
        self._check_append_only()
        del self.data[NonEmptySafeStrTuple(key)]

    def __contains__(self, key: object) -> bool:
        return NonEmptySafeStrTuple(key) in self.data

    def __len__(self) -> int:
        return len(self.data)

    def _generic_iter(self, result_type: set[str]) -> Iterator[Any]:
        for key, (value, stamp) in list(self.data.items()):
            row = [item for label, item in (("keys", key), ("values", value), ("timestamps", stamp))
                   if label in result_type]
            yield row[0] if len(row) == 1 else tuple(row)

    def timestamp(self, key: Any) -> float:
        return self.data[NonEmptySafeStrTuple(key)][1]


def test_a_subclass_with_the_seven_methods_instantiates_and_works() -> None:
    store = PlainDictStore()
    store["a"] = 1
    store.update({"b": 2})
    assert dict(store.items()) == {NonEmptySafeStrTuple("a"): 1, NonEmptySafeStrTuple("b"): 2}
    seen = store.get_with_etag("a")
    assert seen.new_value == 1
    assert store.set_item_if("a", value=10, condition=ETAG_IS_THE_SAME, expected_etag=seen.actual_etag
                             ).condition_was_satisfied
    assert store.transform_item("a", transformer=lambda v: v + 1).new_value == 11
    assert store.setdefault("c", 3) == 3 and store.pop("c") == 3 and "c" not in store
    assert store.discard_if("b", condition=ETAG_IS_THE_SAME, expected_etag=store.etag("b")).condition_was_satisfied


def test_a_subclass_is_the_main_dict_of_a_mutable_cache() -> None:
    main = PlainDictStore()
    cached = MutableDictCached(main_dict=main, data_cache=LocalDict(),
                               etag_cache=LocalDict(serialization_format="etag", base_class_for_values=str))
    cached["k"] = "v1"
    assert cached["k"] == "v1" and cached.data_cache["k"] == "v1"
    time.sleep(0.002)  # 0.x's default ETag is the write time
    main["k"] = "v2"  # another writer changes main
    assert cached["k"] == "v2" and cached.data_cache["k"] == "v2"
    del main["k"]
    assert cached.get("k", ITEM_NOT_AVAILABLE) is ITEM_NOT_AVAILABLE and "k" not in cached.data_cache


def test_a_subclass_is_the_main_dict_of_an_append_only_cache() -> None:
    main = PlainDictStore(append_only=True)
    cached = AppendOnlyDictCached(main_dict=main, data_cache=LocalDict(append_only=True))
    cached["k"] = "v"
    main["j"] = "w"
    assert cached["j"] == "w" and cached.data_cache["j"] == "w"
    with pytest.raises(MutationPolicyError):
        cached["k"] = "other"
    assert cached["k"] == "v" and len(cached) == 2
