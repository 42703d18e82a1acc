"""Static typing: persidict's generics and annotations, as ``mypy --strict`` sees them from user code.

The package is checked the way a user's type checker sees an installed,
``py.typed`` package: its own modules are analysed for their types, but errors
inside them are not reported (``follow_imports = silent``). The files under
test, the user's code, are checked with ``--strict``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[1]
EXAMPLE = TESTS_DIR / "typing_example.py"

MYPY_CONFIG = """\
[mypy]
strict = True
python_version = 3.11
show_error_codes = True
[mypy-persidict,persidict.*]
follow_imports = silent
"""


@pytest.fixture(scope="module")
def mypy_env(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mypy")
    (workdir / "mypy.ini").write_text(MYPY_CONFIG)
    return workdir


def run_mypy(workdir: Path, *files: Path) -> tuple[int, str]:
    env = dict(os.environ, MYPYPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(workdir / "mypy.ini"),
         "--cache-dir", str(workdir / "cache"), *map(str, files)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def error_lines(output: str, file: Path) -> set[int]:
    # mypy prints paths relative to its working directory.
    pattern = re.compile(r"(?:^|[/\\])" + re.escape(file.name) + r":(\d+): error:", re.MULTILINE)
    return {int(m.group(1)) for m in pattern.finditer(output)}


def test_package_is_marked_typed():
    assert (REPO_ROOT / "persidict" / "py.typed").is_file()


def test_typed_example_passes_strict_mypy(mypy_env):
    code, output = run_mypy(mypy_env, EXAMPLE)
    assert code == 0, output
    assert "Success" in output


def test_typed_example_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "store")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 0


BAD_SNIPPET = """\
from persidict import ANY_ETAG, ITEM_NOT_AVAILABLE, FileDirDict, LocalDict

d = FileDirDict[int](base_dir="unused")
x: str = d["k"]  # E: the value type is int
s: str = LocalDict[int]()["k"]  # E
FileDirDict[int](base_dir=1.5)  # E: base_dir must be a path
FileDirDict[int]("folder", "pkl")  # E: only the folder may be given by position
d.set_item_if("k", value=1, condition=ANY_ETAG)  # E: expected_etag is required
r = d.get_with_etag("k")
y: str = r.new_value  # E: the value may be int or a sentinel
d.transform_item("k", transformer=lambda v: 1, n_retries="many")  # E
"""


def test_wrong_types_fail_mypy(mypy_env):
    bad = mypy_env / "bad_snippet.py"
    bad.write_text(BAD_SNIPPET)
    code, output = run_mypy(mypy_env, bad)
    assert code != 0
    expected = {n for n, line in enumerate(BAD_SNIPPET.splitlines(), start=1) if "# E" in line}
    assert error_lines(output, bad) == expected, output


PLAIN_KEYS_SNIPPET = """\
from persidict import LocalDict

d = LocalDict[int]()
a: int | None = d.get("k")
b: int = d.get(("a", "b"), 0)
c: int = d.setdefault("k", 3)
e: int = d.pop("k", 0)
d.update({"x": 1})
d |= {"z": 3}
"""


def test_dict_methods_accept_plain_keys_and_keep_the_store_type(mypy_env):
    # Every item-level method normalizes "k", ("a", "b"), ... (docs/concepts.md#key-normalization), so the
    # annotations must accept them too (NonEmptyPersiDictKey), and d |= m returns d.
    snippet = mypy_env / "plain_keys.py"
    snippet.write_text(PLAIN_KEYS_SNIPPET)
    code, output = run_mypy(mypy_env, snippet)
    assert code == 0, output
