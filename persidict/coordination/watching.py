"""Watching a work queue: a tqdm bar of its tasks closed, until every one is done or failed.

tqdm is imported only when a bar is shown (a widget in Jupyter when
ipywidgets is installed, text on stderr otherwise).
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from typing import Any

from .queue import Progress, WorkQueue

__all__ = ["watch"]


def _bar(total: int, name: str) -> Any:
    widgets = importlib.util.find_spec("ipywidgets") is not None
    tqdm = importlib.import_module("tqdm.auto" if widgets else "tqdm").tqdm
    return tqdm(total=total, desc=name, unit="task", dynamic_ncols=True)


def _show(bar: Any, progress: Progress) -> None:
    bar.total = progress.total
    bar.n = progress.done + progress.failed
    bar.set_postfix_str(f"running {progress.claimed}, failed {progress.failed}", refresh=True)


def watch(queue: WorkQueue, *, poll: float = 1.0, timeout: float | None = None, bar: bool = True) -> Progress:
    """Follow ``queue``'s progress (every ``poll`` seconds) until it is finished or ``timeout`` passed; the
    last counts.  Reads only: it claims nothing."""
    deadline = None if timeout is None else time.monotonic() + timeout
    progress = queue.progress()
    shown = _bar(progress.total, queue.name) if bar else None
    try:
        while True:
            if shown is not None:
                _show(shown, progress)
            if progress.finished or (deadline is not None and time.monotonic() >= deadline):
                return progress
            time.sleep(poll)
            progress = queue.progress()
    finally:
        if shown is not None:
            shown.close()
