"""The notebooks run top to bottom in a real Jupyter kernel, and the committed ones carry their outputs.

Each notebook in ``notebooks/`` is executed with nbclient in a ``python3`` kernel
of this interpreter, in a temporary copy of ``notebooks/`` (its working
directory, so the notebooks import ``pipeline_steps``; the committed files are
never rewritten), and must raise nothing and print its key results: a body that
ran once, exact counters, a resumed pipeline that recomputed nothing, every
work item claimed by exactly one dask task.

The committed notebooks must carry the outputs of a full run (the docs site
renders them as they are), and the same messages a fresh run prints (numbers,
ETags and progress bars masked): run ``python -m tests.docs.notebook_runner``
after changing a notebook, ``notebooks/pipeline_steps.py`` or the code whose
messages they show.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .notebook_runner import copy_notebooks_dir, execute_notebook, notebook_paths, python3_kernel_env

NOTEBOOKS = notebook_paths()

EXPECTED: dict[str, list[str]] = {
    "quickstart.ipynb": [
        "best run: run-2 {'loss': 0.19, 'epochs': 20}",
        "(True, False, 'tuned')",
        "claims won: 1 | the store names the winner: True",
        "8 threads x 25 increments = 200",
        "(144, 144, 144)",
        "CopyReport(copied=1, skipped=7, failures={})",
    ],
    "pipeline.ipynb": [
        "interrupted: a worker process died",
        "second run: 24 of 24 items finished",
        "read from the store = the results stored before: True",
        "items that finished in the first run and were computed again: 0",
        "third run: computed 0 of 24",
        "featurize: 100%",
        "called again: computed: False",
        "after a comment edit: computed False",
        "after a helper edit: [15, 23, 19], computed True",
        "and again: computed False",
    ],
    "distributed.ipynb": [
        "on S3: computed 24 of 24",
        "2 worker processes, 4 threads",
        "on dask: computed 0 of 24",
        "tasks run: 40, items: 20",
        "every item claimed by exactly one task: True",
        "counters: tasks = 40, items = 20",
        "20 results, for example: {'n': 100, 'steps': 25, 'peak': 100}",
        "queue: 40 of 40 done, 0 failed",
        "results recorded by the workers: 40",
        "one result per task: True",
        "collatz: 100%",
    ],
}
"""Lines each notebook must print (in its outputs), whatever the timing of the run."""

RUNS_ONCE = {"quickstart.ipynb": ["computing slow_square(12)", "computing slow_square(13)"]}
"""Lines that must appear exactly once: memoized bodies that ran once although called many times."""

LOCAL_DETAILS = re.compile(r"/tmp/|/home/|/root/|site-packages|127\.0\.0\.1|localhost:\d")
"""What committed outputs must not show: local paths, addresses and ports that differ on every machine."""


def _code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _output_text(notebook: Any) -> str:
    """Every text the notebook's cells output: streams, results and displays (as plain text and markdown)."""
    parts: list[str] = []
    for cell in _code_cells(notebook):
        for output in cell.outputs:
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.extend(output.data.get(kind, "") for kind in ("text/plain", "text/markdown"))
            elif output.output_type == "error":
                parts.append("\n".join(output.traceback))
    return "\n".join(parts)


def _errors(notebook: Any) -> list[str]:
    return [
        f"{output.ename}: {output.evalue}"
        for cell in _code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "error"
    ]


_VOLATILE = [
    (re.compile(r"\d+%\|.*"), "<progress>"),  # a progress bar's state, times and speed
    (re.compile(r"\b(0x)?[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b(0x)?[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b"),
     "<hex>"),  # ETags, digests, addresses
    (re.compile(r"\d+(\.\d+)?"), "<n>"),  # counts that depend on timing, durations, dates
]
"""What differs between two runs of the same code: masked before the outputs of two runs are compared."""


def messages(notebook: Any) -> list[list[str]]:
    """Each code cell's printed lines and results, volatile parts masked, sorted (threads print in any order).

    stderr is left out: progress bars, and the notes of a memoized call that waited for another
    worker's lease, which come or not with the timing of the run.
    """
    cells = []
    for cell in _code_cells(notebook):
        texts = [output.text if output.output_type == "stream" else output.data.get("text/plain", "")
                 for output in cell.outputs
                 if (output.output_type == "stream" and output.name == "stdout")
                 or output.output_type in ("execute_result", "display_data")]
        lines = []
        for line in "\n".join(texts).splitlines():
            for pattern, mask in _VOLATILE:
                line = pattern.sub(mask, line)
            if line.strip():
                lines.append(line.rstrip())
        cells.append(sorted(lines))
    return cells


def _check_key_outputs(name: str, text: str) -> None:
    missing = [line for line in EXPECTED[name] if line not in text]
    assert not missing, f"{name} did not print: {missing}"
    for line in RUNS_ONCE.get(name, []):
        assert text.count(line) == 1, f"{name}: {line!r} appears {text.count(line)} times, not once"


def test_there_are_at_least_three_notebooks_and_each_has_expectations() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert len(names) >= 3
    assert names == set(EXPECTED), "every notebook needs its key outputs listed in EXPECTED"


@pytest.mark.processes
@pytest.mark.timeout(240)  # the whole notebook; one cell may take at most CELL_TIMEOUT
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_top_to_bottom_in_a_kernel(notebook: Path, tmp_path: Path) -> None:
    committed = notebook.read_bytes()
    workdir = copy_notebooks_dir(tmp_path / "notebooks")
    with python3_kernel_env():
        executed = execute_notebook(workdir / notebook.name, workdir)

    assert not _errors(executed)
    counts = [cell.execution_count for cell in _code_cells(executed)]
    assert counts == list(range(1, len(counts) + 1)), "every code cell ran, in order"
    text = _output_text(executed)
    assert "Traceback" not in text
    _check_key_outputs(notebook.name, text)
    assert notebook.read_bytes() == committed, "the committed notebook is never rewritten by the tests"
    stale = [(number, old, new) for number, (old, new) in
             enumerate(zip(messages(nbformat.reads(committed.decode(), as_version=4)), messages(executed),
                           strict=True), start=1) if old != new]
    assert not stale, (f"{notebook.name}: the committed outputs differ from a fresh run's (code cell, committed, "
                       f"fresh): {stale}; run `python -m tests.docs.notebook_runner {notebook.stem}`")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_notebook_carries_the_outputs_of_a_full_run(notebook: Path) -> None:
    committed = nbformat.read(notebook, as_version=4)
    nbformat.validate(committed)
    assert committed.cells[0].cell_type == "markdown", "each notebook opens with an introduction"
    counts = [cell.execution_count for cell in _code_cells(committed)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{notebook.name} was not executed top to bottom: run `python -m tests.docs.notebook_runner`"
    )
    assert not _errors(committed)
    text = _output_text(committed)
    assert "Traceback" not in text
    _check_key_outputs(notebook.name, text)
    leaks = sorted(set(LOCAL_DETAILS.findall(text)))
    assert not leaks, f"{notebook.name}'s outputs show machine-specific details: {leaks}"
