"""Values, expectations and small helpers shared by the contract tests."""

from __future__ import annotations

import datetime
import decimal
import json
import pickle
import uuid
from collections.abc import Callable
from typing import Any

from persidict import (
    ANY_ETAG,
    ETAG_HAS_CHANGED,
    ETAG_IS_THE_SAME,
    ITEM_NOT_AVAILABLE,
    VALUE_NOT_RETRIEVED,
)
from persidict.codecs.names import ANY_VALUE
from persidict.codecs.parquet import ParquetCodec
from persidict.codecs.registry import get_codec, values_held

from ..conftest import storage_of

INA = ITEM_NOT_AVAILABLE
VNR = VALUE_NOT_RETRIEVED


class Point:
    """A user class (module-level, so pickle can find it)."""

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


def store_root(store: Any) -> str:
    """The path of the store's root inside ``store.fs``."""
    store = storage_of(store)
    return store.fs._strip_protocol(store.url).rstrip("/")


def stored_plain_value(store: Any, key: Any) -> Any:
    """Decode, straight from ``store.fs``, the value stored for ``key``; INA if nothing is stored.

    Reads the bytes at ``store.key_to_path(key)`` without going through the
    store's own read path, so results can be checked against the real data:
    json as plain JSON, pkl with ``pickle``, the other formats with a codec
    of their own (a text format as UTF-8).
    """
    store = storage_of(store)
    path = store.key_to_path(key)
    if not store.fs.exists(path):
        return INA
    raw = store.fs.cat_file(path)
    if store.serialization_format == "json":
        return json.loads(raw.decode("utf-8"))
    if store.serialization_format == "pkl":
        return pickle.loads(raw)
    return get_codec(store.serialization_format).loads(raw)


def store_options(store: Any) -> dict[str, Any]:
    """A store's options from its params; a cached wrapper's params are the stores it is made of
    (docs/stores.md#local-caches), so its options are those of its main store."""
    params = store.get_params()
    return params["main_dict"].get_params() if "main_dict" in params else params


class ValueFamily:
    """The values one kind of store holds, numbered: ``make(n)`` is the n-th, ``number(v)`` its n.

    Stores of any value hold dicts; a store of a format that holds only some
    types (``Codec.holds``: text, arrays, tables) holds values of those, so
    every contract test runs on it with values it can hold. Values of every
    family compare with ``==`` to a plain bool, so tests assert on them alike.
    """

    def __init__(self, make: Callable[[int], Any], number: Callable[[Any], int]) -> None:
        self.make = make
        self.number = number


def _plain_dict(n: int) -> dict[str, Any]:
    return {"n": n, "label": f"value-{n}", "items": [n, n + 1]}


def _array(n: int) -> Any:
    import numpy as np

    return np.array(n)  # 0-d: == gives one bool, as assertions need


def _table(n: int) -> Any:
    import pyarrow as pa

    return pa.table({"n": [n], "label": [f"value-{n}"]})  # Table == Table is Table.equals: one bool


FAMILIES: dict[str, ValueFamily] = {
    ANY_VALUE: ValueFamily(_plain_dict, lambda value: int(value["n"])),
    "str": ValueFamily(lambda n: f"value-{n}", lambda value: int(value.removeprefix("value-"))),
    "numpy.ndarray": ValueFamily(_array, int),
    ParquetCodec.holds: ValueFamily(_table, lambda value: int(value.column("n")[0].as_py())),
}
_family = FAMILIES[ANY_VALUE]


def use_values_of(serialization_format: str) -> None:
    """Make ``plain_value`` give the values a store of this format holds (set per test by a fixture)."""
    global _family
    _family = FAMILIES[values_held(serialization_format)]


def plain_value(n: int) -> Any:
    """The n-th of the distinct values the store kind under test holds (a dict, in most kinds)."""
    return _family.make(n)


def next_value(value: Any) -> Any:
    """The value after ``value`` in its kind's numbering: what a "+1" transformer returns."""
    return plain_value(_family.number(value) + 1)


