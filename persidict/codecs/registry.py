"""Codecs: how a value becomes the bytes of one file or object, and back.

``serialization_format`` selects the codec (and is also the file extension):

- ``"pkl"``: ``pickle`` with the highest protocol, uncompressed. Accepts anything picklable.
  Loading a pickle runs code, so a pkl store must come from a trusted writer. The compressed
  joblib pickles persidict 0.x wrote are read too (see ``legacy_pickles``).
- ``"dill"``: ``dill``, for lambdas, closures and interactively defined classes. Same trust
  note as pkl. ``dill`` is imported on first use only.
- ``"json"``: the jsonpickle dialect of persidict 0.x (arbitrary objects; same trust note as
  pkl), or, with ``safe_json=True``, *safe typed JSON* (``safe_json``), which loading never
  turns into objects of arbitrary classes: for stores from untrusted sources.  ``safe_json=True``
  with pkl or dill is refused (``ValueError``): they cannot be read without running code.
- anything else (``"txt"``, ``"py"``, ``"md"``, ...): plain text. Accepts ``str`` values only,
  written as UTF-8 (never the locale encoding) with ``\\n`` unchanged; reads return a plain ``str``.

Every codec raises ``TypeError`` from ``dumps`` when its format cannot hold the value, so a
store can reject the value before it writes anything.
"""

from __future__ import annotations

import pickle
from typing import Protocol

from .jsonpickle_dialect import JsonPickleCodec
from .legacy_pickles import is_legacy_pickle, load_legacy_pickle
from .safe_json import SafeJsonCodec

__all__ = [
    "CODE_RUNNING_FORMATS",
    "Codec",
    "DillCodec",
    "JsonPickleCodec",
    "PickleCodec",
    "SafeJsonCodec",
    "TextCodec",
    "get_codec",
    "is_text_format",
]

_BINARY = "application/octet-stream"

# What pickle and dill raise for a value they cannot serialize: PicklingError for
# unreachable globals (lambdas), AttributeError for local objects, TypeError for objects
# such as locks and generators, RecursionError for very deep structures.
_PICKLING_ERRORS = (pickle.PicklingError, AttributeError, TypeError, RecursionError)


class Codec(Protocol):
    """Turns values into the bytes stored for one key, and back."""

    format_name: str
    content_type: str

    def dumps(self, value: object, /) -> bytes:
        """Serialize ``value``; ``TypeError`` if the format cannot hold it."""
        ...

    def loads(self, data: bytes, /) -> object:
        """Rebuild a value from bytes written by ``dumps``."""
        ...


def _type_name(kind: type) -> str:
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


class PickleCodec:
    """The ``pkl`` format: standard ``pickle``, highest protocol, uncompressed."""

    format_name = "pkl"
    content_type = _BINARY

    @staticmethod
    def loads(data: bytes, /) -> object:
        """Unpickle ``data``, or load a joblib pickle of persidict 0.x (detected by its bytes)."""
        if is_legacy_pickle(data):
            return load_legacy_pickle(data)
        return pickle.loads(data)

    def dumps(self, value: object, /) -> bytes:
        """Pickle ``value``; ``TypeError`` (chained) if it cannot be pickled."""
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except _PICKLING_ERRORS as exc:
            raise TypeError(f"pkl cannot store a value of type {_type_name(type(value))}: {exc}") from exc


class DillCodec:
    """The ``dill`` format: like pkl, but also lambdas, closures and interactive classes."""

    format_name = "dill"
    content_type = _BINARY

    def dumps(self, value: object, /) -> bytes:
        """Serialize ``value`` with dill; ``TypeError`` (chained) if dill cannot."""
        import dill  # lazy: most stores never need it

        try:
            data: bytes = dill.dumps(value)
        except _PICKLING_ERRORS as exc:
            raise TypeError(f"dill cannot store a value of type {_type_name(type(value))}: {exc}") from exc
        return data

    def loads(self, data: bytes, /) -> object:
        """Rebuild a value written by ``dumps``."""
        import dill

        result: object = dill.loads(data)
        return result


class TextCodec:
    """A plain-text format (``txt``, ``py``, ...): ``str`` values as UTF-8 bytes."""

    content_type = "text/plain; charset=utf-8"

    def __init__(self, format_name: str) -> None:
        self.format_name = format_name

    def __repr__(self) -> str:
        return f"TextCodec({self.format_name!r})"

    def dumps(self, value: object, /) -> bytes:
        """Encode a ``str`` (subclasses too) as UTF-8; ``TypeError`` for anything else."""
        if not isinstance(value, str):
            raise TypeError(
                f"the {self.format_name!r} text format stores only str values, "
                f"not {_type_name(type(value))}"
            )
        try:
            return str(value).encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
            raise TypeError(f"the {self.format_name!r} text format cannot store this str: {exc}") from exc

    def loads(self, data: bytes, /) -> str:
        """Decode strict UTF-8 into a plain ``str``."""
        return str(data, "utf-8")


_BUILTIN_CODECS: dict[str, Codec] = {
    "pkl": PickleCodec(),
    "json": JsonPickleCodec(),
    "dill": DillCodec(),
}
_SAFE_JSON = SafeJsonCodec()


def is_text_format(serialization_format: str) -> bool:
    """True for the plain-text formats: every format name except pkl, json and dill."""
    return serialization_format not in _BUILTIN_CODECS


CODE_RUNNING_FORMATS = frozenset({"pkl", "dill"})
"""Formats whose loading runs code whatever the options (json does too, unless ``safe_json``)."""


def get_codec(serialization_format: str, *, safe_json: bool = False) -> Codec:
    """Return the codec for a format name; unknown names are plain-text formats.

    ``safe_json=True`` promises that loading never runs code: it picks safe typed
    JSON for ``"json"``, keeps the text formats (which never run code), and
    refuses ``"pkl"`` and ``"dill"`` with ``ValueError``, which cannot keep that
    promise (a store reporting ``safe_json=True`` must be safe to read).

    >>> get_codec("json").dumps((1, 2))
    b'{\\n    "py/tuple": [\\n        1,\\n        2\\n    ]\\n}'
    >>> get_codec("json", safe_json=True).dumps((1, 2))
    b'{"$py": "tuple", "v": [1, 2]}\\n'
    """
    if not isinstance(serialization_format, str):
        raise TypeError(f"serialization_format must be a str, not {_type_name(type(serialization_format))}")
    if not serialization_format:
        raise ValueError("serialization_format must not be empty")
    if safe_json and serialization_format == "json":
        return _SAFE_JSON
    if safe_json and serialization_format in CODE_RUNNING_FORMATS:
        raise ValueError(
            f"safe_json=True promises that reading never runs code, but loading {serialization_format!r} runs "
            "the code stored in it: use serialization_format='json' (safe typed JSON) or a text format, "
            "or drop safe_json for a store whose writers you trust"
        )
    codec = _BUILTIN_CODECS.get(serialization_format)
    return codec if codec is not None else TextCodec(serialization_format)
