"""memoize in real Jupyter kernels: notebook functions have code, two notebooks never share results,
a restarted kernel recomputes nothing, and the HTML views render in an executed notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..docs.notebook_runner import cell_outputs, write_notebook

SETUP = """\
from persidict import FileDirDict
from persidict.pipelines.memoize import memoize

store = FileDirDict(base_dir={folder!r})
"""

HELPER = """\
def double(x):
    return 2 * x
"""

FIRST_F = """\
@memoize(store)
def f(x):
    # in the first notebook
    return double(x) + 1
"""

SECOND_F = """\
@memoize(store)
def f(x):
    return x * 100
"""

CALL = """\
info = f.call_with_info(10)
print("value", info.value, "computed", info.computed)
"""


def _printed(outputs: list[Any]) -> str:
    return "".join(output.get("text", "") for cell in outputs for output in cell if output.output_type == "stream")


def _html(outputs: list[Any]) -> str:
    return "".join(output.data.get("text/html", "") for cell in outputs for output in cell if "data" in output)


@pytest.mark.processes
@pytest.mark.timeout(300)
def test_two_notebooks_on_one_store_never_share_results_and_a_restart_recomputes_nothing(tmp_path: Path) -> None:
    setup = SETUP.format(folder=str(tmp_path / "store"))
    first = write_notebook(tmp_path / "first.ipynb", setup, HELPER, FIRST_F, CALL, "f", "store")
    second = write_notebook(tmp_path / "second.ipynb", setup, SECOND_F, CALL)

    assert "value 21 computed True" in _printed(cell_outputs(first))
    assert "value 1000 computed True" in _printed(cell_outputs(second))  # its own f: no cross-hit
    restarted = cell_outputs(first)  # a new kernel runs the first notebook again
    assert "value 21 computed False" in _printed(restarted)

    html = _html(restarted)
    assert "memoized f" in html and "__main__.f" in html and "code=" in html
    assert "hits</th><td style='text-align:left'>1 " in html
    assert "FileDirDict" in html and "keys</th><td style='text-align:left'>2<" in html