def number_of(value: Any) -> int:
    """The n of a value made by ``plain_value(n)``."""
    return _family.number(value)


def large_value() -> Any:
    """A value of the kind's type whose stored form takes more than 2 MB (random numbers do not compress)."""
    if _family is FAMILIES["numpy.ndarray"]:
        import numpy as np

        return np.random.default_rng(0).random(300_000)
    if _family is FAMILIES[ParquetCodec.holds]:
        import numpy as np
        import pyarrow as pa

        return pa.table({"x": np.random.default_rng(0).random(300_000)})
    return "x" * 2_000_000 + "end"


def holds_none(store: Any) -> bool:
    """Whether the store's format holds any value (``None`` too), not only arrays, tables or text."""
    return values_held(storage_of(store).serialization_format) == ANY_VALUE


def foreign_value() -> Any:
    """A value not of the type of ``plain_value``'s values (a str, or an int where values are str)."""
    return 12345 if isinstance(plain_value(0), str) else "not of the values' type"


_JSON_NATIVE: list[tuple[str, Any]] = [
    ("str", "hello"),
    ("empty_str", ""),
    ("int", 42),
    ("big_int", 2**100),
    ("negative", -7),
    ("float", 3.25),
    ("true", True),
    ("false", False),
    ("none", None),
    ("list", [1, "two", 3.0, None]),
    ("dict", {"a": 1, "b": [1, 2], "c": {"d": None}}),
    ("empty_list", []),
    ("empty_dict", {}),
    ("unicode", "Ünïcødé ключ 中文 🎉"),
    ("newlines", "line1\nline2\r\n"),
]

_JSON_TAGGED: list[tuple[str, Any]] = [
    ("tuple", (1, 2, 3)),
    ("nested_tuple", (1, (2, (3, "x")), [4, (5,)])),
    ("empty_tuple", ()),
    ("set", {1, 2, 3}),
    ("frozenset", frozenset({"a", "b"})),
    ("bytes", b"\x00\x01binary\xff"),
    ("complex", complex(1.5, -2)),
    ("datetime", datetime.datetime(2024, 5, 17, 12, 30, 45, 123456)),
    ("datetime_tz", datetime.datetime(2024, 5, 17, 12, 30, tzinfo=datetime.UTC)),
    ("date", datetime.date(2024, 2, 29)),
    ("time", datetime.time(23, 59, 1, 5)),
    ("decimal", decimal.Decimal("3.14159265358979323846")),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("tuple_in_dict", {"k": (1, 2), "s": {3}}),
]

# Stdlib values safe JSON may hold ("and the like") or refuse, but never alter.
JSON_OPTIONAL: list[tuple[str, Any]] = [
    ("bytearray", bytearray(b"abc")),
    ("timedelta", datetime.timedelta(days=2, seconds=5, microseconds=7)),
]

_PICKLE_ONLY: list[tuple[str, Any]] = [
    ("point", Point(1, 2)),
    ("points", [Point(1, 2), {"p": Point(3, 4)}]),
    ("range", range(3, 10, 2)),
    ("int_keys", {1: "a", (2, 3): "b"}),
]

ALL_VALUES: dict[str, Any] = dict(_JSON_NATIVE + _JSON_TAGGED + JSON_OPTIONAL + _PICKLE_ONLY)
"""Every value pkl and dill must give back exactly (docs/concepts.md#formats), by name."""

JSONPICKLE_ALTERED: dict[str, Any] = {"int_keys": {"1": "a", "(2, 3)": "b"}}
"""What the jsonpickle dialect (persidict 0.x's json) gives back for values it cannot keep exactly."""

JSONPICKLE_REFUSED = frozenset({"bytearray"})
"""Values jsonpickle would silently empty: the json codec refuses them with TypeError."""


