"""Copy every value of one store into another: concurrent, resumable, with a progress bar.

``copy_store(src, dst)`` is what ``persidict cp SRC DST`` runs.  Values are copied
as values: each is read (decoded) from ``src`` and written (encoded) to ``dst``, so
the two stores may use different backends and different serialization formats (a
``txt`` store copies into a ``pkl`` one; the reverse works for ``str`` values only).

Resuming: keys ``dst`` already holds are skipped (unless ``overwrite=True``), and a
key is inserted only if ``dst`` still does not hold it when the write lands (an
atomic insert-if-absent), so running the same copy again after an interruption
copies exactly what is missing, and never replaces a value someone else wrote
meanwhile.  Writes are atomic, so an interrupted copy leaves no partial value.

``tqdm`` is imported only when a progress bar is asked for: importing this module
costs nothing beyond the standard library.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.front import PersiDict
from ..keys.tuples import NonEmptySafeStrTuple, key_text
from ..protocol.exceptions import MissingRootError, PersiDictError
from ..protocol.flags import ETAG_IS_THE_SAME, ITEM_NOT_AVAILABLE, NEVER_RETRIEVE

__all__ = ["CopyError", "CopyReport", "copy_store"]

DEFAULT_WORKERS = 16
"""Writes (and reads of single values) in flight at once."""

_FAILURES_NAMED_IN_MESSAGE = 20
"""``CopyError``'s message names this many failed keys; ``report.failures`` has all of them."""


@dataclass(frozen=True)
class CopyReport:
    """What one ``copy_store`` call did with each key it found in the source.

    ``copied + skipped + failed`` is the number of keys the source held when the
    copy started.  ``skipped`` counts keys the destination already held (or that
    were deleted from the source while the copy ran); ``failures`` maps each key
    that could not be copied to the exception that stopped it.
    """

    copied: int = 0
    skipped: int = 0
    failures: dict[NonEmptySafeStrTuple, Exception] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """How many keys could not be copied."""
        return len(self.failures)

    @property
    def total(self) -> int:
        """How many keys the source held: copied, skipped and failed together."""
        return self.copied + self.skipped + self.failed


class CopyError(PersiDictError, RuntimeError):
    """Some values could not be copied; ``report`` says which (``report.failures``) and what else happened.

    Everything else was copied: run the copy again to retry only the keys that failed.
    """

    def __init__(self, report: CopyReport) -> None:
        super().__init__(_failure_message(report))
        self.report = report


def _failure_message(report: CopyReport) -> str:
    named = list(report.failures.items())[:_FAILURES_NAMED_IN_MESSAGE]
    summary = (f"{report.failed} of {report.total} values could not be copied "
               f"({report.copied} copied, {report.skipped} skipped):")
    lines = [summary] + [f"  {key_text(key)}: {type(exc).__name__}: {exc}" for key, exc in named]
    if report.failed > len(named):
        lines.append(f"  ... and {report.failed - len(named)} more (all are in .report.failures)")
    return "\n".join(lines)


class _ProgressBar(Protocol):
    """The part of a tqdm bar that the copy uses."""

    def update(self, n: int = 1, /) -> object: ...

    def close(self) -> None: ...


