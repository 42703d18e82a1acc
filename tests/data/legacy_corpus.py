r"""The values of the persidict 0.309.0 compatibility fixtures, and how to compare them.

Imported under the name ``legacy_corpus`` by two interpreters: the one with our
persidict and the one with the reference (persidict 0.309.0). Both pickle and
jsonpickle record module-level classes by module name, so the classes below
(``Point``, ``Payload``) resolve on either side only when this file is imported
as the top-level module ``legacy_corpus`` (put ``tests/data`` on ``sys.path``;
never import it as ``tests.data.legacy_corpus``).

It uses the standard library, numpy, pandas and the persidict names that both
packages export (``SafeStrTuple``, ``NonEmptySafeStrTuple``), nothing else.

``corpus(fmt)`` is what a reader must get back; ``corpus_to_write(fmt)`` is what
a writer stores. They differ only where the format changes a value on the way
(``written_differently(fmt)``): jsonpickle turns non-str dict keys into str, a
``RangeIndex`` into an ``Index``, a time zone into its UTC offset.

``ours_only(fmt)`` are values every writer stores but only our persidict reads back
as its file says: 0.309.0 reads them otherwise, so the cross-implementation checks
(0.309.0 reading our files or its own) leave them out, and our reader checks them.
In json these are jsonpickle's numpy and pandas handlers' own slips: a 0-d array
comes back with shape (1,); an Index named ``"ids"`` comes back named
``("i", "d", "s")``; a pandas ``str`` or ``category`` column comes back ``object``
or ``str``; and a DataFrame column's dtype tag names a different type in another
process (``pd/f`` is float64 where it was written, float32 where it is read).

Left out because 0.309.0 does not read them back as written (checked by
running it): in json, a ``bytearray`` (comes back empty) and a dict whose key
looks like a jsonpickle tag such as ``{"py/tuple": [1, 2]}`` (comes back
``{}``); in txt, ``"\r\n"`` and a lone ``"\r"`` (the bytes are written as given but
read back in universal-newline mode, as ``"\n"``).
"""

from __future__ import annotations

import datetime
import math
import urllib.parse
import uuid
from collections import namedtuple
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from persidict import NonEmptySafeStrTuple, SafeStrTuple

Key = tuple[str, ...]
FORMATS = ("pkl", "json", "txt")

Point = namedtuple("Point", "x y")


class Payload:
    """A small user class, as persidict users store their own records."""

    def __init__(self, name: str, scores: list[float]) -> None:
        self.name = name
        self.scores = scores

    def __eq__(self, other: object) -> bool:
        return type(other) is Payload and (self.name, self.scores) == (other.name, other.scores)

    def __repr__(self) -> str:
        return f"Payload({self.name!r}, {self.scores!r})"


_UNICODE = "Grüße, Ünïcödé — 世界 Привет 🎉"
_MOMENT = datetime.datetime(2024, 2, 29, 13, 45, 30, 123456)


