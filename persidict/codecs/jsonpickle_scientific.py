"""numpy and pandas values in the ``json`` format, as persidict 0.x stores them, registered on demand.

persidict 0.x registered jsonpickle's numpy and pandas extensions when it was imported, so
its json stores hold arrays, dtypes, numpy scalars, DataFrames, Series, Index, Timestamp,
Period and Interval in those extensions' tagged form (other pandas values, such as a
Categorical or a Timedelta, go through their ``__reduce__``). We register the same
handlers, but only when they are needed, so that ``import persidict`` imports neither
library: before an encode if numpy or pandas is already imported (no value of theirs
can exist otherwise), and before a decode whose payload names one of their modules.

Three readings follow what the file says where jsonpickle's own handlers do not (so
persidict 0.x, which uses them, reads these values back differently than it wrote them):

- a 0-d array, written as a bare scalar without a shape, comes back 0-d, not of shape (1,);
- an Index named ``"ab"`` comes back so named, not ``("a", "b")``;
- a DataFrame column's dtype tag: jsonpickle derives tags such as ``pd/f`` from the
  iteration order of a set of classes, so one process writes ``pd/f`` for float64 and
  another reads it as float32. We write the unambiguous long tag (``pd/f64``, ``pd/i32``,
  ``pd/u8``, which 0.x writes in processes where that type is not the first of its family),
  read a short one as the widest type of its family (every value it can hold is exact), and
  restore pandas' own dtypes (``str``, ``category``, ``boolean``) where jsonpickle's numpy
  dtypes leave the column as ``object`` or as inferred.
"""

from __future__ import annotations

import itertools
import re
import sys
import threading
from typing import Any

__all__ = ["register_for_decoding", "register_for_encoding"]

_NAMED_BY_A_TAG = {library: re.compile(rb'"py/[a-z]+":\s*"' + library.encode() + rb"[._]")
                   for library in ("pandas", "numpy")}
"""A jsonpickle tag naming an object, type, function or module of pandas, or of numpy."""

_LONG_TAG = re.compile(r"pd/([iuf])(\d+)")
_FAMILIES = {"i": "int", "u": "uint", "f": "float"}
_FAMILY_NAME = re.compile(r"(u?int|float)(\d+)")
_WIDEST = {"pd/f": "float64", "pd/i": "int64", "pd/in": "int64", "pd/u": "uint64"}
"""Short tags that name the first type of a family in the writing process; read as the widest."""

_lock = threading.Lock()
_registered: set[str] = set()


def register_for_encoding() -> None:
    """Register the handlers for whichever of numpy and pandas this process has imported."""
    if "pandas" in sys.modules:
        _register("pandas")
    elif "numpy" in sys.modules:
        _register("numpy")


def register_for_decoding(data: bytes) -> None:
    """Register the handlers a payload needs: pandas' (with numpy's) if it names pandas, else numpy's."""
    if "pandas" in _registered:  # numpy's too: nothing left to look for in the payload
        return
    for library, tag in _NAMED_BY_A_TAG.items():
        if tag.search(data):
            _register(library)
            return


def _register(library: str) -> None:
    """Register once per process (double-checked under a lock: encodes run on many threads).

    Each handler is registered once, never replaced: a thread encoding or decoding meanwhile
    sees either no handler for a type yet (it waits on the lock first) or the final one.
    """
    if library in _registered:
        return
    with _lock:
        if "numpy" not in _registered:
            _install_numpy()
            _registered.add("numpy")
        if library == "pandas" and "pandas" not in _registered:
            _install_pandas()
            _registered.add("pandas")


def _install_numpy() -> None:
    import jsonpickle.ext.numpy as stock
    import numpy as np
    from jsonpickle import handlers

    stock.register_handlers()  # ndarray, dtype, numpy scalars, datetime64: as persidict 0.x
    handlers.register(np.ndarray, _ndarray_handler(), base=True)


def _install_pandas() -> None:
    """The handlers ``jsonpickle.ext.pandas.register_handlers()`` registers (but numpy's, already
    there), with ours for DataFrame and the Index classes."""
    import jsonpickle.ext.pandas as stock
    import pandas as pd
    from jsonpickle import handlers

    for value_class, handler in (
        (pd.DataFrame, _frame_handler_class()),
        (pd.Series, stock.PandasSeriesHandler),
        (pd.Index, _index_handler_class(stock.PandasIndexHandler)),
        (pd.PeriodIndex, _index_handler_class(stock.PandasPeriodIndexHandler)),
        (pd.MultiIndex, _index_handler_class(stock.PandasMultiIndexHandler)),
        (pd.Timestamp, stock.PandasTimestampHandler),
        (pd.Period, stock.PandasPeriodHandler),
        (pd.Interval, stock.PandasIntervalHandler),
    ):
        handlers.register(value_class, handler, base=True)


