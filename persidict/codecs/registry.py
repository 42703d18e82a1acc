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
- ``"parquet"``: pandas (and polars) DataFrames and pyarrow Tables as Parquet files, which
  other tools read directly; ``"npy"``: numpy arrays as ``.npy`` files. Loading runs no code.
  Their libraries (the ``frames`` and ``numpy`` extras) are imported when a store opens.
- anything else (``"txt"``, ``"py"``, ``"md"``, ...): plain text. Accepts ``str`` values only,
  written as UTF-8 (never the locale encoding) with ``\\n`` unchanged; reads return a plain ``str``.

A codec may also write into and read from an open file (``dump``/``load``, see ``streams``):
local stores then stream big values instead of holding their bytes in memory.

Every codec raises ``TypeError`` from ``dumps`` (and ``dump``) when its format cannot hold the value, so a
store can reject the value before it writes anything, and says what it holds (``holds``):
``ANY_VALUE``, ``"str"``, or the types it takes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import IO, Protocol

from .jsonpickle_dialect import JsonPickleCodec
from .legacy_pickles import is_legacy_pickle, load_legacy_pickle
from .names import ANY_VALUE, type_name
from .npy import NpyCodec
from .parquet import ParquetCodec
from .safe_json import SafeJsonCodec
from .streams import load_pickle

__all__ = [
    "ANY_VALUE",
    "CODE_RUNNING_FORMATS",
    "Codec",
    "DillCodec",
    "JsonPickleCodec",
    "NpyCodec",
    "ParquetCodec",
    "PickleCodec",
    "SafeJsonCodec",
    "TextCodec",
    "formats_for_any_value",
    "get_codec",
    "is_text_format",
    "values_held",
]

_BINARY = "application/octet-stream"
_TEXT_SLICE = 1 << 20  # characters encoded at a time by ``TextCodec.dump``

# What pickle and dill raise for a value they cannot serialize: PicklingError for
# unreachable globals (lambdas), AttributeError for local objects, TypeError for objects
# such as locks and generators, RecursionError for very deep structures.
_PICKLING_ERRORS = (pickle.PicklingError, AttributeError, TypeError, RecursionError)


class Codec(Protocol):
    """Turns values into the bytes stored for one key, and back."""

    format_name: str
    content_type: str
    holds: str
    """What the format holds: ``ANY_VALUE``, ``"str"``, or the types it takes (``"numpy.ndarray"``)."""

    def dumps(self, value: object, /) -> bytes:
        """Serialize ``value``; ``TypeError`` if the format cannot hold it."""
        ...

    def loads(self, data: bytes, /) -> object:
        """Rebuild a value from bytes written by ``dumps``."""
        ...


class PickleCodec:
    """The ``pkl`` format: standard ``pickle``, highest protocol, uncompressed."""

    format_name = "pkl"
    content_type = _BINARY
    holds = ANY_VALUE

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
            raise TypeError(f"pkl cannot store a value of type {type_name(type(value))}: {exc}") from exc

    def dump(self, value: object, file: IO[bytes], /) -> None:
        """Pickle ``value`` into ``file``: protocol 5 writes big buffers (arrays) to it without a copy."""
        try:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        except _PICKLING_ERRORS as exc:
            raise TypeError(f"pkl cannot store a value of type {type_name(type(value))}: {exc}") from exc

    @staticmethod
    def load(file: IO[bytes], /) -> object:
        """Unpickle from ``file`` (big buffers are read into place), or load a joblib pickle of 0.x."""
        return load_pickle(file)


class DillCodec:
    """The ``dill`` format: like pkl, but also lambdas, closures and interactive classes."""

    format_name = "dill"
    content_type = _BINARY
    holds = ANY_VALUE

    def dumps(self, value: object, /) -> bytes:
        """Serialize ``value`` with dill; ``TypeError`` (chained) if dill cannot."""
        import dill  # lazy: most stores never need it

        try:
            data: bytes = dill.dumps(value)
        except _PICKLING_ERRORS as exc:
            raise TypeError(f"dill cannot store a value of type {type_name(type(value))}: {exc}") from exc
        return data

    def dump(self, value: object, file: IO[bytes], /) -> None:
        """Serialize ``value`` into ``file`` with dill (same bytes as ``dumps``)."""
        import dill

        try:
            dill.dump(value, file)
        except _PICKLING_ERRORS as exc:
            raise TypeError(f"dill cannot store a value of type {type_name(type(value))}: {exc}") from exc

    def loads(self, data: bytes, /) -> object:
        """Rebuild a value written by ``dumps``."""
        import dill

        result: object = dill.loads(data)
        return result

    def load(self, file: IO[bytes], /) -> object:
        """Rebuild a value from ``file``."""
        import dill

        result: object = dill.load(file)
        return result


