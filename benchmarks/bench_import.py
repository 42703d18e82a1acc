"""How long ``import persidict`` takes in a fresh interpreter."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time

from bench_common import Row, Settings

__all__ = ["run_import"]

IMPORT_TARGET_MS = 150.0


def interpreter_seconds(code: str) -> float:
    """Wall time of ``python -c code`` in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def heaviest_imports(count: int = 4) -> list[tuple[str, float]]:
    """The modules persidict imports directly that ``-X importtime`` charges most (cumulative ms)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import persidict"], capture_output=True, text=True, check=True
    )
    parsed = []  # (depth, name, cumulative ms); children are printed before their parent
    for line in completed.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if match:
            parsed.append(((len(match.group(2)) - 1) // 2, match.group(3), int(match.group(1)) / 1000))
    stack: dict[int, str] = {}
    direct: dict[str, float] = {}
    for depth, name, ms in reversed(parsed):  # parents first
        stack[depth] = name
        ancestors = [stack[d] for d in range(depth)]
        imported_by_persidict = bool(ancestors) and all(a.startswith("persidict") for a in ancestors)
        if imported_by_persidict and not name.startswith(("persidict", "__editable__")):
            direct[name] = max(direct.get(name, 0.0), ms)
    return sorted(direct.items(), key=lambda item: -item[1])[:count]


def run_import(settings: Settings) -> tuple[list[Row], str]:
    """One row for the median import time, and a footnote naming the heaviest dependencies."""
    interpreter_seconds("import persidict")  # warm the file cache and the bytecode
    baseline, with_import = [], []
    for _ in range(settings.import_runs):  # interleaved, so both see the same machine load
        baseline.append(interpreter_seconds("pass"))
        with_import.append(interpreter_seconds("import persidict"))
    ms = (statistics.median(with_import) - statistics.median(baseline)) * 1e3
    row = Row(
        "import",
        "persidict",
        "import persidict (fresh interpreter)",
        value=f"{ms:.0f} ms",
        target=f"<= {IMPORT_TARGET_MS:.0f} ms",
        meets=ms <= IMPORT_TARGET_MS,
        note=f"median of {settings.import_runs}, minus `python -c pass`",
    )
    heavy = ", ".join(f"{name} {ms_:.0f} ms" for name, ms_ in heaviest_imports())
    return [row], f"Heaviest imports under `import persidict` (-X importtime, cumulative): {heavy}."
