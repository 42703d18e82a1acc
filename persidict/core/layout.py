"""The layout travels with the data: a small record at a store's root says how its files are named.

Keys map to file names through ``digest_len`` (digest suffixes on or off) and
each format's codec.  Opened with other settings, the same folder would show
other keys (``FsspecDict(folder)`` on a ``FileDirDict`` folder listed ``k`` as
``k_rtsl``), so the first write into a root records its layout in
``.persidict@layout`` (JSON), and every later opening reads it:

- a parameter left to its default (``None``) adopts what is recorded;
- a parameter given explicitly that disagrees raises ``ValueError`` naming the
  parameters that would open the store (a new *format* in a known folder is
  fine: several formats share a folder, and it is added to the record).

The record's name ends in ``@layout``, which no format's suffix can be (``@``
is not a key character), so neither persidict 0.x nor this package ever takes
it for a key.  Folders without a record (written by persidict 0.x, or before
records existed) open exactly as they always have.  (zarr's ``zarr.json`` is
the model.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..backends.base import StorageBackend
from ..protocol.versions import ABSENT, Expected, PreconditionFailed

__all__ = ["LAYOUT_NAME", "Layout", "LayoutRecorder", "resolve_layout"]

LAYOUT_NAME = ".persidict@layout"
_VERSION = 1


@dataclass(frozen=True)
class Naming:
    """How one format's files are named under a root: the digest suffix length, and the JSON dialect."""

    digest_len: int
    safe_json: bool = False


@dataclass(frozen=True)
class Layout:
    """What a root records: each format that was written there, with how its files are named.

    Formats are recorded one by one, because several may share a folder with
    different names (persidict 0.x's users keep ``json`` logs without digest
    suffixes beside ``txt`` files with them).
    """

    formats: dict[str, Naming] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        record = {"persidict_layout": _VERSION,
                  "formats": {name: {"digest_len": naming.digest_len, "safe_json": naming.safe_json}
                              for name, naming in sorted(self.formats.items())}}
        return (json.dumps(record, indent=2) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Layout:
        record = json.loads(data)
        if not isinstance(record, dict) or record.get("persidict_layout") != _VERSION:
            raise ValueError(f"{LAYOUT_NAME} is not a layout record this version of persidict reads")
        return cls({str(name): Naming(int(entry["digest_len"]), bool(entry.get("safe_json")))
                    for name, entry in record["formats"].items()})

    def with_format(self, name: str, naming: Naming) -> Layout:
        """This record with ``name`` added (a format already recorded keeps its naming)."""
        return Layout({name: naming, **self.formats})


def read_layout(backend: StorageBackend) -> Layout | None:
    """The layout recorded at the backend's root, or None if there is none."""
    try:
        data = backend.read(backend.path_for(LAYOUT_NAME))
    except FileNotFoundError:
        return None
    return Layout.from_bytes(data)


def resolve_layout(
    recorded: Layout | None,
    *,
    digest_len: int | None,
    serialization_format: str | None,
    safe_json: bool | None,
    defaults: tuple[int, str],
    opener: str,
    usable: Callable[[str], bool],
) -> tuple[str, Naming]:
    """The format to open a root with, and how its files are named.

    A ``None`` adopts the record (else ``defaults``: the class's digest length and
    format, ``safe_json=False``); an explicit value that contradicts the record
    raises ``ValueError`` naming what would open the store (``opener``: the
    class's name, for the message).  A recorded format the store could not use
    (a text format, for a store not given ``base_class_for_values=str``) is not
    adopted.
    """
    default_digest, default_format = defaults
    formats = {} if recorded is None else recorded.formats
    fmt = serialization_format
    if fmt is None:
        only = next(iter(formats)) if len(formats) == 1 else None
        fmt = only if only is not None and usable(only) else default_format
    naming = formats.get(fmt)
    if naming is None:
        return fmt, Naming(default_digest if digest_len is None else digest_len, bool(safe_json))
    if digest_len is not None and digest_len != naming.digest_len:
        raise _contradiction(fmt, "digest_len", naming.digest_len, digest_len, opener)
    if safe_json is False and naming.safe_json:  # safe JSON read as jsonpickle's: other values, silently
        raise _contradiction(fmt, "safe_json", True, False, opener)
    # safe_json=True opens any json store: it only restricts what reading may build (no code runs).
    return fmt, Naming(naming.digest_len, naming.safe_json or bool(safe_json))


def _contradiction(fmt: str, name: str, kept: object, given: object, opener: str) -> ValueError:
    return ValueError(
        f"this store's {fmt} files were written with {name}={kept} (recorded in {LAYOUT_NAME}), so "
        f"{name}={given} would show other keys or values: open it with {opener}(..., {name}={kept}), "
        f"or leave {name} out"
    )


class LayoutRecorder:
    """Records one format's naming at a root once, at the first write into the root (shared by its
    subdicts).  Writing it only then keeps read-only use (listing a folder, the command line's ``ls``)
    from creating anything."""

    def __init__(self, backend: StorageBackend, serialization_format: str, naming: Naming,
                 recorded: Layout | None) -> None:
        self._backend = backend
        self._format = serialization_format
        self._naming = naming
        self.pending = recorded is None or serialization_format not in recorded.formats
        """Whether the record still has to be written (checked on every write: one attribute read)."""
        self._lock = threading.Lock()

    def record(self) -> None:
        """Write the record (one insert-if-absent), or add this store's format to the one another
        process wrote (compare-and-swap, so two processes adding formats at once both get theirs in)."""
        with self._lock:
            path = self._backend.path_for(LAYOUT_NAME)
            layout = Layout({self._format: self._naming})
            expected: Expected = ABSENT
            while self.pending:
                try:
                    self._backend.put(path, layout.to_bytes(), expected)
                except PreconditionFailed:
                    data, version = self._backend.read_versioned(path)  # recorded meanwhile: merge with it
                    recorded = Layout.from_bytes(data)
                    layout, expected = recorded.with_format(self._format, self._naming), version.etag
                    self.pending = self._format not in recorded.formats
                    continue
                self.pending = False
