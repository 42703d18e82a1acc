"""The process-pool example of docs/pipelines.md (and the README), run as the script it is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pool_example(page: Path) -> str:
    """The first ``python`` block of ``page`` that makes a ``ProcessPoolExecutor``."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    return next(block for block in blocks if "ProcessPoolExecutor()" in block)


@pytest.mark.parametrize("page", [ROOT / "docs" / "pipelines.md", ROOT / "README.md"], ids=lambda p: p.name)
def test_the_pool_example_runs_as_written(page: Path, tmp_path: Path) -> None:
    script = tmp_path / "count_words.py"
    script.write_text(_pool_example(page), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "60 [('doc1', 10), ('doc2', 20), ('doc3', 30)]\n"


def test_the_pool_example_calls_result() -> None:
    assert "future.result()" in _pool_example(ROOT / "docs" / "pipelines.md")
