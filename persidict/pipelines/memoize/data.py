"""Canonical encodings of data arguments: numpy arrays, pandas, pyarrow and polars objects.

Each is keyed by what it holds, the same in every process and under any hash
seed: its type, dtype (per column), shape, labels (index, column names) and
the bytes of its values.  Value buffers are hashed in place (``buffer_digest``),
never pickled: two equal DataFrames built differently (a ``RangeIndex`` or
the same integers materialized, one chunk or several, a slice or a copy)
share a key, and any difference in a value, a dtype or a label gives another.

No library is imported here to recognise a type: the value's own module
(``type(value).__module__``) says which library made it, and that library is
then already in ``sys.modules``.  ``encode_data`` returns None for anything
it does not handle.

Exact paths, by kind of column:

* numeric, boolean and temporal numpy data: the contiguous bytes;
* object columns of strings: their code-point lengths and their UTF-8 text
  (C-speed ``join``), other objects element by element (exact, slower);
* pandas nullable and categorical columns: the mask plus the filled values,
  the codes plus the categories;
* Arrow data (pyarrow, polars, pandas' Arrow-backed columns): the validity
  mask plus the value buffers with nulls zeroed (strings: lengths and bytes);
  nested Arrow types element by element.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .canonical import Undigestible, buffer_digest, frame, integer, text

__all__ = ["encode_data"]

Encoder = Callable[[Any], bytes]


def encode_data(value: Any, encode: Encoder) -> bytes | None:
    """The canonical encoding of a data object of a library we know, or None (``encode`` does the elements)."""
    handler = _HANDLERS.get(type(value).__module__.partition(".")[0])
    return None if handler is None else handler(value, encode)


# --- numpy ----------------------------------------------------------------------------------


def _flat_bytes(array: Any) -> Any:
    """A C-contiguous array's bytes as a flat uint8 view (copied only if the array is not contiguous)."""
    np = sys.modules["numpy"]
    contiguous = np.ascontiguousarray(array)
    return contiguous.reshape(-1).view(np.uint8)


def _ndarray(array: Any, encode: Encoder) -> bytes:
    """dtype (with byte order and fields), shape, then the bytes, or the elements if they are objects."""
    header = text(str(array.dtype.descr)) + text(",".join(map(str, array.shape)))
    if array.dtype.hasobject:  # the bytes would be pointers: encode the elements
        return frame(b"X", header + _objects(array.reshape(-1), encode))
    return frame(b"X", header + buffer_digest(_flat_bytes(array)))


def _objects(values: Any, encode: Encoder) -> bytes:
    """A 1-D sequence of Python objects: strings at C speed, anything else element by element."""
    items = list(values)
    strings = [item if type(item) is str else "" for item in items]
    others = [(index, item) for index, item in enumerate(items) if type(item) is not str]
    if len(others) > len(items) // 2:
        return frame(b"o", _in_list(items, encode))
    np = sys.modules["numpy"]
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    joined = "".join(strings).encode("utf-8", "surrogatepass")
    return frame(b"s", buffer_digest(lengths) + buffer_digest(joined) + _in_list(others, encode))


def _in_list(items: list[Any], encode: Encoder) -> bytes:
    """``encode(items)``, naming the position of an element that has no encoding."""
    try:
        return encode(items)
    except Undigestible as error:
        error.path.append(".values")
        raise


def _numpy(value: Any, encode: Encoder) -> bytes | None:
    np = sys.modules["numpy"]
    if type(value) is np.ndarray:
        return _ndarray(value, encode)
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        return frame(b"x", text(str(value.dtype.descr)) + frame(b"Y", value.tobytes()))
    return None


# --- pandas ---------------------------------------------------------------------------------


def _pandas_values(values: Any, encode: Encoder) -> bytes:
    """The values of a Series or Index (``.array``), whatever backs them."""
    pd, np = sys.modules["pandas"], sys.modules["numpy"]
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return _ndarray(np.asarray(values), encode)
    if isinstance(dtype, pd.CategoricalDtype):
        categories = _pandas_index(dtype.categories, encode)
        return frame(b"c", text(str(dtype.ordered)) + _ndarray(np.asarray(values.codes), encode) + categories)
    if isinstance(dtype, pd.DatetimeTZDtype):  # instants in UTC, the zone is in the dtype's text
        return frame(b"z", _ndarray(np.asarray(values.tz_convert("UTC").tz_localize(None)), encode))
    if isinstance(dtype, pd.ArrowDtype) or getattr(dtype, "storage", None) == "pyarrow":
        return frame(b"a", _arrow_array(values.__arrow_array__(), encode))  # the ChunkedArray, not a copy
    mask = np.asarray(values.isna(), dtype=bool)
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and numpy_dtype.kind in "biufcmM":  # a masked array: Int64, Float64, boolean
        filled = values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0))
        return frame(b"m", _ndarray(mask, encode) + _ndarray(filled, encode))
    return frame(b"e", _objects(np.asarray(values, dtype=object), encode))


def _pandas_index(index: Any, encode: Encoder) -> bytes:
    """An index (or the column labels): its names, dtype and values, level by level for a MultiIndex."""
    pd = sys.modules["pandas"]
    names = encode(list(index.names))
    if isinstance(index, pd.MultiIndex):
        levels = b"".join(_pandas_index(index.get_level_values(level), encode) for level in range(index.nlevels))
        return frame(b"pM", names + levels)
    return frame(b"pI", names + text(str(index.dtype)) + _pandas_values(index.array, encode))


