"""The parquet and npy formats (docs/concepts.md#formats): files other tools read directly.

The contract suite runs every store test on a parquet and an npy kind; here are what the
formats themselves promise: the values that come back exactly, the files pandas, polars,
pyarrow and numpy read straight from ``key_to_path`` and ``key_to_url`` (S3 on the session's
moto server too), the values refused before anything is written, loading that runs no
code, and the extras named when a library is missing.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from persidict import FileDirDict, FsspecDict, LocalDict
from persidict.codecs.registry import formats_for_any_value, get_codec, is_text_format, values_held

FRAMES = {
    "numbers": pd.DataFrame({"i": [1, 2, 3], "f": [0.5, np.nan, -1.25], "small": np.array([1, 2, 3], np.int8)}),
    "text_and_bool": pd.DataFrame({"s": ["a", None, "ü"], "b": [True, False, True]}),
    "named_index": pd.DataFrame({"v": [1.5, 2.5]}, index=pd.Index(["r1", "r2"], name="row")),
    "multiindex": pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])),
    "times": pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="Europe/Paris"),
                           "d": pd.to_timedelta([1, 2, 3], unit="s")}),
    "category": pd.DataFrame({"c": pd.Categorical(["x", "y", "x"], categories=["y", "x"], ordered=True)}),
    "int_column_names": pd.DataFrame({1: [1], 2: [2]}),
    "empty": pd.DataFrame({"a": pd.Series([], dtype="float64")}),
    "range_index_from_5": pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(5, 7)),
}

ARRAYS = {
    "float64": np.linspace(0, 1, 12).reshape(3, 4),
    "int8": np.arange(-5, 5, dtype=np.int8),
    "bool": np.array([[True], [False]]),
    "complex": np.array([1 + 2j, -3j]),
    "unicode": np.array(["a", "bc", "déf"]),
    "datetime": np.array(["2024-02-29T12:00"], dtype="datetime64[m]"),
    "zero_d": np.array(3.5),
    "empty": np.zeros((0, 3)),
    "big_endian": np.arange(4, dtype=">u4"),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "strided": np.arange(20).reshape(4, 5)[:, ::2],
    "structured": np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
}


@pytest.fixture
def frames(tmp_path: Any) -> FileDirDict:
    return FileDirDict(base_dir=str(tmp_path / "frames"), serialization_format="parquet")


@pytest.fixture
def arrays(tmp_path: Any) -> FileDirDict:
    return FileDirDict(base_dir=str(tmp_path / "arrays"), serialization_format="npy")


def test_the_registry_says_what_each_format_holds() -> None:
    assert values_held("parquet") == "pandas.DataFrame, polars.DataFrame or pyarrow.Table"
    assert values_held("npy") == "numpy.ndarray"
    assert values_held("txt") == values_held("md") == "str"
    assert formats_for_any_value() == ("pkl", "json", "dill")
    assert not is_text_format("parquet") and not is_text_format("npy")


def test_neither_format_needs_a_base_class_and_a_text_format_still_does(tmp_path: Any) -> None:
    FileDirDict(base_dir=str(tmp_path), serialization_format="parquet")
    FileDirDict(base_dir=str(tmp_path), serialization_format="npy")
    with pytest.raises(ValueError, match=r"needs a str base_class_for_values.*\('pkl', 'json', 'dill'\)"):
        FileDirDict(base_dir=str(tmp_path), serialization_format="csv")


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_a_pandas_frame_comes_back_exactly_and_pandas_reads_the_file(frames: FileDirDict, name: str) -> None:
    frames[name] = FRAMES[name]
    pd.testing.assert_frame_equal(frames[name], FRAMES[name], check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(frames.key_to_path(name)), FRAMES[name], check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(frames.key_to_url(name)), FRAMES[name], check_exact=True)


def test_polars_and_arrow_values_come_back_as_their_own_types(frames: FileDirDict) -> None:
    polars_frame = pl.DataFrame({"a": [1, 2], "s": ["x", None]})
    table = pa.table({"a": [1.5, 2.5]}).replace_schema_metadata({"origin": "mine"})
    frames["polars"], frames["arrow"] = polars_frame, table
    assert type(frames["polars"]) is pl.DataFrame and frames["polars"].equals(polars_frame)
    back = frames["arrow"]
    assert type(back) is pa.Table and back.equals(table)
    assert back.schema.metadata == {b"origin": b"mine"}  # the user's metadata, without ours
    assert pl.read_parquet(frames.key_to_path("polars")).equals(polars_frame)
    assert pq.read_table(frames.key_to_path("arrow")).column("a").to_pylist() == [1.5, 2.5]


def test_a_parquet_file_another_tool_wrote_into_the_store_reads_as_a_pandas_frame(frames: FileDirDict) -> None:
    frames["placeholder"] = FRAMES["numbers"]  # a key whose file another tool then overwrites
    pl.DataFrame({"z": [7, 8]}).write_parquet(frames.key_to_path("placeholder"))
    back = frames["placeholder"]
    assert type(back) is pd.DataFrame and back["z"].tolist() == [7, 8]


@pytest.mark.parametrize("value", [{"a": [1]}, [1, 2], pd.Series([1]), np.arange(3), None,
                                   pd.DataFrame({"mixed": [1, "a"]}), pd.DataFrame({"o": [object()]})],
                         ids=["dict", "list", "series", "ndarray", "none", "mixed-column", "object-column"])
def test_parquet_refuses_other_values_before_writing(frames: FileDirDict, value: Any) -> None:
    frames["k"] = FRAMES["numbers"]
    before = frames.etag("k")
    with pytest.raises(TypeError, match="parquet"):
        frames["k"] = value
    with pytest.raises(TypeError, match="parquet"):
        frames["new"] = value
    assert frames.etag("k") == before and "new" not in frames


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_an_array_comes_back_exactly_and_numpy_maps_the_file(arrays: FileDirDict, name: str) -> None:
    value = ARRAYS[name]
    arrays[name] = value
    back = arrays[name]
    assert type(back) is np.ndarray and back.dtype == value.dtype and back.shape == value.shape
    assert np.array_equal(back, value)
    mapped = np.load(arrays.key_to_path(name), mmap_mode="r", allow_pickle=False)
    assert mapped.dtype == value.dtype and np.array_equal(mapped, value)


def test_a_memmap_is_stored_as_its_values(arrays: FileDirDict, tmp_path: Any) -> None:
    arrays["source"] = np.arange(5.0)
    arrays["copy"] = np.load(arrays.key_to_path("source"), mmap_mode="r")
    assert type(arrays["copy"]) is np.ndarray and arrays["copy"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("value", [
    np.array([1, None], dtype=object), np.array([(1, None)], dtype=[("a", "i4"), ("o", "O")]),
    np.ma.masked_array([1, 2], mask=[0, 1]), np.matrix([[1, 2]]), np.float64(1.5), [1.0],
], ids=["object", "object-field", "masked", "matrix", "numpy-scalar", "list"])
def test_npy_refuses_other_values_before_writing(arrays: FileDirDict, value: Any) -> None:
    arrays["k"] = np.arange(3)
    before = arrays.etag("k")
    with pytest.raises(TypeError, match="npy"):
        arrays["k"] = value
    with pytest.raises(TypeError, match="npy"):
        arrays["new"] = value
    assert arrays.etag("k") == before and "new" not in arrays


def test_npy_never_loads_a_pickle(arrays: FileDirDict, tmp_path: Any) -> None:
    """A file with a pickle inside (an object array saved with allow_pickle=True) is refused, and runs nothing."""
    arrays["k"] = np.arange(3)
    marker = tmp_path / "ran"
    payload = np.array([_Trap(str(marker))], dtype=object)
    with open(arrays.key_to_path("k"), "wb") as file:
        np.save(file, payload, allow_pickle=True)
    with pytest.raises(Exception, match="pickle"):
        arrays["k"]
    assert not marker.exists()
    with open(arrays.key_to_path("k"), "wb") as file:
        file.write(pickle.dumps(np.arange(3)))
    with pytest.raises(Exception, match="npy"):
        arrays["k"]


class _Trap:
    """Unpickling it creates a file: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def test_key_to_url_names_the_file_with_its_protocol(tmp_path: Any, frames: FileDirDict) -> None:
    frames["a", "b"] = FRAMES["numbers"]
    assert frames.key_to_url(("a", "b")) == "file://" + frames.key_to_path(("a", "b"))
    memory = LocalDict(serialization_format="npy")
    memory["k"] = np.arange(2)
    assert memory.key_to_url("k").startswith("memory://")
    assert memory.key_to_url("k").endswith("/k.npy")


