"""Safe typed JSON: a ``json`` codec for stores from untrusted sources (``safe_json=True``).

Loading it never imports a module or constructs an object of a class outside a
short fixed list, unlike the default ``json`` codec (jsonpickle), which rebuilds
arbitrary objects and so runs code chosen by whoever wrote the store.

The bytes are UTF-8 JSON text followed by one newline. JSON's own types are stored as
themselves, but only their exact types: ``dict`` with ``str`` keys, ``list``, ``str``, ``int``,
``float``, ``bool`` and ``None``. Subclasses (``IntEnum``, ``OrderedDict``, numpy scalars, ...)
are rejected because they would come back as the base type. The Python types below are
stored as a tag object with exactly two keys, ``"$py"`` (the tag) and ``"v"`` (the payload),
and come back as exactly the type that was stored:

=============  ===================================  ============================================
tag            Python type                          payload ``"v"``
=============  ===================================  ============================================
``tuple``      ``tuple``                            list of the encoded items
``set``        ``set``                              list of the encoded items, sorted by their
                                                    compact JSON text (equal sets, equal bytes)
``frozenset``  ``frozenset``                        as for ``set``
``bytes``      ``bytes``                            standard base64 text
``bytearray``  ``bytearray``                        standard base64 text
``complex``    ``complex``                          ``[real, imag]``
``datetime``   ``datetime.datetime``                ``isoformat()`` text; ``[text, 1]`` if fold=1
``date``       ``datetime.date``                    ``isoformat()`` text
``time``       ``datetime.time``                    ``isoformat()`` text; ``[text, 1]`` if fold=1
``timedelta``  ``datetime.timedelta``               ``[days, seconds, microseconds]``
``decimal``    ``decimal.Decimal``                  ``str(value)``, e.g. ``"1.10"``, ``"NaN"``
``uuid``       ``uuid.UUID``                        canonical hyphenated text
``dict``       ``dict`` with a ``"$py"`` key, or a  list of ``[key, encoded value]`` pairs
               key starting with ``"py/"``
=============  ===================================  ============================================

For example ``(1, {"$py": 2}, b"\\x00")`` is stored as::

    {"$py": "tuple", "v": [1, {"$py": "dict", "v": [["$py", 2]]}, {"$py": "bytes", "v": "AA=="}]}

Rejected with ``TypeError`` (before anything is written): any other type; non-``str`` dict
keys; float or complex NaN and infinities (not valid JSON; ``Decimal("NaN")`` is fine); an
``int`` longer than ``sys.get_int_max_str_digits()``; datetimes and times whose ``tzinfo`` is
neither ``None`` nor an unnamed ``datetime.timezone`` offset (a ``ZoneInfo`` zone would come
back as a bare offset); values nested too deeply for the recursion limit, or containing
themselves. Loading uses only the fixed tag table above: it never imports a module or
constructs any other class. It also reads the two harmless tags of the jsonpickle dialect
that the default ``json`` codec (and persidict 0.x) writes, ``{"py/tuple": [...]}`` and
``{"py/set": [...]}``; any other jsonpickle tag (``py/object``, ``py/reduce``, ``py/type``,
``py/id``, ...) would construct arbitrary objects, so it raises ``ValueError`` naming the
tag, never comes back as a raw dict. A payload that is not UTF-8 JSON, names an unknown tag
or has the wrong shape raises ``ValueError``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

from .names import ANY_VALUE, type_name

__all__ = ["SafeJsonCodec"]



# --- encoding ---------------------------------------------------------------

_TAG = "$py"
_PAYLOAD = "v"
_JSONPICKLE_PREFIX = "py/"
_JSONPICKLE_CONTAINERS: dict[str, Callable[[list[Any]], Any]] = {"py/tuple": tuple, "py/set": set}
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})


def _tagged(tag: str, payload: Any) -> dict[str, Any]:
    return {_TAG: tag, _PAYLOAD: payload}


def _encode(value: Any) -> Any:
    """Return a tree of plain JSON values that stands for ``value``."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise TypeError(
            f"json cannot store a value of type {type_name(kind)}; "
            "use serialization_format='pkl' for arbitrary objects"
        )
    return encoder(value)


def _encode_float(value: float) -> float:
    if not math.isfinite(value):
        raise TypeError(f"json cannot store the float {value!r} (NaN and infinities are not JSON)")
    return value


def _encode_list(value: list[Any]) -> list[Any]:
    return [_encode(item) for item in value]


