"""The ``parquet`` format: one table per file, as Apache Parquet.

A store's files are then plain Parquet files that pandas, polars, DuckDB or Spark read
directly (``pd.read_parquet(d.key_to_url(k))``). It holds pandas DataFrames, and polars
DataFrames and pyarrow Tables too; each comes back as the type it was stored as (the
file's schema metadata says which, under ``persidict.value_type``). A Parquet file
written by another tool, without that mark, comes back as a pandas DataFrame. A pandas
frame keeps its index, column names and dtypes (pyarrow's ``pandas`` metadata). Loading
never runs code. pandas and pyarrow come from ``pip install "persidict[frames]"`` and are
imported when a store opens; polars only when a polars frame is stored or read.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from .names import type_name
from .optional import require

__all__ = ["ParquetCodec"]

_VALUE_TYPE = b"persidict.value_type"
_PANDAS, _POLARS, _ARROW = b"pandas.DataFrame", b"polars.DataFrame", b"pyarrow.Table"
_MAGIC = b"PAR1"


class ParquetCodec:
    """pandas and polars DataFrames and pyarrow Tables as Parquet bytes."""

    format_name = "parquet"
    content_type = "application/vnd.apache.parquet"
    holds = "pandas.DataFrame, polars.DataFrame or pyarrow.Table"

    def __init__(self) -> None:
        self._pa: Any = require("pyarrow", format_name="parquet", extra="frames")
        self._pq: Any = require("pyarrow.parquet", format_name="parquet", extra="frames")
        self._pd: Any = require("pandas", format_name="parquet", extra="frames")

    def dumps(self, value: object, /) -> bytes:
        """The Parquet bytes of a table; ``TypeError`` for any other value, or a column Parquet cannot hold."""
        table = self._to_table(value)
        buffer = io.BytesIO()
        self._pq.write_table(table, buffer)
        return buffer.getvalue()

    def loads(self, data: bytes, /) -> Any:
        """The value of Parquet bytes, of the type it was stored as (a pandas DataFrame if unmarked)."""
        if not data.startswith(_MAGIC):
            raise ValueError("not a Parquet file: it does not start with PAR1")
        table = self._pq.read_table(io.BytesIO(data))
        kind = (table.schema.metadata or {}).get(_VALUE_TYPE, _PANDAS)
        if kind == _ARROW:
            return table.replace_schema_metadata(_without_mark(table.schema.metadata))
        if kind == _POLARS:
            return require("polars", format_name="parquet", extra="frames").from_arrow(table)
        return table.to_pandas()

    def _to_table(self, value: object) -> Any:
        """A pyarrow Table of ``value``, its schema marked with the type to give back."""
        polars = sys.modules.get("polars")  # a polars frame exists only if polars is imported
        try:
            # Exact types: a subclass (a GeoDataFrame, ...) would come back as its base, without what it adds.
            if type(value) is self._pd.DataFrame:
                table, kind = self._pa.Table.from_pandas(value), _PANDAS
            elif type(value) is self._pa.Table:
                table, kind = value, _ARROW
            elif polars is not None and type(value) is polars.DataFrame:
                table, kind = value.to_arrow(), _POLARS  # type: ignore[attr-defined]
            else:
                raise TypeError(f"parquet stores {self.holds}, not {type_name(type(value))}")
        except (self._pa.ArrowInvalid, self._pa.ArrowNotImplementedError) as exc:
            raise TypeError(f"parquet cannot store this {type_name(type(value))}: {exc}") from exc
        return table.replace_schema_metadata({**(table.schema.metadata or {}), _VALUE_TYPE: kind})


def _without_mark(metadata: dict[bytes, bytes] | None) -> dict[bytes, bytes] | None:
    """The schema metadata the stored Table had: ours removed (None if it had none)."""
    rest = {key: value for key, value in (metadata or {}).items() if key != _VALUE_TYPE}
    return rest or None
