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
(``written_differently(fmt)``): jsonpickle turns non-str dict keys into str.

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


_PYTHON_STR = pd.StringDtype(storage="python", na_value=np.nan)
"""pandas' default string dtype without pyarrow, named: with pyarrow installed the default is
Arrow-backed, which does not compare equal to it and which a reader without pyarrow cannot unpickle
(the fixtures and the reference environment have no pyarrow)."""


def _frame() -> pd.DataFrame:
    """A small frame whose strings (values and column labels) pickle the same with or without pyarrow."""
    tags = pd.array(["a", "b", "c"], dtype=_PYTHON_STR)
    frame = pd.DataFrame({"step": [1, 2, 3], "loss": [0.9, 0.5, 0.25], "tag": tags})
    return frame.set_axis(pd.Index(list(frame.columns), dtype=_PYTHON_STR), axis=1)


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
        ("pandas", "frame"): _frame(),
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


def written_differently(fmt: str) -> dict[Key, Any]:
    """The values a writer stores where the format changes them; ``corpus`` has what comes back."""
    if fmt == "json":
        # jsonpickle writes non-str dict keys as str; 0.309.0 reads them back as str.
        return {("containers", "dict_int_keys"): {1: "one", 2: "two"}}
    return {}


def corpus_to_write(fmt: str) -> dict[Key, Any]:
    """The values a writer stores in a store of format ``fmt``, by key."""
    return {**corpus(fmt), **written_differently(fmt)}


def base_class_for(fmt: str) -> type | None:
    """The ``base_class_for_values`` a store of this format needs (text formats hold only str)."""
    return str if fmt == "txt" else None


def values_equal(expected: Any, actual: Any) -> bool:
    """True if ``actual`` is ``expected`` read back: same type and same content, all the way down."""
    if isinstance(expected, type):
        return actual is expected
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, np.ndarray):
        return expected.dtype == actual.dtype and bool(np.array_equal(expected, actual))
    if isinstance(expected, pd.DataFrame):
        return bool(expected.equals(actual)) and list(expected.dtypes) == list(actual.dtypes)
    if isinstance(expected, BaseException):
        return values_equal(expected.args, actual.args)
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(map(values_equal, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(values_equal(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)