def _common_values() -> dict[Key, Any]:
    """Values that pkl and json both store exactly."""
    return {
        ("scalars", "int"): 42,
        ("scalars", "negative_int"): -7,
        ("scalars", "big_int"): 2**200 + 1,
        ("scalars", "float"): 3.141592653589793,
        ("scalars", "tiny_float"): 5e-324,
        ("scalars", "inf"): float("inf"),
        ("scalars", "nan"): float("nan"),
        ("scalars", "none"): None,
        ("scalars", "true"): True,
        ("scalars", "false"): False,
        ("scalars", "complex"): complex(1.5, -2.0),
        ("strings", "ascii"): "hello world",
        ("strings", "unicode"): _UNICODE,
        ("strings", "empty"): "",
        ("bytes", "binary"): b"\x00\x01\x7f\x80\xffpersidict",
        ("containers", "list"): [1, "two", 3.0, None, [4, [5]]],
        ("containers", "tuple"): (1, ("nested", (2, 3)), []),
        ("containers", "set"): {1, 2, 3},
        # ints: a set of str is ordered by the per-process string hash, and json tests compare bytes
        ("containers", "frozenset"): frozenset({30, 10, 20}),
        ("containers", "nested_dict"): {"a": {"b": {"c": [1, 2, {"d": (3, 4)}]}}, "e": {"f": None}},
        ("time", "datetime"): _MOMENT,
        ("time", "datetime_utc"): _MOMENT.replace(tzinfo=datetime.UTC),
        ("time", "date"): datetime.date(2024, 2, 29),
        ("time", "timedelta"): datetime.timedelta(days=3, seconds=7, microseconds=11),
        ("numbers", "decimal"): Decimal("3.14159265358979323846264338327950288"),
        ("ids", "uuid"): uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ("errors", "value_error"): ValueError("boom"),
        ("errors", "key_error"): KeyError("missing"),
        ("records", "point"): Point(1, -2),
        ("keys", "safe_str_tuple"): SafeStrTuple("a", "b", "c"),
        ("keys", "non_empty_safe_str_tuple"): NonEmptySafeStrTuple("runs", "r1"),
        ("runs", "r1", "loss"): [0.9, 0.5, 0.25],
        ("runs", "r1", "params"): {"lr": 0.01, "layers": (64, 32), "name": "baseline"},
        ("runs", "r2", "loss"): [0.8, 0.4],
        ("Mixed-Case.key", "v=1~(x)"): "a key with every kind of safe character",
    }


def _frame_of_objects(columns: dict[str, list[Any]]) -> pd.DataFrame:
    """A DataFrame whose strings (labels and values) are Python objects, not pandas' str dtype.

    Where pyarrow is installed (here, for the parquet format), pandas stores its str dtype in
    pyarrow arrays, and their pickles cannot be loaded by an interpreter without pyarrow.
    """
    frame = pd.DataFrame({name: pd.Series(values, dtype=object if isinstance(values[0], str) else None)
                          for name, values in columns.items()})
    frame.columns = pd.Index(list(frame.columns), dtype=object)
    return frame


def _pkl_values() -> dict[Key, Any]:
    return {
        **_common_values(),
        ("bytes", "bytearray"): bytearray(b"mutable \x00 bytes"),
        ("containers", "dict_int_keys"): {1: "one", (2, 3): "pair", None: "none"},
        ("containers", "frozenset_of_str"): frozenset({"a", "b", "c"}),
        ("errors", "os_error"): OSError(2, "No such file or directory"),
        ("errors", "runtime_error_two_args"): RuntimeError("failed", 3),
        ("numpy", "int_matrix"): np.arange(12, dtype=np.int64).reshape(3, 4),
        ("numpy", "float_matrix"): np.array([[0.5, -1.25], [np.inf, 1e-300]], dtype=np.float32),
        ("pandas", "frame"): _frame_of_objects({"step": [1, 2, 3], "loss": [0.9, 0.5, 0.25], "tag": ["a", "b", "c"]}),
        ("records", "payload"): Payload("run-1", [1.0, 2.5]),
    }


def _json_values() -> dict[Key, Any]:
    return {
        **_common_values(),
        ("containers", "dict_int_keys"): {"1": "one", "2": "two"},
        ("types", "value_error"): ValueError,
        ("types", "key_error"): KeyError,
        ("records", "url"): urllib.parse.urlparse("https://example.com/a/b;p?q=1&r=2#frag"),
        ("records", "payload"): Payload("run-1", [1.0, 2.5]),
        **_numpy_json_values(),
        **_pandas_json_values(),
    }