class TextCodec:
    """A plain-text format (``txt``, ``py``, ...): ``str`` values as UTF-8 bytes."""

    content_type = "text/plain; charset=utf-8"
    holds = "str"

    def __init__(self, format_name: str) -> None:
        self.format_name = format_name

    def __repr__(self) -> str:
        return f"TextCodec({self.format_name!r})"

    def dumps(self, value: object, /) -> bytes:
        """Encode a ``str`` (subclasses too) as UTF-8; ``TypeError`` for anything else."""
        if not isinstance(value, str):
            raise TypeError(
                f"the {self.format_name!r} text format stores only str values, "
                f"not {type_name(type(value))}"
            )
        try:
            return str(value).encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
            raise TypeError(f"the {self.format_name!r} text format cannot store this str: {exc}") from exc

    def dump(self, value: object, file: IO[bytes], /) -> None:
        """Write a ``str`` as UTF-8 in slices, so no UTF-8 copy of a long text is ever whole in memory."""
        self.dumps(value[:0] if isinstance(value, str) else value)  # the same TypeError for a non-str
        text = str(value)
        for start in range(0, len(text), _TEXT_SLICE):
            try:
                file.write(text[start:start + _TEXT_SLICE].encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise TypeError(f"the {self.format_name!r} text format cannot store this str: {exc}") from exc

    def loads(self, data: bytes, /) -> str:
        """Decode strict UTF-8 into a plain ``str``."""
        return str(data, "utf-8")


_BUILTIN_CODECS: dict[str, Callable[[], Codec]] = {
    "pkl": PickleCodec,
    "json": JsonPickleCodec,
    "dill": DillCodec,
    "parquet": ParquetCodec,  # imports pandas and pyarrow when made: when a store opens
    "npy": NpyCodec,
}


def is_text_format(serialization_format: str) -> bool:
    """True for the plain-text formats: every format name except those of the codecs above."""
    return serialization_format not in _BUILTIN_CODECS


CODE_RUNNING_FORMATS = frozenset({"pkl", "dill"})
"""Formats whose loading runs code whatever the options (json does too, unless ``safe_json``)."""


def values_held(serialization_format: str) -> str:
    """What a format holds (``Codec.holds``), without opening its codec (so without importing its library)."""
    codec = _BUILTIN_CODECS.get(serialization_format)
    return TextCodec.holds if codec is None else str(codec.holds)  # type: ignore[attr-defined]


def formats_for_any_value() -> tuple[str, ...]:
    """The format names whose codec holds any value it can serialize: ``("pkl", "json", "dill")``."""
    return tuple(name for name in _BUILTIN_CODECS if values_held(name) == ANY_VALUE)


def get_codec(serialization_format: str, *, safe_json: bool = False) -> Codec:
    """Return the codec for a format name; unknown names are plain-text formats.

    ``safe_json=True`` promises that loading never runs code: it picks safe typed
    JSON for ``"json"``, keeps the text formats (which never run code), and
    refuses ``"pkl"`` and ``"dill"`` with ``ValueError``, which cannot keep that
    promise (a store reporting ``safe_json=True`` must be safe to read).
    ``ImportError`` (naming the extra to install) if the format's library is missing.

    >>> get_codec("json").dumps((1, 2))
    b'{\\n    "py/tuple": [\\n        1,\\n        2\\n    ]\\n}'
    >>> get_codec("json", safe_json=True).dumps((1, 2))
    b'{"$py": "tuple", "v": [1, 2]}\\n'
    """
    if not isinstance(serialization_format, str):
        raise TypeError(f"serialization_format must be a str, not {type_name(type(serialization_format))}")
    if not serialization_format:
        raise ValueError("serialization_format must not be empty")
    if safe_json and serialization_format == "json":
        return SafeJsonCodec()
    if safe_json and serialization_format in CODE_RUNNING_FORMATS:
        raise ValueError(
            f"safe_json=True promises that reading never runs code, but loading {serialization_format!r} runs "
            "the code stored in it: use serialization_format='json' (safe typed JSON) or a text format, "
            "or drop safe_json for a store whose writers you trust"
        )
    make = _BUILTIN_CODECS.get(serialization_format)
    return make() if make is not None else TextCodec(serialization_format)
