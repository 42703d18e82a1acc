"""Reading persidict 0.x's pkl files: joblib pickles, told apart from plain pickles by their bytes.

The files are the ones the real persidict 0.309.0 wrote (``tests/data/persidict-0.309.0``):
lz4-compressed on folders, uncompressed with numpy arrays as joblib records on S3.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from persidict import FileDirDict
from persidict.codecs.legacy_pickles import INSTALL_HINT, is_legacy_pickle
from persidict.codecs.registry import get_codec

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "persidict-0.309.0"
LZ4_ARRAY = FIXTURES / "local" / "numpy_f2uv" / "int_matrix_rl42.pkl"
UNCOMPRESSED_ARRAY = FIXTURES / "s3" / "fixtures" / "numpy" / "int_matrix.pkl"


def test_the_fixtures_are_the_two_legacy_shapes() -> None:
    assert LZ4_ARRAY.read_bytes().startswith(b"\x04\x22\x4d\x18")  # an lz4 frame
    raw = UNCOMPRESSED_ARRAY.read_bytes()
    assert raw.startswith(b"\x80") and b"joblib.numpy_pickle" in raw


@pytest.mark.parametrize("path", [LZ4_ARRAY, UNCOMPRESSED_ARRAY], ids=["lz4", "uncompressed"])
def test_legacy_pickles_load_through_the_pkl_codec(path: Path) -> None:
    data = path.read_bytes()
    assert is_legacy_pickle(data)
    value = get_codec("pkl").loads(data)
    assert isinstance(value, np.ndarray) and value.dtype == np.int64 and value.ndim == 2


@pytest.mark.parametrize(
    "value", [1, "text", {"a": (1, 2)}, np.arange(3), "a string that mentions joblib.numpy_pickle"]
)
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_plain_pickles_are_not_legacy(value: object, protocol: int) -> None:
    data = pickle.dumps(value, protocol=protocol)
    if b"joblib.numpy_pickle" not in data:
        assert not is_legacy_pickle(data)
    assert repr(get_codec("pkl").loads(data)) == repr(value)


def test_a_plain_pickle_that_only_mentions_joblib_loads_without_it() -> None:
    data = pickle.dumps("joblib.numpy_pickle")
    assert is_legacy_pickle(data)
    assert _without_joblib(f"print(load_legacy_pickle({data!r}))") == "joblib.numpy_pickle"


@pytest.mark.parametrize("path", [LZ4_ARRAY, UNCOMPRESSED_ARRAY], ids=["lz4", "uncompressed"])
def test_a_missing_joblib_is_an_error_naming_the_extra(path: Path) -> None:
    out = _without_joblib(
        "try:\n"
        f"    load_legacy_pickle(open({str(path)!r}, 'rb').read())\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(type(exc).__name__, exc.name, '|', exc)\n"
    )
    assert out.startswith("ModuleNotFoundError joblib |") and INSTALL_HINT in out


def test_a_store_passes_the_missing_extra_error_through(tmp_path: Path) -> None:
    store = FileDirDict(base_dir=tmp_path, digest_len=0)
    (tmp_path / "old.pkl").write_bytes(LZ4_ARRAY.read_bytes())
    out = _without_joblib(
        "from persidict import FileDirDict\n"
        f"store = FileDirDict(base_dir={str(tmp_path)!r}, digest_len=0)\n"
        "try:\n"
        "    store['old']\n"
        "except ModuleNotFoundError as exc:\n"
        "    print('persidict[legacy]' in str(exc))\n"
    )
    assert out == "True"
    assert isinstance(store["old"], np.ndarray)  # and with joblib installed it just loads


def _without_joblib(code: str) -> str:
    """Run ``code`` in a fresh interpreter where ``import joblib`` fails; return its stdout."""
    prelude = ("import sys\nsys.modules['joblib'] = None\n"
               "from persidict.codecs.legacy_pickles import load_legacy_pickle\n")
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True)
    return result.stdout.strip()
