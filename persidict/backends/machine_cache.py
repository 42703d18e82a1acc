"""This machine's cache: small JSON records that spare a new process work an earlier one did.

A record is kept under a ``kind`` (``"code"``: memoize's normalized functions;
``"counts"``: what ``len()`` of a local store found in each folder) in
``$PERSIDICT_CACHE_DIR/<kind>``, else ``$XDG_CACHE_HOME/persidict/<kind>``, else
``~/.cache/persidict/<kind>``; ``PERSIDICT_CACHE_DIR=""`` turns the cache off.

Records are private (each kind's folders 0700, files 0600) and written to a temporary file
renamed into place, so a reader sees a whole record or none.  A record that is
missing, unreadable or malformed is computed again, and a folder that cannot be
written is skipped: the cache only ever saves time, it never decides a result.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

__all__ = ["cache_folder", "read_record", "write_record"]

_VARIABLE = "PERSIDICT_CACHE_DIR"


def cache_folder(kind: str) -> str | None:
    """The folder of the records of ``kind`` (read from the environment on each use), or None when disabled."""
    configured = os.environ.get(_VARIABLE)
    if configured is not None:
        return os.path.join(os.path.abspath(configured), kind) if configured else None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "persidict", kind)


def _path(folder: str, name: str) -> str:
    """Where the record ``name`` (a hex digest) lives in ``folder``: 256 subfolders keep folders small."""
    return os.path.join(folder, name[:2], name[2:] + ".json")


def read_record(folder: str, name: str) -> Any:
    """The JSON of record ``name`` in ``folder``, or None if there is none or it cannot be read or parsed."""
    try:
        with open(_path(folder, name), encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def write_record(folder: str, name: str, record: object) -> None:
    """Store ``record`` as JSON as record ``name`` in ``folder``, atomically; silently nothing if it cannot be."""
    path = _path(folder, name)
    temporary = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
    try:
        handle = _create(temporary, folder)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(record, file, separators=(",", ":"))
        os.replace(temporary, path)  # atomic: a concurrent reader sees the old record, none, or this one
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _create(temporary: str, folder: str) -> int:
    """A new private file open for writing, its folders made first if missing (records are trusted as they are)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(temporary, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.makedirs(os.path.dirname(temporary), mode=0o700, exist_ok=True)
        return os.open(temporary, flags, 0o600)
