"""memoize keys data arguments by content: numpy, pandas, pyarrow and polars objects.

Equal content built differently shares a key; any difference in a value, a
dtype, a label or the shape gives another; and the key is the same in every
process, whatever ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from persidict import LocalDict
from persidict.pipelines.memoize import memoize

REPO = Path(__file__).resolve().parents[2]
WAIT = 300


def _probe(data: Any) -> None:
    """Only its keys are used."""


def key_of(data: Any) -> str:
    return memoize(LocalDict())(_probe).key(data)[-1]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [1, 2, 3],
            "x": [0.5, np.nan, -0.0],
            "s": ["a", None, "ccc"],
            "o": pd.Series(["u", "v", "w"], dtype=object),
            "c": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"]),
            "t": pd.to_datetime(["2024-01-01", "2024-06-01", None]).tz_localize("UTC"),
            "m": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index([10, 20, 30], name="id"),
    )


EQUAL_PAIRS = {
    "the same frame twice": (frame, frame),
    "a copy": (frame, lambda: frame().copy(deep=True)),
    "a RangeIndex and the same integers": (
        lambda: pd.DataFrame({"a": [1.0, 2.0]}),
        lambda: pd.DataFrame({"a": [1.0, 2.0]}, index=pd.Index(np.arange(2, dtype=np.int64))),
    ),
    "a slice and a fresh frame": (
        lambda: pd.DataFrame({"a": np.arange(10)}).iloc[5:].reset_index(drop=True),
        lambda: pd.DataFrame({"a": np.arange(5, 10)}),
    ),
    "a Fortran-ordered array": (
        lambda: np.arange(6).reshape(2, 3), lambda: np.asfortranarray(np.arange(6).reshape(2, 3))
    ),
    "one Arrow chunk or two": (
        lambda: pa.chunked_array([["a", None, "b", "c"]]),
        lambda: pa.chunked_array([["a", None], ["b", "c"]]),
    ),
    "an Arrow slice and a fresh array": (lambda: pa.array([0, 1, None, 3, 4]).slice(2), lambda: pa.array([None, 3, 4])),
    "a sliced Arrow string array": (lambda: pa.array(["x", "yy", "zzz"]).slice(1), lambda: pa.array(["yy", "zzz"])),
    "polars frames": (lambda: pl.DataFrame({"a": [1, 2], "s": ["x", None]}),
                      lambda: pl.DataFrame({"a": [1, 2], "s": ["x", None]})),
}


@pytest.mark.parametrize("make", EQUAL_PAIRS.values(), ids=list(EQUAL_PAIRS))
def test_equal_content_built_differently_shares_a_key(make: tuple[Any, Any]) -> None:
    assert key_of(make[0]()) == key_of(make[1]())


DIFFERENT_PAIRS = {
    "one value": (frame, lambda: frame().assign(n=[1, 2, 4])),
    "a missing value": (frame, lambda: frame().assign(x=[0.5, 1.0, -0.0])),
    "-0.0 and 0.0": (frame, lambda: frame().assign(x=[0.5, np.nan, 0.0])),
    "a dtype": (frame, lambda: frame().astype({"n": "int32"})),
    "a column name": (frame, lambda: frame().rename(columns={"n": "N"})),
    "the column order": (frame, lambda: frame()[["x", "n", "s", "o", "c", "t", "m"]]),
    "an index name": (frame, lambda: frame().rename_axis("key")),
    "index values": (frame, lambda: frame().set_axis([10, 20, 31])),
    "the category order": (frame, lambda: frame().assign(c=pd.Categorical(["lo", "hi", "lo"],
                                                                            categories=["hi", "lo"]))),
    "the time zone": (frame, lambda: frame().assign(t=frame()["t"].dt.tz_convert("Europe/Paris"))),
    "a string": (frame, lambda: frame().assign(o=pd.Series(["u", "v", "W"], dtype=object, index=frame().index))),
    "a Series name": (lambda: pd.Series([1, 2], name="a"), lambda: pd.Series([1, 2], name="b")),
    "a Series and its frame": (lambda: pd.Series([1, 2], name="a"), lambda: pd.DataFrame({"a": [1, 2]})),
    "the shape of an array": (lambda: np.arange(6).reshape(2, 3), lambda: np.arange(6).reshape(3, 2)),
    "an Arrow null": (lambda: pa.array([1, None, 3]), lambda: pa.array([1, 0, 3])),
    "an Arrow type": (lambda: pa.array([1, 2], pa.int64()), lambda: pa.array([1, 2], pa.int32())),
    "an Arrow table's column": (lambda: pa.table({"a": [1, 2]}), lambda: pa.table({"b": [1, 2]})),
    "a polars value": (lambda: pl.DataFrame({"a": [1, 2]}), lambda: pl.DataFrame({"a": [1, 3]})),
    "polars and Arrow": (lambda: pl.DataFrame({"a": [1, 2]}), lambda: pa.table({"a": [1, 2]})),
    "strings split differently": (
        lambda: np.array(["ab", "c"], dtype=object), lambda: np.array(["a", "bc"], dtype=object)
    ),
}


@pytest.mark.parametrize("make", DIFFERENT_PAIRS.values(), ids=list(DIFFERENT_PAIRS))
def test_any_difference_in_content_dtype_or_labels_gives_another_key(make: tuple[Any, Any]) -> None:
    assert key_of(make[0]()) != key_of(make[1]())


def test_a_lazy_frame_is_refused_with_what_to_pass_instead() -> None:
    with pytest.raises(TypeError, match=r"argument 'data'.*LazyFrame.*collect\(\)"):
        key_of(pl.DataFrame({"a": [1]}).lazy())


def test_an_argument_without_encoding_names_ignore_and_key() -> None:
    def fit(data: Any, connection: Any, verbose: bool = False) -> int:
        return len(data)

    with pytest.raises(TypeError) as caught:
        memoize(LocalDict(), name="fit")(fit)([1, 2], object())
    message = str(caught.value)
    assert "argument 'connection' of " in message and "ignore=('connection',)" in message and "key=" in message


def test_ignore_leaves_arguments_out_of_the_key() -> None:
    def fit(data: Any, verbose: bool = False, n_jobs: int = 1, **options: Any) -> int:
        return len(data)

    f = memoize(LocalDict(), name="fit", ignore=("verbose", "n_jobs", "log"))(fit)
    assert f.key([1], verbose=True, n_jobs=8, log=print) == f.key([1])
    assert f.key([1], alpha=2) != f.key([1])
    with pytest.raises(ValueError, match="not parameters"):
        memoize(LocalDict(), name="g", ignore=("verbos",))(lambda data, verbose=False: data)


def test_a_key_function_maps_unkeyable_arguments_to_something_keyable() -> None:
    class Model:
        def __init__(self, name: str) -> None:
            self.name = name

    def predict(model: Model, x: float) -> str:
        return f"{model.name}({x})"

    f = memoize(LocalDict(), name="predict", key=lambda model, x: (model.name, x))(predict)
    assert f(Model("a"), 1.0) == "a(1.0)"
    assert f.call_with_info(Model("a"), 1.0).computed is False
    assert f(Model("b"), 1.0) == "b(1.0)"
    with pytest.raises(TypeError):
        f(Model("a"))  # type: ignore[call-arg]


def test_a_memoized_function_of_a_frame_computes_once() -> None:
    runs = []

    def total(data: pd.DataFrame) -> float:
        runs.append(1)
        return float(data["x"].sum())

    f = memoize(LocalDict(), name="total")(total)
    assert f(frame()) == f(frame().copy()) == 0.5
    assert len(runs) == 1


DATAFRAME_SCRIPT = """
import numpy as np, pandas as pd
from persidict import LocalDict
from persidict.pipelines.memoize import memoize

def build():
    rng = np.random.default_rng(7)
    n = 10**6
    words = np.array([f"w{k}" for k in range(50)], dtype=object)
    return pd.DataFrame(
        {
            "i": rng.integers(0, 1000, n),
            "x": rng.random(n),
            "s": pd.array(words[rng.integers(0, 50, n)], dtype="str"),
            "o": words[rng.integers(0, 50, n)],
            "c": pd.Categorical.from_codes(rng.integers(0, 3, n), ["a", "b", "c"]),
            "m": pd.array(rng.integers(0, 9, n), dtype="Int64"),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="s", name="when"),
    )

def step(data):
    return len(data)

print(memoize(LocalDict())(step).key(build())[-1])
"""


@pytest.mark.processes
@pytest.mark.timeout(WAIT)
def test_a_million_row_frame_is_keyed_alike_in_processes_with_other_hash_seeds(tmp_path: Path) -> None:
    script = tmp_path / "frame_key.py"
    script.write_text(DATAFRAME_SCRIPT)
    keys = set()
    for seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        run = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                             timeout=WAIT, check=True)
        keys.add(run.stdout.strip())
    assert len(keys) == 1 and len(keys.pop()) == 64
