"""Run the real persidict 0.309.0 as a black box, in its own interpreter.

``reference_python()`` finds or builds an interpreter that has the reference;
``run_reference(script, *args)`` runs one of ``reference_scripts/`` with it.
The scripts import ``legacy_corpus`` and ``legacy_stores`` from ``tests/data``,
as the tests do (``DATA_DIR`` is put on ``sys.path`` here for that).
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REFERENCE_VERSION = "0.309.0"
REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "tests" / "data"
FIXTURES = DATA_DIR / f"persidict-{REFERENCE_VERSION}"
SCRIPTS = Path(__file__).resolve().parent / "reference_scripts"
VENV = REPO / ".venvs" / f"persidict-{REFERENCE_VERSION}"
_READY = VENV / ".ready"  # written last, so a half-built venv is never taken for a good one

if str(DATA_DIR) not in sys.path:
    # legacy_corpus must be the top-level module name on both sides: pickles name its classes by it.
    sys.path.insert(0, str(DATA_DIR))


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run_or_raise(command: list[str], what: str) -> None:
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {' '.join(command)}\n"
                           f"{result.stdout}\n{result.stderr}")


def _build_venv() -> None:
    """Create the venv and install the reference into it (the caller holds the lock)."""
    shutil.rmtree(VENV, ignore_errors=True)
    _run_or_raise([sys.executable, "-m", "venv", str(VENV)], "creating the reference venv")
    _run_or_raise([str(_venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                   f"persidict=={REFERENCE_VERSION}"], f"pip install persidict=={REFERENCE_VERSION}")
    _READY.write_text(REFERENCE_VERSION + "\n", encoding="utf-8")


@functools.cache
def reference_python() -> str:
    """The path of a python that has persidict 0.309.0 (built on first use, never skipped).

    ``PERSIDICT_REFERENCE_PYTHON`` names one; otherwise it is the venv in
    ``<repo>/.venvs/``, created under a file lock so that parallel test
    workers build it once.

    Raises:
        RuntimeError: the venv could not be built (with pip's output).
    """
    configured = os.environ.get("PERSIDICT_REFERENCE_PYTHON")
    if configured:
        return configured
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not _READY.exists():
            _build_venv()
    return str(_venv_python())


def run_reference(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``reference_scripts/<script>`` under persidict 0.309.0 and return its stdout.

    It runs in a fresh temporary folder, with ``PYTHONPATH`` set to
    ``tests/data`` only (so our persidict can never be imported there) and
    ``env`` added to the environment.

    Raises:
        AssertionError: the script exited with a non-zero status (with its stderr).
    """
    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    child_env.update(env or {}, PYTHONPATH=str(DATA_DIR))
    command = [reference_python(), str(SCRIPTS / script), *args]
    with tempfile.TemporaryDirectory(prefix="persidict-reference-") as cwd:
        result = subprocess.run(command, check=False, cwd=cwd, env=child_env, capture_output=True, text=True,
                                timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} exited with {result.returncode} under "
                             f"persidict {REFERENCE_VERSION}:\n{result.stderr}")
    return result.stdout


def run_reference_json(script: str, spec: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """``run_reference`` with a JSON spec as the only argument and a JSON answer on stdout."""
    return json.loads(run_reference(script, json.dumps(spec), env=env))