def test_pandas_reads_a_parquet_store_on_s3_by_its_url(moto_s3: Any) -> None:
    moto_s3.reset()
    options = moto_s3.storage_options()
    store = FsspecDict("s3://frames-bucket/runs", storage_options=options, serialization_format="parquet")
    store["r1"] = FRAMES["named_index"]
    url = store.key_to_url("r1")
    assert url == "s3://frames-bucket/runs/r1.parquet"
    s3fs_options = {"key": options["key"], "secret": options["secret"],
                    "client_kwargs": {"endpoint_url": options["endpoint_url"]}}
    pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=s3fs_options), FRAMES["named_index"])


@pytest.mark.parametrize(("fmt", "blocked", "extra"), [("parquet", "pyarrow", "frames"), ("npy", "numpy", "numpy")])
def test_a_missing_library_is_an_import_error_naming_the_extra(fmt: str, blocked: str, extra: str) -> None:
    """In a fresh interpreter where the library cannot be imported (its module set to None)."""
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"
            "import persidict\n"
            "try:\n"
            f"    persidict.LocalDict(serialization_format={fmt!r})\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == f'the "{fmt}" format needs {blocked}: pip install "persidict[{extra}]"'


def test_the_libraries_are_imported_when_a_store_opens_not_before() -> None:
    code = ("import sys, persidict\n"
            "before = [m for m in ('numpy', 'pyarrow') if m in sys.modules]\n"
            "persidict.LocalDict(serialization_format='parquet')\n"
            "print(before, [m for m in ('numpy', 'pyarrow', 'polars') if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[] ['numpy', 'pyarrow']"


def test_the_codecs_refuse_bytes_of_another_format() -> None:
    with pytest.raises(ValueError, match="Parquet"):
        get_codec("parquet").loads(b"\x93NUMPY...")
    with pytest.raises(ValueError, match="npy"):
        get_codec("npy").loads(b"PAR1...")