class _NoProgressBar:
    """Stands in for a tqdm bar when no progress is shown."""

    def update(self, n: int = 1, /) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _shows_progress(progress: bool | None) -> bool:
    """Whether to show a bar: as asked, or (``None``) when someone watches: stderr is a terminal, or Jupyter.

    A bar redraws its line with ``\r``: written into a log file or a CI log,
    that is one garbled line per update.
    """
    if progress is not None:
        return progress
    return _in_jupyter() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _in_jupyter() -> bool:
    """Whether this runs in a Jupyter kernel (whose stderr is no terminal, but a cell shows a bar)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _progress_bar(total: int, done: int) -> _ProgressBar:
    """A tqdm bar at ``done`` of ``total``; tqdm is imported only here.

    A widget in Jupyter when ipywidgets is installed; text on stderr otherwise
    (``tqdm.auto`` would fall back to text too, but with a warning).
    """
    widgets = importlib.util.find_spec("ipywidgets") is not None
    tqdm = importlib.import_module("tqdm.auto" if widgets else "tqdm").tqdm
    bar: _ProgressBar = tqdm(total=total, initial=done, desc="copying", unit="value", dynamic_ncols=True)
    return bar


class _Tally:
    """Counts outcomes as worker threads report them, and moves the progress bar."""

    def __init__(self, bar: _ProgressBar, skipped: int) -> None:
        self._bar = bar
        self._lock = threading.Lock()
        self._copied = 0
        self._skipped = skipped
        self._failures: dict[NonEmptySafeStrTuple, Exception] = {}

    def copied(self) -> None:
        with self._lock:
            self._copied += 1
            self._bar.update(1)

    def skipped(self) -> None:
        with self._lock:
            self._skipped += 1
            self._bar.update(1)

    def failed(self, key: NonEmptySafeStrTuple, exc: Exception) -> None:
        with self._lock:
            self._failures[key] = exc
            self._bar.update(1)

    def report(self) -> CopyReport:
        with self._lock:
            return CopyReport(copied=self._copied, skipped=self._skipped, failures=dict(self._failures))


class _Copier:
    """Runs the reads and writes of one copy on a bounded thread pool."""

    def __init__(self, src: PersiDict[Any], dst: PersiDict[Any], *, overwrite: bool, workers: int,
                 tally: _Tally) -> None:
        self._src = src
        self._dst = dst
        self._overwrite = overwrite
        self._tally = tally
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="persidict-copy")
        # At most this many tasks (each holding at most one value) wait or run at once.
        self._slots = threading.BoundedSemaphore(2 * workers)

    def run(self, todo: Sequence[NonEmptySafeStrTuple], *, stream: bool) -> None:
        """Copy the keys in ``todo``; with ``stream``, read them all with one bulk ``src.items()``."""
        try:
            rest = self._copy_streamed(todo) if stream else todo
            for key in rest:
                self._submit(self._read_and_write, key)
        except BaseException:  # interrupted (Ctrl-C): finish what is running, start nothing new
            self._pool.shutdown(wait=True, cancel_futures=True)
            raise
        self._pool.shutdown(wait=True)

    def _copy_streamed(self, todo: Sequence[NonEmptySafeStrTuple]) -> list[NonEmptySafeStrTuple]:
        """Write the values ``src.items()`` delivers; return the keys of ``todo`` it did not deliver.

        ``items()`` reads concurrently on object stores.  If it stops early (a value
        that cannot be decoded ends the iteration), the caller reads the undelivered
        keys one by one, so each failure is reported with its own key.
        """
        pending = dict.fromkeys(todo)  # ordered, so the undelivered keys come back in listing order
        # An error is not lost: the caller reads every undelivered key again, alone, and reports its failure.
        with contextlib.suppress(Exception):
            for key, value in self._src.items():
                if key in pending:
                    del pending[key]
                    self._submit(self._write, key, value)
        return list(pending)

    def _submit(self, task: Callable[..., None], *args: Any) -> None:
        self._slots.acquire()
        future = self._pool.submit(task, *args)
        future.add_done_callback(lambda _: self._slots.release())

    def _read_and_write(self, key: NonEmptySafeStrTuple) -> None:
        try:
            value = self._src[key]
        except KeyError:
            self._tally.skipped()  # deleted from the source since it was listed: nothing to copy
        except Exception as exc:
            self._tally.failed(key, exc)
        else:
            self._write(key, value)

    def _write(self, key: NonEmptySafeStrTuple, value: Any) -> None:
        try:
            written = self._put(key, value)
        except Exception as exc:
            self._tally.failed(key, exc)
        else:
            if written:
                self._tally.copied()
            else:
                self._tally.skipped()

    def _put(self, key: NonEmptySafeStrTuple, value: Any) -> bool:
        """Write one value; False if ``dst`` got the key meanwhile and we must not overwrite it."""
        if self._overwrite:
            self._dst[key] = value
            return True
        result = self._dst.set_item_if(
            key, value=value, condition=ETAG_IS_THE_SAME, expected_etag=ITEM_NOT_AVAILABLE,
            retrieve_value=NEVER_RETRIEVE,
        )
        return result.condition_was_satisfied


def _keys_to_copy(
    src_keys: list[NonEmptySafeStrTuple], dst: PersiDict[Any], overwrite: bool
) -> list[NonEmptySafeStrTuple]:
    """The source keys to copy, in listing order: all of them, or those ``dst`` does not hold."""
    if overwrite:
        return src_keys
    try:
        present = set(dst.keys())
    except MissingRootError:
        present = set()  # a bucket not created yet holds no keys: the first write creates it
    return [key for key in src_keys if key not in present]


def copy_store(
    src: PersiDict[Any],
    dst: PersiDict[Any],
    *,
    overwrite: bool = False,
    workers: int = DEFAULT_WORKERS,
    progress: bool | None = False,
) -> CopyReport:
    """Copy every value of ``src`` into ``dst``; return what was copied and skipped.

    Keys ``dst`` already holds are skipped, unless ``overwrite`` is true; run the
    same copy again after an interruption and only what is missing is copied.
    Values are decoded and re-encoded, so the stores may differ in backend and
    format.  Up to ``workers`` writes run at once; a fresh copy (nothing to skip)
    reads the source with its bulk ``items()``, which is concurrent on object
    stores, and a resumed one reads just the missing values, concurrently.
    ``progress`` shows a tqdm bar (done/total values) on stderr, or a widget
    in Jupyter if ipywidgets is installed (a text bar otherwise); ``None``
    shows it only where someone watches: on a terminal, or in Jupyter.

    Every key is attempted.  If any could not be copied, ``CopyError`` is raised
    after all the others were, naming the failed keys; its ``report`` has the
    counts and every failure's exception.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    src_keys = list(src.keys())
    todo = _keys_to_copy(src_keys, dst, overwrite)
    skipped = len(src_keys) - len(todo)
    bar = _progress_bar(len(src_keys), skipped) if _shows_progress(progress) else _NoProgressBar()
    tally = _Tally(bar, skipped)
    try:
        _Copier(src, dst, overwrite=overwrite, workers=workers, tally=tally).run(todo, stream=skipped == 0)
    finally:
        bar.close()
    report = tally.report()
    if report.failures:
        raise CopyError(report)
    return report
