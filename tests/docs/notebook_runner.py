"""Execute the notebooks in ``notebooks/`` in a real Jupyter kernel, as the tests and the docs need them.

``execute_notebook(path, workdir)`` runs one notebook top to bottom with nbclient
in a ``python3`` kernel of *this* interpreter, with ``workdir`` as the kernel's
working directory (so ``import pipeline_steps`` works), and returns the notebook
with its outputs.  The kernelspec is written to a temporary ``JUPYTER_PATH``
(``python3_kernel_env``), so nothing depends on a kernelspec someone installed by
hand, nor on which ``python`` is first on ``PATH``.

To refresh the outputs committed with the notebooks (the docs site renders them)::

    python -m tests.docs.notebook_runner                 # every notebook
    python -m tests.docs.notebook_runner pipeline        # the ones whose name contains "pipeline"

It runs each notebook in a temporary copy of ``notebooks/`` (so no caches or
``__pycache__`` land in the repository), then writes the executed notebook back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL_NAME = "python3"
CELL_TIMEOUT = 300
"""Seconds one cell may take before the run fails (only a hang reaches it)."""


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@contextmanager
def python3_kernel_env() -> Iterator[None]:
    """Make the ``python3`` kernel this interpreter (``sys.executable``), via a temporary JUPYTER_PATH."""
    with tempfile.TemporaryDirectory(prefix="persidict-jupyter-") as jupyter_path:
        spec_dir = Path(jupyter_path) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "metadata": {"debugger": False},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        saved = {name: os.environ.get(name) for name in ("JUPYTER_PATH", "PYDEVD_DISABLE_FILE_VALIDATION")}
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter_path, saved["JUPYTER_PATH"]]))
        os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # debugpy's frozen-modules note on the kernel's stderr
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def copy_notebooks_dir(target: Path) -> Path:
    """A copy of ``notebooks/`` (notebooks and their helper modules) at ``target``."""
    shutil.copytree(NOTEBOOKS_DIR, target, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return target


def execute_notebook(path: Path, workdir: Path, timeout: int = CELL_TIMEOUT) -> Any:
    """Run the notebook at ``path`` top to bottom in a ``python3`` kernel started in ``workdir``.

    Raises ``nbclient.exceptions.CellExecutionError`` if a cell raises.  Call it
    inside ``python3_kernel_env()``.  Consecutive stream outputs are merged, so a
    progress bar is saved as its final state.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=timeout,
        startup_timeout=120,
        coalesce_streams=True,
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return notebook


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook of these code cells, written at ``path``."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    nbformat.write(notebook, path)
    return path


def cell_outputs(path: Path) -> list[Any]:
    """The outputs of every cell of the notebook at ``path``, run top to bottom in a fresh kernel."""
    with python3_kernel_env():
        executed = execute_notebook(path, path.parent)
    return [cell.outputs for cell in executed.cells]


def main(argv: list[str]) -> int:
    import nbformat

    chosen = [path for path in notebook_paths() if not argv or any(word in path.name for word in argv)]
    if not chosen:
        print(f"no notebook in {NOTEBOOKS_DIR} matches {argv}", file=sys.stderr)
        return 2
    with python3_kernel_env(), tempfile.TemporaryDirectory(prefix="persidict-notebooks-") as scratch:
        workdir = copy_notebooks_dir(Path(scratch) / "notebooks")
        for path in chosen:
            started = time.perf_counter()
            executed = execute_notebook(workdir / path.name, workdir)
            nbformat.write(executed, path)
            print(f"{path.name}: executed in {time.perf_counter() - started:.1f} s, outputs written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
