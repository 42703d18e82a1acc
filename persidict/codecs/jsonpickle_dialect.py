"""The default ``json`` codec: the jsonpickle dialect that persidict 0.x writes and reads.

The bytes are ``jsonpickle.encode(value, indent=4)`` exactly, so stores are
shared with persidict 0.x in both directions.  The dialect holds arbitrary
objects (exceptions and their types, namedtuples, your own classes) as tagged
JSON, and loading rebuilds them: as with pickle, open only json stores you
trust, or open them with ``safe_json=True``.  As in 0.x, dict keys that are
not strings come back as strings.

Where jsonpickle would silently write less than it was given, this codec
raises ``TypeError`` instead (persidict 0.x lost the data): a ``bytearray``
(written without its content), a dict key in jsonpickle's own namespace such as
``"py/tuple"`` (dropped, or read back as a tag), and a lambda or nested function
as a dict value or attribute (dropped).  jsonpickle is imported on first use.

numpy arrays, dtypes and scalars and pandas DataFrames, Series, Index, Timestamp, Period
and Interval are written in the tagged form of jsonpickle's numpy and pandas extensions,
as persidict 0.x writes them; the handlers are registered when a value or a payload needs
them (``jsonpickle_scientific``), so that importing persidict imports neither library.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .jsonpickle_scientific import register_for_decoding, register_for_encoding
from .names import ANY_VALUE, type_name

__all__ = ["JsonPickleCodec"]

_TAG_PREFIX = "py/"
"""jsonpickle's namespace: a dict key in it is dropped or read back as something else."""

_EMPTIED_BYTEARRAY = '"py/object": "builtins.bytearray"'
"""How jsonpickle writes a bytearray: no content.  Only its own structure can produce
this text; inside a JSON string the quotes would be escaped."""


@functools.cache
def _strict_pickler_class() -> Any:
    """A jsonpickle Pickler that refuses the dict entries jsonpickle would drop."""
    import jsonpickle
    from jsonpickle import util

    class StrictPickler(jsonpickle.Pickler):  # type: ignore[misc]
        def _flatten_key_value_pair(self, k: Any, v: Any, data: Any) -> Any:
            if isinstance(k, str) and k.startswith(_TAG_PREFIX):
                raise TypeError(f"json (jsonpickle) cannot store the dict key {k!r}: it would be read as a tag")
            if not util.is_picklable(k, v):
                raise TypeError(f"json (jsonpickle) would drop the entry {k!r}: it holds a function it cannot name")
            return super()._flatten_key_value_pair(k, v, data)

    return StrictPickler



class JsonPickleCodec:
    """The ``json`` format: jsonpickle, indented by 4, as persidict 0.x writes it."""

    format_name = "json"
    content_type = "application/json"
    holds = ANY_VALUE

    def dumps(self, value: object, /) -> bytes:
        """Encode ``value``; ``TypeError`` if jsonpickle cannot, or would lose part of it."""
        import jsonpickle

        register_for_encoding()
        # A fresh Pickler per call (it keeps per-call state); keys=False is 0.x's dialect,
        # set explicitly so that jsonpickle does not warn that its default will change.
        pickler = _strict_pickler_class()(keys=False)
        try:
            text: str = jsonpickle.encode(value, indent=4, context=pickler)
        except TypeError:
            raise
        except Exception as exc:  # jsonpickle raises whatever the object's own hooks raise
            raise TypeError(f"json cannot store a value of type {type_name(type(value))}: {exc}") from exc
        if _EMPTIED_BYTEARRAY in text:
            raise TypeError("json (jsonpickle) would store a bytearray empty: store bytes, or use pkl")
        # jsonpickle's JSON is ASCII unless its encoder options were changed globally;
        # then a lone surrogate (no UTF-8 form, and only ever inside a JSON string)
        # is kept exactly by the \uXXXX escape that backslashreplace writes.
        return text.encode("utf-8", "backslashreplace")

    def loads(self, data: bytes, /) -> object:
        """Rebuild a value from jsonpickle JSON (written by this codec or by persidict 0.x)."""
        import jsonpickle

        register_for_decoding(data)
        # Parsed by the stdlib, not jsonpickle's backend chain: that falls back to YAML
        # (if installed) on text that is not JSON, and warns that it will stop doing so.
        return jsonpickle.Unpickler(keys=False).restore(json.loads(str(data, "utf-8")), reset=True)