def _numpy_json_values() -> dict[Key, Any]:
    """Arrays, dtypes and scalars in the tagged form of jsonpickle's numpy extension."""
    base = np.arange(40, dtype=np.int32).reshape(5, 8)
    return {
        ("numpy", "int_matrix"): np.arange(12, dtype=np.int64).reshape(3, 4),
        ("numpy", "float32"): np.array([[0.5, -1.25], [np.inf, -0.0]], dtype=np.float32),
        # more than 16 values: zlib-compressed base64 of the raw bytes, a view of its base
        ("numpy", "binary_view"): np.linspace(0.0, 1.0, 40).reshape(5, 8),
        ("numpy", "uint8_binary"): np.arange(30, dtype=np.uint8),
        ("numpy", "bool"): np.array([True, False, True]),
        ("numpy", "complex"): np.array([1 + 2j, 3 - 4j]),
        ("numpy", "unicode"): np.array(["a", "bc", "déf"]),
        ("numpy", "dates"): np.array(["2024-01-01", "2024-02-29"], dtype="datetime64[D]"),
        ("numpy", "empty"): np.zeros((0, 3)),
        ("numpy", "strided"): base[:, ::2],  # not contiguous: stored as its base with strides
        ("numpy", "fortran"): np.asfortranarray(np.arange(20.0).reshape(4, 5)),
        ("numpy", "object"): np.array([1, "a", None], dtype=object),
        ("numpy", "structured"): np.array([(1, 2.0), (3, -4.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        ("numpy", "arrays_in_containers"): [np.arange(3), {"ones": np.ones(2)}],
        ("numpy", "float64_scalar"): np.float64(2.5),
        ("numpy", "int32_scalar"): np.int32(-7),
        ("numpy", "bool_scalar"): np.bool_(True),
        ("numpy", "dtype"): np.dtype("float32"),
        ("numpy", "datetime64"): np.datetime64("2024-02-29T12:34:56.789012"),
    }


def _pandas_json_values() -> dict[Key, Any]:
    """pandas values in the tagged form of jsonpickle's pandas extension (or their ``__reduce__``)."""
    return {
        # bool, datetime and object columns: the only dtype tags every 0.309.0 process reads alike
        ("pandas", "frame"): pd.DataFrame({
            "ok": [True, False, True], "when": pd.to_datetime(["2024-01-01", "2024-02-29", "2024-12-31"]),
            "misc": ["a", 1, None]}),
        ("pandas", "series"): pd.Series([1.5, 2.5, -1.0], index=["a", "b", "c"], name="s"),
        ("pandas", "int_series"): pd.Series([1, 2, 3]),
        ("pandas", "index"): pd.Index([3, 1, 2]),
        ("pandas", "multiindex"): pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["letter", "n"]),
        ("pandas", "datetime_index"): pd.date_range("2024-01-01", periods=3, freq="D"),
        ("pandas", "period_index"): pd.period_range("2024-01", periods=3, freq="M"),
        ("pandas", "range_index"): pd.Index([0, 2, 4, 6, 8]),
        ("pandas", "timestamp"): pd.Timestamp("2024-02-29 12:34:56.789"),
        ("pandas", "timestamp_tz"): pd.Timestamp("2024-02-29T12:34:56.789+01:00"),
        ("pandas", "timedelta"): pd.Timedelta("1 days 02:03:04.000005"),
        ("pandas", "period"): pd.Period("2024-02", freq="M"),
        ("pandas", "interval"): pd.Interval(0.5, 1.5, closed="left"),
        ("pandas", "categorical"): pd.Categorical(["x", "y", "x"], categories=["y", "x"], ordered=True),
        ("pandas", "nat"): pd.NaT,
    }


def _json_ours_only() -> dict[Key, Any]:
    """json values 0.309.0 writes but reads back otherwise (the module docstring says how)."""
    return {
        ("numpy", "zero_d"): np.array(3.5),
        ("pandas", "named_index"): pd.Index([3, 1, 2], name="ids"),
        ("pandas", "numeric_frame"): pd.DataFrame(
            {"step": [1, 2, 3], "loss": [0.9, 0.5, 0.25], "tag": ["a", "b", "c"]}),
        # its columns are longer than 500 characters: zlib-compressed base64
        ("pandas", "big_frame"): pd.DataFrame({"x": np.arange(100) / 8, "y": np.arange(100)}),
        ("pandas", "category_frame"): pd.DataFrame({"c": pd.Categorical(["a", "b", "a"])}),
        ("pandas", "multiindex_frame"): pd.DataFrame(
            {"v": [1.5, 2.5]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])),
    }


def _txt_values() -> dict[Key, Any]:
    return {
        ("notes", "ascii"): "plain ASCII text",
        ("notes", "cjk"): "日本語のテキスト，中文文本，한국어 텍스트",
        ("notes", "cyrillic"): "Съешь же ещё этих мягких французских булок",
        ("notes", "emoji"): "🎉🚀 persidict ✨ 👩‍💻",
        ("notes", "accents"): "àéîõü ÀÉÎÕÜ çñ ß ø å",
        ("notes", "newlines"): "line one\nline two\n\nline four\n",
        ("notes", "empty"): "",
        ("runs", "r1", "loss"): "0.9 0.5 0.25",
        ("docs", "source"): 'def f(x):\n    return x + 1  # «comment»\n',
    }


_CORPORA = {"pkl": _pkl_values, "json": _json_values, "txt": _txt_values}


def corpus(fmt: str) -> dict[Key, Any]:
    """The values a reader must find in a store of format ``fmt``, by key."""
    return _CORPORA[fmt]()


def ours_only(fmt: str) -> dict[Key, Any]:
    """Values every writer stores and only our persidict reads back exactly (see the module docstring)."""
    return _json_ours_only() if fmt == "json" else {}


def written_differently(fmt: str) -> dict[Key, Any]:
    """The values a writer stores where the format changes them; ``corpus`` has what comes back."""
    if fmt == "json":
        return {
            # jsonpickle writes non-str dict keys as str; 0.309.0 reads them back as str.
            ("containers", "dict_int_keys"): {1: "one", 2: "two"},
            # its pandas extension writes an Index's values, not that they were a range,
            ("pandas", "range_index"): pd.RangeIndex(0, 10, 2),
            # and a Timestamp's ISO text, so a named zone comes back as its offset.
            ("pandas", "timestamp_tz"): pd.Timestamp("2024-02-29 12:34:56.789", tz="Europe/Paris"),
        }
    return {}


def corpus_to_write(fmt: str) -> dict[Key, Any]:
    """The values a writer stores in a store of format ``fmt``, by key (``ours_only`` included)."""
    return {**corpus(fmt), **written_differently(fmt), **ours_only(fmt)}


def base_class_for(fmt: str) -> type | None:
    """The ``base_class_for_values`` a store of this format needs (text formats hold only str)."""
    return str if fmt == "txt" else None


def values_equal(expected: Any, actual: Any) -> bool:
    """True if ``actual`` is ``expected`` read back: same type and same content, all the way down."""
    if isinstance(expected, type):
        return actual is expected
    if type(actual) is not type(expected):
        return False
    if expected is pd.NaT:
        return actual is pd.NaT
    if isinstance(expected, (np.ndarray, np.generic, pd.Categorical)):
        return expected.dtype == actual.dtype and bool(np.array_equal(expected, actual))
    if isinstance(expected, (pd.DataFrame, pd.Series, pd.Index)):
        return _same_pandas(expected, actual)
    if isinstance(expected, pd.Timestamp):
        return bool(expected == actual) and str(expected.tz) == str(actual.tz)
    if isinstance(expected, BaseException):
        return values_equal(expected.args, actual.args)
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(map(values_equal, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(values_equal(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


_LOOSE_TYPES = {"check_index_type": False, "check_dtype": False}
_PANDAS_CHECKS: dict[type, tuple[Any, dict[str, bool]]] = {
    pd.DataFrame: (pd.testing.assert_frame_equal, {**_LOOSE_TYPES, "check_column_type": False}),
    pd.Series: (pd.testing.assert_series_equal, _LOOSE_TYPES),
    pd.Index: (pd.testing.assert_index_equal, {"exact": False}),
}


def _same_pandas(expected: Any, actual: Any) -> bool:
    """Same values, labels, names and dtypes.

    A dtype is compared by name: a ``str`` column is stored by pyarrow where it is installed
    and by Python where it is not, so a value pickled elsewhere differs in that alone. A
    DataFrame's or Series' index, being written as its values, may come back as an Index of them.
    """
    check, options = next(entry for kind, entry in _PANDAS_CHECKS.items() if isinstance(expected, kind))
    try:
        check(expected, actual, check_exact=True, **options)
    except AssertionError:
        return False
    return _dtype_names(expected) == _dtype_names(actual)


def _dtype_names(value: Any) -> list[str]:
    return [str(t) for t in value.dtypes] if isinstance(value, pd.DataFrame) else [str(value.dtype)]