def _encode_dict(value: dict[Any, Any]) -> Any:
    encoded: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            raise TypeError(f"json dict keys must be str, not {type_name(type(key))}")
        encoded[key] = _encode(item)
    if _TAG in encoded or any(key.startswith(_JSONPICKLE_PREFIX) for key in encoded):
        # A user dict that could be mistaken for a tag (ours or jsonpickle's) is escaped
        # as a list of pairs, which the loader never interprets as a tag.
        return _tagged("dict", [[key, item] for key, item in encoded.items()])
    return encoded


# Compact and ASCII-only, so the order of set elements does not depend on formatting.
_SORT_KEY_ENCODER = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, check_circular=False, separators=(",", ":")
)


def _encode_collection(tag: str) -> Callable[[Any], Any]:
    def encode(value: set[Any] | frozenset[Any]) -> Any:
        items = [_encode(item) for item in value]
        # Iteration order of a set depends on its history; sorting makes equal sets
        # give equal bytes (WriteOnceDict compares hashes of the bytes).
        items.sort(key=_SORT_KEY_ENCODER.encode)
        return _tagged(tag, items)

    return encode


def _check_tzinfo(value: dt.datetime | dt.time) -> None:
    tz = value.tzinfo
    if tz is None:
        return
    offset = tz.utcoffset(None)
    if type(tz) is dt.timezone and offset is not None and tz.tzname(None) == dt.timezone(offset).tzname(None):
        return
    raise TypeError(
        f"json stores a {type(value).__name__} only with tzinfo None or an unnamed "
        f"datetime.timezone offset, not {tz!r}"
    )


def _encode_clock(tag: str) -> Callable[[Any], Any]:
    def encode(value: dt.datetime | dt.time) -> Any:
        _check_tzinfo(value)
        text = value.isoformat()
        # ISO text cannot carry fold, which still matters for naive local times.
        return _tagged(tag, [text, 1] if value.fold else text)

    return encode


def _encode_complex(value: complex) -> Any:
    return _tagged("complex", [_encode_float(value.real), _encode_float(value.imag)])


def _encode_binary(tag: str) -> Callable[[Any], Any]:
    def encode(value: bytes | bytearray) -> Any:
        return _tagged(tag, base64.b64encode(value).decode("ascii"))

    return encode


def _encode_timedelta(value: dt.timedelta) -> Any:
    return _tagged("timedelta", [value.days, value.seconds, value.microseconds])


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    float: _encode_float,
    list: _encode_list,
    dict: _encode_dict,
    tuple: lambda value: _tagged("tuple", _encode_list(value)),
    set: _encode_collection("set"),
    frozenset: _encode_collection("frozenset"),
    bytes: _encode_binary("bytes"),
    bytearray: _encode_binary("bytearray"),
    complex: _encode_complex,
    dt.datetime: _encode_clock("datetime"),
    dt.date: lambda value: _tagged("date", value.isoformat()),
    dt.time: _encode_clock("time"),
    dt.timedelta: _encode_timedelta,
    decimal.Decimal: lambda value: _tagged("decimal", str(value)),
    uuid.UUID: lambda value: _tagged("uuid", str(value)),
}


# --- decoding: json calls _decode_object bottom-up, so a payload's items are
# already decoded when their tag object is seen. ------------------------------


def _expect_list(payload: Any, length: int | None = None) -> list[Any]:
    if type(payload) is not list or (length is not None and len(payload) != length):
        shape = "a list" if length is None else f"a list of {length}"
        raise ValueError(f"expected {shape}, got {payload!r:.80}")
    return payload


def _expect_str(payload: Any) -> str:
    if type(payload) is not str:
        raise ValueError(f"expected a string, got {payload!r:.80}")
    return payload


def _expect_number(item: Any, kinds: tuple[type, ...]) -> Any:
    if type(item) not in kinds:
        raise ValueError(f"expected a number, got {item!r:.80}")
    return item


_UTC_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{6}))?)?\Z")


def _parse_clock(parse: Callable[[str], Any], text: str) -> Any:
    # Python 3.11's fromisoformat reads an offset such as "+00:00:00.000001" as UTC, so
    # the offset is parsed here and only the local part is left to fromisoformat.
    match = _UTC_OFFSET.search(text)
    if match is None:
        return parse(text)
    sign, hours, minutes, seconds, micros = match.groups()
    offset = dt.timedelta(
        hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0), microseconds=int(micros or 0)
    )
    local = parse(text[: match.start()])
    if local.tzinfo is not None:
        raise ValueError(f"two UTC offsets in {text!r:.80}")
    return local.replace(tzinfo=dt.timezone(-offset if sign == "-" else offset))