def _pandas_column(series: Any, encode: Encoder) -> bytes:
    """One column: its dtype's text and its values (the labels are encoded by the caller)."""
    return frame(b"pC", text(str(series.dtype)) + _pandas_values(series.array, encode))


def _pandas(value: Any, encode: Encoder) -> bytes | None:
    pd = sys.modules["pandas"]
    if isinstance(value, pd.DataFrame):
        shape = integer(value.shape[0]) + integer(value.shape[1])
        labels = _pandas_index(value.columns, encode) + _pandas_index(value.index, encode)
        columns = b"".join(_pandas_column(value.iloc[:, position], encode) for position in range(value.shape[1]))
        return frame(b"pD", shape + labels + columns)
    if isinstance(value, pd.Series):
        return frame(b"pS", encode(value.name) + _pandas_index(value.index, encode) + _pandas_column(value, encode))
    if isinstance(value, pd.Index):
        return _pandas_index(value, encode)
    if isinstance(value, pd.api.extensions.ExtensionArray):
        return frame(b"pA", text(str(value.dtype)) + _pandas_values(value, encode))
    if value is pd.NA or value is pd.NaT or isinstance(value, (pd.Timestamp, pd.Timedelta, pd.Period)):
        return frame(b"pV", text(f"{type(value).__name__}:{value!r}"))
    return None


# --- Arrow (pyarrow, polars) ----------------------------------------------------------------


def _validity(array: Any, encode: Encoder) -> bytes:
    """Where the nulls are (nothing when there are none)."""
    if array.null_count == 0:
        return b""
    np = sys.modules["numpy"]
    return _ndarray(np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool), encode)


def _fixed_width(array: Any, width: int) -> Any:
    """The value bytes of a fixed-width array, one row of ``width`` bytes per element, nulls zeroed."""
    np = sys.modules["numpy"]
    start, stop = array.offset * width, (array.offset + len(array)) * width
    rows = np.frombuffer(array.buffers()[1], dtype=np.uint8)[start:stop].reshape(len(array), width)
    if array.null_count:  # the bytes under a null are unspecified
        rows = rows.copy()
        rows[np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = 0
    return rows


def _binary(array: Any) -> bytes:
    """Strings and bytes: the length of each value and their concatenated bytes (nulls as empty)."""
    pa, np = sys.modules["pyarrow"], sys.modules["numpy"]
    is_text = pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or \
        pa.types.is_string_view(array.type)
    large = pa.large_string() if is_text else pa.large_binary()
    if array.type != large:
        array = array.cast(large)
    if array.null_count:
        array = array.fill_null(pa.scalar("" if is_text else b"", large))
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    content = b"" if data is None else np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return buffer_digest(np.diff(offsets)) + buffer_digest(content)


def _arrow_array(array: Any, encode: Encoder) -> bytes:
    """An Array or ChunkedArray: its type, length, nulls and values (chunking does not matter)."""
    pa = sys.modules["pyarrow"]
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    header = text(str(array.type)) + integer(len(array)) + _validity(array, encode)
    kind = array.type
    if pa.types.is_dictionary(kind):
        return frame(b"ad", header + _arrow_array(array.dictionary_decode(), encode))
    if any(check(kind) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view,
                                     pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view)):
        return frame(b"as", header + _binary(array))
    if pa.types.is_boolean(kind):
        np = sys.modules["numpy"]
        flags = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        return frame(b"ab", header + buffer_digest(flags))
    width = getattr(kind, "bit_width", 0)
    if width and width % 8 == 0 and len(array.buffers()) == 2:
        return frame(b"af", header + buffer_digest(_fixed_width(array, width // 8)))
    return frame(b"an", header + _in_list(array.to_pylist(), encode))  # nested types: element by element


def _arrow_table(table: Any, encode: Encoder) -> bytes:
    """A Table or RecordBatch: column names and types, then each column."""
    schema = b"".join(text(field.name) + text(str(field.type)) for field in table.schema)
    columns = b"".join(_arrow_array(column, encode) for column in table.columns)
    return frame(b"aT", integer(table.num_rows) + schema + columns)


def _pyarrow(value: Any, encode: Encoder) -> bytes | None:
    pa = sys.modules["pyarrow"]
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return _arrow_table(value, encode)
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return _arrow_array(value, encode)
    if isinstance(value, pa.Scalar):
        return frame(b"aS", text(str(value.type)) + _in_list([value.as_py()], encode))
    return None


def _polars(value: Any, encode: Encoder) -> bytes | None:
    """Frames and Series through Arrow (the oldest Arrow types: plain strings, not string views)."""
    pl = sys.modules["polars"]
    if isinstance(value, pl.DataFrame):
        schema = b"".join(text(name) + text(str(dtype)) for name, dtype in value.schema.items())
        table = value.to_arrow(compat_level=pl.CompatLevel.oldest())
        return frame(b"lD", schema + _arrow_table(table, encode))
    if isinstance(value, pl.Series):
        array = value.to_arrow(compat_level=pl.CompatLevel.oldest())
        return frame(b"lS", text(value.name) + text(str(value.dtype)) + _arrow_array(array, encode))
    if isinstance(value, pl.LazyFrame):
        raise Undigestible(value, "a LazyFrame is a query, not data: pass the collected DataFrame (.collect())")
    return None


_HANDLERS: dict[str, Callable[[Any, Encoder], bytes | None]] = {
    "numpy": _numpy,
    "pandas": _pandas,
    "pyarrow": _pyarrow,
    "polars": _polars,
}
"""Encoders by the top-level module that defines a value's type."""
