"""memoize's canonical encoding of values: the same bytes for equal values in every process.

``encode(value)`` is exact and independent of ``PYTHONHASHSEED``: dicts and
sets are encoded in sorted order, and pickle bytes (set order, protocols, memo
ids) are never used.  It covers None, bool, int, float (by ``repr``: ``-0.0``
differs from ``0.0``, every NaN is the same), complex, str, bytes, bytearray,
tuple and list (distinct), dict (entries sorted by the encoding of their
keys), set and frozenset (sorted), datetime, date, time, timedelta, Decimal
(by ``str``: ``1.0`` differs from ``1.00``), Fraction, UUID, pathlib paths,
enum members, dataclass instances and namedtuples (their class and fields),
SafeStrTuple, subclasses of the builtin types (their class plus the builtin
value, if they keep no attributes), and the data objects of ``data.py``
(numpy, pandas, pyarrow, polars).  Anything else raises ``Undigestible``.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import pathlib
import sys
import uuid
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from ...keys.tuples import SafeStrTuple
from .canonical import Undigestible, frame, integer, text
from .data import encode_data

__all__ = ["class_identity", "encode", "module_name", "type_name"]


def _float(value: float) -> bytes:
    """``repr`` is the shortest exact form: ``-0.0`` and ``0.0`` differ, every NaN is ``nan``."""
    return frame(b"F", repr(value).encode())


def _in(segment: str, value: object) -> bytes:
    """``encode(value)``, recording ``segment`` in the path of an undigestible part."""
    try:
        return encode(value)
    except Undigestible as error:
        error.path.append(segment)
        raise


def _sequence(tag: bytes, items: Any) -> bytes:
    """Items in their order (tuples and lists, tagged apart)."""
    parts: list[bytes] = []
    try:
        for item in items:
            parts.append(encode(item))
    except Undigestible as error:
        error.path.append(f"[{len(parts)}]")
        raise
    return frame(tag, b"".join(parts))


def _unordered(tag: bytes, items: Any) -> bytes:
    """Items sorted by their encodings: the iteration order of a set depends on the hash seed."""
    return frame(tag, b"".join(sorted(_in("{...}", item) for item in items)))


def _mapping(value: dict[Any, Any]) -> bytes:
    """Entries sorted by the encoding of their keys: insertion order does not matter."""
    entries = []
    for key, item in value.items():
        encoded_key = _in("{key}", key)
        try:
            entries.append((encoded_key, encode(item)))
        except Undigestible as error:
            error.path.append(f"[{key!r:.40}]")
            raise
    return frame(b"D", b"".join(k + v for k, v in sorted(entries)))


def _tz_name(tzname: str | None) -> str:
    """A time zone's name at some moment ('' without one)."""
    return tzname or ""


def _datetime(value: datetime.datetime) -> bytes:
    """ISO form (with the UTC offset), the fold and the zone's name."""
    return frame(b"W", f"{value.isoformat()}|{value.fold}|{_tz_name(value.tzname())}".encode())


def _time(value: datetime.time) -> bytes:
    """ISO form, the fold and the zone's name."""
    return frame(b"M", f"{value.isoformat()}|{value.fold}|{_tz_name(value.tzname())}".encode())


def _timedelta(value: datetime.timedelta) -> bytes:
    """Days, seconds and microseconds: the exact normalized fields."""
    return frame(b"G", f"{value.days},{value.seconds},{value.microseconds}".encode())


_EXACT: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda value: b"N",
    bool: lambda value: b"B1" if value else b"B0",
    int: integer,
    float: _float,
    complex: lambda value: frame(b"C", _float(value.real) + _float(value.imag)),
    str: text,
    bytes: lambda value: frame(b"Y", value),
    bytearray: lambda value: frame(b"y", bytes(value)),
    tuple: lambda value: _sequence(b"T", value),
    list: lambda value: _sequence(b"L", value),
    dict: _mapping,
    set: lambda value: _unordered(b"E", value),
    frozenset: lambda value: _unordered(b"Z", value),
    datetime.datetime: _datetime,
    datetime.date: lambda value: frame(b"A", value.isoformat().encode()),
    datetime.time: _time,
    datetime.timedelta: _timedelta,
    decimal.Decimal: lambda value: frame(b"Q", str(value).encode()),
    uuid.UUID: lambda value: frame(b"U", value.hex.encode()),
}
"""Encoders of the supported builtin and standard types, by exact type (the fast path)."""


def module_name(module: str) -> str:
    """A module's name as every process sees it: spawned workers import ``__main__`` as ``__mp_main__``."""
    return "__main__" if module == "__mp_main__" else module


def class_identity(cls: type) -> bytes:
    """A class as ``module.qualname``: the same in every process."""
    return text(f"{module_name(cls.__module__)}.{cls.__qualname__}")


def _typed(cls: type, payload: bytes) -> bytes:
    """An instance of a user-visible class: its class identity, then its content."""
    return frame(b"O", class_identity(cls) + payload)


def _named_fields(names: Any, value: object) -> bytes:
    """Field names and values, in declaration order."""
    parts: list[bytes] = []
    for name in names:
        try:
            parts.append(text(name) + encode(getattr(value, name)))
        except Undigestible as error:
            error.path.append(f".{name}")
            raise
    return b"".join(parts)


def _encode_subclass(value: object) -> bytes | None:
    """An instance of a subclass of a supported builtin type, if it keeps no attributes of its own."""
    if getattr(value, "__dict__", None):
        return None
    for base in type(value).__mro__[1:]:
        encoder = _EXACT.get(base)
        if encoder is not None:
            return _typed(type(value), encoder(value))
    return None


def _encode_other(value: object) -> bytes:
    """Everything that is not of an exact supported type, or ``Undigestible``."""
    cls = type(value)
    if isinstance(value, enum.Enum):
        return _typed(cls, _in(".value", value.value))
    if isinstance(value, tuple) and hasattr(cls, "_fields"):  # a namedtuple
        return _typed(cls, _named_fields(cls._fields, value))
    if is_dataclass(value) and not isinstance(value, type):
        return _typed(cls, _named_fields([field.name for field in fields(value)], value))
    if isinstance(value, SafeStrTuple):
        return frame(b"K", _sequence(b"T", value.strings))
    if isinstance(value, pathlib.PurePath):
        flavor = b"w" if isinstance(value, pathlib.PureWindowsPath) else b"p"
        return frame(b"P", flavor + text(str(value)))
    fractions = sys.modules.get("fractions")
    if fractions is not None and cls is fractions.Fraction:
        return frame(b"R", integer(value.numerator) + integer(value.denominator))  # type: ignore[attr-defined]
    encoded = encode_data(value, encode)
    if encoded is None:
        encoded = _encode_subclass(value)
    if encoded is None:
        raise Undigestible(value)
    return encoded


def encode(value: object) -> bytes:
    """The canonical bytes of ``value`` (``Undigestible`` if it has none)."""
    encoder = _EXACT.get(type(value))
    return encoder(value) if encoder is not None else _encode_other(value)


def type_name(value: object) -> str:
    """``module.qualname`` of a value's type (just the name for builtins)."""
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