def _ndarray_handler() -> Any:
    import jsonpickle.ext.numpy as stock
    import numpy as np

    class NDArrayHandler(stock.NumpyNDArrayHandlerView):  # type: ignore[misc]
        """The stock handler, except that a 0-d array (a bare scalar, no shape) stays 0-d."""

        def restore(self, data: dict[str, Any]) -> Any:
            values = data.get("values")
            if "base" in data or "shape" in data or isinstance(values, list):
                return super().restore(data)
            return np.array(values, dtype=self.restore_dtype(data))

    # The options persidict 0.x registered the stock handler with (its defaults).
    return NDArrayHandler(mode="warn", size_threshold=16)


def _index_handler_class(stock_handler: type) -> Any:
    class IndexHandler(stock_handler):  # type: ignore[misc]
        """The stock handler, except that a str name stays a str (jsonpickle makes it a tuple of its letters)."""

        def restore(self, data: dict[str, Any]) -> Any:
            index = super().restore(data)
            name = data.get("meta", {}).get("name")
            if isinstance(name, str):
                index.name = name
            return index

    return IndexHandler


def _frame_handler_class() -> Any:
    import jsonpickle.ext.pandas as stock

    class FrameHandler(stock.PandasDfHandler):  # type: ignore[misc]
        """The stock handler with dtype tags that mean the same in every process (see the module)."""

        def flatten(self, obj: Any, data: dict[str, Any]) -> Any:
            data = super().flatten(obj, data)
            codes = _rle_decode(data["meta"]["dtypes_rle"])
            names = [dtype.name for dtype in obj.dtypes]
            data["meta"]["dtypes_rle"] = _rle_encode([_long_tag(c, n) for c, n in zip(codes, names, strict=True)])
            return data

        def restore(self, obj: dict[str, Any]) -> Any:
            text, meta = self.pp.restore_pandas(obj)
            if "dtypes_rle" not in meta:  # the CSV layout of jsonpickle before 3.4
                return super().restore(obj)
            return _restore_frame(text, meta)

    return FrameHandler


def _long_tag(code: str, dtype_name: str) -> str:
    match = _FAMILY_NAME.fullmatch(dtype_name)
    return f"pd/{match[1][0]}{match[2]}" if match and code.startswith("pd/") else code


def _rle_encode(codes: list[str]) -> list[list[Any]]:
    return [[code, len(list(run))] for code, run in itertools.groupby(codes)]


def _rle_decode(runs: list[list[Any]]) -> list[str]:
    return [code for code, count in runs for _ in range(count)]


def _dtype_name(code: str) -> str:
    """The dtype a column's tag names, the same in every process (see the module)."""
    from jsonpickle.tags_pd import REVERSE_TYPE_MAP

    match = _LONG_TAG.fullmatch(code)
    if match:
        return _FAMILIES[match[1]] + match[2]
    return _WIDEST.get(code) or REVERSE_TYPE_MAP.get(code, "object")


def _restore_frame(text: str, meta: dict[str, Any]) -> Any:
    import jsonpickle
    import pandas as pd

    values = jsonpickle.decode(text, keys=True)
    labels = jsonpickle.decode(meta["columns"], keys=True)
    codes = _rle_decode(meta["dtypes_rle"])
    rows = jsonpickle.decode(meta["index"], keys=True)
    columns = [_restore_column(values[label], code) for label, code in zip(labels, codes, strict=True)]
    frame = pd.concat(columns, axis=1, ignore_index=True) if columns else pd.DataFrame(index=range(len(rows)))
    frame.columns = _labels_index(labels, meta.get("is_multicolumns"), meta.get("column_names"))
    frame.index = _labels_index(rows, meta.get("is_multiindex"), meta.get("index_names"))
    return frame


def _labels_index(labels: list[Any], multi: bool | None, names: Any) -> Any:
    import pandas as pd

    if multi:
        return pd.MultiIndex.from_tuples(labels, names=names)
    return pd.Index(labels, name=names)


def _restore_column(values: list[Any], code: str) -> Any:
    """One column: its JSON values, converted to the dtype its tag names when that dtype can hold them."""
    import jsonpickle
    import pandas as pd

    if code == "py/jp":  # items jsonpickle encoded one by one (lists, dicts, arrays in an object column)
        return pd.Series([jsonpickle.decode(item) for item in values], dtype=object)
    column = pd.Series(values)
    try:
        # pandas' names: numpy's dtypes, and its own (str, category, boolean, ...), which numpy does not know.
        dtype = pd.api.types.pandas_dtype(_dtype_name(code))
    except TypeError:
        return column  # a dtype this pandas does not know: the column as inferred, as jsonpickle leaves it
    return column.astype(dtype)
