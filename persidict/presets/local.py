"""Preconfigured FsspecDicts: a local folder (``FileDirDict``) and a private in-memory store (``LocalDict``)."""

from __future__ import annotations

import os
from typing import Any

from fsspec.core import split_protocol

from ..backends import LocalBackend, MemoryBackend
from ..backends.budget import BoundedLocalBackend, FolderBudget
from ..core.fsspec_dict import FsspecDict
from ..core.settings import Location
from ..protocol.flags import ValueType
from ..protocol.retry import RetryConfig

__all__ = ["FileDirDict", "LocalDict", "add_long_path_prefix", "drop_long_path_prefix"]

_LONG_PATH_PREFIX = "\\\\?\\"  # \\?\ lifts Windows' 260-character limit on paths
_UNC_PREFIX = "\\\\"
_FOLDER = Location("base_dir", "path")
_MEMORY = Location("backend", "backend")


def add_long_path_prefix(path: str) -> str:
    """On Windows, an absolute ``path`` with the ``\\\\?\\`` prefix; elsewhere ``path`` unchanged."""
    if os.name != "nt" or path.startswith(_LONG_PATH_PREFIX) or not os.path.isabs(path):
        return path
    if path.startswith(_UNC_PREFIX):
        return _LONG_PATH_PREFIX + "UNC\\" + path[len(_UNC_PREFIX):]
    return _LONG_PATH_PREFIX + path


def drop_long_path_prefix(path: str) -> str:
    """``path`` without the prefix ``add_long_path_prefix`` adds (unchanged if it has none)."""
    if path.startswith(_LONG_PATH_PREFIX + "UNC\\"):
        return _UNC_PREFIX + path[len(_LONG_PATH_PREFIX) + 4:]
    if path.startswith(_LONG_PATH_PREFIX):
        return path[len(_LONG_PATH_PREFIX):]
    return path


def local_folder(base_dir: str | os.PathLike[str]) -> str:
    """``base_dir`` as an absolute folder path (``~`` expanded); a URL is refused, naming ``FsspecDict``."""
    path = os.fspath(base_dir)
    if not isinstance(path, str):
        raise TypeError(f"base_dir must be a str or a path, got {type(base_dir).__name__}")
    protocol, _ = split_protocol(path)
    if protocol is not None and protocol not in ("file", "local") and not (len(protocol) == 1 and os.name == "nt"):
        raise ValueError(f"base_dir {path!r} is a URL, not a local folder: open it with FsspecDict({path!r})")
    if protocol is not None:
        path = split_protocol(path)[1]
    return os.path.abspath(os.path.expanduser(path))


class FileDirDict(FsspecDict[ValueType]):
    """One file per value in a local folder tree.

    Key components carry a short digest suffix (``digest_len``, default 4) so
    that keys differing only in case stay distinct on case-insensitive disks.
    With ``fsync=True`` (the default) every write is flushed to disk, file and
    folder, before it is reported done; ``fsync=False`` trades durability
    across a power loss for speed, never atomicity.  ``base_dir`` may be given
    by position (``FileDirDict("/data/runs")``); ``~`` is expanded.
    ``max_bytes`` makes the folder a bounded cache: the least recently used
    values are evicted to keep it under that size (see ``backends/budget.py``).
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] = "__file_dir_dict__",
        *,
        serialization_format: str | None = None,
        append_only: bool = False,
        digest_len: int | None = None,
        base_class_for_values: type | None = None,
        fsync: bool = True,
        safe_json: bool | None = None,
        max_bytes: int | None = None,
        retry: RetryConfig | None = None,
    ) -> None:
        folder = local_folder(base_dir)
        params = {"base_dir": folder, "fsync": bool(fsync), "serialization_format": serialization_format,
                  "append_only": append_only, "digest_len": digest_len,
                  "base_class_for_values": base_class_for_values, "safe_json": safe_json}
        if max_bytes is None:
            backend = LocalBackend(folder, fsync=bool(fsync))
        else:
            backend = BoundedLocalBackend(folder, fsync=bool(fsync), budget=FolderBudget(folder, max_bytes))
            params["max_bytes"] = max_bytes
        self._open_files(backend, params, _FOLDER, defaults=(4, "pkl"), retry=retry)

    @property
    def base_dir(self) -> str:
        """The absolute path of the store's root folder."""
        return str(self._settings.params["base_dir"])

    @property
    def fsync(self) -> bool:
        """Whether writes are flushed to disk before they return."""
        return bool(self._settings.params["fsync"])


class LocalDict(FsspecDict[ValueType]):
    """An in-memory store on a private fsspec memory filesystem.

    Thread-safe, O(1) per item operation.  Values are serialized like in
    every other store, so a value read back is a new object.  Pass
    ``backend=other.backend`` to share one store on purpose.
    ``prune_interval`` is accepted and reported for compatibility only.
    """

    def __init__(
        self,
        *,
        backend: MemoryBackend | None = None,
        serialization_format: str = "pkl",
        append_only: bool = False,
        base_class_for_values: type | None = None,
        prune_interval: Any = 64,
        safe_json: bool = False,
        retry: RetryConfig | None = None,
    ) -> None:
        if backend is not None and not isinstance(backend, MemoryBackend):
            raise TypeError(f"backend must be a MemoryBackend (another LocalDict's .backend), got {backend!r}")
        backend = MemoryBackend() if backend is None else backend
        params = {"backend": backend, "prune_interval": _normalize_prune_interval(prune_interval),
                  "serialization_format": serialization_format, "append_only": append_only,
                  "base_class_for_values": base_class_for_values, "safe_json": safe_json}
        self._open_files(backend, params, _MEMORY, defaults=(0, "pkl"), retry=retry)

    @property
    def backend(self) -> MemoryBackend:
        """The memory store this dict lives on; pass it to another LocalDict to share it."""
        return self._settings.params["backend"]  # type: ignore[no-any-return]

    @property
    def prune_interval(self) -> int | None:
        """Accepted for compatibility with persidict 0.x (a memory store keeps no empty nodes)."""
        return self._settings.params["prune_interval"]  # type: ignore[no-any-return]


def _normalize_prune_interval(value: Any) -> int | None:
    """The reference's rule (None stays None, unparsable gives 64, <= 0 disables).

    Accepted so code written for the reference keeps working: fsspec's memory
    store keeps no empty nodes, so LocalDict has nothing to prune.
    """
    if value is None:
        return None
    try:
        interval = int(value)
    except (TypeError, ValueError):
        interval = 64
    return interval if interval > 0 else None
