"""In a Jupyter kernel, stderr is no terminal, yet a copy shows its bar: the cell is where people look.

``copy_store(progress=None)`` (the CLI's default) draws a bar only on a
terminal or in Jupyter (a widget with ipywidgets, a text bar in the cell's
stderr without); piped or logged, it stays silent (tests/pipelines/test_cli_first_use.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..docs.notebook_runner import cell_outputs, write_notebook

COPY = """
from persidict import FileDirDict
from persidict.pipelines.copy import copy_store
src, dst = FileDirDict(base_dir="src", fsync=False), FileDirDict(base_dir="dst", fsync=False)
src.update({f"k{i}": i for i in range(20)})
report = copy_store(src, dst, progress=None)
print("copied", len(dst))
"""


def test_a_copy_in_a_kernel_shows_its_bar_in_the_cell(tmp_path: Path) -> None:
    (outputs,) = cell_outputs(write_notebook(tmp_path / "copy.ipynb", COPY))
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "copied 20" in printed
    if importlib.util.find_spec("ipywidgets") is not None:
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    else:
        bar = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stderr")
        assert "copying" in bar and "20/20" in bar