def _decode_clock(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def decode(payload: Any) -> Any:
        if type(payload) is list:
            text, fold = _expect_list(payload, 2)
            if type(fold) is not int or fold not in (0, 1):
                raise ValueError(f"fold must be 0 or 1, got {fold!r:.80}")
            return _parse_clock(parse, _expect_str(text)).replace(fold=fold)
        return _parse_clock(parse, _expect_str(payload))

    return decode


def _decode_complex(payload: Any) -> complex:
    real, imag = (_expect_number(item, (int, float)) for item in _expect_list(payload, 2))
    return complex(real, imag)


def _decode_timedelta(payload: Any) -> dt.timedelta:
    days, seconds, micros = (_expect_number(item, (int,)) for item in _expect_list(payload, 3))
    return dt.timedelta(days=days, seconds=seconds, microseconds=micros)


def _decode_dict(payload: Any) -> dict[str, Any]:
    pairs = [_expect_list(pair, 2) for pair in _expect_list(payload)]
    return {_expect_str(key): item for key, item in pairs}


def _decode_base64(payload: Any) -> bytes:
    return base64.b64decode(_expect_str(payload), validate=True)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "tuple": lambda payload: tuple(_expect_list(payload)),
    "set": lambda payload: set(_expect_list(payload)),
    "frozenset": lambda payload: frozenset(_expect_list(payload)),
    "bytes": _decode_base64,
    "bytearray": lambda payload: bytearray(_decode_base64(payload)),
    "complex": _decode_complex,
    "datetime": _decode_clock(dt.datetime.fromisoformat),
    "date": lambda payload: dt.date.fromisoformat(_expect_str(payload)),
    "time": _decode_clock(dt.time.fromisoformat),
    "timedelta": _decode_timedelta,
    "decimal": lambda payload: decimal.Decimal(_expect_str(payload)),
    "uuid": lambda payload: uuid.UUID(_expect_str(payload)),
    "dict": _decode_dict,
}


def _decode_jsonpickle(obj: dict[str, Any]) -> Any:
    """The harmless jsonpickle containers; any other jsonpickle tag is refused by name."""
    if len(obj) == 1:
        (tag, payload), = obj.items()
        container = _JSONPICKLE_CONTAINERS.get(tag)
        if container is not None:
            try:
                return container(_expect_list(payload))
            except TypeError as exc:  # an unhashable set item
                raise ValueError(f"malformed jsonpickle {tag!r} payload: {exc}") from exc
    tag = next(key for key in obj if key.startswith(_JSONPICKLE_PREFIX))
    raise ValueError(
        f"the json holds the jsonpickle tag {tag!r}, which safe JSON does not decode: it would "
        "construct arbitrary objects. Open the store with safe_json=False if you trust its writer"
    )


def _decode_object(obj: dict[str, Any]) -> Any:
    if _TAG not in obj:
        if any(key.startswith(_JSONPICKLE_PREFIX) for key in obj):
            return _decode_jsonpickle(obj)
        return obj
    tag = obj[_TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise ValueError(f"json payload names an unknown tag {tag!r:.80}")
    if len(obj) != 2 or _PAYLOAD not in obj:
        raise ValueError(f"a json {tag!r} tag must have exactly the keys {_TAG!r} and {_PAYLOAD!r}")
    try:
        return decoder(obj[_PAYLOAD])
    # TypeError: an unhashable set item; ArithmeticError: decimal.InvalidOperation,
    # OverflowError from timedelta; ValueError: our shape checks, base64, ISO parsing.
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"malformed json {tag!r} payload: {exc}") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"json payload contains {name}, which is not valid JSON")


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False)
_ASCII_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, check_circular=False)
_DECODER = json.JSONDecoder(object_hook=_decode_object, parse_constant=_reject_constant)


class SafeJsonCodec:
    """The ``json`` format as safe typed JSON (see the module docstring for the tag table)."""

    format_name = "json"
    content_type = "application/json"
    holds = ANY_VALUE

    def dumps(self, value: object, /) -> bytes:
        """Encode ``value`` as UTF-8 JSON plus a newline; ``TypeError`` if json cannot hold it."""
        try:
            tree = value if type(value) in _PLAIN else _encode(value)
            text = _ENCODER.encode(tree)
        except RecursionError as exc:
            raise TypeError("json cannot store a value nested this deeply or containing itself") from exc
        except ValueError as exc:  # an int with more digits than sys.get_int_max_str_digits()
            raise TypeError(f"json cannot store this value: {exc}") from exc
        try:
            return (text + "\n").encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates have no UTF-8 form; \\uXXXX escapes keep them exactly.
            return (_ASCII_ENCODER.encode(tree) + "\n").encode("ascii")

    def loads(self, data: bytes, /) -> object:
        """Decode bytes written by ``dumps``; ``ValueError`` for anything malformed."""
        try:
            return _DECODER.decode(str(data, "utf-8"))
        except RecursionError as exc:
            raise ValueError("json payload is nested too deeply") from exc
