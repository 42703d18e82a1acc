"""Telling a caller that it waits for another process's computation: one log line, and a bar if asked.

A wait can last as long as the other computation, so it must not be silent:
``WaitNotice`` logs once (a WARNING, shown without any logging set up) when a
call starts waiting, naming who computes, and with ``progress=True`` shows
a tqdm bar (a widget in Jupyter when ipywidgets is installed) that counts
the seconds waited and names the holder, until the result arrives.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from datetime import datetime
from typing import Any

from .records import Lease

__all__ = ["WaitNotice"]

_log = logging.getLogger("persidict.pipelines.memoize")


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


class WaitNotice:
    """The notices of one waiting call: created when the call starts waiting, closed when it stops."""

    def __init__(self, call: str, lease: Lease, *, progress: bool) -> None:
        self._started = time.monotonic()
        _log.warning(
            "memoize: waiting for %s: %s is computing it (its lease runs to %s, renewed while it works)",
            call, lease.owner, _clock(lease.expires_at),
        )
        self._bar = self._new_bar(call) if progress else None
        self.update(lease)

    @staticmethod
    def _new_bar(call: str) -> Any:
        widgets = importlib.util.find_spec("ipywidgets") is not None
        tqdm = importlib.import_module("tqdm.auto" if widgets else "tqdm").tqdm
        return tqdm(total=None, desc=f"waiting for {call}", bar_format="{desc}: {elapsed} {postfix}")

    @property
    def seconds(self) -> float:
        """Seconds waited so far."""
        return time.monotonic() - self._started

    def update(self, record: Any) -> None:
        """Show the latest record seen (the holder's lease while it computes)."""
        if self._bar is not None and isinstance(record, Lease):
            self._bar.set_postfix_str(f"computed by {record.owner}", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
