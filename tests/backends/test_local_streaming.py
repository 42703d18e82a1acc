"""Local folders stream big values: set serializes into the temporary file, get deserializes from the
open file (docs/big-values.md#local-folders).

The memory bounds are measured in a fresh child process: the peak resident memory (``VmHWM``,
reset through ``/proc/self/clear_refs`` just before the operation) beyond what the process held
before, less the value itself for a get.  Bounds, never times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from persidict import FileDirDict
from persidict.backends.local import STREAM_ABOVE
from persidict.core.layout import LAYOUT_NAME

MIB = 1 << 20

_CHILD = textwrap.dedent("""
    import gc, json, pickle, sys
    import numpy as np
    from persidict import FileDirDict

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    folder, operation, kind, mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    def make(mib):
        count = mib * (1 << 20) // 8
        if kind == "array":
            return np.arange(count, dtype=np.float64)
        import pandas as pd
        half = np.arange(count // 2, dtype=np.float64)
        return pd.DataFrame({"a": half, "b": half * 2})

    def size(value):
        return int(value.memory_usage(deep=True).sum()) if kind == "DataFrame" else value.nbytes

    d = FileDirDict(base_dir=folder, fsync=False)
    pickle.loads(pickle.dumps(make(1), protocol=5))  # imports what unpickling the value needs
    value = make(mib) if operation == "set" else None
    gc.collect()
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    if operation == "set":
        d["big"] = value
    else:
        value = d["big"]
    extra = status("VmHWM") - before - (size(value) if operation == "get" else 0)
    print(json.dumps({"extra": extra, "size": size(value), "sum": float(np.asarray(value).sum())}))
""")


def _in_child(folder: str, operation: str, kind: str, mib: int) -> dict[str, float]:
    completed = subprocess.run([sys.executable, "-c", _CHILD, folder, operation, kind, str(mib)],
                               capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("kind", ["array", "DataFrame"])
def test_a_big_value_is_set_and_got_without_a_copy_in_memory(tmp_path, kind):
    """64 MiB: set and get each peak below a quarter of the value beyond it (they held one whole copy more)."""
    if kind == "DataFrame":
        pytest.importorskip("pandas")
    folder = str(tmp_path / "store")
    written = _in_child(folder, "set", kind, 64)
    read = _in_child(folder, "get", kind, 64)
    assert written["size"] >= 64 * MIB
    assert written["extra"] <= 0.25 * written["size"], written
    assert read["extra"] <= 0.25 * read["size"], read
    assert read["sum"] == written["sum"]


def test_a_streamed_value_reads_back_with_the_etag_of_its_file(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    value = np.arange(STREAM_ABOVE // 4, dtype=np.float64)  # 2 MiB: above the streaming threshold
    d["k"] = value
    got = d.get_with_etag("k")
    assert np.array_equal(got.new_value, value)
    st = os.stat(d.key_to_path("k"))
    assert got.actual_etag == d.etag("k") == f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def test_a_value_that_fails_half_way_leaves_the_previous_value_and_no_temporary_file(tmp_path):
    """pickle writes the array into the temporary file before it meets the lambda: the file goes, the
    TypeError comes, the old value stays (and a refused first write records no layout)."""
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    with pytest.raises(TypeError):
        d["k"] = [np.zeros(STREAM_ABOVE), lambda: None]
    assert os.listdir(tmp_path) == []  # nothing: no value, no temporary file, no layout record
    d["k"] = "previous"
    etag = d.etag("k")
    with pytest.raises(TypeError):
        d["k"] = [np.zeros(STREAM_ABOVE), lambda: None]
    assert d["k"] == "previous"
    assert d.etag("k") == etag
    assert sorted(os.listdir(tmp_path)) == sorted([LAYOUT_NAME, os.path.basename(d.key_to_path("k"))])


def test_a_long_text_with_a_lone_surrogate_is_refused_and_nothing_is_stored(tmp_path):
    d = FileDirDict(base_dir=str(tmp_path), serialization_format="txt", base_class_for_values=str)
    d["t"] = "é" * (STREAM_ABOVE + 7)
    assert d["t"] == "é" * (STREAM_ABOVE + 7)
    with pytest.raises(TypeError):
        d["t"] = "a" * (3 * STREAM_ABOVE) + "\ud800"
    assert d["t"] == "é" * (STREAM_ABOVE + 7)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".__tmp__")]


@pytest.mark.parametrize("fmt", ["pkl", "dill", "npy"])
def test_big_values_round_trip_in_every_binary_format(tmp_path, fmt):
    pytest.importorskip("dill")
    d = FileDirDict(base_dir=str(tmp_path), serialization_format=fmt, fsync=False)
    value = np.arange(3 * STREAM_ABOVE // 8, dtype=np.int64).reshape(3, -1)[:, ::2]  # not contiguous
    d["v"] = value
    assert np.array_equal(d["v"], value)
    assert d["v"].dtype == value.dtype


@pytest.mark.parametrize("compress", [0, ("lz4", 3)])
def test_a_big_joblib_pickle_of_persidict_0x_is_still_read(tmp_path, compress):
    """0.x wrote pkl values with joblib; one above the streaming threshold is recognised in the open file
    (compressed: by its first bytes; uncompressed: by its first reference to joblib's array records)."""
    joblib = pytest.importorskip("joblib")
    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    d["old"] = 0
    value = {"array": np.random.default_rng(1).random(STREAM_ABOVE // 4), "name": "x"}
    path = d.key_to_path("old")
    joblib.dump(value, path, compress=compress)
    assert os.path.getsize(path) >= STREAM_ABOVE
    got = d["old"]
    assert got["name"] == "x" and np.array_equal(got["array"], value["array"])


def test_garbage_above_the_threshold_is_a_decode_error_naming_the_key(tmp_path):
    from persidict import BackendError

    d = FileDirDict(base_dir=str(tmp_path), fsync=False)
    d["k"] = 0
    with open(d.key_to_path("k"), "wb") as file:
        file.write(b"\x80\x05" + b"\xff" * STREAM_ABOVE)
    with pytest.raises(BackendError) as info:
        d["k"]
    assert info.value.operation == "decode"
    assert "'k'" in str(info.value)