def roundtrip_values(codec: str) -> list[tuple[str, Any]]:
    """Values a store with ``codec`` ("pkl", "jsonpickle" or "safejson") must give back exactly (6.2)."""
    if codec == "safejson":
        return _JSON_NATIVE + _JSON_TAGGED
    if codec == "jsonpickle":
        return [(n, v) for n, v in ALL_VALUES.items() if n not in JSONPICKLE_ALTERED and n not in JSONPICKLE_REFUSED]
    return list(ALL_VALUES.items())


def exact_type_equal(a: Any, b: Any) -> bool:
    """Equality that also requires the same types, recursively (a tuple stays a tuple)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(exact_type_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact_type_equal(a[k], b[k]) for k in a)
    return a == b


# --- the condition truth table (docs/concurrency.md#condition-table), cell by cell -----

# Cases: the key's state before the call and the expected ETag passed in.
PRESENT_CASES = ("present_e0", "present_ina", "present_stale")
ABSENT_CASES = ("absent_ina", "absent_real")
CASES = PRESENT_CASES + ABSENT_CASES

CONDITIONS = {"ANY_ETAG": ANY_ETAG, "ETAG_IS_THE_SAME": ETAG_IS_THE_SAME,
              "ETAG_HAS_CHANGED": ETAG_HAS_CHANGED}

SATISFIED: dict[tuple[str, str], bool] = {
    ("ANY_ETAG", "present_e0"): True,
    ("ANY_ETAG", "present_ina"): True,
    ("ANY_ETAG", "present_stale"): True,
    ("ANY_ETAG", "absent_ina"): True,
    ("ANY_ETAG", "absent_real"): True,
    ("ETAG_IS_THE_SAME", "present_e0"): True,
    ("ETAG_IS_THE_SAME", "present_ina"): False,
    ("ETAG_IS_THE_SAME", "present_stale"): False,
    ("ETAG_IS_THE_SAME", "absent_ina"): True,
    ("ETAG_IS_THE_SAME", "absent_real"): False,
    ("ETAG_HAS_CHANGED", "present_e0"): False,
    ("ETAG_HAS_CHANGED", "present_ina"): True,
    ("ETAG_HAS_CHANGED", "present_stale"): True,
    ("ETAG_HAS_CHANGED", "absent_ina"): False,
    ("ETAG_HAS_CHANGED", "absent_real"): True,
}


def prepare_case(store: Any, key: Any, case: str, current: Any, older: Any) -> tuple[Any, Any]:
    """Put ``key`` into the state ``case`` describes; return ``(expected_etag, E0)``.

    Present cases store ``older`` then ``current`` (so a stale ETag exists) and
    return E0 = the ETag of ``current``. Absent cases return E0 = INA; the
    "real" expected ETag is the one the key had before it was deleted.
    """
    store[key] = older
    stale = store.etag(key)
    if case in ABSENT_CASES:
        del store[key]
        assert key not in store
        return (INA if case == "absent_ina" else stale), INA
    store[key] = current
    e0 = store.etag(key)
    assert e0 != stale
    expected = {"present_e0": e0, "present_ina": INA, "present_stale": stale}[case]
    return expected, e0


def retrieved(mode_name: str, expected: Any, actual: Any, stored: Any) -> Any:
    """Rule R (docs/concurrency.md#rule-r): the value a call reports when it does not write."""
    if mode_name == "ALWAYS_RETRIEVE":
        return stored
    if mode_name == "NEVER_RETRIEVE":
        return VNR
    return VNR if expected == actual else stored


def assert_ina_result(result: Any, satisfied: bool) -> None:
    """The "item not available" shape: every field INA."""
    assert result.condition_was_satisfied is satisfied
    assert result.actual_etag is INA
    assert result.resulting_etag is INA
    assert result.new_value is INA
    assert result.value_was_mutated is False


def assert_same_value(got: Any, want: Any) -> None:
    """``got`` is the sentinel ``want`` (by identity) or a value equal to it."""
    if want is VNR or want is INA:
        assert got is want, f"expected {want!r}, got {got!r}"
    else:
        assert got is not VNR and got is not INA, f"expected {want!r}, got {got!r}"
        assert got == want
