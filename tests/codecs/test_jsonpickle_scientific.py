"""numpy and pandas values in the json codec (docs/concepts.md#formats).

The handlers are jsonpickle's numpy and pandas extensions, which persidict 0.x registers;
``tests/compat/test_legacy_formats.py`` checks the files against the real 0.309.0. Here:
they register when needed (in a fresh interpreter, so nothing else registered them first),
the dtype tags of DataFrame columns mean the same in every process, and the values
jsonpickle's own handlers read back otherwise (a 0-d array, an Index's name) come back exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from persidict.codecs.registry import get_codec

from ..compat.reference import DATA_DIR

CODEC = get_codec("json")
SIZED = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]


def _run(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter (numpy and pandas not yet imported there) and return its stdout."""
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _fixture(name: str) -> bytes:
    return (DATA_DIR / "persidict-0.309.0" / "local-digest0" / name).read_bytes()


@pytest.mark.parametrize(("name", "expected_type", "imported"), [
    ("numpy/int_matrix.json", "ndarray", ["numpy"]),
    ("pandas/series.json", "Series", ["numpy", "pandas"]),
    ("pandas/timedelta.json", "Timedelta", ["numpy", "pandas"]),  # a py/reduce naming pandas
])
def test_a_payload_naming_numpy_or_pandas_registers_their_handlers(name: str, expected_type: str,
                                                                   imported: list[str]) -> None:
    code = ("import sys, pathlib\nfrom persidict.codecs.registry import get_codec\n"
            "value = get_codec('json').loads(pathlib.Path(sys.argv[1]).read_bytes())\n"
            "print(type(value).__name__, [m for m in ('numpy', 'pandas') if m in sys.modules])\n")
    path = DATA_DIR / "persidict-0.309.0" / "local-digest0" / name
    assert _run(code, str(path)).strip() == f"{expected_type} {imported}"


def test_an_encode_registers_the_handlers_of_the_libraries_the_process_imported() -> None:
    code = ("import numpy, pandas\nfrom persidict.codecs.registry import get_codec\n"
            "print(get_codec('json').dumps([numpy.arange(2), pandas.Timestamp(0)]).decode())\n")
    payload = json.loads(_run(code))
    assert [item["py/object"] for item in payload] == ["numpy.ndarray", "pandas.Timestamp"]


def test_threads_decoding_at_once_in_a_fresh_process_all_get_the_values() -> None:
    """Registration happens once, under a lock: no thread decodes with half of the handlers."""
    code = ("import pathlib, sys, threading\nfrom persidict.codecs.registry import get_codec\n"
            "data = pathlib.Path(sys.argv[1]).read_bytes(); barrier = threading.Barrier(8); out = []\n"
            "def work():\n    barrier.wait(); out.append(type(get_codec('json').loads(data)).__name__)\n"
            "threads = [threading.Thread(target=work) for _ in range(8)]\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\nprint(sorted(set(out)), len(out))\n")
    path = DATA_DIR / "persidict-0.309.0" / "local-digest0" / "pandas" / "multiindex_frame.json"
    assert _run(code, str(path)).strip() == "['DataFrame'] 8"


def _sized_frame() -> pd.DataFrame:
    return pd.DataFrame({name: np.array([0, 1, 100], dtype=name) for name in SIZED})


def _tags(payload: bytes) -> list[str]:
    return [tag for tag, count in json.loads(payload)["meta"]["dtypes_rle"] for _ in range(count)]


def test_frame_columns_are_tagged_with_the_long_tag_of_their_dtype() -> None:
    # jsonpickle's own tags give the first type of each family the short tag (pd/f, pd/i, pd/u).
    assert _tags(CODEC.dumps(_sized_frame())) == [
        "pd/i8", "pd/i16", "pd/i32", "pd/i64", "pd/u8", "pd/u16", "pd/u32", "pd/u64", "pd/f32", "pd/f64"]


def test_a_frame_of_every_sized_dtype_round_trips_in_another_process() -> None:
    code = ("import sys, json\nfrom persidict.codecs.registry import get_codec\n"
            "frame = get_codec('json').loads(sys.stdin.buffer.read())\n"
            "print(json.dumps([str(t) for t in frame.dtypes]), json.dumps(frame.to_numpy().tolist()))\n")
    result = subprocess.run([sys.executable, "-c", code], input=CODEC.dumps(_sized_frame()), capture_output=True,
                            check=True, timeout=120)
    dtypes, values = result.stdout.decode().splitlines()[0].split("] ", 1)
    assert json.loads(dtypes + "]") == SIZED
    assert json.loads(values) == _sized_frame().to_numpy().tolist()


@pytest.mark.parametrize(("short", "widest"), [("pd/f", "float64"), ("pd/i", "int64"), ("pd/in", "int64"),
                                               ("pd/u", "uint64")])
def test_a_short_tag_reads_as_the_widest_type_of_its_family(short: str, widest: str) -> None:
    """0.x wrote ``pd/f`` for whichever float type its process listed first: float64 holds either exactly."""
    payload = json.loads(CODEC.dumps(pd.DataFrame({"c": [0, 1, 2**31 + 0.5 if short == "pd/f" else 2**31]})))
    payload["meta"]["dtypes_rle"] = [[short, 1]]
    column = CODEC.loads(json.dumps(payload).encode())["c"]
    assert str(column.dtype) == widest
    assert column.tolist() == [0, 1, 2**31 + 0.5 if short == "pd/f" else 2**31]


def test_pandas_own_column_dtypes_round_trip() -> None:
    frame = pd.DataFrame({"s": pd.Series(["a", "b", None], dtype="str"), "c": pd.Categorical(["x", "y", "x"]),
                          "b": pd.array([True, None, False], dtype="boolean"), "o": [[1], {"k": 2}, (3,)]})
    back = CODEC.loads(CODEC.dumps(frame))
    assert [str(t) for t in back.dtypes] == ["str", "category", "boolean", "object"]
    pd.testing.assert_frame_equal(back, frame, check_index_type=False)


@pytest.mark.parametrize("value", [np.array(3.5), np.array(7, dtype=np.int16), np.array(True), np.array("text"),
                                   np.array(2.5, dtype=np.float32)], ids=repr)
def test_a_zero_d_array_stays_zero_d(value: np.ndarray[Any, Any]) -> None:
    back = CODEC.loads(CODEC.dumps(value))
    assert (back.shape, back.dtype, back.item()) == ((), value.dtype, value.item())


@pytest.mark.parametrize("value", [np.array([3.5]), np.arange(20.0)[3:4], np.array([], dtype=np.int8)], ids=repr)
def test_one_element_and_empty_arrays_keep_their_shape(value: np.ndarray[Any, Any]) -> None:
    back = CODEC.loads(CODEC.dumps(value))
    assert (back.shape, back.dtype, back.tolist()) == (value.shape, value.dtype, value.tolist())


@pytest.mark.parametrize("index", [pd.Index([1, 2], name="ids"), pd.Index(["a"], name=("two", "parts")),
                                   pd.Index([1.5]), pd.period_range("2024-01", periods=2, freq="M", name="month"),
                                   pd.MultiIndex.from_tuples([("a", 1)], names=["letter", "n"])], ids=repr)
def test_an_index_keeps_its_name(index: pd.Index) -> None:
    back = CODEC.loads(CODEC.dumps(index))
    pd.testing.assert_index_equal(back, index, exact=True)
    assert back.names == index.names


def test_an_object_array_with_values_json_cannot_hold_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        CODEC.dumps(np.array([object()] * 20, dtype=object))
